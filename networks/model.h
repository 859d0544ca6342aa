/// @file model.h
/// @brief A network under construction together with what each of its layers holds, and the
/// hand-set dense maps (stages) the modules are written in.
///
/// Every module (number checker, colour detector, accumulator, identity MLP, modulo unit) appends
/// its layers to a Model under a prefix, named like a torch nn.Sequential: "PREFIX.layers.K",
/// where K counts every layer of the module, ReLUs included ("accumulator.layers.5" is the
/// module's sixth layer, as in the paper's App. F.2 and G.2). Model::roles says, per layer, what
/// its output holds; `attrlab summary` prints it.
///
/// A DenseStage is one hand-set affine map y = W x + b on channels (out × in, row-major). A stage
/// list becomes Linear layers (an MLP on N×in) or 1×1 Conv2d layers (the same map at every pixel),
/// each followed by a ReLU, as in the paper's figures ("ReLU activation is applied after each
/// neuron"). All designed values are integers or dyadic fractions, so float32 holds them exactly.
/// Exercised by every module's tests (test_number_checker.cpp builds stages as Linear layers,
/// test_color_detector.cpp as 1×1 convolutions).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lab/nn/network.h"

namespace networks {

/// A network and, aligned with its layers, what each layer's output holds.
struct Model {
  lab::Network network;
  std::vector<std::string> roles;

  explicit Model(lab::Shape input_shape) : network(std::move(input_shape)) {}
  void add(std::string name, std::shared_ptr<const lab::Layer> layer, std::string role);
  /// A graph node reading the named earlier nodes ("input": the network input), see lab::Network::add.
  void add(std::string name, std::shared_ptr<const lab::Layer> layer, std::string role,
           const std::vector<std::string>& inputs);
};

/// y = W x + b on `in` channels, `out` outputs, with a sentence saying what y holds.
struct DenseStage {
  int64_t in = 0;
  int64_t out = 0;
  std::vector<float> weight;  ///< out × in, row-major
  std::vector<float> bias;    ///< out
  std::string role;

  DenseStage(int64_t in_, int64_t out_, std::string role_);
  float& w(int64_t o, int64_t i) { return weight[static_cast<size_t>(o * in + i)]; }
  float w(int64_t o, int64_t i) const { return weight[static_cast<size_t>(o * in + i)]; }
  float& b(int64_t o) { return bias[static_cast<size_t>(o)]; }
};

enum class StageForm {
  kLinear,   ///< lab::Linear on N×in
  kConv1x1,  ///< lab::Conv2d with 1×1 kernels on N×in×H×W
};

/// Appends each stage as PREFIX.layers.(first + 2k) (Linear or 1×1 Conv2d, with bias) followed by
/// PREFIX.layers.(first + 2k + 1) (ReLU). Returns the next free index.
int64_t append_stages(Model& model, const std::string& prefix, const std::vector<DenseStage>& stages,
                      StageForm form, int64_t first = 0);

/// "PREFIX.layers.K".
std::string layer_name(const std::string& prefix, int64_t k);

/// The conv + linear layers of a network: what the paper's Table 1 counts as layers.
int64_t weight_layer_count(const lab::Network& net);

}  // namespace networks
