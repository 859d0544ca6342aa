/// @file network.h
/// @brief A network of named nodes: a directed acyclic graph in topological order, with batched
/// forward, recorded forward (a Trace), forward from a named node, and backward under
/// propagation rules.
///
/// Node i applies one layer to the outputs of earlier nodes (or the network input); its inputs
/// are indices into Trace::acts (0 = the network input, j + 1 = node j's output). add(name, layer)
/// appends a node reading the previous node's output, so a network built only with it is the
/// chain it always was (and runs the chain's code: the same primitives, buffers and bytes).
/// Graph nodes: merge layers (Add, Concat, Multiply) read several nodes; one layer object may be
/// applied at several nodes (a shared module): everything recorded and every rule is per node,
/// i.e. per application (DeepLIFT's multipliers of a ReLU used twice come from each use's own
/// input and reference). The last node is the output. Names follow the paper's implementation
/// ("accumulator.layers.5") so methods address layers as the paper does. Layers are shared and
/// immutable; copying a Network is cheap. Inputs are N×C×H×W (or N×K) batches of the network's
/// input shape. Tested in test_network.cpp and test_graph.cpp.
///
/// Sub-batches. A large batch streams every layer's activations through memory (at 224×224 a
/// layer of 60 channels holds 12 MB per image). forward, forward_range, trace and the
/// backward-data chains of backward therefore run the layers whose activations exceed the cache
/// budget (sub_batch_budget()) in sub-batches of as many samples as fit (at least one per
/// thread: oneDNN hands each thread whole samples), each through every such
/// layer before the next, so a layer reads what the previous one wrote while it is still in
/// cache; the smaller layers after (or before) them run once on the whole batch. oneDNN's
/// convolution, pooling and elementwise primitives compute each sample alike at every batch
/// size, so the bytes do not depend on the split (tested: a batch of 37 against 37
/// single-sample calls, byte for byte); Linear layers, whose oneDNN kernel depends on the
/// number of rows, always run on the whole batch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lab/nn/layers.h"
#include "lab/nn/rules.h"

namespace lab {

/// The cache budget of sub-batching in bytes: the L2 cache of one core (sysconf, else
/// /sys/devices/system/cpu/cpu0/cache/index2/size, else 1 MiB) times the runtime's threads,
/// unless set_sub_batch_budget chose another. 0 means no sub-batches.
int64_t sub_batch_budget();
/// Sets the budget (bytes ≥ 0; 0 runs every layer on the whole batch, as before sub-batching);
/// a negative value restores the default. The results are the same bytes at every budget: the
/// setting exists so that bench_runtime can measure both ways in one run.
void set_sub_batch_budget(int64_t bytes);

/// How forward-only passes (forward, forward_range, forward_from of a chain) run their layers,
/// and (backprop_tiles) how trace and backward of a chain run the pointwise layers:
/// - tiles: a run of two or more pointwise layers (1×1 convolutions and ReLUs, is_run_pointwise)
///   goes pixel tile by pixel tile (add_pointwise_run), the tile sized to a quarter of a core's L2;
/// - relu_post_op: a ReLU after a Conv2d or Linear runs as that primitive's eltwise post-op (a
///   Linear layer run by lab::linear_chain takes the ReLU after it into its store in every path,
///   the ReLU layer's bytes, and two or more such layers in a row, each with sparse or few
///   weights, run as one step: lab::linear_run_end, add_linear_run);
/// - inference: Conv2d and Linear primitives of prop_kind::forward_inference.
/// - backprop_tiles: trace computes a run of two or more pointwise layers tile by tile, writing
///   every activation from cache (add_pointwise_trace_run), and backward carries a signal through
///   such a run tile by tile where every layer of it goes by backward-data (the gradient, guided
///   and rescale rules of linear layers; add_pointwise_backward_run) or, for LRP-ε, where every
///   convolution of it is under lrp()'s plain rule with its bias and every ReLU under the pass
///   rule (the lrp-epsilon composite: per tile the quotient s = R / stab(z), c = Wᵀs and
///   R = c ⊙ x, reading x and z from the trace), so the signal's intermediate values never
///   travel to memory.
/// tiles, inference and backprop_tiles give the bytes of the plain layer-by-layer passes; relu_post_op gives
/// the same values, but oneDNN's post-op ReLU writes −0 for a negative input where its ReLU
/// primitive writes +0 (a later affine layer with a bias or a non-zero input erases the sign;
/// the environments' outputs are the same bytes). Tested (memcmp) in tests/lab/test_network.cpp
/// and tests/networks/test_forward_path.cpp. Default: tiles and backprop_tiles. The setting
/// exists so that bench_runtime can time each.
struct ForwardPath {
  bool tiles = true;
  bool relu_post_op = false;
  bool inference = false;
  bool backprop_tiles = true;
};
ForwardPath forward_path();
void set_forward_path(const ForwardPath& path);

/// Every activation of one forward pass: acts[0] is the input, acts[i + 1] node i's output (empty: left out, gradient_trace.h).
struct Trace {
  std::vector<Tensor> acts;
  /// Per node, the state its forward kept for the backward (MaxPool2d's argmax workspace; in a
  /// trace_for_gradient trace, the signs of a ReLU's omitted input); else empty. A trace assembled
  /// by hand may leave it empty: the backward then recomputes it from acts.
  std::vector<std::vector<float>> workspaces;
  const Tensor& input() const { return acts.front(); }
  const Tensor& output() const { return acts.back(); }
  /// Output of layer i.
  const Tensor& after(size_t i) const { return acts.at(i + 1); }
};

class Network {
 public:
  /// `input_shape` is one sample's shape: C×H×W (or K).
  explicit Network(Shape input_shape = {});

  /// Appends a node applying `layer` to the previous node's output (the network input for the first).
  void add(std::string name, std::shared_ptr<const Layer> layer);
  /// Appends a node applying `layer` to the outputs of the named earlier nodes ("input": the
  /// network input), in order; a merge layer takes two or more, any other layer one. A name not
  /// yet added, or a count the layer does not take, throws lab::Error.
  void add(std::string name, std::shared_ptr<const Layer> layer, const std::vector<std::string>& inputs);

  size_t size() const { return layers_.size(); }
  /// Node i's inputs as indices into Trace::acts (0 = the network input, j + 1 = node j).
  const std::vector<size_t>& inputs(size_t i) const { return inputs_.at(i); }
  /// The layer object of node i, shared with every node that applies the same object.
  const std::shared_ptr<const Layer>& layer_ptr(size_t i) const { return layers_.at(i); }
  /// True if every node reads only the previous node's output (a plain chain of layers).
  bool is_chain() const { return chain_; }
  /// True if activation `act` (0 = the input, j + 1 = node j's output) is the only one of
  /// acts[0..act] that nodes after it read: the network can be continued from it alone.
  bool is_cut(size_t act) const;
  const Layer& layer(size_t i) const { return *layers_.at(i); }
  const std::string& name(size_t i) const { return names_.at(i); }
  /// Index of a named layer; an unknown name throws lab::Error listing the layer names.
  size_t index_of(const std::string& name) const;
  const Shape& input_shape() const { return input_shape_; }
  /// Shape (batch included) after layer i; after(size()-1) is the output.
  Shape shape_after(size_t i, int64_t batch = 1) const;
  Shape output_shape(int64_t batch = 1) const;
  int64_t parameter_count() const;

  /// Network output for a batch; a batch of the wrong shape throws lab::Error.
  Tensor forward(const Tensor& x) const;
  /// Forward keeping every activation.
  Trace trace(const Tensor& x) const { return trace(x, nullptr); }
  /// Runs nodes [begin, end) on `input` (the output of node begin-1, or the network input); in a
  /// graph, acts[begin] must be a cut (is_cut(begin)), else lab::Error.
  Tensor forward_range(size_t begin, size_t end, const Tensor& input) const;
  /// Continues from the output of layer `layer` (given as `activation`) to the network output.
  Tensor forward_from(const std::string& layer, const Tensor& activation) const;

  /// Carries `seed` (shaped like the output) back under `rules`, down to the input
  /// (to_layer empty) or to the output of node *to_layer. `reference` is the trace of the
  /// reference input, required when a rule is rescale (DeepLIFT). In a graph, the signals of a
  /// node's consumers are summed (in node order) before the node is processed; stopping at a
  /// node gives the complete signal at its output (every consumer comes after it).
  Tensor backward(const Trace& trace, const Tensor& seed, const PreparedRules& rules,
                  std::optional<size_t> to_layer = std::nullopt, const Trace* reference = nullptr) const;
  /// Plain gradient of sum(seed ⊙ output) w.r.t. the input (or a layer's output).
  Tensor gradient(const Trace& trace, const Tensor& seed, std::optional<size_t> to_layer = std::nullopt) const;

 private:
  /// trace(x); with `keep` (trace_for_gradient, gradient_trace.h), the gradient's lean trace:
  /// inside the tiled pointwise runs only the outputs of the layers in *keep and the ReLUs' signs.
  Trace trace(const Tensor& x, const std::vector<size_t>* keep) const;
  friend Trace trace_for_gradient(const Network& net, const Tensor& x, const std::vector<size_t>& keep);
  void check_input(const Tensor& x, size_t first_layer) const;
  /// Shapes of every activation (acts order) for a batch.
  std::vector<Shape> act_shapes(int64_t batch) const;
  /// Runs nodes [begin, end) into acts (every activation a whole-batch tensor, acts[a] for a
  /// input of these nodes filled), in sub-batches where the activations are large; fills
  /// `workspaces` (if given) for the layers that keep one.
  void run_nodes(std::vector<Tensor>& acts, size_t begin, size_t end,
                 std::vector<std::vector<float>>* workspaces) const;
  Tensor backward_graph(const Trace& trace, const Tensor& seed, const PreparedRules& rules, size_t stop,
                        const Trace* reference) const;
  Shape input_shape_;
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<const Layer>> layers_;
  std::vector<std::vector<size_t>> inputs_;
  bool chain_ = true;
  PreparedRules gradient_rules_;
};

}  // namespace lab
