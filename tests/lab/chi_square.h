// Pearson's chi-square statistic, shared by the tests of random draws (tests/lab/test_random.cpp,
// tests/datasets/test_patches.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace stats {

// Pearson's chi-square statistic of observed counts against equal expected counts.
inline double chi_square(const std::vector<int64_t>& observed) {
  double total = 0;
  for (int64_t o : observed) total += static_cast<double>(o);
  const double expected = total / static_cast<double>(observed.size());
  double chi = 0;
  for (int64_t o : observed) chi += (static_cast<double>(o) - expected) * (static_cast<double>(o) - expected) / expected;
  return chi;
}

}  // namespace stats
