/// @file network.h
/// @brief A sequential network of named layers, with batched forward, recorded forward
/// (a Trace), forward from a named layer, and backward under propagation rules.
///
/// Names follow the paper's implementation ("accumulator.layers.5") so methods address layers
/// as the paper does. Layers are shared and immutable; copying a Network is cheap. Inputs are
/// N×C×H×W (or N×K) batches of the network's input shape. Tested in test_network.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lab/nn/layers.h"
#include "lab/nn/rules.h"

namespace lab {

/// Every activation of one forward pass: acts[0] is the input, acts[i + 1] the output of layer i.
struct Trace {
  std::vector<Tensor> acts;
  const Tensor& input() const { return acts.front(); }
  const Tensor& output() const { return acts.back(); }
  /// Output of layer i.
  const Tensor& after(size_t i) const { return acts.at(i + 1); }
};

class Network {
 public:
  /// `input_shape` is one sample's shape: C×H×W (or K).
  explicit Network(Shape input_shape = {});

  void add(std::string name, std::shared_ptr<const Layer> layer);

  size_t size() const { return layers_.size(); }
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
  Trace trace(const Tensor& x) const;
  /// Runs layers [begin, end) on `input` (the output of layer begin-1, or the network input).
  Tensor forward_range(size_t begin, size_t end, const Tensor& input) const;
  /// Continues from the output of layer `layer` (given as `activation`) to the network output.
  Tensor forward_from(const std::string& layer, const Tensor& activation) const;

  /// Carries `seed` (shaped like the output) back under `rules`, down to the input
  /// (to_layer empty) or to the output of layer *to_layer. `reference` is the trace of the
  /// reference input, required when a rule is rescale (DeepLIFT).
  Tensor backward(const Trace& trace, const Tensor& seed, const PreparedRules& rules,
                  std::optional<size_t> to_layer = std::nullopt, const Trace* reference = nullptr) const;
  /// Plain gradient of sum(seed ⊙ output) w.r.t. the input (or a layer's output).
  Tensor gradient(const Trace& trace, const Tensor& seed, std::optional<size_t> to_layer = std::nullopt) const;

 private:
  void check_input(const Tensor& x, size_t first_layer) const;
  Shape input_shape_;
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<const Layer>> layers_;
  PreparedRules gradient_rules_;
};

}  // namespace lab
