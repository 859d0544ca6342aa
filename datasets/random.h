/// @file random.h
/// @brief Counter-based random streams: every sample draws from its own generator, seeded from
/// (seed, index) alone, so a sample never depends on which thread made it or on other samples.
///
/// The stream is std::mt19937_64 (fully specified by the C++ standard) seeded with
/// splitmix64(splitmix64(seed) XOR index). The integer and real draws below are written out here
/// rather than taken from <random>'s distributions, whose algorithms are left to each standard
/// library: the same (seed, index) gives the same numbers with any compiler.
/// Tested in test_random.cpp (reference values, independence of the index, unbiased ranges).
#pragma once

#include <cstdint>
#include <random>

#include "lab/core/hash.h"

namespace datasets {

/// Vigna's splitmix64 finaliser (lab/core/hash.h).
using lab::splitmix64;

class Rng {
 public:
  /// The stream of sample `index` (>= 0) under `seed`.
  Rng(uint64_t seed, int64_t index);

  /// 64 uniformly random bits.
  uint64_t next() { return engine_(); }
  /// Uniform integer in [lo, hi] (inclusive, lo <= hi), unbiased (rejection of the last partial range).
  int64_t uniform_int(int64_t lo, int64_t hi);
  /// Uniform real in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform real in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// One fair coin, Bernoulli(0.5): consumes the 64 bits of next() one at a time, lowest first.
  bool bit();

 private:
  std::mt19937_64 engine_;
  uint64_t bits_ = 0;
  int bits_left_ = 0;
};

}  // namespace datasets
