#include "lab/nn/patch_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>

#include "lab/nn/pinned_ops.h"
#include "lab/nn/pointwise_gemm.h"

namespace lab {

namespace {

std::atomic<bool> patch_kernels_set{true};

constexpr int64_t kBlockColumns = 16, kMaxColumnRows = 64;

// The chains' fused multiply-adds and adds with their operands' places pinned (pinned_ops.h: the
// places the compiled pointwise_gemm blocks and chain_gemm have; tests/lab/test_patch_kernel.cpp
// checks the result against the unfused path).
using pinned::add_acc;
using pinned::fma_acc;

// v + bias[row] (no bias: v), then the ReLU v > 0 ? v : +0 (NaN and −0 to +0) if relu: the store
// of pointwise_gemm's kernels and of chain_gemm.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 add_bias_relu(__m256 v, const float* bias,
                                                                               int64_t row, bool relu) {
  if (bias != nullptr) v = add_acc(v, _mm256_broadcast_ss(bias + row));
  if (relu) v = pinned::relu(v);
  return v;
}

// The bits !(v <= 0) (v > 0 or NaN) of the 16 values lo, hi (lane j of lo: bit j; of hi: bit
// 8 + j): a ReLU's signs as add_pointwise_sign_trace_run keeps them.
__attribute__((target("avx2,fma"), always_inline)) inline uint32_t positive_bits(__m256 lo, __m256 hi) {
  const __m256 zero = _mm256_setzero_ps();
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(lo, zero, _CMP_NLE_UQ))) |
         static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(hi, zero, _CMP_NLE_UQ))) << 8;
}

// add_bias_relu, and with kSigns the bits !(v <= 0) of the two halves after the bias into *bits.
template <bool kSigns>
__attribute__((target("avx2,fma"), always_inline)) inline void bias_relu_signs(__m256& v0, __m256& v1,
                                                                               const float* bias, int64_t row,
                                                                               bool relu, uint32_t* bits) {
  v0 = add_bias_relu(v0, bias, row, false);
  v1 = add_bias_relu(v1, bias, row, false);
  if constexpr (kSigns) *bits = positive_bits(v0, v1);
  if (relu) v0 = pinned::relu(v0), v1 = pinned::relu(v1);
}

// The fused run on the 16 columns from p of the column tile (see patch_kernel_tile). kPair: 8
// channels (6 + the two-row edge), else 6. Returns the two halves of the 1×1 output in s0, s1
// and, with kSigns, each channel's 16 bits !(v <= 0) (before its ReLU) in bits[channel].
template <bool kPair, bool kSigns>
__attribute__((target("avx2,fma"), always_inline)) inline void fused_block(int64_t k, int64_t p, const float* col,
                                                                           int64_t ld, const float* w,
                                                                           const float* bias, bool relu,
                                                                           const float* w1, __m256& s0, __m256& s1,
                                                                           uint32_t* bits) {
  // Channels 0..5: pointwise_gemm's block, one fused multiply-add chain per element from +0.
  __m256 a[6][2];
  for (int r = 0; r < 6; ++r) a[r][0] = a[r][1] = _mm256_setzero_ps();
  const float* xp = col + p;
  for (int64_t j = 0; j < k; ++j, xp += ld) {
    const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
    const float* wj = w + j;
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      const __m256 wv = _mm256_broadcast_ss(wj + r * k);
      a[r][0] = fma_acc(a[r][0], wv, x0);
      a[r][1] = fma_acc(a[r][1], wv, x1);
    }
  }
  // The 1×1 convolution's chain from +0 over channels 0..5 (chain_gemm's order), each channel
  // after its bias and ReLU.
  s0 = _mm256_setzero_ps();
  s1 = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    const __m256 wv = _mm256_broadcast_ss(w1 + r);
    bias_relu_signs<kSigns>(a[r][0], a[r][1], bias, r, relu, bits + r);
    s0 = fma_acc(s0, wv, a[r][0]);
    s1 = fma_acc(s1, wv, a[r][1]);
  }
  if constexpr (kPair) {
    // Channels 6 and 7: pointwise_gemm's pair_block (even and odd chains of rounded products from
    // +0, e + o, + the last product of an odd depth), then the chain goes on over them.
    __m256 e[2][2], o[2][2];
    for (int i = 0; i < 2; ++i) e[i][0] = e[i][1] = o[i][0] = o[i][1] = _mm256_setzero_ps();
    xp = col + p;
    int64_t j = 0;
    for (; j + 1 < k; j += 2, xp += 2 * ld) {
      const __m256 xe0 = _mm256_loadu_ps(xp), xe1 = _mm256_loadu_ps(xp + 8);
      const __m256 xo0 = _mm256_loadu_ps(xp + ld), xo1 = _mm256_loadu_ps(xp + ld + 8);
      for (int i = 0; i < 2; ++i) {
        const float* wi = w + (6 + i) * k + j;
        const __m256 we = _mm256_broadcast_ss(wi), wo = _mm256_broadcast_ss(wi + 1);
        e[i][0] = add_acc(e[i][0], _mm256_mul_ps(we, xe0));
        e[i][1] = add_acc(e[i][1], _mm256_mul_ps(we, xe1));
        o[i][0] = add_acc(o[i][0], _mm256_mul_ps(wo, xo0));
        o[i][1] = add_acc(o[i][1], _mm256_mul_ps(wo, xo1));
      }
    }
    __m256 t[2][2];
    for (int i = 0; i < 2; ++i)
      for (int h = 0; h < 2; ++h) t[i][h] = add_acc(e[i][h], o[i][h]);
    if (j < k) {
      const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
      for (int i = 0; i < 2; ++i) {
        const __m256 wl = _mm256_broadcast_ss(w + (6 + i) * k + j);
        t[i][0] = add_acc(t[i][0], _mm256_mul_ps(wl, x0));
        t[i][1] = add_acc(t[i][1], _mm256_mul_ps(wl, x1));
      }
    }
    for (int i = 0; i < 2; ++i) {
      const __m256 wv = _mm256_broadcast_ss(w1 + 6 + i);
      bias_relu_signs<kSigns>(t[i][0], t[i][1], bias, 6 + i, relu, bits + 6 + i);
      s0 = fma_acc(s0, wv, t[i][0]);
      s1 = fma_acc(s1, wv, t[i][1]);
    }
  }
}

// Writes the first `count` (1..16) of the 16 bits to bits[0], bits[1] (the bits past `count` 0,
// and no byte past them written).
inline void store_bits(uint32_t value, int64_t count, uint8_t* bits) {
  if (count < 16) value &= (uint32_t{1} << count) - 1;
  bits[0] = static_cast<uint8_t>(value);
  if (count > 8) bits[1] = static_cast<uint8_t>(value >> 8);
}

template <bool kPair, bool kSigns>
__attribute__((target("avx2,fma"))) void fused_tile(int64_t k, int64_t width, const float* col, int64_t ld,
                                                    const float* w, const float* bias, bool relu, const float* w1,
                                                    const float* bias1, bool relu1, float* y, const PatchSigns& sg) {
  constexpr int kChannels = kPair ? 8 : 6;
  for (int64_t p = 0; p < width; p += kBlockColumns) {
    __m256 s0, s1;
    uint32_t bits[kChannels];
    fused_block<kPair, kSigns>(k, p, col, ld, w, bias, relu, w1, s0, s1, bits);
    uint32_t bits1 = 0;
    bias_relu_signs<kSigns>(s0, s1, bias1, 0, relu1, &bits1);
    const int64_t count = std::min(kBlockColumns, width - p);
    if constexpr (kSigns) {
      for (int c = 0; c < kChannels; ++c)
        if (sg.channels != nullptr) store_bits(bits[c], count, sg.channels + c * sg.stride + p / 8);
      if (sg.output != nullptr) store_bits(bits1, count, sg.output + p / 8);
    }
    if (count == kBlockColumns) {
      _mm256_storeu_ps(y + p, s0);
      _mm256_storeu_ps(y + p + 8, s1);
    } else {
      // The image's last tile: only its pixels (the zero columns past them are left out).
      alignas(32) float last[kBlockColumns];
      _mm256_store_ps(last, s0);
      _mm256_store_ps(last + 8, s1);
      std::copy(last, last + count, y + p);
    }
  }
}

}  // namespace

bool patch_kernel_fits(int64_t rows, int64_t channels) {
  return rows >= 1 && rows <= kMaxColumnRows && (channels == 6 || channels == 8) && patch_kernels() &&
         pointwise_kernel() && pointwise_edges();
}

void patch_kernel_tile(int64_t rows, int64_t channels, int64_t width, const float* col, int64_t ld, const float* w,
                       const float* bias, bool relu, const float* w1, const float* bias1, bool relu1, float* y,
                       const PatchSigns& signs) {
  const bool with = signs.channels != nullptr || signs.output != nullptr;
  if (channels == 8 && with) fused_tile<true, true>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
  else if (channels == 8) fused_tile<true, false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
  else if (with) fused_tile<false, true>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
  else fused_tile<false, false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
}

bool patch_kernels() { return patch_kernels_set.load(); }
void set_patch_kernels(bool on) { patch_kernels_set.store(on); }

}  // namespace lab
