/// @file npy.h
/// @brief NumPy .npy files (format 1.0/2.0/3.0), float32 and uint8, C order, little-endian;
/// float16 and float64 are read converted to float32 where a caller asks for it (maps).
///
/// Anything else — a bad magic string, a malformed header dict, fortran_order True, another
/// dtype (named: int64, complex64, object, ...), a shape whose size does not match the bytes (truncated or trailing data) — throws
/// lab::Error naming the file and what was expected. Writes are atomic (temp file + rename).
/// Tested in test_npy.cpp (round trips and a table of malformed files).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lab/core/tensor.h"

namespace lab {

/// What a .npy file holds.
struct NpyInfo {
  std::string dtype;  ///< "<f4", "|u1", "<f2" or "<f8"
  Shape shape;
};

/// Reads only the header.
NpyInfo read_npy_info(const std::filesystem::path& path);
/// Reads a float32 array ("<f4"); other dtypes are an error naming the dtype found.
Tensor read_npy(const std::filesystem::path& path);
/// Reads a float16, float32 or float64 array ("<f2", "<f4", "<f8") as float32: float16 exactly,
/// float64 rounded to the nearest float (±inf beyond its range). `converted_from`, if given, is
/// set to "float16"/"float64", or "" for float32. Integer and other dtypes are an error naming
/// the dtype found.
Tensor read_npy_as_float32(const std::filesystem::path& path, std::string* converted_from = nullptr);
/// Reads a uint8 array ("|u1").
std::vector<uint8_t> read_npy_u8(const std::filesystem::path& path, Shape& shape);

/// Writes a float32 array with the tensor's shape.
void write_npy(const std::filesystem::path& path, const Tensor& tensor);
/// Writes a uint8 array.
void write_npy_u8(const std::filesystem::path& path, const std::vector<uint8_t>& values, const Shape& shape);

/// The bytes write_npy writes for `tensor` (for archives such as .npz).
std::string npy_bytes(const Tensor& tensor);

}  // namespace lab
