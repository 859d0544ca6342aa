#include "lab/nn/patch_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "lab/nn/pinned_ops.h"
#include "lab/nn/pointwise_gemm.h"

namespace lab {

namespace {

std::atomic<bool> patch_kernels_set{true};

constexpr int64_t kMaxColumnRows = 64;

// Writes the first `count` (1..16) of the 16 bits to bits[0], bits[1] (the bits past `count` 0,
// and no byte past them written).
inline void store_bits(uint32_t value, int64_t count, uint8_t* bits) {
  if (count < 16) value &= (uint32_t{1} << count) - 1;
  bits[0] = static_cast<uint8_t>(value);
  if (count > 8) bits[1] = static_cast<uint8_t>(value >> 8);
}

namespace patch_ymm {
using X = pinned::Ymm;
#define LAB_KERNEL __attribute__((target("avx2,fma")))
#define LAB_KERNEL_INLINE __attribute__((target("avx2,fma"), always_inline)) inline
#include "lab/nn/patch_kernel_kernels.inc"
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace patch_ymm

namespace patch_zmm {
using X = pinned::Zmm;
#define LAB_KERNEL __attribute__((target("avx512f")))
#define LAB_KERNEL_INLINE __attribute__((target("avx512f"), always_inline)) inline
#include "lab/nn/patch_kernel_kernels.inc"
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace patch_zmm

bool all_finite(const float* v, int64_t n) {
  return std::all_of(v, v + n, [](float f) { return std::isfinite(f); });
}

// The fused run (patch_kernel_tile without signs): with AVX-512 (wide_kernels) on the whole
// blocks of 32 columns, then with AVX2 on the rest. The AVX-512 form multiplies x·w where the
// AVX2 one multiplies w·x, the same bytes unless both are NaN: only for finite weights.
template <bool kPair>
void fused_run(int64_t k, int64_t width, const float* col, int64_t ld, const float* w, const float* bias, bool relu,
               const float* w1, const float* bias1, bool relu1, float* y) {
  constexpr int64_t kChannels = kPair ? 8 : 6;
  const bool wide = wide_kernels() && all_finite(w, kChannels * k) && all_finite(w1, kChannels);
  const int64_t done =
      wide ? patch_zmm::fused_tile<kPair, false, true>(k, width, col, ld, w, bias, relu, w1, bias1, relu1, y, {})
           : 0;
  if (done < width)
    patch_ymm::fused_tile<kPair, false, false>(k, width - done, col + done, ld, w, bias, relu, w1, bias1, relu1,
                                               y + done, {});
}

}  // namespace

bool patch_kernel_fits(int64_t rows, int64_t channels) {
  return rows >= 1 && rows <= kMaxColumnRows && (channels == 6 || channels == 8) && patch_kernels() &&
         pointwise_kernel() && pointwise_edges();
}

void patch_kernel_tile(int64_t rows, int64_t channels, int64_t width, const float* col, int64_t ld, const float* w,
                       const float* bias, bool relu, const float* w1, const float* bias1, bool relu1, float* y,
                       const PatchSigns& signs) {
  if (signs.channels != nullptr || signs.output != nullptr) {
    if (channels == 8)
      patch_ymm::fused_tile<true, true, false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
    else
      patch_ymm::fused_tile<false, true, false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
  } else if (channels == 8) {
    fused_run<true>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y);
  } else {
    fused_run<false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y);
  }
}

bool patch_kernels() { return patch_kernels_set.load(); }
void set_patch_kernels(bool on) { patch_kernels_set.store(on); }

}  // namespace lab
