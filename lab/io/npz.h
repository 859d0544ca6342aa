/// @file npz.h
/// @brief NumPy .npz archives as numpy.savez writes them: a ZIP file of named members, stored
/// uncompressed. Members ending in ".npy" are arrays (numpy.load returns them under the name
/// without ".npy"); any other member (e.g. "architecture.json") is raw bytes.
///
/// The archive is deterministic: members in the given order, every timestamp 1980-01-01 00:00,
/// so the same members give the same bytes. No ZIP64: an archive over 4 GiB is refused.
/// Written atomically (lab/io/files.h). Tested in test_npz.cpp (read back with a reader of the
/// ZIP structure and CRC-32 checked against known values).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lab {

/// One member: its name inside the archive and its bytes.
struct NpzMember {
  std::string name;
  std::string bytes;
};

/// CRC-32 (ISO 3309, the ZIP checksum) of `bytes`.
uint32_t crc32(const std::string& bytes);

/// The archive's bytes; an empty or repeated member name, or more than 4 GiB, throws lab::Error.
std::string npz_bytes(const std::vector<NpzMember>& members);
/// Writes npz_bytes(members) to `path`, atomically.
void write_npz(const std::filesystem::path& path, const std::vector<NpzMember>& members);

}  // namespace lab
