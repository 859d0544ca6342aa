// The seeded random facility (lab/core/random.h): splitmix64 against Vigna's reference outputs,
// the stream seed and the draws against an independent computation of the documented formula,
// independence of the stream, unbiased ranges and fair bits.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lab/chi_square.h"
#include "lab/core/random.h"

namespace {

using stats::chi_square;

// The splitmix64 generator written out from Vigna's reference code (state += gamma; mix), not
// through lab::splitmix64: its outputs from state s are splitmix64(s), splitmix64(s + gamma), ...
uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The engine of stream (seed, stream) by the formula of random.h, computed with the generator above.
std::mt19937_64 reference_engine(uint64_t seed, uint64_t stream) {
  uint64_t s0 = seed;
  const uint64_t mixed_seed = splitmix64_next(s0);
  uint64_t s1 = mixed_seed ^ stream;
  return std::mt19937_64(splitmix64_next(s1));
}

}  // namespace

TEST_CASE("splitmix64 matches Vigna's reference outputs") {
  // The first outputs of the splitmix64 generator started at state 0 are splitmix64(0),
  // splitmix64(0x9E3779B97F4A7C15), ...: published reference values.
  CHECK(lab::splitmix64(0) == 0xE220A8397B1DCDAFull);
  CHECK(lab::splitmix64(0x9E3779B97F4A7C15ull) == 0x6E789E6AA1B965F4ull);
  CHECK(lab::splitmix64(2 * 0x9E3779B97F4A7C15ull) == 0x06C45D188009454Full);
  uint64_t state = 0;
  CHECK(splitmix64_next(state) == 0xE220A8397B1DCDAFull);
  CHECK(splitmix64_next(state) == 0x6E789E6AA1B965F4ull);
}

TEST_CASE("a stream is std::mt19937_64 seeded with splitmix64(splitmix64(seed) ^ stream)") {
  for (const auto& [seed, stream] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 0}, {7, 3}, {0xFFFFFFFFFFFFFFFFull, 1}, {123456789, 0x554445}}) {
    lab::Rng rng(seed, stream);
    std::mt19937_64 reference = reference_engine(seed, stream);
    for (int i = 0; i < 8; ++i) CHECK(rng.next() == reference());
  }
  // The C++ standard fixes mt19937_64's 10000th output for the default seed 5489.
  std::mt19937_64 standard;
  standard.discard(9999);
  CHECK(standard() == 9981545732273789042ull);
  // Engine seeds pinned to literals (computed outside C++), so the formula cannot change unnoticed.
  CHECK(lab::stream_seed(0, 0) == 0xA706DD2F4D197E6Full);
  CHECK(lab::stream_seed(7, 3) == 0x6BAA78681A99F995ull);
  lab::Rng pinned(7, 3);
  std::mt19937_64 literal(0x6BAA78681A99F995ull);
  CHECK(pinned.next() == literal());
}

TEST_CASE("derived seeds are the outputs of a splitmix64 generator started at the seed") {
  for (uint64_t seed : {0ull, 5ull, 0xDEADBEEFull}) {
    uint64_t state = seed;
    for (uint64_t k = 0; k < 4; ++k) CHECK(lab::derive_seed(seed, k) == splitmix64_next(state));
  }
  CHECK(lab::derive_seed(5, 0) != lab::derive_seed(5, 1));
  CHECK(lab::derive_seed(5, 0) != lab::derive_seed(6, 0));
}

TEST_CASE("a stream depends only on (seed, stream)") {
  lab::Rng a(7, 3), b(7, 3), c(7, 4), d(8, 3);
  bool differs_stream = false, differs_seed = false;
  for (int i = 0; i < 16; ++i) {
    const uint64_t x = a.next();
    CHECK(x == b.next());
    differs_stream |= x != c.next();
    differs_seed |= x != d.next();
  }
  CHECK(differs_stream);
  CHECK(differs_seed);
  // The engine continues the same sequence.
  lab::Rng e(7, 3), f(7, 3);
  e.next();
  std::mt19937_64 copy = e.engine();
  f.next();
  CHECK(copy() == f.next());
}

TEST_CASE("the written-out draws follow the raw words") {
  lab::Rng rng(11, 2);
  std::mt19937_64 words = reference_engine(11, 2);
  SUBCASE("uniform takes the top 53 bits of one word") {
    for (int i = 0; i < 8; ++i) CHECK(rng.uniform() == static_cast<double>(words() >> 11) * 0x1.0p-53);
  }
  SUBCASE("bits are the words' bits, lowest first") {
    const uint64_t w = words();
    for (int i = 0; i < 64; ++i) CHECK(rng.bit() == (((w >> i) & 1u) != 0));
    const uint64_t w2 = words();
    CHECK(rng.bit() == ((w2 & 1u) != 0));
  }
  SUBCASE("an integer draw rejects the words above the largest multiple of the range") {
    // n = 2^63 + 1: only one multiple of n fits in 64 bits, so the words above n − 1 (about half)
    // are rejected and the kept ones are returned as they are.
    const uint64_t n = (uint64_t{1} << 63) + 1;
    for (int i = 0; i < 16; ++i) {
      uint64_t w = words();
      while (w > n - 1) w = words();
      CHECK(rng.below(n) == w);
    }
  }
  SUBCASE("uniform_int(lo, hi) = lo + below(hi - lo + 1); the full range is one word") {
    for (int i = 0; i < 8; ++i) {
      uint64_t w = words();
      const uint64_t limit = UINT64_MAX - (UINT64_MAX % 10 + 1) % 10;
      while (w > limit) w = words();
      CHECK(rng.uniform_int(-3, 6) == -3 + static_cast<int64_t>(w % 10));
    }
    CHECK(rng.uniform_int(INT64_MIN, INT64_MAX) == static_cast<int64_t>(words()));
  }
}

TEST_CASE("uniform_int covers its inclusive range without bias") {
  lab::Rng rng(1, 0);
  SUBCASE("small range") {
    std::vector<int64_t> counts(7, 0);
    for (int i = 0; i < 70000; ++i) {
      const int64_t v = rng.uniform_int(3, 9);
      REQUIRE(v >= 3);
      REQUIRE(v <= 9);
      ++counts[static_cast<size_t>(v - 3)];
    }
    // 6 degrees of freedom: P(chi² > 22.46) = 0.001.
    CHECK(chi_square(counts) < 22.46);
  }
  SUBCASE("a range that makes a plain modulo biased") {
    // n = 3·2^62: x mod n of a uniform 64-bit x falls below 2^62 twice as often as above it.
    const uint64_t n = 3 * (uint64_t{1} << 62);
    int64_t low = 0;
    const int draws = 30000;
    for (int i = 0; i < draws; ++i) low += rng.below(n) < (uint64_t{1} << 62);
    // Unbiased: Binomial(30000, 1/3), sd 82; biased modulo would give 1/2.
    CHECK(std::abs(static_cast<double>(low) - draws / 3.0) < 5 * 82);
  }
  SUBCASE("single value and negative bounds") {
    CHECK(rng.uniform_int(5, 5) == 5);
    CHECK(rng.below(1) == 0);
    for (int i = 0; i < 100; ++i) {
      const int64_t v = rng.uniform_int(-2, -1);
      CHECK((v == -2 || v == -1));
    }
  }
}

TEST_CASE("uniform reals lie in [lo, hi) and bits are fair") {
  lab::Rng rng(2, 5);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = rng.uniform(0.35, 1.0);
    REQUIRE(u >= 0.35);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(sum / 10000 == doctest::Approx(0.675).epsilon(0.01));
  int64_t ones = 0;
  const int n = 64000;
  for (int i = 0; i < n; ++i) ones += rng.bit();
  // Binomial(64000, 1/2): standard deviation 126; 5 sigma.
  CHECK(std::abs(ones - n / 2) < 632);
}
