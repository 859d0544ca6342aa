#include "lab/nn/pointwise_gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "lab/core/runtime.h"
#include "lab/nn/pinned_ops.h"

namespace lab {

namespace {

std::atomic<bool> kernel_set{true};
std::atomic<bool> edges_set{true};
std::atomic<bool> remainders_set{true};
std::atomic<bool> avx512_set{true};
std::atomic<bool> sparse_set{true};

// oneDNN's AVX2 sgemm (its "nocopy" kernel for these shapes, in oneDNN's column-major terms
// m = our columns n, n = our rows m) runs a main kernel on blocks of 16 columns × 6 rows: one
// accumulator per element, zeroed, then one fused multiply-add per k in order; the remainders
// (fewer than 16 columns, fewer than 6 rows) go through other kernels that keep two chains, even
// and odd k, or take a gemv path for a single row or column. Measured against dnnl_sgemm over
// m, k ≤ 64 and many n (tests/lab/test_pointwise_gemm.cpp).
constexpr int64_t kRows = 6, kCols = 16, kMaxDepth = 64, kMaxRows = 64;

bool avx2_sgemm() {
  // After the runtime has held oneDNN to AVX2 (runtime.h).
  static const bool avx2 = (Runtime::get(), dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx2);
  return avx2;
}

// v + bias[row] (no bias: v), then the ReLU v > 0 ? v : +0 (NaN and −0 to +0) if relu: the store
// of both kernels below (the ReLU as pinned_ops.h's one vmaxps).
__attribute__((target("avx2,fma"), always_inline)) inline __m256 bias_relu(__m256 v, const float* bias, int64_t row,
                                                                           bool relu) {
  if (bias != nullptr) v = _mm256_add_ps(v, _mm256_broadcast_ss(bias + row));
  if (relu) v = pinned::relu(v);
  return v;
}

// One block of R rows (6: the main kernel's; 4 or 5: the rows left below its blocks, whose
// remainder kernel keeps the same chain) × 16 columns: acc = Σ_k op(w)(o + r, k) · x[k][p..p+16)
// by fused multiply-adds in order of k from +0, then + bias, then the ReLU, stored to y.
template <int R, bool kTrans>
__attribute__((target("avx2,fma"), always_inline)) inline void block(int64_t o, int64_t p, int64_t k, const float* w,
                                                                     int64_t ldw, const float* x, int64_t ldx,
                                                                     float* y, int64_t ldy, const float* bias,
                                                                     bool relu) {
  __m256 a[R][2];
  for (int r = 0; r < R; ++r) a[r][0] = a[r][1] = _mm256_setzero_ps();
  const float* xp = x + p;
  const int64_t step = kTrans ? 1 : ldw;  // between the weights of two rows
  for (int64_t j = 0; j < k; ++j, xp += ldx) {
    const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
    const float* wj = kTrans ? w + j * ldw + o : w + o * ldw + j;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_broadcast_ss(wj + r * step);
      a[r][0] = _mm256_fmadd_ps(wv, x0, a[r][0]);
      a[r][1] = _mm256_fmadd_ps(wv, x1, a[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    const __m256 v0 = bias_relu(a[r][0], bias, o + r, relu), v1 = bias_relu(a[r][1], bias, o + r, relu);
    float* yr = y + (o + r) * ldy + p;
    _mm256_storeu_ps(yr, v0);
    _mm256_storeu_ps(yr + 8, v1);
  }
}

// The blocks of rows [0, rows) × columns [0, cols), column strip by column strip (a strip of x,
// k × 16 floats, stays in L1 across the strip's row blocks).
template <bool kTrans>
__attribute__((target("avx2,fma"))) void blocks(int64_t rows, int64_t cols, int64_t k, const float* w, int64_t ldw,
                                                const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias,
                                                bool relu) {
  for (int64_t p = 0; p < cols; p += kCols)
    for (int64_t o = 0; o < rows; o += kRows) block<kRows, kTrans>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu);
}

// Rows [r, r + R) of y (R = 4 or 5, the rows left below the blocks of 6) on columns [0, cols), a
// multiple of 16, by block<R>: oneDNN's AVX2 sgemm runs the main kernel's chain on them.
template <int R>
__attribute__((target("avx2,fma"))) void chain_rows(bool trans, int64_t r, int64_t cols, int64_t k, const float* w,
                                                    int64_t ldw, const float* x, int64_t ldx, float* y, int64_t ldy,
                                                    const float* bias, bool relu) {
  for (int64_t p = 0; p < cols; p += kCols) {
    if (trans) block<R, true>(r, p, k, w, ldw, x, ldx, y, ldy, bias, relu);
    else block<R, false>(r, p, k, w, ldw, x, ldx, y, ldy, bias, relu);
  }
}

// acc + w·x: the product rounded, then the sum (kFused false), or one fused multiply-add.
template <bool kFused>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 term(__m256 w, __m256 x, __m256 acc) {
  if constexpr (kFused) return _mm256_fmadd_ps(w, x, acc);
  else return _mm256_add_ps(acc, _mm256_mul_ps(w, x));
}

// oneDNN's AVX2 sgemm on exactly R rows of y (R = 2 or 3: our m = R, its n = R) and at least two
// columns, found by comparing candidate orders with dnnl_sgemm, −0, ∞ and NaN included: per
// element two chains, even and odd k, from +0, then e + o, then the last term if k is odd. Two
// rows: separately rounded products, e = e + w·x (kFused false); three rows: fused multiply-adds
// (kFused true); four and five rows run the main kernel's chain (block<4>, block<5>). On its
// remainder columns, fewer than 16, oneDNN orders a NaN's sign otherwise. Rows r..r + R − 1
// (op(w)'s) on the 16 columns from p, then + bias and the ReLU.
template <int R, bool kFused>
__attribute__((target("avx2,fma"), always_inline)) inline void even_odd_block(bool trans, int64_t r, int64_t p,
                                                                              int64_t k, const float* w, int64_t ldw,
                                                                              const float* x, int64_t ldx, float* y,
                                                                              int64_t ldy, const float* bias,
                                                                              bool relu) {
  __m256 e[R][2], o[R][2];
  for (int i = 0; i < R; ++i) e[i][0] = e[i][1] = o[i][0] = o[i][1] = _mm256_setzero_ps();
  // op(w)(r + i, j) is at w + (r + i)·ri + j·rj.
  const int64_t ri = trans ? 1 : ldw, rj = trans ? ldw : 1;
  const float* xp = x + p;
  int64_t j = 0;
  for (; j + 1 < k; j += 2, xp += 2 * ldx) {
    const __m256 xe0 = _mm256_loadu_ps(xp), xe1 = _mm256_loadu_ps(xp + 8);
    const __m256 xo0 = _mm256_loadu_ps(xp + ldx), xo1 = _mm256_loadu_ps(xp + ldx + 8);
    for (int i = 0; i < R; ++i) {
      const float* wi = w + (r + i) * ri + j * rj;
      const __m256 we = _mm256_broadcast_ss(wi), wo = _mm256_broadcast_ss(wi + rj);
      e[i][0] = term<kFused>(we, xe0, e[i][0]);
      e[i][1] = term<kFused>(we, xe1, e[i][1]);
      o[i][0] = term<kFused>(wo, xo0, o[i][0]);
      o[i][1] = term<kFused>(wo, xo1, o[i][1]);
    }
  }
  __m256 s[R][2];
  for (int i = 0; i < R; ++i)
    for (int h = 0; h < 2; ++h) s[i][h] = _mm256_add_ps(e[i][h], o[i][h]);
  if (j < k) {
    const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
    for (int i = 0; i < R; ++i) {
      const __m256 wl = _mm256_broadcast_ss(w + (r + i) * ri + j * rj);
      s[i][0] = term<kFused>(wl, x0, s[i][0]);
      s[i][1] = term<kFused>(wl, x1, s[i][1]);
    }
  }
  for (int i = 0; i < R; ++i) {
    float* yr = y + (r + i) * ldy + p;
    _mm256_storeu_ps(yr, bias_relu(s[i][0], bias, r + i, relu));
    _mm256_storeu_ps(yr + 8, bias_relu(s[i][1], bias, r + i, relu));
  }
}

// Rows r..r + R − 1 of y on columns [0, cols) (a multiple of 16) by even_odd_block.
template <int R, bool kFused>
__attribute__((target("avx2,fma"))) void even_odd_rows(bool trans, int64_t r, int64_t cols, int64_t k, const float* w,
                                                       int64_t ldw, const float* x, int64_t ldx, float* y, int64_t ldy,
                                                       const float* bias, bool relu) {
  for (int64_t p = 0; p < cols; p += kCols)
    even_odd_block<R, kFused>(trans, r, p, k, w, ldw, x, ldx, y, ldy, bias, relu);
}

// The bits of the largest magnitude among 8 values and `high` (the floats' bits less the sign,
// ordered as the magnitudes; ∞ and NaN above kLargestFinite).
constexpr int32_t kLargestFinite = 0x7f7fffff;

__attribute__((target("avx2,fma"), always_inline)) inline __m256i max_magnitude(__m256i high, const float* x) {
  const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x));
  return _mm256_max_epi32(high, _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)));
}

// Whether values allow the sparse chains of bound `least` (SparseChains): finite, and zero or at
// least `least` in magnitude. Two integer reductions over the magnitudes' bits a (the bits less
// the sign, ordered as the floats): the least a − 1 (0 wraps around to the largest) at least the
// bits of `least` − 1, and the largest a at most the bits of the largest finite float (∞ and NaN
// above it). Four integer operations per eight values.
struct AllowedRange {
  __m256i low, high;

  __attribute__((target("avx2,fma"), always_inline)) AllowedRange()
      : low(_mm256_set1_epi32(-1)), high(_mm256_setzero_si256()) {}

  __attribute__((target("avx2,fma"), always_inline)) void add(const float* x) {
    const __m256i a = _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(x)), _mm256_set1_epi32(0x7fffffff));
    low = _mm256_min_epu32(low, _mm256_sub_epi32(a, _mm256_set1_epi32(1)));
    high = _mm256_max_epi32(high, a);  // max_magnitude, on the magnitudes already at hand
  }

  __attribute__((target("avx2,fma"), always_inline)) void add(const AllowedRange& o) {
    low = _mm256_min_epu32(low, o.low);
    high = _mm256_max_epi32(high, o.high);
  }

  __attribute__((target("avx2,fma"), always_inline)) bool within(float least) const {
    uint32_t least_bits, max_bits;
    const float largest = std::numeric_limits<float>::max();
    std::memcpy(&least_bits, &least, sizeof least_bits);
    std::memcpy(&max_bits, &largest, sizeof max_bits);
    // low ≥ least_bits − 1 (unsigned) ⇔ min(low, least_bits − 1) == least_bits − 1; a `least` of
    // +0 (a weight's exponent above 103) allows every finite value.
    const __m256i bound = _mm256_set1_epi32(static_cast<int32_t>(least_bits == 0 ? 0 : least_bits - 1));
    const __m256i low_ok = _mm256_cmpeq_epi32(_mm256_min_epu32(low, bound), bound);
    const __m256i high_ok = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(max_bits + 1)), high);
    return _mm256_movemask_epi8(_mm256_and_si256(low_ok, high_ok)) == -1;
  }
};

// Whether columns [p, p + 16) of x (k rows, row stride ldx) allow the sparse chains (two
// reductions, one per half, run side by side).
__attribute__((target("avx2,fma"))) bool sparse_strip(int64_t p, int64_t k, const float* x, int64_t ldx,
                                                      float least) {
  AllowedRange r0, r1;
  for (int64_t j = 0; j < k; ++j) {
    r0.add(x + j * ldx + p);
    r1.add(x + j * ldx + p + 8);
  }
  r0.add(r1);
  return r0.within(least);
}

// Whether columns [p, p + 16) of x (k rows, row stride ldx) are all finite: the check of a
// product with the ReLU (pointwise_gemm), two integer operations per eight values (the largest
// magnitude's bits at most the largest finite float's).
__attribute__((target("avx2,fma"))) bool finite_strip(int64_t p, int64_t k, const float* x, int64_t ldx) {
  __m256i h0 = _mm256_setzero_si256(), h1 = h0;
  for (int64_t j = 0; j < k; ++j) {
    h0 = max_magnitude(h0, x + j * ldx + p);
    h1 = max_magnitude(h1, x + j * ldx + p + 8);
  }
  const __m256i above = _mm256_cmpgt_epi32(_mm256_max_epi32(h0, h1), _mm256_set1_epi32(kLargestFinite));
  return _mm256_movemask_epi8(above) == 0;
}

// sparse_values one value at a time.
bool sparse_values_scalar(const float* x, int64_t count, float least) {
  bool ok = true;
  for (int64_t j = 0; j < count; ++j) {
    const float a = std::fabs(x[j]);
    ok &= (a == 0.0f) | ((a >= least) & (a <= std::numeric_limits<float>::max()));
  }
  return ok;
}

// sparse_values with AVX2: eight values per step, then the rest one at a time.
__attribute__((target("avx2,fma"))) bool sparse_values_avx2(const float* x, int64_t count, float least) {
  AllowedRange r;
  int64_t j = 0;
  for (; j + 8 <= count; j += 8) r.add(x + j);
  return r.within(least) && sparse_values_scalar(x + j, count - j, least);
}

// sparse_rows' one chain per element (RowChains::kOne) where every row has C nonzero weights
// (SparseChains::uniform): the rows' steps unrolled, with and without the bias and the ReLU.
template <int C, bool kBias, bool kRelu>
__attribute__((target("avx2,fma"))) void uniform_rows(const SparseChains& s, int64_t r0, int64_t r1, const float* xp,
                                                      int64_t ldx, float* y, int64_t ldy, const float* bias) {
  const int32_t* index = s.index.data() + r0 * C;
  const float* value = s.value.data() + r0 * C;
  for (int64_t r = r0; r < r1; ++r, index += C, value += C) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
#pragma GCC unroll 4
    for (int t = 0; t < C; ++t) {
      const float* xj = xp + index[t] * ldx;
      const __m256 wv = _mm256_broadcast_ss(value + t);
      a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xj), a0);
      a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xj + 8), a1);
    }
    float* yr = y + r * ldy;
    _mm256_storeu_ps(yr, bias_relu(a0, kBias ? bias : nullptr, r, kRelu));
    _mm256_storeu_ps(yr + 8, bias_relu(a1, kBias ? bias : nullptr, r, kRelu));
  }
}

template <int C>
void uniform_rows(const SparseChains& s, int64_t r0, int64_t r1, const float* xp, int64_t ldx, float* y,
                  int64_t ldy, const float* bias, bool relu) {
  if (bias != nullptr && relu) uniform_rows<C, true, true>(s, r0, r1, xp, ldx, y, ldy, bias);
  else if (bias != nullptr) uniform_rows<C, true, false>(s, r0, r1, xp, ldx, y, ldy, bias);
  else if (relu) uniform_rows<C, false, true>(s, r0, r1, xp, ldx, y, ldy, bias);
  else uniform_rows<C, false, false>(s, r0, r1, xp, ldx, y, ldy, bias);
}

// Rows [r0, r1) of y on the 16 columns from p by the nonzero weights of s alone, in the shape
// kShape: the operations of block or even_odd_block on the same operands, less the zero weights'
// steps (the columns allow it: sparse_strip).
template <RowChains kShape>
__attribute__((target("avx2,fma"))) void sparse_rows(const SparseChains& s, int64_t r0, int64_t r1, int64_t p,
                                                     const float* x, int64_t ldx, float* y, int64_t ldy,
                                                     const float* bias, bool relu) {
  if constexpr (kShape == RowChains::kOne) {
    switch (s.uniform) {
      case 1: return uniform_rows<1>(s, r0, r1, x + p, ldx, y + p, ldy, bias, relu);
      case 2: return uniform_rows<2>(s, r0, r1, x + p, ldx, y + p, ldy, bias, relu);
      case 3: return uniform_rows<3>(s, r0, r1, x + p, ldx, y + p, ldy, bias, relu);
      case 4: return uniform_rows<4>(s, r0, r1, x + p, ldx, y + p, ldy, bias, relu);
      default: break;
    }
  }
  constexpr bool kFused = kShape != RowChains::kEvenOddRounded;
  const int64_t pairs = s.depth / 2 * 2;  // even_odd_block: j < pairs in the chains, j = k − 1 last
  const float* xp = x + p;
  for (int64_t r = r0; r < r1; ++r) {
    __m256 e0 = _mm256_setzero_ps(), e1 = e0, o0 = e0, o1 = e0, wl = e0, l0 = e0, l1 = e0;
    bool last = false;
    for (int64_t q = s.start[static_cast<size_t>(r)]; q < s.start[static_cast<size_t>(r) + 1]; ++q) {
      const int64_t j = s.index[static_cast<size_t>(q)];
      const __m256 wv = _mm256_broadcast_ss(&s.value[static_cast<size_t>(q)]);
      const __m256 x0 = _mm256_loadu_ps(xp + j * ldx), x1 = _mm256_loadu_ps(xp + j * ldx + 8);
      if constexpr (kShape == RowChains::kOne) {
        e0 = _mm256_fmadd_ps(wv, x0, e0);
        e1 = _mm256_fmadd_ps(wv, x1, e1);
      } else if (j >= pairs) {
        last = true, wl = wv, l0 = x0, l1 = x1;
      } else if (j % 2 == 0) {
        e0 = term<kFused>(wv, x0, e0);
        e1 = term<kFused>(wv, x1, e1);
      } else {
        o0 = term<kFused>(wv, x0, o0);
        o1 = term<kFused>(wv, x1, o1);
      }
    }
    if constexpr (kShape != RowChains::kOne) {
      e0 = _mm256_add_ps(e0, o0), e1 = _mm256_add_ps(e1, o1);
      if (last) e0 = term<kFused>(wl, l0, e0), e1 = term<kFused>(wl, l1, e1);
    }
    float* yr = y + r * ldy + p;
    _mm256_storeu_ps(yr, bias_relu(e0, bias, r, relu));
    _mm256_storeu_ps(yr + 8, bias_relu(e1, bias, r, relu));
  }
}

// The R rows left below the blocks (from row r) on the 16 columns from p, as pointwise_gemm's
// edges compute them (R = 2: even_odd_rows<2, false>; 3: even_odd_rows<3, true>; 4, 5:
// chain_rows): by the sparse chains (`sparse`: the strip allows them), else dense.
template <int R, bool kTrans>
__attribute__((target("avx2,fma"))) void edge_strip(bool sparse, const SparseChains& s, int64_t r, int64_t p,
                                                    const float* w, int64_t ldw, const float* x, int64_t ldx,
                                                    float* y, int64_t ldy, const float* bias, bool relu) {
  constexpr RowChains kShape = R == 2 ? RowChains::kEvenOddRounded : R == 3 ? RowChains::kEvenOddFused : RowChains::kOne;
  if (sparse) sparse_rows<kShape>(s, r, r + R, p, x, ldx, y, ldy, bias, relu);
  else if constexpr (R == 2) even_odd_block<2, false>(kTrans, r, p, s.depth, w, ldw, x, ldx, y, ldy, bias, relu);
  else if constexpr (R == 3) even_odd_block<3, true>(kTrans, r, p, s.depth, w, ldw, x, ldx, y, ldy, bias, relu);
  else block<R, kTrans>(r, p, s.depth, w, ldw, x, ldx, y, ldy, bias, relu);
}

// Row r of y on columns [0, cols) (a multiple of 16) by its C nonzero weights in one chain
// (RowChains::kOne), then + bias, then the ReLU: sparse_rows' operations, row by row instead of strip
// by strip, the weights and the bias held in registers along the row.
template <int C>
__attribute__((target("avx2,fma"))) void row_chain(const int32_t* index, const float* value, int64_t cols,
                                                   const float* x, int64_t ldx, float* yr, const float* bias) {
  const float* xs[C > 0 ? C : 1];
  __m256 wv[C > 0 ? C : 1];
  for (int t = 0; t < C; ++t) xs[t] = x + index[t] * ldx, wv[t] = _mm256_broadcast_ss(value + t);
  const __m256 bv = bias != nullptr ? _mm256_broadcast_ss(bias) : _mm256_setzero_ps();
  for (int64_t p = 0; p < cols; p += 16) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
#pragma GCC unroll 4
    for (int t = 0; t < C; ++t) {
      a0 = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(xs[t] + p), a0);
      a1 = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(xs[t] + p + 8), a1);
    }
    if (bias != nullptr) a0 = _mm256_add_ps(a0, bv), a1 = _mm256_add_ps(a1, bv);
    _mm256_storeu_ps(yr + p, pinned::relu(a0));
    _mm256_storeu_ps(yr + p + 8, pinned::relu(a1));
  }
}

// Columns [p, p + 8V) of row yr by its `count` nonzero weights, V chains of 8 columns in flight
// (each step's weight broadcast once), then + bias (bv, if bias) and the ReLU. Eight chains keep
// both FMA units busy through each step's 4-cycle latency (with four, a row of 11 weights ran at
// about one FMA per cycle).
template <int V>
__attribute__((target("avx2,fma"), always_inline)) inline void chain_columns(const int32_t* index, const float* value,
                                                                             int64_t count, int64_t p, const float* x,
                                                                             int64_t ldx, float* yr, __m256 bv,
                                                                             bool bias) {
  __m256 a[V];
  for (int v = 0; v < V; ++v) a[v] = _mm256_setzero_ps();
  for (int64_t t = 0; t < count; ++t) {
    const float* xp = x + index[t] * ldx + p;
    const __m256 wv = _mm256_broadcast_ss(value + t);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) a[v] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp + 8 * v), a[v]);
  }
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) _mm256_storeu_ps(yr + p + 8 * v, pinned::relu(bias ? _mm256_add_ps(a[v], bv) : a[v]));
}

// row_chain for any count of nonzero weights: 64 columns at a time, then 32, then the last 16.
__attribute__((target("avx2,fma"))) void row_chains(const int32_t* index, const float* value, int64_t count,
                                                    int64_t cols, const float* x, int64_t ldx, float* yr,
                                                    const float* bias) {
  const __m256 bv = bias != nullptr ? _mm256_broadcast_ss(bias) : _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 64 <= cols; p += 64) chain_columns<8>(index, value, count, p, x, ldx, yr, bv, bias != nullptr);
  for (; p + 32 <= cols; p += 32) chain_columns<4>(index, value, count, p, x, ldx, yr, bv, bias != nullptr);
  for (; p < cols; p += 16) chain_columns<2>(index, value, count, p, x, ldx, yr, bv, bias != nullptr);
}

// Rows [r0, r1) of y on columns [0, cols) (a multiple of 16) in the shape kShape, with the ReLU,
// where x is finite: one chain per element (kOne) row by row (row_chain for 0 to 4 nonzero
// weights, row_chains for more); the even and odd chains strip by strip (sparse_rows).
template <RowChains kShape>
__attribute__((target("avx2,fma"))) void finite_rows(const SparseChains& s, int64_t r0, int64_t r1, int64_t cols,
                                                     const float* x, int64_t ldx, float* y, int64_t ldy,
                                                     const float* bias) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t q = s.start[static_cast<size_t>(r)], count = s.start[static_cast<size_t>(r) + 1] - q;
    const int32_t* index = s.index.data() + q;
    const float* value = s.value.data() + q;
    const float* b = bias != nullptr ? bias + r : nullptr;
    float* yr = y + r * ldy;
    if (kShape == RowChains::kOne && count <= 4) {
      switch (count) {
        case 0: row_chain<0>(index, value, cols, x, ldx, yr, b); break;
        case 1: row_chain<1>(index, value, cols, x, ldx, yr, b); break;
        case 2: row_chain<2>(index, value, cols, x, ldx, yr, b); break;
        case 3: row_chain<3>(index, value, cols, x, ldx, yr, b); break;
        default: row_chain<4>(index, value, cols, x, ldx, yr, b); break;
      }
    } else if (kShape == RowChains::kOne) {
      row_chains(index, value, count, cols, x, ldx, yr, b);
    } else {
      for (int64_t p = 0; p < cols; p += kCols) sparse_rows<kShape>(s, r, r + 1, p, x, ldx, y, ldy, bias, true);
    }
  }
}

// pointwise_gemm's kernel part with sparse weights, the ReLU and x known finite: no check, every
// row by finite_rows (the blocks' rows on [0, cols), the `left` rows below them on [0, edge)).
void finite_strips(const SparseChains& s, int64_t rows, int64_t cols, int64_t left, int64_t edge, const float* x,
                   int64_t ldx, float* y, int64_t ldy, const float* bias) {
  finite_rows<RowChains::kOne>(s, 0, rows, cols, x, ldx, y, ldy, bias);
  if (edge == 0) return;
  if (left == 2) finite_rows<RowChains::kEvenOddRounded>(s, rows, rows + 2, edge, x, ldx, y, ldy, bias);
  else if (left == 3) finite_rows<RowChains::kEvenOddFused>(s, rows, rows + 3, edge, x, ldx, y, ldy, bias);
  else if (left == 4 || left == 5) finite_rows<RowChains::kOne>(s, rows, rows + left, edge, x, ldx, y, ldy, bias);
}

// pointwise_gemm's kernel part with sparse weights: the blocks (rows [0, rows) on columns
// [0, cols)) and the `left` rows below them (on [0, edge); none if edge is 0), strip by strip,
// each strip checked once and run by the nonzero weights' chains where its values allow them,
// else by the dense kernel. The check: with the ReLU, finite values (finite_strip), else
// sparse_strip.
template <bool kTrans>
__attribute__((target("avx2,fma"))) void sparse_strips(const SparseChains& s, int64_t rows, int64_t cols,
                                                       int64_t left, int64_t edge, const float* w, int64_t ldw,
                                                       const float* x, int64_t ldx, float* y, int64_t ldy,
                                                       const float* bias, bool relu) {
  for (int64_t p = 0; p < std::max(cols, edge); p += kCols) {
    const bool sparse = relu ? finite_strip(p, s.depth, x, ldx) : sparse_strip(p, s.depth, x, ldx, s.least);
    if (p < cols && sparse) sparse_rows<RowChains::kOne>(s, 0, rows, p, x, ldx, y, ldy, bias, relu);
    else if (p < cols)
      for (int64_t o = 0; o < rows; o += kRows) block<kRows, kTrans>(o, p, s.depth, w, ldw, x, ldx, y, ldy, bias, relu);
    if (p >= edge) continue;
    switch (left) {
      case 2: edge_strip<2, kTrans>(sparse, s, rows, p, w, ldw, x, ldx, y, ldy, bias, relu); break;
      case 3: edge_strip<3, kTrans>(sparse, s, rows, p, w, ldw, x, ldx, y, ldy, bias, relu); break;
      case 4: edge_strip<4, kTrans>(sparse, s, rows, p, w, ldw, x, ldx, y, ldy, bias, relu); break;
      case 5: edge_strip<5, kTrans>(sparse, s, rows, p, w, ldw, x, ldx, y, ldy, bias, relu); break;
      default: break;
    }
  }
}

// The sgemm on rows [r0, r1) × columns [c0, c1) of y, then the bias and the ReLU there.
bool sgemm_part(bool trans, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t k, const float* w, int64_t ldw,
                const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, bool relu) {
  if (r1 <= r0 || c1 <= c0) return true;
  const float* wr = trans ? w + r0 : w + r0 * ldw;
  if (dnnl_sgemm(trans ? 'T' : 'N', 'N', r1 - r0, c1 - c0, k, 1.0f, wr, ldw, x + c0, ldx, 0.0f, y + r0 * ldy + c0,
                 ldy) != dnnl_success)
    return false;
  for (int64_t r = r0; r < r1; ++r) {
    float* row = y + r * ldy;
    if (bias != nullptr) {
      const float add = bias[r];
      for (int64_t i = c0; i < c1; ++i) row[i] += add;
    }
    if (relu)
      for (int64_t i = c0; i < c1; ++i) row[i] = row[i] > 0.0f ? row[i] : 0.0f;
  }
  return true;
}

// chain_gemm's block of R rows (R <= 6) × 16 columns at row o, column p: acc = +0, one fused
// multiply-add per j in order, then + bias, then the ReLU. Masked: only the columns whose lanes
// are set in m0 (columns p..p+8) and m1 (p+8..p+16) are read and written.
template <int R, bool kMasked>
__attribute__((target("avx2,fma"), always_inline)) inline void chain_block(int64_t o, int64_t p, int64_t k,
                                                                           const float* w, int64_t ldw, const float* x,
                                                                           int64_t ldx, float* y, int64_t ldy,
                                                                           const float* bias, bool relu, __m256i m0,
                                                                           __m256i m1) {
  __m256 a[R][2];
  for (int r = 0; r < R; ++r) a[r][0] = a[r][1] = _mm256_setzero_ps();
  const float* xp = x + p;
  for (int64_t j = 0; j < k; ++j, xp += ldx) {
    const __m256 x0 = kMasked ? _mm256_maskload_ps(xp, m0) : _mm256_loadu_ps(xp);
    const __m256 x1 = kMasked ? _mm256_maskload_ps(xp + 8, m1) : _mm256_loadu_ps(xp + 8);
    const float* wj = w + o * ldw + j;
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_broadcast_ss(wj + r * ldw);
      a[r][0] = _mm256_fmadd_ps(wv, x0, a[r][0]);
      a[r][1] = _mm256_fmadd_ps(wv, x1, a[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const __m256 v0 = bias_relu(a[r][0], bias, o + r, relu), v1 = bias_relu(a[r][1], bias, o + r, relu);
    float* yr = y + (o + r) * ldy + p;
    if (kMasked) {
      _mm256_maskstore_ps(yr, m0, v0);
      _mm256_maskstore_ps(yr + 8, m1, v1);
    } else {
      _mm256_storeu_ps(yr, v0);
      _mm256_storeu_ps(yr + 8, v1);
    }
  }
}

// The row blocks of chain_gemm on columns [p, p + 16) (masked: the lanes m0, m1 only).
template <bool kMasked>
__attribute__((target("avx2,fma"))) void chain_strip(int64_t m, int64_t p, int64_t k, const float* w, int64_t ldw,
                                                     const float* x, int64_t ldx, float* y, int64_t ldy,
                                                     const float* bias, bool relu, __m256i m0, __m256i m1) {
  int64_t o = 0;
  for (; o + kRows <= m; o += kRows) chain_block<kRows, kMasked>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1);
  switch (m - o) {
    case 1: chain_block<1, kMasked>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1); break;
    case 2: chain_block<2, kMasked>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1); break;
    case 3: chain_block<3, kMasked>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1); break;
    case 4: chain_block<4, kMasked>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1); break;
    case 5: chain_block<5, kMasked>(o, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1); break;
    default: break;
  }
}

// One row of chain_gemm on columns [p, p + 64): eight chains at once (one or two would wait for
// each fused multiply-add's latency), each element the same chain as in chain_block.
__attribute__((target("avx2,fma"), always_inline)) inline void chain_row64(int64_t p, int64_t k, const float* w,
                                                                           const float* x, int64_t ldx, float* y,
                                                                           const float* bias, bool relu) {
  __m256 a[8];
  for (int v = 0; v < 8; ++v) a[v] = _mm256_setzero_ps();
  const float* xp = x + p;
  for (int64_t j = 0; j < k; ++j, xp += ldx) {
    const __m256 wv = _mm256_broadcast_ss(w + j);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) a[v] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp + 8 * v), a[v]);
  }
#pragma GCC unroll 8
  for (int v = 0; v < 8; ++v) _mm256_storeu_ps(y + p + 8 * v, bias_relu(a[v], bias, 0, relu));
}

__attribute__((target("avx2,fma"))) void chain_gemm_avx2(int64_t m, int64_t n, int64_t k, const float* w, int64_t ldw,
                                                         const float* x, int64_t ldx, float* y, int64_t ldy,
                                                         const float* bias, bool relu) {
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t p = 0;
  if (m == 1)
    for (; p + 4 * kCols <= n; p += 4 * kCols) chain_row64(p, k, w, x, ldx, y, bias, relu);
  for (; p + kCols <= n; p += kCols) chain_strip<false>(m, p, k, w, ldw, x, ldx, y, ldy, bias, relu, all, all);
  if (p < n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int32_t left = static_cast<int32_t>(n - p);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane);
    chain_strip<true>(m, p, k, w, ldw, x, ldx, y, ldy, bias, relu, m0, m1);
  }
}

bool avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

}  // namespace

void chain_gemm(int64_t m, int64_t n, int64_t k, const float* w, int64_t ldw, const float* x, int64_t ldx, float* y,
                int64_t ldy, const float* bias, bool relu) {
  if (avx2_fma()) return chain_gemm_avx2(m, n, k, w, ldw, x, ldx, y, ldy, bias, relu);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < n; ++p) {
      float acc = 0.0f;
      for (int64_t j = 0; j < k; ++j) acc = std::fma(w[i * ldw + j], x[j * ldx + p], acc);
      if (bias != nullptr) acc = acc + bias[i];
      y[i * ldy + p] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
    }
}

SparseChains sparse_chains(int64_t chains, int64_t depth, const float* w, int64_t chain_stride,
                           int64_t depth_stride, int64_t density, const float* bias) {
  SparseChains s;
  s.chains = chains, s.depth = depth;
  int smallest = 128;
  s.start.reserve(static_cast<size_t>(chains + 1));
  s.start.push_back(0);
  for (int64_t i = 0; i < chains; ++i) {
    if (bias != nullptr && !std::isfinite(bias[i])) return {};
    for (int64_t d = 0; d < depth; ++d) {
      const float v = w[i * chain_stride + d * depth_stride];
      if (!std::isfinite(v)) return {};
      if (v == 0.0f) continue;
      s.index.push_back(static_cast<int32_t>(d));
      s.value.push_back(v);
      smallest = std::min(smallest, std::ilogb(v));
    }
    s.start.push_back(static_cast<int64_t>(s.index.size()));
  }
  if (static_cast<int64_t>(s.index.size()) * density > chains * depth) return {};
  s.least = std::ldexp(1.0f, -103 - smallest);
  s.uniform = s.start[1];
  for (int64_t i = 0; i < chains; ++i)
    if (s.start[static_cast<size_t>(i) + 1] - s.start[static_cast<size_t>(i)] != s.uniform) s.uniform = 0;
  return s;
}

void sparse_chain_strip(const SparseChains& s, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias,
                        bool relu) {
  sparse_rows<RowChains::kOne>(s, 0, s.chains, 0, x, ldx, y, ldy, bias, relu);
}

bool sparse_values(const float* x, int64_t count, float least) {
  return avx2_fma() ? sparse_values_avx2(x, count, least) : sparse_values_scalar(x, count, least);
}

__attribute__((target("avx2,fma"))) float largest_magnitude_avx2(const float* x, int64_t rows, int64_t cols,
                                                                  int64_t ld) {
  __m256i h = _mm256_setzero_si256();
  uint32_t tail = 0;
  for (int64_t j = 0; j < rows; ++j) {
    const float* row = x + j * ld;
    int64_t p = 0;
    for (; p + 8 <= cols; p += 8) h = max_magnitude(h, row + p);
    for (; p < cols; ++p) {
      uint32_t bits;
      std::memcpy(&bits, row + p, sizeof bits);
      tail = std::max(tail, bits & 0x7fffffffu);
    }
  }
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), h);
  for (const uint32_t v : lanes) tail = std::max(tail, v);
  if (tail > static_cast<uint32_t>(kLargestFinite)) return std::numeric_limits<float>::infinity();
  float v;
  std::memcpy(&v, &tail, sizeof v);
  return v;
}

float largest_magnitude(const float* x, int64_t rows, int64_t cols, int64_t ld) {
  if (avx2_fma()) return largest_magnitude_avx2(x, rows, cols, ld);
  float largest = 0.0f;
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t p = 0; p < cols; ++p) {
      const float a = std::fabs(x[j * ld + p]);
      if (!(a <= std::numeric_limits<float>::max())) return std::numeric_limits<float>::infinity();
      largest = std::max(largest, a);
    }
  return largest;
}

bool sparse_weights() { return sparse_set.load(); }

void set_sparse_weights(bool on) { sparse_set.store(on); }

bool pointwise_kernel() { return kernel_set.load() && avx2_sgemm(); }

void set_pointwise_kernel(bool on) { kernel_set.store(on); }

bool pointwise_edges() { return edges_set.load(); }

void set_pointwise_edges(bool on) { edges_set.store(on); }

bool avx512_kernels() { return avx512_set.load(); }

void set_avx512_kernels(bool on) { avx512_set.store(on); }

bool wide_kernels() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has && avx512_kernels();
}

bool pointwise_remainders() { return remainders_set.load(); }

void set_pointwise_remainders(bool on) { remainders_set.store(on); }

namespace {

// pointwise_gemm's rows of the main kernel's blocks of a product of m rows (with at least one
// block of columns): the blocks of 6, one block less if one row is left over (oneDNN's gemv-like
// remainder for a lone row differs, so the last block goes to the sgemm with it).
int64_t block_rows(int64_t m) {
  const int64_t rows = m / kRows * kRows;
  return m - rows == 1 ? (rows >= kRows ? rows - kRows : 0) : rows;
}

// Whether the kernel computes the `left` rows below the blocks on their full blocks of columns
// (pointwise_edges: two rows; pointwise_remainders: three to five).
bool kernel_edge(int64_t left) {
  return pointwise_edges() && (left == 2 || (pointwise_remainders() && left >= 3 && left < kRows));
}

}  // namespace

bool pointwise_columns_alike(int64_t m, int64_t k) {
  if (m > kMaxRows || k > kMaxDepth || !pointwise_kernel()) return false;
  const int64_t left = m - block_rows(m);  // columns: all, n a multiple of 16
  return left == 0 || kernel_edge(left);
}

RowChains finite_row_chains(int64_t m, int64_t k, int64_t i) {
  if (m > kMaxRows || k > kMaxDepth || !pointwise_kernel()) return RowChains::kOther;
  if (m == 1) return pointwise_edges() ? RowChains::kOne : RowChains::kOther;
  const int64_t rows = block_rows(m), left = m - rows;
  if (i < rows) return RowChains::kOne;
  if (!kernel_edge(left)) return RowChains::kOther;
  return left == 2 ? RowChains::kEvenOddRounded : left == 3 ? RowChains::kEvenOddFused : RowChains::kOne;
}

bool pointwise_gemm(bool trans, int64_t m, int64_t n, int64_t k, const float* w, int64_t ldw, const float* x,
                    int64_t ldx, float* y, int64_t ldy, const float* bias, bool relu, const SparseChains* sparse,
                    bool finite) {
  int64_t rows = 0, cols = 0;  // the part of the main kernel's blocks
  if (m <= kMaxRows && k <= kMaxDepth && pointwise_kernel()) {
    rows = block_rows(m);
    cols = n / kCols * kCols;
    // One column left over: oneDNN's remainder kernel for it differs from its gemv for a lone
    // column, so the last full block goes to the sgemm with it (rows: block_rows).
    if (n - cols == 1) cols = cols >= kCols ? cols - kCols : 0;
    if (rows == 0 || cols == 0) rows = cols = 0;
  }
  const SparseChains* sp =
      sparse != nullptr && !sparse->empty() && sparse->chains == m && sparse->depth == k && sparse_weights()
          ? sparse
          : nullptr;
  // Known finite under the ReLU: the chains at their density (kPointwiseFiniteDensity), no check;
  // else only at kPointwiseSparseDensity, strip by strip checked.
  const bool known = sp != nullptr && finite && relu;
  if (sp != nullptr && !known && static_cast<int64_t>(sp->index.size()) * kPointwiseSparseDensity > m * k)
    sp = nullptr;
  // The edges: columns [cols, n) of the kernel's rows, then the rows below them (all of y if
  // the kernel did not run). Where the sgemm would run on one row alone (the whole product of one
  // row: oneDNN's gemv, one fused multiply-add chain from +0 per element, as chain_gemm) or on two
  // rows (even_odd_rows<2>, on their full blocks of 16 columns), the kernel computes its bytes instead.
  const bool edges = m <= kMaxRows && k <= kMaxDepth && pointwise_kernel() && pointwise_edges();
  if (edges && m == 1 && (!trans || ldw == 1)) {
    chain_gemm(1, n, k, w, trans ? 1 : ldw, x, ldx, y, ldy, bias, relu);
    return true;
  }
  // The rows left below the blocks of 6 (all of y if the kernel did not run) on their full blocks
  // of 16 columns, one block less if one column is left over (oneDNN's kernels for the others
  // order a NaN's sign otherwise): two and three rows by even_odd_rows, four and five by the main
  // kernel's chain (chain_rows); a single row below blocks never comes here (see rows).
  const int64_t left = m - rows;
  int64_t edge = 0;
  if (edges && kernel_edge(left)) {
    edge = n / kCols * kCols;
    if (n - edge == 1) edge = edge >= kCols ? edge - kCols : 0;
  }
  if (known) {
    finite_strips(*sp, rows, cols, left, edge, x, ldx, y, ldy, bias);
  } else if (sp != nullptr && trans) {
    sparse_strips<true>(*sp, rows, cols, left, edge, w, ldw, x, ldx, y, ldy, bias, relu);
  } else if (sp != nullptr) {
    sparse_strips<false>(*sp, rows, cols, left, edge, w, ldw, x, ldx, y, ldy, bias, relu);
  } else {
    if (rows > 0 && trans) blocks<true>(rows, cols, k, w, ldw, x, ldx, y, ldy, bias, relu);
    else if (rows > 0) blocks<false>(rows, cols, k, w, ldw, x, ldx, y, ldy, bias, relu);
    if (edge > 0) {
      switch (left) {
        case 2: even_odd_rows<2, false>(trans, rows, edge, k, w, ldw, x, ldx, y, ldy, bias, relu); break;
        case 3: even_odd_rows<3, true>(trans, rows, edge, k, w, ldw, x, ldx, y, ldy, bias, relu); break;
        case 4: chain_rows<4>(trans, rows, edge, k, w, ldw, x, ldx, y, ldy, bias, relu); break;
        case 5: chain_rows<5>(trans, rows, edge, k, w, ldw, x, ldx, y, ldy, bias, relu); break;
        default: break;
      }
    }
  }
  if (!sgemm_part(trans, 0, rows, cols, n, k, w, ldw, x, ldx, y, ldy, bias, relu)) return false;
  return sgemm_part(trans, rows, m, edge, n, k, w, ldw, x, ldx, y, ldy, bias, relu);
}

}  // namespace lab
