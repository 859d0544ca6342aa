/// @file npy.h
/// @brief NumPy .npy files (format 1.0/2.0/3.0), float32 and uint8, C order, little-endian.
///
/// Anything else — a bad magic string, a malformed header dict, fortran_order True, another
/// dtype, a shape whose size does not match the bytes (truncated or trailing data) — throws
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
  std::string dtype;  ///< "<f4" or "|u1"
  Shape shape;
};

/// Reads only the header.
NpyInfo read_npy_info(const std::filesystem::path& path);
/// Reads a float32 array ("<f4"); other dtypes are an error naming the dtype found.
Tensor read_npy(const std::filesystem::path& path);
/// Reads a uint8 array ("|u1").
std::vector<uint8_t> read_npy_u8(const std::filesystem::path& path, Shape& shape);

/// Writes a float32 array with the tensor's shape.
void write_npy(const std::filesystem::path& path, const Tensor& tensor);
/// Writes a uint8 array.
void write_npy_u8(const std::filesystem::path& path, const std::vector<uint8_t>& values, const Shape& shape);

/// The bytes write_npy writes for `tensor` (for archives such as .npz).
std::string npy_bytes(const Tensor& tensor);

}  // namespace lab
