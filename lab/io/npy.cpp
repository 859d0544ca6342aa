#include "lab/io/npy.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string_view>

#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/outputs.h"

namespace lab {

static_assert(std::endian::native == std::endian::little, "attrlab reads and writes little-endian .npy data");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlignment = 64;
constexpr const char* kF32 = "<f4";
constexpr const char* kU8 = "|u1";
constexpr const char* kF16 = "<f2";
constexpr const char* kF64 = "<f8";

/// Bytes per element of the dtypes attrlab reads.
uint64_t element_size(const std::string& dtype) {
  if (dtype == kF16) return 2;
  if (dtype == kF32) return 4;
  if (dtype == kF64) return 8;
  return 1;
}

/// What a dtype string numpy writes is, for messages ("int64", "complex64", "object", ...).
std::string dtype_name(const std::string& descr) {
  if (descr == "|O" || descr == "O") return "object";
  if (descr.size() < 3) return "unknown";
  const char order = descr[0];
  const char kind = descr[1];
  const std::string digits = descr.substr(2);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return "unknown";
  const int bytes = std::atoi(digits.c_str());
  std::string name;
  switch (kind) {
    case 'f': name = "float" + std::to_string(8 * bytes); break;
    case 'i': name = "int" + std::to_string(8 * bytes); break;
    case 'u': name = "uint" + std::to_string(8 * bytes); break;
    case 'c': name = "complex" + std::to_string(8 * bytes); break;
    case 'b': name = "bool"; break;
    case 'U': name = "unicode string"; break;
    case 'S': name = "byte string"; break;
    case 'M': name = "datetime"; break;
    default: return "unknown";
  }
  if (order == '>') name += ", big-endian";
  return name;
}

/// IEEE 754 binary16 to float (exact: every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits = 0;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // 112 = 127 − 15
  } else if (mantissa != 0) {
    int e = 113;  // a subnormal half: normalise
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mantissa & 0x3FFu) << 13);
  } else {
    bits = sign;
  }
  return std::bit_cast<float>(bits);
}

/// `text` with control and non-ASCII bytes escaped (\xNN): messages stay printable, one line
/// and valid UTF-8 (they go into JSON records), whatever bytes a header holds.
std::string escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::isprint(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80)
      out += c;
    else
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
  }
  return out;
}

struct Header {
  NpyInfo info;
  uint64_t data_offset = 0;  ///< bytes before the array data
};

/// The header dict, a Python literal such as
/// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }": string keys, and values that
/// are strings, booleans or tuples of non-negative integers.
class DictParser {
 public:
  DictParser(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  NpyInfo parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<Shape> shape;
    skip_space();
    expect('{');
    skip_space();
    while (!peek('}')) {
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (descr) malformed("'descr' given twice");
        descr = parse_string();
      } else if (key == "fortran_order") {
        if (fortran_order) malformed("'fortran_order' given twice");
        fortran_order = parse_bool();
      } else if (key == "shape") {
        if (shape) malformed("'shape' given twice");
        shape = parse_shape();
      } else {
        malformed("unexpected key '" + escaped(key) + "'");
      }
      skip_space();
      if (peek(',')) {
        ++pos_;
        skip_space();
      } else if (!peek('}')) {
        malformed("expected ',' or '}'");
      }
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) malformed("text after the closing '}'");
    if (!descr) malformed("no 'descr' key");
    if (!fortran_order) malformed("no 'fortran_order' key");
    if (!shape) malformed("no 'shape' key");
    if (*fortran_order) fail("{}: fortran_order is True; expected a C-order array (fortran_order False)", file_);
    if (*descr != kF32 && *descr != kU8 && *descr != kF16 && *descr != kF64)
      fail("{}: unsupported dtype '{}' ({}); expected '<f4' (float32), '<f2' or '<f8' (float16/64, converted where "
           "maps are read), or '|u1' (uint8)",
           file_, escaped(*descr), dtype_name(*descr));
    return NpyInfo{.dtype = *descr, .shape = *shape};
  }

 private:
  [[noreturn]] void malformed(const std::string& what) const {
    fail("{}: malformed .npy header at character {}: {}; header was {}", file_, pos_, what, quoted());
  }

  /// The header with control bytes escaped, cut to 200 characters.
  std::string quoted() const {
    constexpr size_t kMax = 200;
    const std::string out = escaped(text_.substr(0, kMax));
    return text_.size() > kMax ? out + "..." : out;
  }

  bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  void expect(char c) {
    if (!peek(c)) malformed(fmt::format("expected '{}'", c));
    ++pos_;
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  std::string parse_string() {
    if (!peek('\'') && !peek('"')) malformed("expected a quoted string");
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) malformed("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  bool parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    malformed("expected True or False");
  }

  int64_t parse_dim() {
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_])))
      malformed("expected a non-negative integer");
    int64_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) malformed("dimension too large");
      value = value * 10 + digit;
    }
    // Python 2 era writers appended L to long integers.
    if (peek('L')) ++pos_;
    return value;
  }

  /// "()", "(5,)", "(2, 3)", "(2, 3,)".
  Shape parse_shape() {
    expect('(');
    skip_space();
    Shape shape;
    bool comma_after_last = false;
    while (!peek(')')) {
      shape.push_back(parse_dim());
      skip_space();
      comma_after_last = peek(',');
      if (comma_after_last) {
        ++pos_;
        skip_space();
      } else if (!peek(')')) {
        malformed("expected ',' or ')' in shape");
      }
    }
    // A one-element Python tuple needs its trailing comma: "(5)" is the integer 5.
    if (shape.size() == 1 && !comma_after_last) malformed("shape (N) is not a tuple; expected (N,)");
    ++pos_;
    return shape;
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
};

uint64_t read_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::ifstream open_for_read(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail("{}: no such file", path.string());
  if (std::filesystem::is_directory(status)) fail("{}: is a directory, expected a .npy file", path.string());
  check_input_file(path);  // a FIFO or a device would hang or never end
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open for reading: {}", path.string(), std::strerror(errno));
  return in;
}

/// Reads and checks the preamble and header dict, and checks that the file holds exactly the
/// number of data bytes the header's dtype and shape imply.
Header read_header(std::ifstream& in, const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail("{}: cannot read size: {}", file, ec.message());

  unsigned char pre[12] = {};
  in.read(reinterpret_cast<char*>(pre), 8);
  if (in.gcount() < 8 || std::memcmp(pre, kMagic, kMagicSize) != 0)
    fail("{}: not a .npy file (bad magic string; expected \\x93NUMPY)", file);
  const int major = pre[6];
  const int minor = pre[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail("{}: unsupported .npy format version {}.{}; expected 1.0, 2.0 or 3.0", file, major, minor);
  const int len_bytes = major == 1 ? 2 : 4;
  in.read(reinterpret_cast<char*>(pre + 8), len_bytes);
  if (in.gcount() < len_bytes) fail("{}: truncated .npy header (file has {} bytes)", file, file_size);
  const uint64_t header_len = read_le(pre + 8, len_bytes);
  const uint64_t data_offset = 8 + static_cast<uint64_t>(len_bytes) + header_len;
  if (data_offset > file_size)
    fail("{}: truncated .npy header: header length {} needs {} bytes, file has {}", file, header_len, data_offset,
         file_size);
  std::string text(static_cast<size_t>(header_len), '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (static_cast<uint64_t>(in.gcount()) != header_len) fail("{}: truncated .npy header", file);
  if (text.empty() || text.back() != '\n')
    fail("{}: malformed .npy header: does not end with a newline", file);
  text.pop_back();

  Header header;
  header.info = DictParser(text, file).parse();
  header.data_offset = data_offset;

  const uint64_t available = file_size - data_offset;
  const Shape& shape = header.info.shape;
  uint64_t expected = element_size(header.info.dtype);
  bool overflow = false;
  for (int64_t d : shape) overflow |= __builtin_mul_overflow(expected, static_cast<uint64_t>(d), &expected);
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    expected = 0;
    overflow = false;
  }
  if (overflow || expected > available)
    fail("{}: truncated data: shape {} of '{}' needs {} bytes, file has {}", file, to_string(shape),
         header.info.dtype, overflow ? std::string("more than 2^64") : std::to_string(expected), available);
  if (expected < available)
    fail("{}: {} trailing bytes after the data of shape {} of '{}' ({} bytes)", file, available - expected,
         to_string(shape), header.info.dtype, expected);
  return header;
}

std::string header_dict(const char* dtype, const Shape& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  return fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", dtype, dims);
}

/// Preamble + header padded with spaces and a final newline so that the data starts at a
/// multiple of 64 bytes, byte for byte as numpy.save writes it (numpy pads 1 to 64 spaces, never
/// 0); version 1.0 unless the header needs more than 65535 bytes.
std::string preamble_and_header(const char* dtype, const Shape& shape) {
  const std::string dict = header_dict(dtype, shape);
  for (int major : {1, 2}) {
    const size_t pre = major == 1 ? 10 : 12;
    const size_t unpadded = pre + dict.size() + 1;
    const size_t padding = kAlignment - unpadded % kAlignment;
    const size_t header_len = dict.size() + padding + 1;
    if (major == 1 && header_len > 0xFFFF) continue;
    std::string out(kMagic, kMagicSize);
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < pre - 8; ++i) out += static_cast<char>((header_len >> (8 * i)) & 0xFF);
    out += dict;
    out.append(padding, ' ');
    out += '\n';
    return out;
  }
  fail("shape {} is too long for a .npy header", to_string(shape));
}

void check_shape(const std::filesystem::path& path, const Shape& shape, size_t values) {
  for (int64_t d : shape)
    if (d < 0) fail("{}: cannot write shape {}: negative dimension", path.string(), to_string(shape));
  if (numel(shape) != static_cast<int64_t>(values))
    fail("{}: cannot write {} values as shape {} ({} values)", path.string(), values, to_string(shape),
         numel(shape));
}

void write_array(const std::filesystem::path& path, const char* dtype, const Shape& shape, const char* bytes,
                 size_t size) {
  const std::string head = preamble_and_header(dtype, shape);
  write_atomic(path, [&](std::ostream& out) {
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    out.write(bytes, static_cast<std::streamsize>(size));
  });
}

}  // namespace

NpyInfo read_npy_info(const std::filesystem::path& path) {
  std::ifstream in = open_for_read(path);
  return read_header(in, path).info;
}

Tensor read_npy(const std::filesystem::path& path) {
  std::ifstream in = open_for_read(path);
  const Header header = read_header(in, path);
  if (header.info.dtype != kF32)
    fail("{}: dtype '{}' ({}); expected '<f4' (float32)", path.string(), header.info.dtype,
         dtype_name(header.info.dtype));
  Tensor tensor(header.info.shape);
  const auto bytes = static_cast<std::streamsize>(tensor.numel() * 4);
  in.read(reinterpret_cast<char*>(tensor.data()), bytes);
  if (in.gcount() != bytes) fail("{}: read error in the data", path.string());
  return tensor;
}

Tensor read_npy_as_float32(const std::filesystem::path& path, std::string* converted_from) {
  std::ifstream in = open_for_read(path);
  const Header header = read_header(in, path);
  const std::string& dtype = header.info.dtype;
  if (dtype != kF32 && dtype != kF16 && dtype != kF64)
    fail("{}: dtype '{}' ({}); expected floating point: '<f4' (float32), '<f2' (float16) or '<f8' (float64)",
         path.string(), dtype, dtype_name(dtype));
  if (converted_from) *converted_from = dtype == kF32 ? "" : dtype_name(dtype);
  Tensor tensor(header.info.shape);
  const uint64_t size = element_size(dtype);
  std::vector<char> raw(static_cast<size_t>(tensor.numel()) * size);
  in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  if (in.gcount() != static_cast<std::streamsize>(raw.size())) fail("{}: read error in the data", path.string());
  for (int64_t j = 0; j < tensor.numel(); ++j) {
    const char* p = raw.data() + static_cast<size_t>(j) * size;
    if (size == 4) {
      std::memcpy(&tensor[j], p, 4);
    } else if (size == 2) {
      uint16_t h = 0;
      std::memcpy(&h, p, 2);
      tensor[j] = half_to_float(h);
    } else {
      double d = 0;
      std::memcpy(&d, p, 8);
      tensor[j] = static_cast<float>(d);  // nearest float; beyond its range: ±inf
    }
  }
  return tensor;
}

std::vector<uint8_t> read_npy_u8(const std::filesystem::path& path, Shape& shape) {
  std::ifstream in = open_for_read(path);
  const Header header = read_header(in, path);
  if (header.info.dtype != kU8)
    fail("{}: dtype '{}' ({}); expected '|u1' (uint8)", path.string(), header.info.dtype,
         dtype_name(header.info.dtype));
  std::vector<uint8_t> values(static_cast<size_t>(numel(header.info.shape)));
  const auto bytes = static_cast<std::streamsize>(values.size());
  in.read(reinterpret_cast<char*>(values.data()), bytes);
  if (in.gcount() != bytes) fail("{}: read error in the data", path.string());
  shape = header.info.shape;
  return values;
}

void write_npy(const std::filesystem::path& path, const Tensor& tensor) {
  check_shape(path, tensor.shape(), tensor.values().size());
  write_array(path, kF32, tensor.shape(), reinterpret_cast<const char*>(tensor.data()),
              tensor.values().size() * sizeof(float));
}

std::string npy_bytes(const Tensor& tensor) {
  check_shape("(in memory)", tensor.shape(), tensor.values().size());
  std::string out = preamble_and_header(kF32, tensor.shape());
  out.append(reinterpret_cast<const char*>(tensor.data()), tensor.values().size() * sizeof(float));
  return out;
}

void write_npy_u8(const std::filesystem::path& path, const std::vector<uint8_t>& values, const Shape& shape) {
  check_shape(path, shape, values.size());
  write_array(path, kU8, shape, reinterpret_cast<const char*>(values.data()), values.size());
}

}  // namespace lab
