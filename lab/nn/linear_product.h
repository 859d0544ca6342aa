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

namespace lab {

/// The out×in weights w (row-major) packed for linear_chain: wᵀ by strips of 16 output columns,
/// [strip][j][16], the last strip padded with zeros.
std::vector<float> pack_linear_weights(int64_t in, int64_t out, const float* w);

/// y (n×out, row-major) = x (n×in) · wᵀ, packed = pack_linear_weights(in, out, w): y[p][o] = the
/// chain over j = 0 … in − 1 of fma(x[p][j], w[o][j], acc) from +0, then + bias[o] (if bias), then
/// `v > 0 ? v : +0` (if relu). Blocks of 6 rows × 16 columns, the chains resumed through y across
/// blocks of the summed index (the same chain); spread over the runtime's OpenMP threads (blocks
/// of rows, or of columns for a few rows). With AVX2 and FMA; elsewhere the scalar loop with
/// std::fma (the same operations).
void linear_chain(int64_t n, int64_t in, int64_t out, const float* x, const float* packed, const float* bias,
                  bool relu, float* y);

/// linear_chain with weights w (out×in, row-major) packed for this call.
void linear_rows(int64_t n, int64_t in, int64_t out, const float* x, const float* w, const float* bias, float* y);

/// c (n×in) = s (n×out) · w, w out×in row-major (the transposed map, backward-data):
/// c[p][j] = chain over o = 0 … out − 1 of s[p][o]·w[o][j].
void linear_rows_transpose(int64_t n, int64_t in, int64_t out, const float* s, const float* w, float* c);

/// Whether Linear layers' forward runs as linear_chain (default on). Off: oneDNN's inner product
/// on the whole batch, the path before (its bytes depend on the batch size; bench_runtime's
/// "tiles-ip" mode only).
bool linear_chains();
void set_linear_chains(bool on);

}  // namespace lab
