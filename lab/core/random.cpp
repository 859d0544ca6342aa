#include "lab/core/random.h"

#include "lab/core/error.h"

namespace lab {

uint64_t Rng::below(uint64_t n) {
  LAB_CHECK(n >= 1, "Rng::below({}): the range is empty", n);
  // Accept only words up to the largest multiple of n minus one, so every residue is equally likely.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
  uint64_t x = next();
  while (x > limit) x = next();
  return x % n;
}

int64_t Rng::uniform_int(int64_t lo, int64_t hi) {
  LAB_CHECK(lo <= hi, "uniform_int range [{}, {}] is empty", lo, hi);
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span == UINT64_MAX) return static_cast<int64_t>(next());
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + below(span + 1));
}

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

}  // namespace lab
