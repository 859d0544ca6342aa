#include "networks/rng.h"

#include "lab/core/error.h"

namespace networks {

WeightRng::WeightRng(uint64_t seed, uint64_t stream) : engine_(splitmix64(seed ^ splitmix64(stream))) {}

uint64_t WeightRng::below(uint64_t n) {
  LAB_CHECK(n >= 1);
  // Reject the top partial range so that every residue is equally likely.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
  uint64_t r = engine_();
  while (r > limit) r = engine_();
  return r % n;
}

int64_t WeightRng::between(int64_t lo, int64_t hi) {
  LAB_CHECK(lo <= hi);
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

}  // namespace networks
