#include "lab/io/npz.h"

#include <array>
#include <limits>
#include <set>

#include "lab/core/error.h"
#include "lab/io/files.h"

namespace lab {

namespace {

// ZIP structures (PKWARE APPNOTE 4.3): little-endian fields, method 0 (stored).
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentral = 0x06054b50;
constexpr uint16_t kVersion = 20;     // 2.0: what a stored member needs
constexpr uint16_t kDosDate = 0x21;   // 1980-01-01
constexpr uint16_t kDosTime = 0;

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>((v >> 8) & 0xFF);
}

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

}  // namespace

uint32_t crc32(const std::string& bytes) {
  const auto& table = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string npz_bytes(const std::vector<NpzMember>& members) {
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  if (members.size() > 0xFFFF) fail("npz: {} members; at most 65535 without ZIP64", members.size());
  std::set<std::string> names;
  std::string out, central;
  for (const NpzMember& m : members) {
    if (m.name.empty() || m.name.size() > 0xFFFF) fail("npz: member name '{}' is empty or too long", m.name);
    if (!names.insert(m.name).second) fail("npz: member '{}' appears twice", m.name);
    if (out.size() > kMax || m.bytes.size() > kMax) fail("npz: archive over 4 GiB at member '{}' (no ZIP64)", m.name);
    const uint32_t offset = static_cast<uint32_t>(out.size());
    const uint32_t crc = crc32(m.bytes);
    const uint32_t size = static_cast<uint32_t>(m.bytes.size());
    const uint16_t name_len = static_cast<uint16_t>(m.name.size());
    put32(out, kLocalHeader);
    put16(out, kVersion);
    put16(out, 0);  // flags
    put16(out, 0);  // method: stored
    put16(out, kDosTime);
    put16(out, kDosDate);
    put32(out, crc);
    put32(out, size);  // compressed
    put32(out, size);  // uncompressed
    put16(out, name_len);
    put16(out, 0);  // extra
    out += m.name;
    out += m.bytes;

    put32(central, kCentralHeader);
    put16(central, kVersion);  // made by
    put16(central, kVersion);  // needed
    put16(central, 0);
    put16(central, 0);
    put16(central, kDosTime);
    put16(central, kDosDate);
    put32(central, crc);
    put32(central, size);
    put32(central, size);
    put16(central, name_len);
    put16(central, 0);  // extra
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, 0);  // external attributes
    put32(central, offset);
    central += m.name;
  }
  if (out.size() + central.size() > kMax) fail("npz: archive over 4 GiB (no ZIP64)");
  const uint32_t central_offset = static_cast<uint32_t>(out.size());
  out += central;
  put32(out, kEndOfCentral);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<uint16_t>(members.size()));
  put16(out, static_cast<uint16_t>(members.size()));
  put32(out, static_cast<uint32_t>(central.size()));
  put32(out, central_offset);
  put16(out, 0);  // comment
  return out;
}

void write_npz(const std::filesystem::path& path, const std::vector<NpzMember>& members) {
  write_text_atomic(path, npz_bytes(members));
}

}  // namespace lab
