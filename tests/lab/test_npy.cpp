// .npy reading and writing: round trips of float32 and uint8 arrays of several ranks, the exact
// bytes NumPy writes, headers in every form NumPy's format allows, and a table of malformed
// files each rejected with a one-line lab::Error naming the file.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "tests/scratch.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace fs = std::filesystem;

namespace {

struct NpyScratch : testdir::Scratch {
  NpyScratch() : testdir::Scratch("npy") {}
};

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// A .npy file with the given version, header dict (newline and padding added) and data.
std::string npy_file(int major, const std::string& dict, const std::string& data, int minor = 0) {
  const size_t pre = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((pre + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += static_cast<char>(minor);
  for (size_t i = 0; i < pre - 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string f32_bytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("write_npy then read_npy returns the same float32 bytes and shape") {
  NpyScratch scratch;
  const std::vector<lab::Shape> shapes = {{}, {1}, {7}, {0}, {2, 3}, {3, 0, 2}, {2, 3, 4, 5}};
  for (const lab::Shape& shape : shapes) {
    CAPTURE(lab::to_string(shape));
    lab::Tensor t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i) * -0.37f + 1e-30f * static_cast<float>(i);
    if (t.numel() > 2) {
      t[1] = std::numeric_limits<float>::infinity();
      t[2] = -0.0f;
    }
    const fs::path path = scratch.dir / "array.npy";
    lab::write_npy(path, t);
    const lab::Tensor back = lab::read_npy(path);
    CHECK(back.shape() == shape);
    REQUIRE(back.numel() == t.numel());
    // memcmp of an empty tensor's null data is undefined (UBSan): nothing to compare then.
    if (t.numel() > 0) CHECK(std::memcmp(back.data(), t.data(), static_cast<size_t>(t.numel()) * 4) == 0);
    const lab::NpyInfo info = lab::read_npy_info(path);
    CHECK(info.dtype == "<f4");
    CHECK(info.shape == shape);
  }
}

TEST_CASE("write_npy_u8 then read_npy_u8 returns the same bytes and shape") {
  NpyScratch scratch;
  const std::vector<lab::Shape> shapes = {{}, {1}, {256}, {0}, {3, 5}, {2, 3, 4, 5}};
  for (const lab::Shape& shape : shapes) {
    CAPTURE(lab::to_string(shape));
    std::vector<uint8_t> values(static_cast<size_t>(lab::numel(shape)));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
    const fs::path path = scratch.dir / "mask.npy";
    lab::write_npy_u8(path, values, shape);
    lab::Shape back_shape = {99};
    const std::vector<uint8_t> back = lab::read_npy_u8(path, back_shape);
    CHECK(back_shape == shape);
    CHECK(back == values);
    CHECK(lab::read_npy_info(path).dtype == "|u1");
  }
}

TEST_CASE("write_npy writes exactly the bytes numpy.save writes") {
  NpyScratch scratch;
  const fs::path path = scratch.dir / "arange.npy";
  // numpy.save(path, numpy.arange(3, dtype=numpy.float32)): magic, version 1.0, header length
  // 118 (little-endian), the 57-character dict, 60 spaces and a newline (10 + 118 = 128
  // bytes), then the data.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  std::string expected = std::string("\x93NUMPY\x01\x00", 8) + std::string("\x76\x00", 2) + dict;
  expected += std::string(128 - 10 - dict.size() - 1, ' ') + "\n";
  expected += f32_bytes({0.0f, 1.0f, 2.0f});
  lab::write_npy(path, lab::Tensor({3}, {0.0f, 1.0f, 2.0f}));
  CHECK(read_bytes(path) == expected);

  SUBCASE("a header that would end exactly on 64 bytes gets 64 spaces, as numpy pads") {
    // The dict around the shape tuple has 53 characters; the tuple (0, 1, ..., 1, 10) of rank 21
    // has 2 + 22 digits + 20 * 2 separators = 64, so the dict has 117 and preamble + dict +
    // newline 10 + 117 + 1 = 128 bytes: numpy adds 64 spaces rather than none.
    lab::Shape shape(21, 1);
    shape[0] = 0;
    shape[20] = 10;
    lab::write_npy_u8(path, {}, shape);
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() == 192);
    CHECK(bytes[8] == static_cast<char>(182));
    CHECK(bytes[9] == 0);
    CHECK(bytes.substr(10 + 117, 64) == std::string(64, ' '));
    CHECK(bytes.back() == '\n');
    CHECK(lab::read_npy_info(path).shape == shape);
  }
}

TEST_CASE("a header longer than 65535 bytes is written as version 2.0 and read back") {
  NpyScratch scratch;
  const fs::path path = scratch.dir / "long.npy";
  const lab::Shape shape(30000, 1);  // "1, " per dimension: about 90000 header bytes
  lab::write_npy(path, lab::Tensor(shape, 4.5f));
  const std::string bytes = read_bytes(path);
  CHECK(bytes[6] == 2);
  CHECK(bytes[7] == 0);
  const lab::Tensor back = lab::read_npy(path);
  CHECK(back.shape() == shape);
  CHECK(back[0] == 4.5f);
}

TEST_CASE("read_npy accepts every header form the format allows") {
  NpyScratch scratch;
  const std::string data = f32_bytes({1.5f, -2.0f, 3.25f, 4.0f, 5.0f, 6.0f});
  struct Case {
    std::string name;
    int major;
    std::string dict;
  };
  const std::vector<Case> cases = {
      {"numpy 1.0", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
      {"version 2.0", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
      {"version 3.0", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
      {"keys in another order", 1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}"},
      {"double quotes, no spaces", 1, "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3)}"},
      {"extra spaces and trailing comma in the shape", 1,
       "{ 'descr' : '<f4' ,  'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const fs::path path = scratch.dir / "form.npy";
    write_bytes(path, npy_file(c.major, c.dict, data));
    const lab::Tensor t = lab::read_npy(path);
    CHECK(t.shape() == lab::Shape{2, 3});
    CHECK(t.values() == std::vector<float>{1.5f, -2.0f, 3.25f, 4.0f, 5.0f, 6.0f});
  }

  SUBCASE("1-tuple and 0-d shapes") {
    const fs::path path = scratch.dir / "small.npy";
    write_bytes(path, npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", data));
    CHECK(lab::read_npy(path).shape() == lab::Shape{6});
    write_bytes(path, npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", f32_bytes({7.0f})));
    const lab::Tensor scalar = lab::read_npy(path);
    CHECK(scalar.shape().empty());
    CHECK(scalar.values() == std::vector<float>{7.0f});
  }
}

TEST_CASE("malformed .npy files are rejected with a one-line error naming the file") {
  NpyScratch scratch;
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  const std::string data3 = f32_bytes({1.0f, 2.0f, 3.0f});
  const std::string good = npy_file(1, good_dict, data3);
  struct Case {
    std::string name;
    std::string bytes;
    std::string expected;  ///< must appear in the message
  };
  const std::vector<Case> cases = {
      {"empty", "", "bad magic"},
      {"bad magic", "\x93NUMPZ" + good.substr(6), "bad magic"},
      {"text file", "descr,shape\n1,2\n", "bad magic"},
      {"version 4.0", npy_file(4, good_dict, data3), "version 4.0"},
      {"version 1.1", npy_file(1, good_dict, data3, 1), "version 1.1"},
      {"truncated header", good.substr(0, 40), "truncated"},
      {"truncated data", good.substr(0, good.size() - 1), "truncated data"},
      {"no data", good.substr(0, good.size() - 12), "needs 12 bytes"},
      {"trailing bytes", good + "xyz", "3 trailing bytes"},
      {"big-endian float32", npy_file(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", data3),
       "'>f4'"},
      {"int32", npy_file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", data3), "'<i4' (int32)"},
      {"complex64", npy_file(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data3 + data3),
       "'<c8' (complex64)"},
      {"object", npy_file(1, "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", data3), "'|O' (object)"},
      {"fortran order", npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", data3),
       "fortran_order is True"},
      {"unclosed dict", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ", data3),
       "malformed"},
      {"shape not a tuple", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", data3),
       "not a tuple"},
      {"negative dimension", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", data3),
       "non-negative integer"},
      {"missing shape", npy_file(1, "{'descr': '<f4', 'fortran_order': False, }", data3), "no 'shape' key"},
      {"unknown key", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", data3),
       "unexpected key 'x'"},
      {"key twice", npy_file(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", data3),
       "'descr' given twice"},
      {"bool spelled false", npy_file(1, "{'descr': '<f4', 'fortran_order': false, 'shape': (3,), }", data3),
       "True or False"},
      {"unterminated string", npy_file(1, "{'descr: '<f4', 'fortran_order': False, 'shape': (3,), }", data3),
       "malformed"},
      {"text after dict", npy_file(1, good_dict + " 1", data3), "after the closing"},
      {"header without newline", std::string("\x93NUMPY\x01\x00\x04\x00{}  ", 14), "newline"},
      {"header length past the end", std::string("\x93NUMPY\x01\x00\xff\x7f{}\n", 13), "truncated"},
      {"absurd shape", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", data3),
       "truncated data"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const fs::path path = scratch.dir / ("case-" + c.name + ".npy");
    write_bytes(path, c.bytes);
    const std::string message = error_of([&] { lab::read_npy(path); });
    CAPTURE(message);
    CHECK(message.find(path.string()) != std::string::npos);
    CHECK(message.find(c.expected) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
    CHECK(error_of([&] { lab::read_npy_info(path); }) == message);
  }
}

TEST_CASE("float16 and float64 are read as float32 where asked: float16 exactly, float64 to the nearest float") {
  NpyScratch scratch;
  // binary16: 1, −2, the smallest subnormal 2^−24, the largest subnormal, 65504, +inf.
  const std::vector<uint16_t> halves = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x7BFF, 0x7C00};
  std::string half_bytes(reinterpret_cast<const char*>(halves.data()), halves.size() * 2);
  const fs::path f16 = scratch.dir / "half.npy";
  write_bytes(f16, npy_file(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", half_bytes));
  std::string from;
  const lab::Tensor h = lab::read_npy_as_float32(f16, &from);
  CHECK(from == "float16");
  CHECK(h.shape() == lab::Shape{2, 3});
  CHECK(h[0] == 1.0f);
  CHECK(h[1] == -2.0f);
  CHECK(h[2] == std::ldexp(1.0f, -24));
  CHECK(h[3] == std::ldexp(1023.0f, -24));
  CHECK(h[4] == 65504.0f);
  CHECK(std::isinf(h[5]));

  const std::vector<double> doubles = {0.1, -1e300, 3.0};
  const fs::path f64 = scratch.dir / "double.npy";
  write_bytes(f64, npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                            std::string(reinterpret_cast<const char*>(doubles.data()), 24)));
  const lab::Tensor d = lab::read_npy_as_float32(f64, &from);
  CHECK(from == "float64");
  CHECK(d[0] == 0.1f);
  CHECK(d[1] == -std::numeric_limits<float>::infinity());
  CHECK(d[2] == 3.0f);
  CHECK(lab::read_npy_info(f64).dtype == "<f8");
  // The strict float32 reader still refuses them, naming the dtype.
  CHECK(error_of([&] { lab::read_npy(f64); }).find("'<f8' (float64)") != std::string::npos);

  lab::write_npy(scratch.dir / "single.npy", lab::Tensor({2}, 0.5f));
  CHECK(lab::read_npy_as_float32(scratch.dir / "single.npy", &from).values() == std::vector<float>{0.5f, 0.5f});
  CHECK(from.empty());
  // Integers are not maps.
  const fs::path u8 = scratch.dir / "mask.npy";
  lab::write_npy_u8(u8, {1, 2, 3}, {3});
  const std::string message = error_of([&] { lab::read_npy_as_float32(u8); });
  CHECK(message.find(u8.string()) != std::string::npos);
  CHECK(message.find("'|u1' (uint8); expected floating point") != std::string::npos);
}

TEST_CASE("reading the other dtype or a missing file names the file and what was found") {
  NpyScratch scratch;
  const fs::path u8 = scratch.dir / "mask.npy";
  const fs::path f32 = scratch.dir / "image.npy";
  lab::write_npy_u8(u8, {1, 2, 3}, {3});
  lab::write_npy(f32, lab::Tensor({3}, 1.0f));

  std::string message = error_of([&] { lab::read_npy(u8); });
  CHECK(message.find(u8.string()) != std::string::npos);
  CHECK(message.find("'|u1'") != std::string::npos);

  lab::Shape shape;
  message = error_of([&] { lab::read_npy_u8(f32, shape); });
  CHECK(message.find(f32.string()) != std::string::npos);
  CHECK(message.find("'<f4'") != std::string::npos);

  const fs::path missing = scratch.dir / "missing.npy";
  message = error_of([&] { lab::read_npy(missing); });
  CHECK(message == missing.string() + ": no such file");

  try {
    lab::read_npy(missing);
  } catch (const lab::Error& e) {
    CHECK(e.kind() == lab::ErrorKind::kInput);
  }
}

TEST_CASE("write_npy_u8 refuses values that do not fill the shape, leaving no file") {
  NpyScratch scratch;
  const fs::path path = scratch.dir / "bad.npy";
  const std::string message = error_of([&] { lab::write_npy_u8(path, {1, 2, 3}, {2, 2}); });
  CHECK(message.find(path.string()) != std::string::npos);
  CHECK(message.find("[2, 2]") != std::string::npos);
  CHECK_FALSE(fs::exists(path));
  CHECK(fs::is_empty(scratch.dir));
}

TEST_CASE("write_npy replaces an existing file whole") {
  NpyScratch scratch;
  const fs::path path = scratch.dir / "array.npy";
  lab::write_npy(path, lab::Tensor({1000}, 1.0f));
  lab::write_npy(path, lab::Tensor({2}, 3.0f));
  CHECK(lab::read_npy(path).values() == std::vector<float>{3.0f, 3.0f});
  CHECK(std::distance(fs::directory_iterator(scratch.dir), fs::directory_iterator()) == 1);
}
