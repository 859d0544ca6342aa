#include "datasets/random.h"

#include "lab/core/error.h"

namespace datasets {

Rng::Rng(uint64_t seed, int64_t index)
    : engine_(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(index))) {
  LAB_CHECK(index >= 0, "sample index must be >= 0, got {}", index);
}

int64_t Rng::uniform_int(int64_t lo, int64_t hi) {
  LAB_CHECK(lo <= hi, "uniform_int range [{}, {}] is empty", lo, hi);
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span == UINT64_MAX) return static_cast<int64_t>(next());
  const uint64_t range = span + 1;
  // Accept only draws below the largest multiple of `range`, so every residue is equally likely.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % range + 1) % range;
  uint64_t x = next();
  while (x > limit) x = next();
  return lo + static_cast<int64_t>(x % range);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

bool Rng::bit() {
  if (bits_left_ == 0) {
    bits_ = next();
    bits_left_ = 64;
  }
  const bool b = (bits_ & 1u) != 0;
  bits_ >>= 1;
  --bits_left_;
  return b;
}

}  // namespace datasets
