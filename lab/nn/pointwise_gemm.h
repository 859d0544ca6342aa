/// @file pointwise_gemm.h
/// @brief The small matrix products of the pointwise tiles (add_pointwise_run, its trace and its
/// backward in lab/nn/layers.cpp): a register-blocked kernel that gives the bytes of oneDNN's
/// dnnl_sgemm for these shapes, with the bias and the ReLU fused into its store; and the product
/// of the deep patch convolutions (lab/nn/patch_run.h), whose every element is one chain of fused
/// multiply-adds wherever it sits.
#pragma once

#include <cstdint>
#include <vector>

namespace lab {

/// The nonzero weights of a product's chains, in each chain's order: chain i sums
/// value[start[i] .. start[i + 1]) times the inputs index[...], ascending (the rows of w for a
/// forward, its columns for a transposed map). Empty where the weights are dense. Skipping a zero
/// weight's step leaves a chain's bytes as they are wherever the chain's inputs are finite and
/// either zero or at least `least` in magnitude (linear_product.h's LinearWeights says why; a chain
/// of separately rounded products needs no lower bound, since a sum of floats is −0 only if both
/// are): the Linear layers' products (linear_product.h) check that per row, pointwise_gemm per
/// strip of 16 columns, and run the dense chains elsewhere. Followed by the ReLU, finite inputs
/// suffice: a zero weight's step on a finite input adds a zero, so the dense and the sparse chain
/// stay equal or both zero (of either sign) through every later step, the two orders' sum and the
/// bias, and the ReLU maps both zeros to +0.
struct SparseChains {
  int64_t chains = 0, depth = 0;
  std::vector<int64_t> start;
  std::vector<int32_t> index;
  std::vector<float> value;
  float least = 0.0f;  // 2^(−103 − the least exponent, std::ilogb, of a nonzero weight)
  int64_t uniform = 0;  // every chain's count of nonzero weights where all have the same, else 0
  bool empty() const { return start.empty(); }
};

/// Whether x[0, count) allows sparse chains whose bound is `least` (SparseChains::least): every
/// value finite, and zero or at least `least` in magnitude (the Linear layers' check per row).
bool sparse_values(const float* x, int64_t count, float least);

/// Rows [0, s.chains) of y (row stride ldy) on 16 columns, x holding s.depth rows of them (row
/// stride ldx), by the nonzero weights' chains alone, one chain per element: acc = +0, then
/// acc = fma(weight, x, acc) over chain i's nonzero weights in order, then + bias[i] (bias may be
/// null), then the ReLU `v > 0 ? v : +0` if relu. No check: the caller knows that the columns
/// allow the sparse chains (SparseChains). With AVX2 and FMA (the caller checks).
void sparse_chain_strip(const SparseChains& s, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias,
                        bool relu);

/// The nonzero weights of the `chains` chains of `depth` weights each, chain i's weight d at
/// w[i·chain_stride + d·depth_stride]; empty where more than one weight in `density` is nonzero,
/// or a weight or a bias (`bias`: one per chain, may be null) is not finite.
SparseChains sparse_chains(int64_t chains, int64_t depth, const float* w, int64_t chain_stride,
                           int64_t depth_stride, int64_t density, const float* bias = nullptr);

/// The largest magnitude among x's rows × cols values (row stride ld), or +∞ if one is not finite.
float largest_magnitude(const float* x, int64_t rows, int64_t cols, int64_t ld);

/// pointwise_gemm's products are sparse with at most one nonzero weight in this many (a 1×1
/// convolution's, Conv2d::sparse()): below, the dense kernel's blocks cost less than the chains'
/// per-row loop and the strip check (from 1 in 2, with multi-color-sum's 60×3 and 6×5 sparse too,
/// its forward took 1.79 against 1.45–1.49 ms per image).
inline constexpr int64_t kPointwiseSparseDensity = 4;

/// Where the caller knows x finite and the ReLU follows (pointwise_gemm's `finite`), the chains run
/// row by row with no check, and pay from one nonzero weight in this many (Conv2d::sparse() keeps
/// them so, for 1×1 and patch convolutions).
inline constexpr int64_t kPointwiseFiniteDensity = 2;

/// Whether sparse weights take their sparse chains (default on): the Linear layers' (LinearWeights
/// in linear_product.h) and the pointwise tiles' (SparseChains). Off: the dense chains
/// (bench_runtime's "tiles-dense" mode; the same bytes).
bool sparse_weights();
void set_sparse_weights(bool on);

/// y (m×n, row stride ldy) = op(w) (m×k) · x (k×n, row stride ldx), then + bias[i] on row i
/// (bias may be null), then the ReLU `v > 0 ? v : 0` if relu. op(w)(i, j) = w[i·ldw + j], or
/// w[j·ldw + i] if trans. The same bytes as dnnl_sgemm(trans ? 'T' : 'N', 'N', m, n, k, 1, w,
/// ldw, x, ldx, 0, y, ldy) called from inside an OpenMP parallel region (one thread), followed
/// by the bias and the ReLU as separate loops. Where the kernel applies (pointwise_kernel()
/// and m, k ≤ 64) it computes the blocks of 6 rows × 16 columns of y on which oneDNN's AVX2
/// sgemm runs its main kernel (one fused multiply-add chain per element, k = 0, 1, ..., from
/// +0), and calls dnnl_sgemm for the edges (whose kernels sum in another order), but for the
/// edges whose order it reproduces (pointwise_edges() below: a product of one row, the two rows
/// left below the blocks of 6; pointwise_remainders(): the three, four or five rows left below
/// them); elsewhere it is dnnl_sgemm on the whole. With `sparse` (the nonzero weights of op(w)'s m
/// rows of k: sparse_chains on w's rows, or on its columns if trans, as Conv2d::sparse() and
/// Conv2d::sparse_transposed()) and sparse_weights(), the kernel's blocks and edges run the
/// nonzero weights' chains where the columns allow it (with the ReLU: finite; `finite`: the caller
/// knows every value of x finite, and no column is checked). Returns false if a dnnl_sgemm call
/// failed.
bool pointwise_gemm(bool trans, int64_t m, int64_t n, int64_t k, const float* w, int64_t ldw, const float* x,
                    int64_t ldx, float* y, int64_t ldy, const float* bias, bool relu,
                    const SparseChains* sparse = nullptr, bool finite = false);

/// Whether pointwise_gemm computes every column of a product of m rows and depth k (either
/// operand order, no sparse weights) by its kernel and kernel-computed edges when the column count
/// is a multiple of 16: then each block of 16 columns is computed alike whatever the call's column
/// count, and a product can be split by columns at multiples of 16 into calls that give its bytes
/// (no dnnl_sgemm part over all its columns, as for a single row below blocks of 6, or 7 rows).
bool pointwise_columns_alike(int64_t m, int64_t k);

/// Whether pointwise_gemm uses its kernel: only where oneDNN's effective ISA is AVX2 (the kernel
/// reproduces its AVX2 sgemm; tested on that ISA only), and while set_pointwise_kernel(false) was
/// not called. Off: dnnl_sgemm for every product (the path before the kernel; bench_runtime's
/// "tiles-sgemm" mode). Same bytes either way (tests/lab/test_pointwise_gemm.cpp).
bool pointwise_kernel();
void set_pointwise_kernel(bool on);

/// Whether pointwise_gemm's kernel also computes, with the kernel, the two edges whose oneDNN
/// bytes it reproduces (default on): a product of one row (oneDNN's gemv: one fused multiply-add
/// chain from +0 per element, as chain_gemm) and the two rows left below the kernel's blocks of 6
/// on their full blocks of 16 columns (two chains of separately rounded products, even and odd
/// k, then their sum and the last product of an odd depth). Off: dnnl_sgemm there, as before
/// (bench_runtime's "tiles-runs" mode). Same bytes either way (tests/lab/test_pointwise_gemm.cpp).
bool pointwise_edges();
void set_pointwise_edges(bool on);

/// Whether pointwise_gemm's kernel, with pointwise_edges(), also computes the three, four or five
/// rows left below its blocks of 6 (a product of 3, 4 or 5 rows included) on their full blocks of
/// 16 columns (default on): three rows as two chains of fused multiply-adds, even and odd k, from
/// +0, then their sum and a fused multiply-add of the last product of an odd depth; four and five
/// rows as the blocks' one chain per element (oneDNN's remainder kernels, found by comparing
/// candidate orders with dnnl_sgemm). Off: dnnl_sgemm there, as before the kernel computed them
/// (bench_runtime's "tiles-edges12" mode). Same bytes either way (tests/lab/test_pointwise_gemm.cpp).
bool pointwise_remainders();
void set_pointwise_remainders(bool on);

/// Whether the kernels that have an AVX-512 form (lab::SparseProgram's and the fused patch
/// kernel's, patch_kernel.h) take it where the processor has it (default on): 16 floats per
/// vector. Off, or without AVX-512: their AVX2 form (bench_runtime's "tiles-avx2" mode). Every
/// operation acts lane by lane in the same order, so both give the same bytes (the tests run both).
bool avx512_kernels();
void set_avx512_kernels(bool on);
/// avx512_kernels() on a processor with AVX-512F: the kernels take their AVX-512 form.
bool wide_kernels();

/// The chains in which pointwise_gemm computes row i of a product of m rows and depth k with
/// sparse chains, `finite` and the ReLU on columns that are all full blocks of 16 (n a multiple of
/// 16): the blocks' one chain per element from +0 in order of the nonzero weights (kOne; also a
/// product of one row, whose dense chain gives the same bytes under the ReLU, see SparseChains,
/// and the four or five rows left below the blocks), the two rows' even and odd chains of rounded
/// products (kEvenOddRounded) or the three rows' fused ones (kEvenOddFused), each then e + o, then
/// the last product of an odd depth; kOther where dnnl_sgemm computes the row (m or k above 64,
/// the kernel or its edges off, a single row left below blocks). Reads the switches above, so it
/// answers for the moment it is called.
enum class RowChains { kOne, kEvenOddRounded, kEvenOddFused, kOther };
RowChains finite_row_chains(int64_t m, int64_t k, int64_t i);

/// y (m×n, row stride ldy) = w (m×k, row stride ldw) · x (k×n, row stride ldx), then + bias[i] on
/// row i (bias may be null), then the ReLU `v > 0 ? v : +0` if relu, every element by one chain:
/// acc = +0, then acc = fma(w[i][j], x[j][p], acc) for j = 0, 1, ..., k − 1 (each a correctly
/// rounded fused multiply-add), then acc + bias[i]. So an element's bytes depend on its row of w,
/// its column of x and its bias alone: not on m, n, k's blocking, its position in y, the tile or
/// the thread. With AVX2 and FMA: blocks of up to 6 rows × 16 columns, masked loads and stores at
/// the right edge (lanes are independent); elsewhere the scalar loop with std::fma (the same
/// operations). The product of the patch convolutions of more than 64 column rows or channels
/// (patch_run.h), beyond pointwise_gemm's kernel. Any m, n, k ≥ 1.
void chain_gemm(int64_t m, int64_t n, int64_t k, const float* w, int64_t ldw, const float* x, int64_t ldx, float* y,
                int64_t ldy, const float* bias, bool relu);

}  // namespace lab
