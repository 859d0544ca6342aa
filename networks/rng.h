/// @file rng.h
/// @brief The deterministic random stream the builders draw their non-uniform weights from.
///
/// std::mt19937_64 (its output sequence is fixed by the C++ standard) seeded with
/// splitmix64(seed XOR splitmix64(stream)), so every (seed, purpose) pair has its own stream and
/// a builder's weights depend on nothing but its Params. Integer draws are written out here
/// (rejection sampling on raw 64-bit words) instead of using <random>'s distributions, whose
/// algorithms differ between standard libraries: the same seed gives the same network anywhere.
/// Tested in test_accumulator.cpp (same seed, same weights; other seed, other weights).
#pragma once

#include <cstdint>
#include <random>

#include "lab/core/hash.h"

namespace networks {

/// Vigna's splitmix64 finaliser (lab/core/hash.h).
using lab::splitmix64;

class WeightRng {
 public:
  /// The stream `stream` (a purpose tag, e.g. the block index) under `seed`.
  WeightRng(uint64_t seed, uint64_t stream);
  /// Uniform integer in [0, n), n >= 1, unbiased.
  uint64_t below(uint64_t n);
  /// Uniform integer in [lo, hi], lo <= hi.
  int64_t between(int64_t lo, int64_t hi);
  /// A fair coin.
  bool coin() { return (engine_() >> 63) != 0; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace networks
