/// @file layers.h
/// @brief The layers a network is made of: Conv2d, Linear, ReLU, Softmax, Flatten, each on oneDNN.
///
/// Each layer states its shapes (output_shape) and implements forward and backward-data on whole
/// batches. Layers are immutable once built; the oneDNN primitives for each input shape are
/// described once, cached, and reused (describe, then run). Affine layers (Conv2d, Linear) also
/// run with *other* weights of the same shape (apply / apply_transpose), which is how the LRP
/// rules use their positive and negative weight copies without touching the network.
/// Tested against finite differences in test_layers.cpp.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lab/core/tensor.h"

namespace lab {

enum class LayerKind { kConv2d, kLinear, kReLU, kSoftmax, kFlatten };
/// "conv2d", "linear", "relu", "softmax", "flatten".
std::string kind_name(LayerKind kind);

class Layer {
 public:
  virtual ~Layer() = default;
  virtual LayerKind kind() const = 0;
  /// Output shape (batch included) for an input shape; throws lab::Error if the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;
  /// y = layer(x) for a whole batch.
  virtual Tensor forward(const Tensor& x) const = 0;
  /// dL/dx from dL/dy; `x` is the layer's input, `y` its output (as returned by forward).
  virtual Tensor backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const = 0;
  virtual int64_t parameter_count() const { return 0; }
  /// One line of hyper-parameters, e.g. "3->12 k1x1 s1 p0 g1".
  virtual std::string describe() const = 0;
};

/// Weights of an affine layer; `bias` may be empty (no bias).
struct Weights {
  Tensor weight;
  Tensor bias;
};

/// y = W x + b, linear in x: the layers LRP rules act on.
class AffineLayer : public Layer {
 public:
  explicit AffineLayer(Weights weights) : weights_(std::move(weights)) {}
  const Weights& weights() const { return weights_; }
  /// z = W'x (+ b' if use_bias) with any weights of this layer's shape.
  virtual Tensor apply(const Weights& w, const Tensor& x, bool use_bias) const = 0;
  /// c = W'ᵀ s: the transposed linear map (backward-data) with weights w.
  virtual Tensor apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const = 0;

  Tensor forward(const Tensor& x) const override { return apply(weights_, x, true); }
  Tensor backward_data(const Tensor& x, const Tensor&, const Tensor& dy) const override {
    return apply_transpose(weights_, dy, x.shape());
  }
  int64_t parameter_count() const override { return weights_.weight.numel() + weights_.bias.numel(); }

 protected:
  Weights weights_;
};

struct Conv2dParams {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t groups = 1;
  /// Throws lab::Error naming the field if a value is impossible.
  void validate() const;
};

/// 2-D convolution, NCHW. weight: (out, in/groups, kh, kw); bias: (out) or empty.
class Conv2d final : public AffineLayer {
 public:
  Conv2d(Conv2dParams params, Tensor weight, Tensor bias);
  ~Conv2d() override;
  LayerKind kind() const override { return LayerKind::kConv2d; }
  const Conv2dParams& params() const { return params_; }
  Shape output_shape(const Shape& input) const override;
  Tensor apply(const Weights& w, const Tensor& x, bool use_bias) const override;
  Tensor apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const override;
  std::string describe() const override;

 private:
  struct Primitives;
  Primitives& primitives(const Shape& input) const;
  Conv2dParams params_;
  mutable std::mutex mutex_;
  mutable std::map<Shape, std::unique_ptr<Primitives>> cache_;
};

/// Fully connected layer on N×in. weight: (out, in); bias: (out) or empty.
class Linear final : public AffineLayer {
 public:
  Linear(Tensor weight, Tensor bias);
  ~Linear() override;
  LayerKind kind() const override { return LayerKind::kLinear; }
  int64_t in_features() const { return weights_.weight.dim(1); }
  int64_t out_features() const { return weights_.weight.dim(0); }
  Shape output_shape(const Shape& input) const override;
  Tensor apply(const Weights& w, const Tensor& x, bool use_bias) const override;
  Tensor apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const override;
  std::string describe() const override;

 private:
  struct Primitives;
  Primitives& primitives(const Shape& input) const;
  mutable std::mutex mutex_;
  mutable std::map<Shape, std::unique_ptr<Primitives>> cache_;
};

/// max(x, 0), any shape.
class ReLU final : public Layer {
 public:
  ReLU();
  ~ReLU() override;
  LayerKind kind() const override { return LayerKind::kReLU; }
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(const Tensor& x) const override;
  Tensor backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const override;
  std::string describe() const override { return ""; }

 private:
  struct Primitives;
  Primitives& primitives(const Shape& input) const;
  mutable std::mutex mutex_;
  mutable std::map<Shape, std::unique_ptr<Primitives>> cache_;
};

/// Softmax over dimension 1 of N×K.
class Softmax final : public Layer {
 public:
  Softmax();
  ~Softmax() override;
  LayerKind kind() const override { return LayerKind::kSoftmax; }
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) const override;
  Tensor backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const override;
  std::string describe() const override { return "dim 1"; }

 private:
  struct Primitives;
  Primitives& primitives(const Shape& input) const;
  mutable std::mutex mutex_;
  mutable std::map<Shape, std::unique_ptr<Primitives>> cache_;
};

/// N×C×H×W → N×(C·H·W); a reshape, no copy of meaning.
class Flatten final : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kFlatten; }
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) const override;
  Tensor backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const override;
  std::string describe() const override { return ""; }
};

}  // namespace lab
