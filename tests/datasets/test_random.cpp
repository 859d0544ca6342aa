// Counter-based random streams (datasets/random.h): reference values, independence of the index,
// unbiased ranges and fair bits.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "datasets/random.h"

namespace {

// Pearson's chi-square statistic of observed counts against equal expected counts.
double chi_square(const std::vector<int64_t>& observed) {
  double total = 0;
  for (int64_t o : observed) total += static_cast<double>(o);
  const double expected = total / static_cast<double>(observed.size());
  double chi = 0;
  for (int64_t o : observed) chi += (static_cast<double>(o) - expected) * (static_cast<double>(o) - expected) / expected;
  return chi;
}

}  // namespace

TEST_CASE("splitmix64 matches Vigna's reference outputs") {
  // The first outputs of the splitmix64 generator started at state 0 are splitmix64(0),
  // splitmix64(0x9E3779B97F4A7C15), ...: published reference values.
  CHECK(datasets::splitmix64(0) == 0xE220A8397B1DCDAFull);
  CHECK(datasets::splitmix64(0x9E3779B97F4A7C15ull) == 0x6E789E6AA1B965F4ull);
  CHECK(datasets::splitmix64(2 * 0x9E3779B97F4A7C15ull) == 0x06C45D188009454Full);
}

TEST_CASE("a stream depends only on (seed, index)") {
  datasets::Rng a(7, 3), b(7, 3), c(7, 4), d(8, 3);
  bool differs_index = false, differs_seed = false;
  for (int i = 0; i < 16; ++i) {
    const uint64_t x = a.next();
    CHECK(x == b.next());
    differs_index |= x != c.next();
    differs_seed |= x != d.next();
  }
  CHECK(differs_index);
  CHECK(differs_seed);
}

TEST_CASE("uniform_int covers its inclusive range without bias") {
  datasets::Rng rng(1, 0);
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
  SUBCASE("single value and negative bounds") {
    CHECK(rng.uniform_int(5, 5) == 5);
    for (int i = 0; i < 100; ++i) {
      const int64_t v = rng.uniform_int(-2, -1);
      CHECK((v == -2 || v == -1));
    }
  }
}

TEST_CASE("uniform reals lie in [lo, hi) and bits are fair") {
  datasets::Rng rng(2, 5);
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
