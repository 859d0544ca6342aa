/// @file patch_run.h
/// @brief Patch convolutions: a convolution whose kernel equals its stride (non-overlapping
/// windows, no padding, one group) computed one way everywhere, on column tiles of each image;
/// and patch runs, such a convolution with the pointwise layers after it tile by tile in the
/// forward.
///
/// Such a convolution (the accumulators' k×k stride-k blocks, the trap zoo's patch kernels) is,
/// on each output pixel, the product of its out×(in·k·k) weights with that pixel's window.
/// oneDNN's gemm convolution copies the windows into a column matrix (im2col, rows (c, kh, kw), the
/// weights' order; in oneDNN 2.6 a scalar loop with bounds checks, the largest part of
/// single-color-modulo's forward) and runs sgemm on it. It splits the batch's pixels (N·OH·OW)
/// between the threads it was created for and into blocks picked by a cost model, and its sgemm
/// sums a pixel in another order near a split: its bytes depended on the batch and the thread
/// count (one single-color-modulo image at 224×224 alone and in a batch of 5 differed from
/// accumulator.layers.8 on, and the trace of a batch of 64 between 1 and 2 threads).
///
/// One way everywhere. Conv2d::add_apply and add_forward_variant run a patch convolution as
/// add_patch_conv: per image, the windows of a tile of output pixels (a multiple of 16 pixels, the
/// last tile of the image padded with zero columns to one) are copied into a cache-resident column
/// tile (a strided gather, im2col's layout) and multiplied by lab::pointwise_gemm, so every pixel
/// is in a full block of 16 columns of the product and is computed as oneDNN's AVX2 sgemm computes
/// such a block: its main kernel's chain of fused multiply-adds for each block of 6 channels, its
/// remainder kernel for the channels left over (lab/nn/pointwise_gemm.h). A convolution of more
/// than 64 column rows or channels (beyond that kernel) takes lab::chain_gemm instead: one chain of
/// fused multiply-adds per element. Either way an element's bytes are a function of its window,
/// the weights and the bias alone: the same in the forward, the trace (Network::trace,
/// trace_for_gradient), the rules' products with other weights (LRP's z = W⁺x, ...), a backward's
/// recomputed activations and the incremental engine's crops (a crop's pixels sit elsewhere in
/// their blocks), whatever the batch, the sub-batch, the tile and the thread count. Where oneDNN's
/// sgemm ran its main kernel on a pixel (on this machine: even batches, but near the last pixels of
/// a thread's share), these are its bytes; elsewhere (odd batches, a batch of 1 included) its
/// remainder kernels summed in another order, so values there may differ in the last bits. On
/// integer or dyadic data where every partial sum is exact (the designed images on the designed
/// networks) every order gives the same values. The backward-data of a patch convolution stays
/// oneDNN's (a per-image sgemm and col2im, found batch- and thread-invariant:
/// tests/networks/test_forward_path.cpp).
///
/// Patch runs (the forward with ForwardPath::tiles): add_patch_run computes the convolution on the
/// column tile as above, with the bias and a following ReLU in its store, then the pointwise
/// layers after it (as add_pointwise_run: oneDNN's bytes of those layers, on the tile's own width)
/// while the tile is in cache: only the input and the run's output travel to memory. It gives the
/// bytes of add_patch_conv followed by each layer's own forward. A run that is a patch convolution
/// to 6 or 8 channels (at most 64 column rows), its ReLU, a 1×1 convolution to one channel and its
/// ReLU (each accumulator block) goes through the fused kernel of lab/nn/patch_kernel.h instead:
/// per block of 16 pixels the channels stay in registers (and 2×2 windows of one channel are read
/// straight from the image, not gathered: patch_kernel_image), the same bytes
/// (tests/lab/test_patch_kernel.cpp); lab::set_patch_kernels(false) turns it off. Declared here rather than in
/// layers.h so that adding it rebuilt only lab/nn. Tested in tests/lab/test_network.cpp (on crops
/// of the input a patch convolution gives the window of the whole output; a deep one the chains
/// the test computes; exact on integer data against oneDNN; batch invariance) and
/// tests/networks/test_forward_path.cpp (every environment: an image alone, in a batch of 5 and of
/// 64, the forward, the traces and the gradient's and LRP-ε's maps, 1 and 2 threads).
#pragma once

#include <cstdint>
#include <vector>

#include "lab/nn/layers.h"

namespace lab {

/// True for a Conv2d of one group, no padding and kernel = stride (> 1 in one dimension at least)
/// on an N×C×H×W input: a patch convolution.
bool is_patch_conv(const Layer& layer, const Shape& input);

/// is_patch_conv, or the same with several groups of at most 64 column rows (in/groups·kh·kw) and
/// 64 output channels each (multi-color-sum's accumulator blocks): the forward computes it as
/// add_patch_conv, one product per group on the group's rows of the column tile (the rows of a
/// group's channels are consecutive), so its bytes are one way everywhere as above, and its patch
/// runs start at it; the traces' runs and the transposed products keep is_patch_conv (a grouped
/// one's backward-data is oneDNN's). Before, oneDNN's grouped gemm convolution ran it, whose bytes
/// depended on the batch and the threads as above; on the designed networks' exact sums the values
/// are the same.
bool is_forward_patch_conv(const Layer& layer, const Shape& input);

/// Adds z = conv with weights w (conv's shape) on x (shape `input`, is_forward_patch_conv) to `pass`, + the
/// bias of w if use_bias, then the ReLU `v > 0 ? v : +0` if relu: per image, tiles of output
/// pixels gathered into column tiles and multiplied as above, spread over the runtime's OpenMP
/// threads (each pixel's bytes independent of the batch, the tile, the crop and the threads).
void add_patch_conv(Pass& pass, const Conv2d& conv, const Weights& w, const Shape& input, const float* x,
                    bool use_bias, bool relu, float* y);

/// Adds c = the transposed patch convolution of s (the backward-data, or a rule's c = W'ᵀs with
/// weights w; s of the convolution's output shape, c of `input`) to `pass`: per image, the column
/// rows col = W'ᵀ · s (lab::pointwise_gemm, transposed, on all the image's output pixels at once,
/// or on tiles of them where that gives the same bytes: lab::pointwise_columns_alike), then each
/// window's values back to its pixels, and +0 on the pixels no window covers. The bytes of
/// oneDNN's gemm convolution's backward-data on nchw, an sgemm per image into its column rows then
/// col2im into zeros (tests/lab/test_network.cpp, with −0, NaN and ∞ in the signal); the tiles
/// (or images) spread over the OpenMP threads.
void add_patch_transpose(Pass& pass, const Conv2d& conv, const Weights& w, const Shape& input, const float* s,
                         float* c);

/// Adds run[0] (a patch convolution, is_forward_patch_conv) and the pointwise layers run[1..] (is_run_pointwise)
/// on x (shape `input`) to `pass`, writing the run's output y: `tile` output pixels (a multiple of
/// 16) of one image at a time through every layer, the tiles spread over the runtime's OpenMP
/// threads. The bytes of add_patch_conv followed by add_forward of every other layer.
void add_patch_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x, float* y,
                   int64_t tile);

/// A run of a tiled sequence (add_tiled_sequence): the layers of a patch run (patch: as
/// add_patch_run) or of a pointwise run (as add_pointwise_run), its input shape and its tile.
struct TiledRunSpec {
  std::vector<const Layer*> layers;
  Shape input;
  int64_t tile = 0;
  bool patch = false;
};

/// Adds consecutive tiled runs, each reading the previous one's output (the first x, the last
/// writing y), to `pass` as one OpenMP parallel region instead of one per run (and per sub-batch):
/// with at least 4 images per thread each thread takes whole images through every run, so that
/// an image's activations between the runs stay in its core's cache and the threads meet once;
/// with fewer, the runs in turn, each run's tiles spread over the threads (a barrier between
/// runs). Each tile is computed as add_patch_run or add_pointwise_run computes it, with the same
/// tiles, so the same bytes whatever the batch and the threads (tests/lab/test_network.cpp).
void add_tiled_sequence(Pass& pass, const std::vector<TiledRunSpec>& runs, const float* x, float* y);

/// Whether add_tiled_sequence folds a pointwise run into the patch run that reads its output
/// (default on), where the pointwise run's first step reads no more channels than its last writes
/// (multi-color-sum's detector, 3 → 6, before its accumulator's first block): the patch run
/// gathers the windows of the pointwise run's input instead, and runs the pointwise steps on each
/// window position's rows of its column tile. A pointwise run commutes with the gather (both act
/// pixel by pixel), so the same values; its output is never stored to memory and read back, and
/// the gather copies half the rows. Only where the runs go in turn over the whole batch (fewer than
/// 4 images per thread), whose outputs between runs go through memory; by image, where they stay
/// in the core's cache, the runs as they are (folded, multi-color-sum's forward took 3–7% longer).
/// Off: the two runs one after the other (the same bytes).
bool tiled_folds();
void set_tiled_folds(bool on);

/// Whether Network::forward runs consecutive tiled runs of a chain as add_tiled_sequence (default
/// on). Off: one add_patch_run or add_pointwise_run each, in sub-batches where the batch exceeds
/// the cache budget, for bench_runtime's "tiles-runs" mode only (the same bytes).
bool tiled_sequences();
void set_tiled_sequences(bool on);

/// Whether the layers run as before patch convolutions ran one way (default off). On, only for
/// bench_runtime's "tiles-onednn" mode, to time both in one process: patch convolutions by
/// oneDNN's gemm convolution (its bytes depend on the batch and the thread count, see above) and
/// no patch runs in the forward; the small ReLUs and flatten copies (lab/nn/layers.cpp) by their
/// oneDNN primitives; every tile loop on all the threads (lab/nn/tile_loop.h).
bool onednn_forward();
void set_onednn_forward(bool on);

}  // namespace lab
