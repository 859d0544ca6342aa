/// @file random.h
/// @brief The one seeded random-number facility of attrlab: every random draw of the networks
/// (non-uniform and unseen-data weights), the data generators, the attribution methods and the
/// metrics comes from a lab::Rng.
///
/// A stream is named by (seed, stream): `seed` is what the user or the sample gives, `stream`
/// separates the purposes or samples drawing under the same seed (a block index, a sample index,
/// a method's tag). The engine is std::mt19937_64, whose output sequence the C++ standard fixes,
/// seeded with the single formula
///   stream_seed(seed, stream) = splitmix64(splitmix64(seed) XOR stream)
/// (Vigna's finaliser, lab/core/hash.h), so a stream depends on (seed, stream) alone: never on a
/// thread, on the order of work or on other streams, which is what keeps every output
/// byte-identical at any thread count. The draws are written out here instead of taken from
/// <random>'s distributions, whose algorithms each standard library chooses: the same
/// (seed, stream) gives the same numbers with any compiler.
/// - uniform_int(lo, hi) / below(n): unbiased integers, rejection of the top partial range of
///   64-bit words (a draw above the largest multiple of the range is drawn again);
/// - uniform(): a real in [0, 1) from the top 53 bits of one word;
/// - bit(): fair coins, the 64 bits of one word consumed lowest first.
/// derive_seed(seed, k) gives the seed of a derived sample (SmoothGrad's k-th noisy copy, the
/// n-th sample of a run): output k (counting from 0) of a splitmix64 generator started at `seed`.
/// Tested in tests/lab/test_random.cpp (reference values from an independent computation of the
/// formula, independence of the stream, unbiased ranges, fair bits).
#pragma once

#include <cstdint>
#include <limits>
#include <random>

#include "lab/core/hash.h"

namespace lab {

/// The engine seed of stream `stream` under `seed`: splitmix64(splitmix64(seed) ^ stream).
inline uint64_t stream_seed(uint64_t seed, uint64_t stream) { return splitmix64(splitmix64(seed) ^ stream); }

/// The seed of derived sample k of `seed`: splitmix64(seed + k·0x9E3779B97F4A7C15).
inline uint64_t derive_seed(uint64_t seed, uint64_t k) { return splitmix64(seed + kGoldenGamma * k); }

class Rng {
 public:
  using result_type = uint64_t;

  /// The stream `stream` under `seed`.
  Rng(uint64_t seed, uint64_t stream) : engine_(stream_seed(seed, stream)) {}

  /// 64 uniformly random bits (also as a UniformRandomBitGenerator: rng()).
  uint64_t next() { return engine_(); }
  uint64_t operator()() { return engine_(); }
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return std::numeric_limits<uint64_t>::max(); }

  /// Uniform integer in [0, n), n ≥ 1, unbiased.
  uint64_t below(uint64_t n);
  /// Uniform integer in [lo, hi] (inclusive, lo ≤ hi), unbiased.
  int64_t uniform_int(int64_t lo, int64_t hi);
  /// Uniform real in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform real in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// One fair coin: the 64 bits of next() one at a time, lowest first.
  bool bit();

  /// The engine itself, for code that takes a std::mt19937_64 (its state continues the stream).
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
  uint64_t bits_ = 0;
  int bits_left_ = 0;
};

}  // namespace lab
