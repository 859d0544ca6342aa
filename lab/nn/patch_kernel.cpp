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

// Writes the first `count` (1..16) of the 16 bits to bits[0], bits[1] (the bits past `count` 0,
// and no byte past them written).
inline void store_bits(uint32_t value, int64_t count, uint8_t* bits) {
  if (count < 16) value &= (uint32_t{1} << count) - 1;
  bits[0] = static_cast<uint8_t>(value);
  if (count > 8) bits[1] = static_cast<uint8_t>(value >> 8);
}

// The kernels' vector operations with AVX2 (8 floats) and with AVX-512 (16 floats); the fused
// multiply-adds, adds and maxima with their operands' places pinned (pinned_ops.h: the places the
// compiled pointwise_gemm blocks and chain_gemm have; tests/lab/test_patch_kernel.cpp checks the
// result against the unfused path).
struct Ymm {
  using T = __m256;
  static constexpr int64_t kLanes = 8;
#define LAB_YMM __attribute__((target("avx2,fma"), always_inline)) static inline
  LAB_YMM T zero() { return _mm256_setzero_ps(); }
  LAB_YMM T load(const float* p) { return _mm256_loadu_ps(p); }
  LAB_YMM void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  LAB_YMM T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  LAB_YMM T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  LAB_YMM T fma_acc(T acc, T a, T b) { return pinned::fma_acc(acc, a, b); }
  LAB_YMM T add_acc(T acc, T b) { return pinned::add_acc(acc, b); }
  LAB_YMM T relu(T v) { return pinned::relu(v); }
  // The bits !(v <= 0) (v > 0 or NaN) of the 16 values lo, hi (lane j of lo: bit j; of hi: bit
  // 8 + j): a ReLU's signs as add_pointwise_sign_trace_run keeps them.
  LAB_YMM uint32_t positive_bits(T lo, T hi) {
    const T zero = _mm256_setzero_ps();
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(lo, zero, _CMP_NLE_UQ))) |
           static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(hi, zero, _CMP_NLE_UQ))) << 8;
  }
#undef LAB_YMM
};

struct Zmm {
  using T = __m512;
  static constexpr int64_t kLanes = 16;
#define LAB_ZMM __attribute__((target("avx512f"), always_inline)) static inline
  LAB_ZMM T zero() { return _mm512_setzero_ps(); }
  LAB_ZMM T load(const float* p) { return _mm512_loadu_ps(p); }
  LAB_ZMM void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  LAB_ZMM T bcast(const float* p) { return _mm512_set1_ps(*p); }
  LAB_ZMM T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  LAB_ZMM T fma_acc(T acc, T a, T b) { return pinned::fma_acc(acc, a, b); }
  LAB_ZMM T add_acc(T acc, T b) { return pinned::add_acc(acc, b); }
  LAB_ZMM T relu(T v) { return pinned::relu(v); }
#undef LAB_ZMM
};

namespace ymm {
using X = Ymm;
#define LAB_KERNEL __attribute__((target("avx2,fma")))
#define LAB_KERNEL_INLINE __attribute__((target("avx2,fma"), always_inline)) inline
#include "lab/nn/patch_kernel_kernels.inc"
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace ymm

namespace zmm {
using X = Zmm;
#define LAB_KERNEL __attribute__((target("avx512f")))
#define LAB_KERNEL_INLINE __attribute__((target("avx512f"), always_inline)) inline
#include "lab/nn/patch_kernel_kernels.inc"
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace zmm

// The fused run (patch_kernel_tile without signs): with AVX-512 (wide_kernels) on the whole
// blocks of 32 columns, then with AVX2 on the rest.
template <bool kPair>
void fused_run(int64_t k, int64_t width, const float* col, int64_t ld, const float* w, const float* bias, bool relu,
               const float* w1, const float* bias1, bool relu1, float* y) {
  const int64_t done =
      wide_kernels() ? zmm::fused_tile<kPair, false, true>(k, width, col, ld, w, bias, relu, w1, bias1, relu1, y, {}) : 0;
  if (done < width)
    ymm::fused_tile<kPair, false, false>(k, width - done, col + done, ld, w, bias, relu, w1, bias1, relu1, y + done, {});
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
    if (channels == 8) ymm::fused_tile<true, true, false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
    else ymm::fused_tile<false, true, false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y, signs);
  } else if (channels == 8) {
    fused_run<true>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y);
  } else {
    fused_run<false>(rows, width, col, ld, w, bias, relu, w1, bias1, relu1, y);
  }
}

bool patch_kernels() { return patch_kernels_set.load(); }
void set_patch_kernels(bool on) { patch_kernels_set.store(on); }

}  // namespace lab
