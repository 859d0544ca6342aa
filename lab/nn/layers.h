/// @file layers.h
/// @brief The layers a network is made of: Conv2d, Linear, ReLU, Softmax, Flatten, each on oneDNN.
///
/// Each layer states its shapes (output_shape) and implements forward and backward-data on whole
/// batches. Layers are immutable once built. The work is described, then run: a layer adds its
/// primitives to a Pass (an ordered list of (primitive, arguments)), and the pass submits them in
/// order and waits once. The primitives come from one process-wide cache, described once per
/// primitive kind and shapes and shared by every layer. Affine layers (Conv2d, Linear) also run
/// with *other* weights of the same shape (apply / apply_transpose), which is how the LRP rules
/// use their positive and negative weight copies without touching the network.
/// Tested against finite differences in test_layers.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "lab/core/tensor.h"

namespace lab {

/// Work for the runtime's stream, in order: primitives added by the layers (and host steps, for
/// layers computed on the host). Each primitive is submitted when added, without a wait; the host
/// waits on the stream once in run() and before each host step; buffers given to add_* must stay
/// alive and untouched by the host until run() returns. A step may read a buffer an earlier step
/// wrote: the stream is in order.
class Pass {
 public:
  Pass();
  ~Pass();
  Pass(const Pass&) = delete;
  Pass& operator=(const Pass&) = delete;
  /// A step computed on the host; it sees the results of every earlier step.
  void add_host(std::function<void()> step);
  /// Waits for every step added since the last run(); afterwards the host may read every output.
  void run();

  /// The oneDNN steps (defined in layers.cpp, used by the layers only).
  struct Steps;
  Steps& steps() { return *steps_; }

 private:
  std::unique_ptr<Steps> steps_;
};

enum class LayerKind { kConv2d, kLinear, kReLU, kSoftmax, kFlatten };
/// "conv2d", "linear", "relu", "softmax", "flatten".
std::string kind_name(LayerKind kind);

class Layer {
 public:
  virtual ~Layer() = default;
  virtual LayerKind kind() const = 0;
  /// Output shape (batch included) for an input shape; throws lab::Error if the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;
  /// Adds y = layer(x) to `pass`; x is shaped `input`, y holds output_shape(input) values.
  virtual void add_forward(Pass& pass, const Shape& input, const float* x, float* y) const = 0;
  /// Adds dL/dx from dL/dy to `pass`; `x` (shaped `input`) is the layer's input, `y` its output.
  virtual void add_backward_data(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy,
                                 float* dx) const = 0;
  virtual int64_t parameter_count() const { return 0; }
  /// One line of hyper-parameters, e.g. "3->12 k1x1 s1 p0 g1".
  virtual std::string describe() const = 0;

  /// y = layer(x) for a whole batch (one pass).
  Tensor forward(const Tensor& x) const;
  /// dL/dx from dL/dy; `x` is the layer's input, `y` its output (as returned by forward).
  Tensor backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const;
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
  /// Adds z = W'x (+ b' if use_bias) with any weights of this layer's shape; x is shaped `input`.
  virtual void add_apply(Pass& pass, const Weights& w, const Shape& input, const float* x, bool use_bias,
                         float* z) const = 0;
  /// Adds c = W'ᵀ s, the transposed linear map (backward-data) with weights w, to `pass`.
  virtual void add_apply_transpose(Pass& pass, const Weights& w, const Shape& input, const float* s,
                                   float* c) const = 0;

  /// z = W'x (+ b' if use_bias), one pass.
  Tensor apply(const Weights& w, const Tensor& x, bool use_bias) const;
  /// c = W'ᵀ s for an input of shape input_shape, one pass.
  Tensor apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const;

  void add_forward(Pass& pass, const Shape& input, const float* x, float* y) const override {
    add_apply(pass, weights_, input, x, true, y);
  }
  void add_backward_data(Pass& pass, const Shape& input, const float*, const float*, const float* dy,
                         float* dx) const override {
    add_apply_transpose(pass, weights_, input, dy, dx);
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
  LayerKind kind() const override { return LayerKind::kConv2d; }
  const Conv2dParams& params() const { return params_; }
  Shape output_shape(const Shape& input) const override;
  void add_apply(Pass& pass, const Weights& w, const Shape& input, const float* x, bool use_bias,
                 float* z) const override;
  void add_apply_transpose(Pass& pass, const Weights& w, const Shape& input, const float* s,
                           float* c) const override;
  std::string describe() const override;

 private:
  Conv2dParams params_;
};

/// Fully connected layer on N×in. weight: (out, in); bias: (out) or empty.
class Linear final : public AffineLayer {
 public:
  Linear(Tensor weight, Tensor bias);
  LayerKind kind() const override { return LayerKind::kLinear; }
  int64_t in_features() const { return weights_.weight.dim(1); }
  int64_t out_features() const { return weights_.weight.dim(0); }
  Shape output_shape(const Shape& input) const override;
  void add_apply(Pass& pass, const Weights& w, const Shape& input, const float* x, bool use_bias,
                 float* z) const override;
  void add_apply_transpose(Pass& pass, const Weights& w, const Shape& input, const float* s,
                           float* c) const override;
  std::string describe() const override;
};

/// max(x, 0), any shape.
class ReLU final : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kReLU; }
  Shape output_shape(const Shape& input) const override { return input; }
  void add_forward(Pass& pass, const Shape& input, const float* x, float* y) const override;
  void add_backward_data(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy,
                         float* dx) const override;
  std::string describe() const override { return ""; }
};

/// Softmax over dimension 1 of N×K, computed on the host in double and rounded once to float, so
/// probabilities below float32's normal range stay the nearest denormal instead of 0 (oneDNN's
/// float softmax flushes them); the backward pass recomputes p in double from the logits.
class Softmax final : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kSoftmax; }
  Shape output_shape(const Shape& input) const override;
  void add_forward(Pass& pass, const Shape& input, const float* x, float* y) const override;
  void add_backward_data(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy,
                         float* dx) const override;
  std::string describe() const override { return "dim 1"; }
};

/// N×C×H×W → N×(C·H·W); a reshape: forward and backward copy the values unchanged.
class Flatten final : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kFlatten; }
  Shape output_shape(const Shape& input) const override;
  void add_forward(Pass& pass, const Shape& input, const float* x, float* y) const override;
  void add_backward_data(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy,
                         float* dx) const override;
  std::string describe() const override { return ""; }
};

}  // namespace lab
