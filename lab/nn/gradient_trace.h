/// @file gradient_trace.h
/// @brief A trace that keeps only what a backward pass reading the ReLUs' signs needs: the plain
/// gradient's trace, with the inner activations of the pointwise runs replaced by the signs of
/// the ReLUs' inputs.
///
/// Network::trace with ForwardPath::backprop_tiles computes each run of two or more pointwise
/// layers of a chain (1×1 convolutions and ReLUs: the colour detector) tile by tile but writes
/// every layer's output of the whole batch to memory, and the backward reads the ReLUs' inputs
/// back. The gradient's backward through such a run reads nothing but whether each ReLU's input is
/// positive (or NaN, where oneDNN's ReLU backward passes the signal too): trace_for_gradient
/// computes the run tile by tile as the forward does and, instead of its inner activations, writes
/// one bit per element of each ReLU's input, !(x <= 0), from cache (add_pointwise_sign_trace_run);
/// Network::backward multiplies by those bits where it would have compared the input
/// (add_pointwise_sign_backward_run). The same kernels on the same inputs, and
/// the same product: the gradient is the same bytes as from Network::trace. The guided rule
/// (GuidedBP) reads the same bits after its clip, the deconv rule (Deconvnet) reads nothing: both
/// are steps of the tiled backward too (ReluBackward), and run_backprop gives them this trace
/// (reads_only_signs). A step of the
/// backward that reads an omitted activation itself (a rule that cuts the run, a to_layer inside
/// it) recomputes it from the run's input by the layers' forward, also the same bytes. A patch
/// convolution (patch_run.h) followed by pointwise layers is such a run too, as in the forward's
/// patch runs: the trace gathers each tile's windows, and the convolution's output, inside the
/// run, is left out (single-color-modulo's 8 channels at 112 × 112 become 8 bits per pixel). Tested with
/// memcmp in tests/lab/test_network.cpp, tests/networks/test_forward_path.cpp and (the methods'
/// maps) tests/attributions/test_gradient_methods.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lab/nn/network.h"

namespace lab {

/// Network::trace of `x`, except that the outputs of the layers inside a pointwise run (every
/// layer of a run of two or more pointwise layers with a convolution, or of a patch convolution
/// and the pointwise layers after it, in a chain, with ForwardPath::backprop_tiles; not the run's
/// last layer) are empty Tensors, unless their layer's
/// index is in `keep`. So a trace keeps: the input, the output, every activation outside such runs,
/// each run's input and output, and the outputs of the layers in `keep` (a caller that reads a
/// layer's activation, such as GradCAM's or a backward's to_layer, names it here). A ReLU of a run
/// whose input is left out has, as Trace::workspaces[i], the signs of its input (one bit per
/// element, !(x <= 0), laid out as add_pointwise_sign_trace_run writes them, in floats' storage);
/// other workspaces are Network::trace's. Graphs, a path without
/// backprop_tiles, or set_gradient_traces_lean(false) give Network::trace's full trace.
Trace trace_for_gradient(const Network& net, const Tensor& x, const std::vector<size_t>& keep = {});

/// Whether trace_for_gradient leaves activations out (default true; false: it returns the full
/// trace). The results are the same bytes either way: the setting exists so that
/// bench_perturbation can time both in one run.
bool gradient_traces_lean();
void set_gradient_traces_lean(bool on);

/// Bytes of one channel's row of signs of H×W = `pixels` values: one bit each, !(x <= 0).
inline int64_t sign_row_bytes(int64_t pixels) { return (pixels + 7) / 8; }

/// add_pointwise_trace_run (lab/nn/layers.h), its run[0] possibly a patch convolution on `input`
/// (is_patch_conv; `tile` then a multiple of 16, and at least one layer after it), where a null outputs[k] leaves run[k]'s output out
/// (it lives in a tile buffer only; the last output must be given), and masks[k], given for a
/// ReLU, receives the signs of its input (N×C×H×W, whole batch): !(x <= 0) as bit p % 8 of byte p / 8
/// of the (n, c) row of sign_row_bytes(H·W) bytes. `tile` a multiple of 8 (each tile whole bytes).
void add_pointwise_sign_trace_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x,
                                  const std::vector<float*>& outputs, const std::vector<uint8_t*>& masks, int64_t tile);
/// How a ReLU of a tiled backward carries the signal dy (its rule, rules.h), element by element:
/// - kGradient: dy · (x <= 0 ? 0 : 1), the bytes of oneDNN's ReLU backward-data (the signal passes
///   where x is NaN);
/// - kGuided: max(dy, 0) · (x <= 0 ? 0 : 1), the guided rule's clip (std::max(dy, 0.0f): −0 and NaN
///   stay) followed by that product, the bytes of the clip then the ReLU's backward-data;
/// - kDeconv: max(dy, 0), the deconv rule's clip; it reads neither x nor its signs.
enum class ReluBackward : uint8_t { kGradient, kGuided, kDeconv };

/// Whether the backward of a patch convolution on `input` (is_patch_conv) can join the tiled
/// backward of the pointwise run above it (add_pointwise_sign_backward_run with run[0] the
/// convolution): its output's pixels a multiple of 16, and its transposed product split by
/// columns alike (lab::pointwise_columns_alike), so that per tile it gives the bytes of
/// add_patch_transpose's product over the whole image; not with lab::set_onednn_forward(true).
bool patch_backward_joins(const Conv2d& conv, const Shape& input);

/// add_pointwise_backward_run (lab/nn/layers.h) where a ReLU whose input inputs[k] is null reads
/// its input's signs from masks[k] (as add_pointwise_sign_trace_run wrote them): dy · (bit ? 1 : 0),
/// the same product; and where each ReLU k carries the signal as modes[k] says (modes empty: every
/// ReLU kGradient; a kDeconv ReLU needs neither inputs[k] nor masks[k]). A run of a single ReLU
/// on an N×1×P×1 view of any activation is the guided or deconv rule of a lone ReLU
/// (Network::backward). run[0] may be a patch convolution on `input` where
/// patch_backward_joins (`tile` then a multiple of 16): dx is then the signal at its input.
void add_pointwise_sign_backward_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input,
                                     const std::vector<const float*>& inputs, const std::vector<const uint8_t*>& masks,
                                     const float* dy, float* dx, int64_t tile,
                                     const std::vector<ReluBackward>& modes = {});

/// Whether a backward under `rules` reads, of the activations inside the pointwise runs, only the
/// ReLUs' signs, so that trace_for_gradient's trace serves it at no recomputation: every rule is
/// gradient, guided, deconv or pass. LRP rules read the activations themselves, rescale those of
/// the input and of a reference.
bool reads_only_signs(const PreparedRules& rules);

}  // namespace lab
