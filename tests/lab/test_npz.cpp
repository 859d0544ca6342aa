// .npz archives (lab/io/npz.h): CRC-32 against its published check value, the ZIP structure
// (local headers, central directory, end record) read back field by field, members stored whole,
// deterministic bytes, and refused member names.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "lab/core/error.h"
#include "lab/core/tensor.h"
#include "lab/io/npy.h"
#include "lab/io/npz.h"

namespace {

uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

uint16_t le16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) | (static_cast<unsigned char>(s[at + 1]) << 8));
}

}  // namespace

TEST_CASE("crc32: the standard check values") {
  CHECK(lab::crc32("123456789") == 0xCBF43926u);
  CHECK(lab::crc32("") == 0u);
  CHECK(lab::crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
}

TEST_CASE("npz: local headers, central directory and end record point at each other") {
  lab::Tensor t({2, 3});
  for (int64_t i = 0; i < 6; ++i) t[i] = static_cast<float>(i) - 2.5f;
  const std::vector<lab::NpzMember> members = {{"architecture.json", "{\"a\": 1}\n"},
                                               {"layer.0.weight.npy", lab::npy_bytes(t)}};
  const std::string zip = lab::npz_bytes(members);
  CHECK(zip == lab::npz_bytes(members));

  // End of central directory: the last 22 bytes.
  REQUIRE(zip.size() > 22);
  const size_t end = zip.size() - 22;
  CHECK(le32(zip, end) == 0x06054b50u);
  CHECK(le16(zip, end + 8) == 2);
  CHECK(le16(zip, end + 10) == 2);
  const uint32_t cd_size = le32(zip, end + 12);
  const uint32_t cd_offset = le32(zip, end + 16);
  CHECK(cd_offset + cd_size == end);

  size_t cd = cd_offset;
  for (const lab::NpzMember& m : members) {
    CAPTURE(m.name);
    REQUIRE(le32(zip, cd) == 0x02014b50u);
    CHECK(le16(zip, cd + 10) == 0);  // stored
    const uint32_t crc = le32(zip, cd + 16);
    CHECK(crc == lab::crc32(m.bytes));
    CHECK(le32(zip, cd + 20) == m.bytes.size());
    CHECK(le32(zip, cd + 24) == m.bytes.size());
    const uint16_t name_len = le16(zip, cd + 28);
    CHECK(zip.substr(cd + 46, name_len) == m.name);
    const uint32_t local = le32(zip, cd + 42);
    REQUIRE(le32(zip, local) == 0x04034b50u);
    CHECK(le32(zip, local + 14) == crc);
    CHECK(le16(zip, local + 26) == name_len);
    const size_t data = local + 30 + name_len + le16(zip, local + 28);
    CHECK(zip.substr(local + 30, name_len) == m.name);
    CHECK(zip.substr(data, m.bytes.size()) == m.bytes);
    cd += 46 + name_len + le16(zip, cd + 30) + le16(zip, cd + 32);
  }
  CHECK(cd == end);
}

TEST_CASE("npz: empty and repeated member names are refused") {
  CHECK_THROWS_AS(lab::npz_bytes({{"", "x"}}), lab::Error);
  CHECK_THROWS_AS(lab::npz_bytes({{"a.npy", "x"}, {"a.npy", "y"}}), lab::Error);
  CHECK(lab::npz_bytes({}).size() == 22);
}
