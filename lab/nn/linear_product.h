/// @file linear_product.h
/// @brief The products of a Linear layer computed one way for every image: each image's values
/// depend on that image's row alone, not on the batch it comes in, its position there or the
/// thread count.
///
/// oneDNN's inner product picks its kernel (and so its summation order) by the batch size: on
/// this project's machine its backward-data W'ᵀs of single-color-modulo's 35→175 layer gave an
/// image's row alone and in a batch of 5 or 64 one or two elements apart by 1–2 ulp, on random
/// signals, and its forward made every layer after a Linear one depend on the batch. So every
/// product of a Linear layer runs every element as one chain of fused multiply-adds: acc = +0,
/// then acc = fma(a[j], b[j], acc) over the summed index j in order, then + bias, then the ReLU
/// `v > 0 ? v : +0` where fused: the forward (linear_chain, on weights packed once by the layer),
/// the products with other weights (LRP's W⁺x, linear_rows) and the transposed map (every
/// backward through the layer, linear_rows_transpose). linear_chain is a packed GEMM within about
/// 6% of oneDNN's inner product from 8 to 256 rows, at the networks' shapes and at large ones
/// (faster at 8 rows; at one row, bound by reading the weights, about three quarters); README,
/// "The Linear layers' forward"; bench_runtime's "tiles-ip" mode is the forward with oneDNN's.
#pragma once

#include <cstdint>
#include <vector>

#include "lab/nn/pointwise_gemm.h"

namespace lab {

/// A Linear layer's out×in weights w (row-major) prepared once for its products: packed for the
/// dense kernel (wᵀ by strips of 16 output columns, [strip][j][16], the last strip padded with
/// zeros) and, where at most one in kSparseDensity of them is nonzero and all are finite, as the
/// nonzero weights of each output (`rows`, the forward) and of each input (`cols`, the transposed
/// map; SparseChains, pointwise_gemm.h).
///
/// A step fma(x, 0, acc) of a chain changes nothing when x is finite and acc is not −0 (x·0 is
/// ±0, and acc + ±0 = acc, +0 + −0 being +0): so a chain of only the nonzero weights' steps gives
/// the same bytes as the full chain wherever acc never becomes −0. From +0 it becomes −0 only by a
/// nonzero exact sum rounding to zero, below 2⁻¹⁵⁰; that cannot happen when every nonzero x and w
/// have exponents (x = m·2^e, 1 ≤ m < 2) summing to at least −103 (their exact product is then a
/// multiple of 2⁻¹⁴⁹, as every float acc is). So a row whose values are all finite and either
/// zero or at least `least` = 2^(−103 − the smallest exponent of a nonzero weight) in magnitude
/// takes the sparse chains; any other row the dense ones (tests/lab/test_linear_product.cpp).
struct LinearWeights {
  std::vector<float> packed;
  SparseChains rows, cols;
};

/// Weights are taken as sparse when nonzero ones are at most one in this many: the dense kernel
/// runs 16 fused multiply-adds per cycle, the sparse chains about one step per cycle per row.
inline constexpr int64_t kSparseDensity = 16;

LinearWeights prepare_linear_weights(int64_t in, int64_t out, const float* w);

/// y (n×out, row-major) = x (n×in) · wᵀ, prepared = prepare_linear_weights(in, out, w): y[p][o] =
/// the chain over j = 0 … in − 1 of fma(x[p][j], w[o][j], acc) from +0, then + bias[o] (if bias),
/// then `v > 0 ? v : +0` (if relu). Dense weights: blocks of 6 rows × 16 columns, the chains
/// resumed through y across blocks of the summed index (the same chain), spread over the runtime's
/// OpenMP threads (blocks of rows, or of columns for a few rows). Sparse weights: each row that
/// allows it by the nonzero weights' chains (the same bytes), the others as dense, spread over the
/// threads by rows. With AVX2 and FMA; elsewhere the scalar loop with std::fma (the same
/// operations).
void linear_chain(int64_t n, int64_t in, int64_t out, const float* x, const LinearWeights& prepared,
                  const float* bias, bool relu, float* y);

/// One Linear layer of a run (linear_run): in → out features, its prepared weights, its bias (or
/// null) and whether its ReLU follows.
struct LinearRunStep {
  int64_t in = 0, out = 0;
  const LinearWeights* prepared = nullptr;
  const float* bias = nullptr;
  bool relu = false;
};

/// Consecutive Linear layers (each reading the previous one's output) on the n rows of x (n ×
/// steps[0].in), writing y (n × steps.back().out): each strip of 16 rows through every layer in
/// turn on one thread, transposed into columns for the sparse layers whose values allow their
/// chains (as sparse_product's strips) and kept so from layer to layer, in rows through
/// linear_chain for the others; the strips spread over the runtime's OpenMP threads; the rows
/// past the last strip layer by layer. Every element is linear_chain's, so the same bytes as the
/// layers one after the other, without a pass, a parallel region, two transposes and the trips of
/// the rows between the cores per layer. The forward runs consecutive Linear layers with sparse
/// weights so (lab::linear_run_end, layers.h).
void linear_run(int64_t n, const std::vector<LinearRunStep>& steps, const float* x, float* y);

/// linear_chain with weights w (out×in, row-major) prepared for this call.
void linear_rows(int64_t n, int64_t in, int64_t out, const float* x, const float* w, const float* bias, float* y);

/// c (n×in) = s (n×out) · w, w out×in row-major (the transposed map, backward-data):
/// c[p][j] = chain over o = 0 … out − 1 of s[p][o]·w[o][j]. With prepared (w's, or null to
/// prepare them here) sparse, the rows that allow it by its `cols` chains, the same bytes.
void linear_rows_transpose(int64_t n, int64_t in, int64_t out, const float* s, const float* w, float* c,
                           const LinearWeights* prepared = nullptr);

/// Whether Linear layers' forward runs as linear_chain (default on). Off: oneDNN's inner product
/// on the whole batch, the path before (its bytes depend on the batch size; bench_runtime's
/// "tiles-ip" mode only).
bool linear_chains();
void set_linear_chains(bool on);
// Whether sparse weights take their sparse chains: lab::sparse_weights() (pointwise_gemm.h).

}  // namespace lab
