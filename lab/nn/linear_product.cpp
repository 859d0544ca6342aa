#include "lab/nn/linear_product.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <limits>

#include "lab/core/error.h"
#include "lab/nn/pinned_ops.h"
#include "lab/nn/pointwise_gemm.h"

namespace lab {

namespace {

constexpr int64_t kLinearRows = 6, kLinearCols = 16;
// The summed index in blocks of this many (a block of 16 packed columns, 16 KiB, stays in L1
// while a group's row blocks go by).
constexpr int64_t kLinearDepth = 256;
// Row blocks packed together (72 rows: 72 KiB of packed rows per thread, on its stack).
constexpr int64_t kLinearGroup = 12;
// Below this many multiply-adds a product runs on the calling thread alone.
constexpr int64_t kLinearSerialMacs = int64_t{1} << 16;
// Rows of a sparse product that go together as one strip of columns (sparse_product).
constexpr int64_t kStripRows = 16;

std::atomic<bool> linear_chains_set{true};

// The strips of 16 columns of `out` output columns, and where w[o][j] sits in the packed weights
// (pack_linear_weights).
int64_t strips_of(int64_t out) { return (out + kLinearCols - 1) / kLinearCols; }
int64_t packed_index(int64_t in, int64_t o, int64_t j) {
  return ((o / kLinearCols) * in + j) * kLinearCols + o % kLinearCols;
}

bool linear_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// The bias is added with the accumulator's place pinned (pinned_ops.h), as acc + bias[o] in the
// scalar loop. The chains' fused multiply-adds are compiled as vfmadd231ps with the accumulator as
// destination, x[p][j] and w[o][j] in fixed places (the same form as lab::chain_gemm's; pinning
// them by inline assembly made the compiler copy the accumulators between registers and halved
// the speed).

// Rows [0, R) × columns [0, 16) of y (row stride ldy; kMasked: lanes of m0, m1 only, the last
// strip's, by masked loads and stores, which are slow on some machines): the chains over the kn
// steps of xp (packed [j][R]) and wp (packed [j][16]), from +0 (first) or from y; + bias and the
// ReLU (last).
template <int R, bool kMasked>
__attribute__((target("avx2,fma"))) void linear_block(const float* xp, const float* wp, int64_t kn, float* y,
                                                     int64_t ldy, bool first, bool last, const float* bias, bool relu,
                                                     __m256i m0, __m256i m1) {
  __m256 a[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    const float* yr = y + r * ldy;
    a[r][0] = first ? _mm256_setzero_ps() : kMasked ? _mm256_maskload_ps(yr, m0) : _mm256_loadu_ps(yr);
    a[r][1] = first ? _mm256_setzero_ps() : kMasked ? _mm256_maskload_ps(yr + 8, m1) : _mm256_loadu_ps(yr + 8);
  }
  for (int64_t j = 0; j < kn; ++j, xp += R, wp += kLinearCols) {
    const __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(xp + r);
      a[r][0] = _mm256_fmadd_ps(xv, w0, a[r][0]);
      a[r][1] = _mm256_fmadd_ps(xv, w1, a[r][1]);
    }
  }
  const __m256 b0 = last && bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
  const __m256 b1 = last && bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    __m256 v0 = a[r][0], v1 = a[r][1];
    if (last && bias) v0 = pinned::add_acc(v0, b0), v1 = pinned::add_acc(v1, b1);
    if (last && relu) v0 = pinned::relu(v0), v1 = pinned::relu(v1);
    if (kMasked) {
      _mm256_maskstore_ps(y + r * ldy, m0, v0);
      _mm256_maskstore_ps(y + r * ldy + 8, m1, v1);
    } else {
      _mm256_storeu_ps(y + r * ldy, v0);
      _mm256_storeu_ps(y + r * ldy + 8, v1);
    }
  }
}

template <bool kMasked>
__attribute__((target("avx2,fma"))) void linear_block_rows(int64_t rows, const float* xp, const float* wp, int64_t kn,
                                                    float* y, int64_t ldy, bool first, bool last, const float* bias,
                                                    bool relu, __m256i m0, __m256i m1) {
  switch (rows) {
    case 6: return linear_block<6, kMasked>(xp, wp, kn, y, ldy, first, last, bias, relu, m0, m1);
    case 5: return linear_block<5, kMasked>(xp, wp, kn, y, ldy, first, last, bias, relu, m0, m1);
    case 4: return linear_block<4, kMasked>(xp, wp, kn, y, ldy, first, last, bias, relu, m0, m1);
    case 3: return linear_block<3, kMasked>(xp, wp, kn, y, ldy, first, last, bias, relu, m0, m1);
    case 2: return linear_block<2, kMasked>(xp, wp, kn, y, ldy, first, last, bias, relu, m0, m1);
    default: return linear_block<1, kMasked>(xp, wp, kn, y, ldy, first, last, bias, relu, m0, m1);
  }
}

// Rows [r0, r1) and strips [s0, s1) of y = x · wᵀ (linear_chain). Per group of up to
// kLinearGroup row blocks and block of the summed index: the group's rows are packed once, then
// each strip's packed block (kLinearDepth × 16 floats, 16 KiB) stays in L1 while the group's row
// blocks go by, so the weights are read once per group.
__attribute__((target("avx2,fma"))) void linear_part(int64_t r0, int64_t r1, int64_t s0, int64_t s1, int64_t in,
                                                    int64_t out, const float* x, const float* packed,
                                                    const float* bias, bool relu, float* y) {
  alignas(32) float xp[kLinearDepth * kLinearRows * kLinearGroup];
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t g0 = r0; g0 < r1; g0 += kLinearRows * kLinearGroup) {
    const int64_t g1 = std::min(r1, g0 + kLinearRows * kLinearGroup);
    for (int64_t k0 = 0; k0 < in; k0 += kLinearDepth) {
      const int64_t kn = std::min(kLinearDepth, in - k0);
      const bool first = k0 == 0, last = k0 + kn == in;
      // Row block rb at xp + (rb − g0)·kn, as [j][rows].
      for (int64_t rb = g0; rb < g1; rb += kLinearRows) {
        const int64_t rows = std::min(kLinearRows, g1 - rb);
        float* xb = xp + (rb - g0) * kn;
        for (int64_t j = 0; j < kn; ++j)
          for (int64_t r = 0; r < rows; ++r) xb[j * rows + r] = x[(rb + r) * in + k0 + j];
      }
      for (int64_t s = s0; s < s1; ++s) {
        const int32_t left = static_cast<int32_t>(std::min(kLinearCols, out - s * kLinearCols));
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane);
        const float* wp = packed + (s * in + k0) * kLinearCols;
        const float* bs = bias ? bias + s * kLinearCols : nullptr;
        for (int64_t rb = g0; rb < g1; rb += kLinearRows) {
          const int64_t rows = std::min(kLinearRows, g1 - rb);
          const float* xb = xp + (rb - g0) * kn;
          float* yb = y + rb * out + s * kLinearCols;
          if (left == kLinearCols) linear_block_rows<false>(rows, xb, wp, kn, yb, out, first, last, bs, relu, m0, m1);
          else linear_block_rows<true>(rows, xb, wp, kn, yb, out, first, last, bs, relu, m0, m1);
        }
      }
    }
  }
}

}  // namespace

namespace {

std::vector<float> pack_linear_weights(int64_t in, int64_t out, const float* w) {
  std::vector<float> packed(static_cast<size_t>(strips_of(out) * in * kLinearCols), 0.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t j = 0; j < in; ++j) packed[static_cast<size_t>(packed_index(in, o, j))] = w[o * in + j];
  return packed;
}

// y[i] = the chain of c's nonzero weights on row x (+ bias[i], the ReLU) for every chain i.
__attribute__((target("avx2,fma"))) void sparse_row_avx2(const SparseChains& c, int64_t chains, const float* x,
                                                         const float* bias, bool relu, float* y) {
  const int64_t* start = c.start.data();
  const int32_t* index = c.index.data();
  const float* value = c.value.data();
  for (int64_t i = 0; i < chains; ++i) {
    __m128 acc = _mm_setzero_ps();
    for (int64_t k = start[i]; k < start[i + 1]; ++k)
      acc = pinned::fma_acc_ss(acc, _mm_load_ss(x + index[k]), _mm_load_ss(value + k));
    if (bias) acc = pinned::add_acc_ss(acc, _mm_load_ss(bias + i));
    if (relu) acc = pinned::relu_ss(acc);
    y[i] = _mm_cvtss_f32(acc);
  }
}

void sparse_row_plain(const SparseChains& c, int64_t chains, const float* x, const float* bias, bool relu, float* y) {
  for (int64_t i = 0; i < chains; ++i) {
    float acc = 0.0f;
    for (int64_t k = c.start[static_cast<size_t>(i)]; k < c.start[static_cast<size_t>(i) + 1]; ++k)
      acc = std::fma(x[c.index[static_cast<size_t>(k)]], c.value[static_cast<size_t>(k)], acc);
    if (bias) acc = acc + bias[i];
    y[i] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
  }
}

// d[j·ldd + i] = s[i·lds + j] for the 8×8 block at s.
__attribute__((target("avx2"), always_inline)) inline void transpose8(const float* s, int64_t lds, float* d,
                                                                      int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * lds);
  for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  // r[h]: columns h and h + 4 of rows 0..3 (a half each); r[4 + h] the same of rows 4..7.
  for (int q = 0; q < 2; ++q) {
    r[4 * q + 0] = _mm256_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0x44);
    r[4 * q + 1] = _mm256_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0xEE);
    r[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    r[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  for (int h = 0; h < 4; ++h) {
    _mm256_storeu_ps(d + h * ldd, _mm256_permute2f128_ps(r[h], r[4 + h], 0x20));
    _mm256_storeu_ps(d + (h + 4) * ldd, _mm256_permute2f128_ps(r[h], r[4 + h], 0x31));
  }
}

// d[j·ldd + i] = s[i·lds + j] for i < rows, j < cols: blocks of 8×8, the edges one value at a time.
__attribute__((target("avx2"))) void transpose(const float* s, int64_t lds, int64_t rows, int64_t cols, float* d,
                                               int64_t ldd) {
  const int64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int64_t i = 0; i < rows8; i += 8)
    for (int64_t j = 0; j < cols8; j += 8) transpose8(s + i * lds + j, lds, d + j * ldd + i, ldd);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = i < rows8 ? cols8 : 0; j < cols; ++j) d[j * ldd + i] = s[i * lds + j];
}

// Rows [0, n) of a product by sparse chains c: x n×depth, y n×chains; `dense(p)` computes row p
// instead where the row does not allow the sparse chains. Spread over the runtime's OpenMP
// threads by rows when the steps are many. With AVX2 and FMA, each block of 16 rows that all
// allow the sparse chains goes as one strip of 16 columns: transposed (depth × 16), the chains by
// sparse_chain_strip (the same operations, lane by lane), transposed back; a block with a row
// that does not, and the rows past the last block, row by row.
template <typename Dense>
void sparse_product(int64_t n, int64_t depth, int64_t chains, const float* x, const SparseChains& c,
                    const float* bias, bool relu, float* y, const Dense& dense) {
  const bool avx2 = linear_avx2_fma();
  const auto row = [&](int64_t p) {
    const float* xp = x + p * depth;
    if (!sparse_values(xp, depth, c.least)) dense(p);
    else if (avx2) sparse_row_avx2(c, chains, xp, bias, relu, y + p * chains);
    else sparse_row_plain(c, chains, xp, bias, relu, y + p * chains);
  };
  const int64_t blocks = avx2 ? n / kStripRows : 0, nonzero = static_cast<int64_t>(c.index.size());
  // Row by row about one step per cycle per row; by strips a step per 16 rows, plus the
  // transposes. Below these the threads' region and the rows' trips between the cores' caches
  // cost more than the work: single-color-modulo's Linear layers at batch 32 took 4 µs per image
  // on two threads.
  const bool serial = blocks > 0 ? n * (depth + chains + nonzero) < 16 * kLinearSerialMacs
                                 : n * (nonzero + chains) < kLinearSerialMacs / 4;
#pragma omp parallel if (!serial)
  {
    // The thread's strip buffers, kept from call to call.
    thread_local std::vector<float> buffer;
    if (blocks > 0 && buffer.size() < static_cast<size_t>((depth + chains) * kStripRows))
      buffer.resize(static_cast<size_t>((depth + chains) * kStripRows));
    float* const xt = buffer.data();
    float* const yt = xt + depth * kStripRows;
#pragma omp for schedule(static) nowait
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t p0 = b * kStripRows;
      bool strip = true;
      for (int64_t p = p0; p < p0 + kStripRows; ++p) strip = strip && sparse_values(x + p * depth, depth, c.least);
      if (!strip) {
        for (int64_t p = p0; p < p0 + kStripRows; ++p) row(p);
        continue;
      }
      transpose(x + p0 * depth, depth, kStripRows, depth, xt, kStripRows);
      sparse_chain_strip(c, xt, kStripRows, yt, kStripRows, bias, relu);
      transpose(yt, kStripRows, chains, kStripRows, y + p0 * chains, chains);
    }
#pragma omp for schedule(static) nowait
    for (int64_t p = blocks * kStripRows; p < n; ++p) row(p);
  }
}

}  // namespace

LinearWeights prepare_linear_weights(int64_t in, int64_t out, const float* w) {
  LinearWeights prepared;
  prepared.packed = pack_linear_weights(in, out, w);
  prepared.rows = sparse_chains(out, in, w, in, 1, kSparseDensity);
  if (!prepared.rows.empty()) prepared.cols = sparse_chains(in, out, w, 1, in, kSparseDensity);
  return prepared;
}

void linear_chain(int64_t n, int64_t in, int64_t out, const float* x, const LinearWeights& prepared,
                  const float* bias, bool relu, float* y) {
  const float* packed = prepared.packed.data();
  const int64_t strips = strips_of(out);
  const bool avx2 = linear_avx2_fma();
  // Row p by the dense chains: the kernel's blocks, or the scalar loop.
  const auto dense_row = [&](int64_t p) {
    if (avx2) return linear_part(p, p + 1, 0, strips, in, out, x, packed, bias, relu, y);
    for (int64_t o = 0; o < out; ++o) {
      float acc = 0.0f;
      for (int64_t j = 0; j < in; ++j) acc = std::fma(x[p * in + j], packed[packed_index(in, o, j)], acc);
      if (bias) acc = acc + bias[o];
      y[p * out + o] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
    }
  };
  if (!prepared.rows.empty() && sparse_weights())
    return sparse_product(n, in, out, x, prepared.rows, bias, relu, y, dense_row);
  if (!avx2) {
    for (int64_t p = 0; p < n; ++p) dense_row(p);
    return;
  }
  const int64_t blocks = (n + kLinearRows - 1) / kLinearRows;
  const bool serial = n * in * out < kLinearSerialMacs;
#pragma omp parallel if (!serial)
  {
    const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    if (blocks >= 2 * threads) {
      // Whole blocks of 6 rows per thread.
      const int64_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
      linear_part(b0 * kLinearRows, std::min(n, b1 * kLinearRows), 0, strips, in, out, x, packed, bias, relu, y);
    } else {
      // A few rows: the strips of columns per thread.
      const int64_t s0 = strips * t / threads, s1 = strips * (t + 1) / threads;
      linear_part(0, n, s0, s1, in, out, x, packed, bias, relu, y);
    }
  }
}

void linear_run(int64_t n, const std::vector<LinearRunStep>& steps, const float* x, float* y) {
  LAB_CHECK(!steps.empty(), "empty Linear run");
  const int64_t in0 = steps.front().in, out_last = steps.back().out;
  int64_t widest = in0;
  for (const LinearRunStep& st : steps) widest = std::max(widest, st.out);
  const int64_t strips = linear_avx2_fma() ? n / kStripRows : 0;
  const bool sparse_on = sparse_weights();
#pragma omp parallel if (strips >= 2)
  {
    // Two buffers of a strip's columns (widest × 16) and two of its rows (16 × widest).
    thread_local std::vector<float> buffer;
    const size_t need = static_cast<size_t>(4 * widest * kStripRows);
    if (strips > 0 && buffer.size() < need) buffer.resize(need);
    float* const cols[2] = {buffer.data(), buffer.data() + widest * kStripRows};
    float* const rows[2] = {buffer.data() + 2 * widest * kStripRows, buffer.data() + 3 * widest * kStripRows};
#pragma omp for schedule(static) nowait
    for (int64_t strip = 0; strip < strips; ++strip) {
      const int64_t p0 = strip * kStripRows;
      // The strip's values: in rows at `r` (row stride ld), or in columns at cols[c] (stride 16).
      const float* r = x + p0 * in0;
      int64_t ld = in0;
      int c = -1, next_row = 0;
      for (size_t k = 0; k < steps.size(); ++k) {
        const LinearRunStep& st = steps[k];
        const bool last = k + 1 == steps.size();
        const SparseChains& chains = st.prepared->rows;
        if (sparse_on && !chains.empty()) {
          if (c < 0) {
            transpose(r, ld, kStripRows, st.in, cols[0], kStripRows);
            c = 0;
          }
          if (sparse_values(cols[c], st.in * kStripRows, chains.least)) {
            sparse_chain_strip(chains, cols[c], kStripRows, cols[1 - c], kStripRows, st.bias, st.relu);
            c = 1 - c;
            continue;
          }
        }
        if (c >= 0) {
          transpose(cols[c], kStripRows, st.in, kStripRows, rows[next_row], st.in);
          r = rows[next_row];
          ld = st.in;
          next_row = 1 - next_row;
          c = -1;
        }
        float* out = last ? y + p0 * out_last : rows[next_row];
        linear_chain(kStripRows, st.in, st.out, r, *st.prepared, st.bias, st.relu, out);
        r = out;
        ld = st.out;
        next_row = 1 - next_row;
      }
      if (c >= 0) transpose(cols[c], kStripRows, out_last, kStripRows, y + p0 * out_last, out_last);
    }
  }
  // The rows past the strips, layer by layer.
  const int64_t p0 = strips * kStripRows, left = n - p0;
  if (left == 0) return;
  std::vector<float> a, b;
  const float* r = x + p0 * in0;
  for (size_t k = 0; k < steps.size(); ++k) {
    const LinearRunStep& st = steps[k];
    float* out = y + p0 * out_last;
    if (k + 1 < steps.size()) {
      a.resize(static_cast<size_t>(left * st.out));
      out = a.data();
    }
    linear_chain(left, st.in, st.out, r, *st.prepared, st.bias, st.relu, out);
    std::swap(a, b);
    r = out;
  }
}

void linear_rows(int64_t n, int64_t in, int64_t out, const float* x, const float* w, const float* bias, float* y) {
  const LinearWeights prepared = prepare_linear_weights(in, out, w);
  linear_chain(n, in, out, x, prepared, bias, false, y);
}

void linear_rows_transpose(int64_t n, int64_t in, int64_t out, const float* s, const float* w, float* c,
                           const LinearWeights* prepared) {
  if (!sparse_weights()) return chain_gemm(n, in, out, s, out, w, in, c, in, nullptr, false);
  SparseChains own;
  if (!prepared) own = sparse_chains(in, out, w, 1, in, kSparseDensity);
  const SparseChains* cols = prepared ? &prepared->cols : &own;
  if (cols->empty()) return chain_gemm(n, in, out, s, out, w, in, c, in, nullptr, false);
  sparse_product(n, out, in, s, *cols, nullptr, false, c, [&](int64_t p) {
    chain_gemm(1, in, out, s + p * out, out, w, in, c + p * in, in, nullptr, false);
  });
}

bool linear_chains() { return linear_chains_set.load(); }
void set_linear_chains(bool on) { linear_chains_set.store(on); }

}  // namespace lab
