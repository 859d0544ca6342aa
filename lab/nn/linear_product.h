/// @file linear_product.h
/// @brief The products of a Linear layer computed one way for every image: each image's values
/// depend on that image's row alone, not on the batch it comes in, its position there or the
/// thread count.
///
/// oneDNN's inner product picks its kernel (and so its summation order) by the batch size: on
/// this project's machine its backward-data W'ᵀs of single-color-modulo's 35→175 layer gave an
/// image's row alone and in a batch of 5 or 64 one or two elements apart by 1–2 ulp, on random
/// signals. These products run every element as one chain
/// of fused multiply-adds (lab::chain_gemm): acc = +0, then acc = fma(a[j], b[j], acc) over the
/// summed index j in order (then + bias), on the host, one thread.
#pragma once

#include <cstdint>

namespace lab {

/// y (n×out, row-major) = x (n×in) · wᵀ (+ bias[o] on column o if bias), w out×in row-major:
/// y[p][o] = chain over j = 0 … in − 1 of x[p][j]·w[o][j], then + bias[o].
void linear_rows(int64_t n, int64_t in, int64_t out, const float* x, const float* w, const float* bias, float* y);

/// c (n×in) = s (n×out) · w, w out×in row-major (the transposed map, backward-data):
/// c[p][j] = chain over o = 0 … out − 1 of s[p][o]·w[o][j].
void linear_rows_transpose(int64_t n, int64_t in, int64_t out, const float* s, const float* w, float* c);

}  // namespace lab
