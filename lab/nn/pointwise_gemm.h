/// @file pointwise_gemm.h
/// @brief The small matrix products of the pointwise tiles (add_pointwise_run, its trace and its
/// backward in lab/nn/layers.cpp): a register-blocked kernel that gives the bytes of oneDNN's
/// dnnl_sgemm for these shapes, with the bias and the ReLU fused into its store.
#pragma once

#include <cstdint>

namespace lab {

/// y (m×n, row stride ldy) = op(w) (m×k) · x (k×n, row stride ldx), then + bias[i] on row i
/// (bias may be null), then the ReLU `v > 0 ? v : 0` if relu. op(w)(i, j) = w[i·ldw + j], or
/// w[j·ldw + i] if trans. The same bytes as dnnl_sgemm(trans ? 'T' : 'N', 'N', m, n, k, 1, w,
/// ldw, x, ldx, 0, y, ldy) called from inside an OpenMP parallel region (one thread), followed
/// by the bias and the ReLU as separate loops. Where the kernel applies (pointwise_kernel()
/// and m, k ≤ 64) it computes the blocks of 6 rows × 16 columns of y on which oneDNN's AVX2
/// sgemm runs its main kernel (one fused multiply-add chain per element, k = 0, 1, ..., from
/// +0), and calls dnnl_sgemm for the edges (whose kernels sum in another order); elsewhere it
/// is dnnl_sgemm on the whole. Returns false if a dnnl_sgemm call failed.
bool pointwise_gemm(bool trans, int64_t m, int64_t n, int64_t k, const float* w, int64_t ldw, const float* x,
                    int64_t ldx, float* y, int64_t ldy, const float* bias, bool relu);

/// Whether pointwise_gemm uses its kernel: only where oneDNN's effective ISA is AVX2 (the kernel
/// reproduces its AVX2 sgemm; tested on that ISA only), and while set_pointwise_kernel(false) was
/// not called. Off: dnnl_sgemm for every product (the path before the kernel; bench_runtime's
/// "tiles-sgemm" mode). Same bytes either way (tests/lab/test_pointwise_gemm.cpp).
bool pointwise_kernel();
void set_pointwise_kernel(bool on);

}  // namespace lab
