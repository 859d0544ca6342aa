/// @file hash.h
/// @brief The two 64-bit mixing functions every seed and cache key of attrlab is made with.
/// - splitmix64: Vigna's finaliser (the output function of the splitmix64 generator), a
///   bijection on 64-bit words that scrambles every bit; seeds of streams derive from it.
/// - fnv1a: 64-bit FNV-1a over bytes, continued from `h` (default: the FNV offset basis), for
///   turning labels and data into keys.
/// Tested in tests/lab/test_random.cpp against Vigna's published reference outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lab {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Added to a splitmix64 state per step: the generator's increment (2^64 / golden ratio).
inline constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

inline uint64_t fnv1a(const void* data, size_t bytes, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

inline uint64_t fnv1a(std::string_view text) { return fnv1a(text.data(), text.size()); }

}  // namespace lab
