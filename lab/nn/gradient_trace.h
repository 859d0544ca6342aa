/// @file gradient_trace.h
/// @brief A trace that keeps only what a backward pass reading the ReLUs' signs needs: the plain
/// gradient's trace, with the inner activations of the pointwise runs left out and recomputed
/// tile by tile by Network::backward.
///
/// Network::trace with ForwardPath::backprop_tiles computes each run of two or more pointwise
/// layers of a chain (1×1 convolutions and ReLUs, the colour detector) tile by tile but writes
/// every layer's output of the whole batch to memory, and the backward reads the ReLUs' inputs
/// back. The gradient needs none of them after the pass but the run's input: trace_for_gradient
/// computes such a run as the forward does (add_pointwise_run: only its input and output travel
/// to memory) and leaves its inner activations empty in Trace::acts, and Network::backward carries
/// the signal through the run by recomputing each tile's forward from the run's input while the
/// tile is in cache (add_pointwise_backward_run with omitted inputs). The same kernels run on the
/// same inputs, so the gradient (and every rule's result: a layer-by-layer step of the backward
/// that reads an omitted activation recomputes it first) is the same bytes as from Network::trace.
/// Tested with memcmp in tests/lab/test_network.cpp and tests/networks/test_forward_path.cpp.
#pragma once

#include <cstddef>
#include <vector>

#include "lab/nn/network.h"

namespace lab {

/// Network::trace of `x`, except that the outputs of the layers inside a pointwise run (every
/// layer of a run of two or more pointwise layers with a convolution, in a chain, with
/// ForwardPath::backprop_tiles; not the run's last layer) are empty Tensors, unless their layer's
/// index is in `keep`. So a trace keeps: the input, the output, every activation outside such runs,
/// each run's input and output, and the outputs of the layers in `keep` (a caller that reads a
/// layer's activation, such as GradCAM's or a backward's to_layer, names it here). Workspaces
/// are kept as by Network::trace. Graphs, a path without backprop_tiles, or
/// set_gradient_traces_lean(false) give Network::trace's full trace.
Trace trace_for_gradient(const Network& net, const Tensor& x, const std::vector<size_t>& keep = {});

/// Whether trace_for_gradient leaves activations out (default true; false: it returns the full
/// trace). The results are the same bytes either way: the setting exists so that
/// bench_perturbation can time both in one run.
bool gradient_traces_lean();
void set_gradient_traces_lean(bool on);

}  // namespace lab
