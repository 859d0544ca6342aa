/// @file patch_kernel.h
/// @brief The fused kernel of the accumulators' patch runs (lab/nn/patch_run.h): a patch
/// convolution to 6 or 8 channels with its bias and ReLU, then a 1×1 convolution of those channels
/// to one channel with its bias and ReLU, per block of 16 output pixels (32 with AVX-512,
/// lab::wide_kernels) with the channels in registers (never stored), in the bytes of the two steps
/// computed one after the other.
///
/// The two steps of such a run (add_patch_run) are lab::pointwise_gemm on the column tile (out ×
/// rows weights, rows ≤ 64: on every block of 16 columns the chain of fused multiply-adds from +0
/// for channels 0..5, for channels 6 and 7 the even and odd chains of rounded products, e + o,
/// then + the last product of an odd depth; then + bias, the ReLU), then its product of one row
/// (the 1×1 convolution to one channel: one fused multiply-add chain from +0 over the channels in
/// order, + bias, the ReLU). This kernel computes each of those operations in that order on the
/// same operands, so every output is the same bytes (tests/lab/test_patch_kernel.cpp: memcmp
/// against the unfused run on random data with −0, ±1, zeros, ±∞ and NaN).
#pragma once

#include <cstdint>

namespace lab {

/// Whether the kernel computes a patch convolution of `rows` column rows (channels · kh · kw) to
/// `channels` channels followed by a 1×1 convolution to one channel: rows ≤ 64 and channels 6
/// (one block of pointwise_gemm's kernel) or 8 (6 + the two-row edge). Only where pointwise_gemm
/// itself runs its kernel and edges on these (pointwise_kernel() and pointwise_edges()), and while
/// set_patch_kernels(false) was not called.
bool patch_kernel_fits(int64_t rows, int64_t channels);

/// Where patch_kernel_tile also writes the signs of its ReLUs' inputs (!(v <= 0): v > 0 or NaN, v after the bias),
/// laid out as add_pointwise_sign_trace_run keeps them (gradient_trace.h): bit p % 8 of byte p / 8
/// for the tile's pixel p (the bits past its width 0, no byte past them written). channels: the
/// patch convolution's, one row of `stride` bytes per channel; output: the 1×1 convolution's
/// one row. Null: none.
struct PatchSigns {
  uint8_t* channels = nullptr;
  int64_t stride = 0;
  uint8_t* output = nullptr;
};

/// The fused run on one column tile: col holds `rows` rows of `padded` columns (row stride ld,
/// padded a multiple of 16, the windows of width ≤ padded pixels then zero columns), w the
/// channels × rows weights of the patch convolution (row stride rows), bias its channels biases
/// or null, relu its ReLU; w1 the 1 × channels weights of the 1×1 convolution, bias1 its bias (one
/// float) or null, relu1 its ReLU. Writes y[0, width), and the signs (the gradient's trace).
/// Requires patch_kernel_fits(rows, channels).
void patch_kernel_tile(int64_t rows, int64_t channels, int64_t width, const float* col, int64_t ld, const float* w,
                       const float* bias, bool relu, const float* w1, const float* bias1, bool relu1, float* y,
                       const PatchSigns& signs = {});

/// patch_kernel_tile's run for a 2×2 stride-2 patch convolution of one input channel
/// (patch_kernel_fits(4, channels)), on output pixels [p0, p0 + width) of one image, its windows
/// read from the image (one channel, rows of iw floats; output rows of ow pixels) instead of a
/// column tile: per block of 32 pixels, each image row's 32 floats under a half of 16 loaded as
/// two vectors and split into its even and odd columns in registers (a half across two output
/// rows from both), then the column tile's operations, the same bytes. Only with the AVX-512
/// kernels (wide_kernels), finite weights, output rows of at least 16 pixels and p0 a multiple of
/// 16; returns the pixels done from p0 (whole blocks of 32, 0 where it does not apply), for the
/// caller to run the rest through a column tile.
/// The gather of the windows into a column tile took about a third of single-color-modulo's first
/// block.
int64_t patch_kernel_image(const float* image, int64_t iw, int64_t ow, int64_t p0, int64_t width, int64_t channels,
                           const float* w, const float* bias, bool relu, const float* w1, const float* bias1,
                           bool relu1, float* y);

/// Whether patch runs that fit (patch_kernel_fits) take the fused kernel (default on). Off: the
/// patch convolution into a tile buffer, then the 1×1 convolution (bench_runtime's
/// "tiles-unfused" mode; the same bytes).
bool patch_kernels();
void set_patch_kernels(bool on);

}  // namespace lab
