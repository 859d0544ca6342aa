#include "lab/nn/patch_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <type_traits>

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

// The rows of a block of 32 output pixels of a 2×2 stride-2 convolution of one channel, read
// from the image: row j = 2i + dx is the pixels (2·oy + i, 2·ox + dx) of the block's windows.
struct ImageRows {
  T x[4][2];
  LAB_KERNEL_INLINE T operator()(int64_t j, int h) const { return x[j][h]; }
};

// The windows of `count` (1 to 16) pixels from output pixel (oy, ox) into lanes 0..count − 1 of
// half h of x (the other lanes +0): the two image rows' 2·count floats each as two vectors (masked:
// nothing read past them), split into even and odd columns (vpermt2ps).
LAB_KERNEL_INLINE void load_windows(const float* image, int64_t iw, int64_t oy, int64_t ox, int64_t count, int h,
                                    ImageRows& x) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const float* r0 = image + 2 * oy * iw + 2 * ox;
  for (int i = 0; i < 2; ++i, r0 += iw) {
    T a, b;
    if (count == X::kLanes) {
      a = X::load(r0), b = X::load(r0 + X::kLanes);
    } else {
      const uint32_t bits = (uint32_t{1} << (2 * count)) - 1;  // 2·count < 32
      a = _mm512_maskz_loadu_ps(static_cast<__mmask16>(bits), r0);
      b = _mm512_maskz_loadu_ps(static_cast<__mmask16>(bits >> 16), r0 + X::kLanes);
    }
    x.x[2 * i][h] = _mm512_permutex2var_ps(a, even, b);
    x.x[2 * i + 1][h] = _mm512_permutex2var_ps(a, odd, b);
  }
}

// patch_kernel_image's fused run on whole blocks of 32 pixels from p0 (p0 a multiple of 16; output
// rows of ow ≥ 16 pixels): per half of 16 pixels its windows (load_windows; a half across two
// output rows from each, its second part moved up to lanes m..15 by vpermps), then the column
// tile's operations (fused_block). Returns the pixels done.
template <bool kPair>
LAB_KERNEL int64_t image_tile(const float* image, int64_t iw, int64_t ow, int64_t p0, int64_t width,
                              const float* w, const float* bias, bool relu, const float* w1, const float* bias1,
                              bool relu1, float* y) {
  constexpr int kChannels = kPair ? 8 : 6;
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t p = 0;
  for (; p + kBlock <= width; p += kBlock) {
    ImageRows x;
    for (int h = 0; h < 2; ++h) {
      const int64_t q = p0 + p + h * X::kLanes, oy = q / ow, ox = q - oy * ow, m = ow - ox;
      if (m >= X::kLanes) {
        load_windows(image, iw, oy, ox, X::kLanes, h, x);
        continue;
      }
      // m pixels at the end of row oy, 16 − m at the start of row oy + 1 (ow ≥ 16).
      ImageRows next;
      load_windows(image, iw, oy, ox, m, h, x);
      load_windows(image, iw, oy + 1, 0, X::kLanes - m, h, next);
      const __mmask16 upper = static_cast<__mmask16>(0xffffu << m);
      const __m512i from = _mm512_sub_epi32(lanes, _mm512_set1_epi32(static_cast<int>(m)));
      for (int j = 0; j < 4; ++j) x.x[j][h] = _mm512_mask_permutexvar_ps(x.x[j][h], upper, from, next.x[j][h]);
    }
    T s0, s1;
    uint32_t bits[kChannels], bits1 = 0;
    fused_block<kPair, false>(std::integral_constant<int64_t, 4>{}, x, w, bias, relu, w1, s0, s1, bits);
    bias_relu_signs<false>(s0, s1, bias1, 0, relu1, &bits1);
    X::store(y + p, s0);
    X::store(y + p + X::kLanes, s1);
  }
  return p;
}
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace patch_zmm

// Whether the AVX-512 form runs on a patch convolution's channels × rows weights w and the 1×1
// convolution's weights w1: with wide_kernels() and every weight finite (its products are x·w,
// the AVX2 form's w·x: the same bytes unless both are NaN).
bool wide_weights(int64_t rows, int64_t channels, const float* w, const float* w1) {
  const auto finite = [](float f) { return std::isfinite(f); };
  return wide_kernels() && std::all_of(w, w + rows * channels, finite) && std::all_of(w1, w1 + channels, finite);
}

// The fused run (patch_kernel_tile without signs): with AVX-512 (wide_weights) on the whole blocks
// of 32 columns, then with AVX2 on the rest.
template <bool kPair>
void fused_run(int64_t k, int64_t width, const float* col, int64_t ld, const float* w, const float* bias, bool relu,
               const float* w1, const float* bias1, bool relu1, float* y) {
  const bool wide = wide_weights(k, kPair ? 8 : 6, w, w1);
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

int64_t patch_kernel_image(const float* image, int64_t iw, int64_t ow, int64_t p0, int64_t width, int64_t channels,
                           const float* w, const float* bias, bool relu, const float* w1, const float* bias1,
                           bool relu1, float* y) {
  if (ow < 16 || p0 % 16 != 0 || !wide_weights(4, channels, w, w1)) return 0;
  if (channels == 8)
    return patch_zmm::image_tile<true>(image, iw, ow, p0, width, w, bias, relu, w1, bias1, relu1, y);
  return patch_zmm::image_tile<false>(image, iw, ow, p0, width, w, bias, relu, w1, bias1, relu1, y);
}

bool patch_kernels() { return patch_kernels_set.load(); }
void set_patch_kernels(bool on) { patch_kernels_set.store(on); }

}  // namespace lab
