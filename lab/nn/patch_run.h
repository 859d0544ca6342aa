/// @file patch_run.h
/// @brief Patch runs: a convolution whose kernel equals its stride (non-overlapping windows, no
/// padding, one group), with the pointwise layers after it, computed tile by tile in the forward.
/// Off by default (set_patch_runs): not the bytes of the oneDNN convolution at every batch size.
///
/// Such a convolution (the accumulators' k×k stride-k blocks) is, on each output pixel, the
/// product of its out×(in·k·k) weights with that pixel's window: oneDNN's gemm convolution copies
/// the windows into a column matrix (im2col, rows (c, kh, kw), the weights' order) and runs sgemm
/// on it, then adds the bias. On 1 to 6 input channels that copy, a scalar loop with bounds checks
/// in oneDNN 2.6, is the largest part of single-color-modulo's forward. add_patch_run copies the
/// windows of a tile of output pixels of one image into a cache-resident column tile (a strided
/// gather) and computes the product with lab::pointwise_gemm (the bytes of dnnl_sgemm on the tile),
/// the bias and a following ReLU in its store, then the pointwise layers after it (as
/// add_pointwise_run) while the tile is in cache: only the input and the run's output travel to
/// memory.
///
/// Bytes. The tiles start at multiples of 16 pixels of each image, so every value is computed by
/// the same kernel whatever the batch and the thread count (the tile size is a multiple of 16 set
/// by the L2 size alone): the run's bytes are batch- and thread-invariant. oneDNN's gemm convolution is not: it splits the batch's pixels
/// (N·OH·OW) between the threads it was created for and into blocks chosen by a cost model, and
/// its sgemm sums a pixel in another order near a split that is not a multiple of 16 pixels. On
/// the 2-core test machine the environments' patch convolutions give the run's bytes on even
/// (sub-)batches (2 to 64 tested) and other bytes, for some layers, on odd ones (the same image alone
/// and in a batch of 5 differs in accumulator.layers.8 onwards at 224×224: the plain path's own
/// batch dependence). A forward with patch runs would then differ from the trace at odd batches,
/// so they stay off until the convolution itself runs this way everywhere (forward, trace, the
/// LRP rules' apply), a change of bytes at odd batches. Declared here rather than in layers.h so
/// that adding it rebuilt only lab/nn. Tested in tests/lab/test_network.cpp (exact on integer
/// data, batch invariance) and tests/networks/test_forward_path.cpp (the environments).
#pragma once

#include <cstdint>
#include <vector>

#include "lab/nn/layers.h"

namespace lab {

/// True for a Conv2d of one group, no padding and kernel = stride (> 1 in one dimension at least)
/// on an N×C×H×W input: a patch convolution.
bool is_patch_conv(const Layer& layer, const Shape& input);

/// Adds run[0] (a patch convolution, is_patch_conv) and the pointwise layers run[1..] (is_pointwise)
/// on x (shape `input`) to `pass`, writing the run's output y: `tile` output pixels of one image at
/// a time through every layer, the tiles spread over the runtime's OpenMP threads. The same values
/// as add_forward of every layer, summed in dnnl_sgemm's order on each tile (see above).
void add_patch_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x, float* y,
                   int64_t tile);

/// Whether forward passes with ForwardPath::tiles run patch runs (default off: the convolution as
/// its oneDNN primitive); on, bench_runtime's "tiles+patch" mode. See the note on bytes above.
bool patch_runs();
void set_patch_runs(bool on);

}  // namespace lab
