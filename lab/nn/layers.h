/// @file layers.h
/// @brief The layers a network is made of: Conv2d, Linear, ReLU, Softmax, Flatten, MaxPool2d,
/// BatchNorm, and the merge layers Add, Concat, Multiply that join several nodes of a graph.
///
/// Each layer states its shapes (output_shape) and implements forward and backward-data on whole
/// batches. Layers are immutable once built. The work is described, then run: a layer adds its
/// primitives to a Pass (an ordered list of (primitive, arguments)), and the pass submits them in
/// order and waits once. The primitives come from one process-wide cache, described once per
/// primitive kind and shapes and shared by every layer. Affine layers (Conv2d, Linear) also run
/// with *other* weights of the same shape (apply / apply_transpose), which is how the LRP rules
/// use their positive and negative weight copies without touching the network. MaxPool2d keeps
/// oneDNN's workspace (the argmax of each window) from a training forward for its backward.
/// Merge layers take several inputs (Merge below). Tested against finite differences in
/// test_layers.cpp and test_graph.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lab/core/tensor.h"
#include "lab/nn/linear_product.h"

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

enum class LayerKind { kConv2d, kLinear, kReLU, kSoftmax, kFlatten, kMaxPool2d, kBatchNorm, kAdd, kConcat, kMultiply };
/// "conv2d", "linear", "relu", "softmax", "flatten", "max-pool2d", "batch-norm", "add", "concat", "multiply".
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
  /// Merge layers (Add, Concat, Multiply) take several inputs and the Merge interface instead.
  virtual bool is_merge() const { return false; }

  /// Floats of state a training forward keeps for the backward (MaxPool2d's workspace); 0 for
  /// layers whose backward needs only x and y.
  virtual int64_t workspace_numel(const Shape&) const { return 0; }
  /// Like add_forward, also filling `workspace` (workspace_numel(input) floats).
  virtual void add_forward_keep(Pass& pass, const Shape& input, const float* x, float* y, float*) const {
    add_forward(pass, input, x, y);
  }
  /// Like add_backward_data, with the workspace add_forward_keep filled.
  virtual void add_backward_keep(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy,
                                 float* dx, const float*) const {
    add_backward_data(pass, input, x, y, dy, dx);
  }

  /// y = layer(x) for a whole batch (one pass).
  Tensor forward(const Tensor& x) const;
  /// dL/dx from dL/dy; `x` is the layer's input, `y` its output (as returned by forward). A layer
  /// with a workspace recomputes it from x.
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

/// A variant of an affine layer's forward (Conv2d, Linear) that forward-only passes may run
/// (Network::forward's chains, never a trace: the rules need the pre-activations a fused ReLU
/// does not write). inference gives the plain forward's bytes; relu's post-op writes −0 where
/// the ReLU layer writes +0 (a negative input), the same value (tests/lab/test_network.cpp).
struct ForwardVariant {
  bool relu = false;       ///< the ReLU after the layer as the primitive's eltwise post-op
  bool inference = false;  ///< prop_kind::forward_inference instead of forward_training
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

/// A bound of a layer's outputs: |y_o| ≤ gain · (the largest |x|) + offset for every output o, gain
/// the largest sum of an output's |weights|, offset the largest |bias|.
struct OutputBound {
  double gain = 0.0, offset = 0.0;
};

/// 2-D convolution, NCHW. weight: (out, in/groups, kh, kw); bias: (out) or empty.
class Conv2d final : public AffineLayer {
 public:
  Conv2d(Conv2dParams params, Tensor weight, Tensor bias);
  LayerKind kind() const override { return LayerKind::kConv2d; }
  const Conv2dParams& params() const { return params_; }
  /// A convolution of one group: its out × (in·kh·kw) weights' nonzero ones where they are sparse
  /// (lab::sparse_chains, at most one in kPointwiseFiniteDensity; else, and for grouped
  /// convolutions, empty), for the products of the pointwise tiles and of the patch runs' heads
  /// (pointwise_gemm takes them at that density only for inputs known finite under the ReLU, else
  /// at kPointwiseSparseDensity).
  const SparseChains& sparse() const { return sparse_; }
  /// The same for the transposed product (in×out, the backward's dx = weightsᵀ · dy): chain i over
  /// the weights of input channel i.
  const SparseChains& sparse_transposed() const { return sparse_transposed_; }
  /// Its weights' OutputBound (from construction), with which the tiled runs bound their steps'
  /// inputs (the sparse chains' `finite`, pointwise_gemm.h).
  const OutputBound& bound() const { return bound_; }
  Shape output_shape(const Shape& input) const override;
  void add_apply(Pass& pass, const Weights& w, const Shape& input, const float* x, bool use_bias,
                 float* z) const override;
  void add_apply_transpose(Pass& pass, const Weights& w, const Shape& input, const float* s,
                           float* c) const override;
  /// add_forward as variant `v`: y = layer(x), or ReLU(layer(x)) with v.relu.
  void add_forward_variant(Pass& pass, const Shape& input, const float* x, float* y, const ForwardVariant& v) const;
  std::string describe() const override;

 private:
  Conv2dParams params_;
  SparseChains sparse_, sparse_transposed_;
  OutputBound bound_;
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
  /// add_forward as variant `v`: y = layer(x), or ReLU(layer(x)) with v.relu.
  void add_forward_variant(Pass& pass, const Shape& input, const float* x, float* y, const ForwardVariant& v) const;
  std::string describe() const override;
  /// The weights as lab::linear_chain takes them.
  const LinearWeights& prepared() const { return prepared_; }

 private:
  // Adds y = x · Wᵀ (+ bias if not null), then the ReLU if relu, by lab::linear_chain.
  void add_chain(Pass& pass, const Shape& input, const float* x, const float* bias, bool relu, float* y) const;
  LinearWeights prepared_;  // the weights prepared for lab::linear_chain (linear_product.h)
};

/// The end of the run of Linear layers from layers[i] (i < end), each followed by a ReLU or not,
/// that add_linear_run computes as one step: i where fewer than two such layers start there or
/// where Linear layers do not run as lab::linear_chain (linear_chains()). A layer joins a run if
/// its weights take their sparse chains (LinearWeights::rows, sparse_weights()) or are at most
/// kLinearRunDenseWeights: a run reads a dense layer's weights once per strip of 16 rows, where
/// linear_chain on the whole batch reads them once per group of rows, so a larger dense layer
/// stays a step of its own. (single-color-modulo's dense first and last layers, 151 and 150
/// weights, in their own steps took its modulo unit from 0.47 to 0.91 µs per image at batch 32.)
inline constexpr int64_t kLinearRunDenseWeights = int64_t{1} << 16;
size_t linear_run_end(const std::vector<std::shared_ptr<const Layer>>& layers, size_t i, size_t end);

/// Adds the run layers[i, j) (linear_run_end) on x (N×in) to pass as lab::linear_run: the bytes of
/// each layer's forward in turn.
void add_linear_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x, float* y);

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

/// True for a layer that computes each pixel's values from that pixel's values alone, every pixel
/// alike: a ReLU, a BatchNorm, or a Conv2d of a 1×1 kernel, stride 1 and no padding (any groups).
bool is_per_pixel(const Layer& layer);

/// The per-pixel layers (is_per_pixel) that the tiled runs below compute: ReLU, and a per-pixel
/// Conv2d of one group (a product with an out×in matrix at each pixel); the runs but LRP's tiles
/// take some grouped ones too (is_run_pointwise).
bool is_pointwise(const Layer& layer);

/// is_pointwise, or a grouped per-pixel Conv2d of one output channel per group and at most 64
/// input channels per group (multi-color-sum's accumulator sums): the steps of the tiled runs of
/// the forward (add_pointwise_run, add_patch_run, add_tiled_sequence), the traces
/// (add_pointwise_sign_trace_run) and the backward (add_pointwise_sign_backward_run); LRP's tiles
/// keep is_pointwise. Such a product is per group and pixel one chain of fused multiply-adds from
/// +0 over the group's inputs, then + bias (lab::pointwise_gemm's one-row product, per group), and
/// its transposed product one rounded product per element (pointwise_gemm's, transposed, per
/// group): the bytes of oneDNN's gemm convolution and its backward-data, whose sgemm with one
/// output row per group is that chain (oneDNN's gemv) on any range of pixels
/// (tests/lab/test_network.cpp, 1 and 2 threads, any batch).
bool is_run_pointwise(const Layer& layer);

/// Adds the pointwise layers `run` (is_pointwise, in order, applied one after the other) on x
/// (shape `input`, N×C×H×W) to `pass`, writing their output y. The run goes tile by tile instead
/// of layer by layer: `tile` pixels of one image through every layer while they are in cache, so
/// only x and y travel to memory. A 1×1 convolution is one oneDNN sgemm on the tile (out×in
/// weights times in×tile pixels), then its bias is added; a ReLU is max(x, 0) on the tile. The
/// tiles are spread over the runtime's OpenMP threads, each sgemm on one thread. Two or more
/// consecutive sparse 1×1 steps with their ReLUs (a patch run's head on its column tile included)
/// run as one lab::SparseProgram (lab/nn/sparse_program.h) on the tiles of a multiple of 16 pixels
/// whose input bounds them: the same bytes, the rows read once never stored.
///
/// Same bytes as the layer-by-layer forward (add_forward of every layer): oneDNN's gemm
/// convolution of a 1×1 kernel on nchw is the same sgemm on a range of pixels (beta 0), with the
/// bias then added to each result, and an sgemm sums each result over the in-channels in the same
/// order whatever its pixel range; oneDNN's ReLU maps x to x > 0 ? x : +0 (NaN and −0 to +0), as
/// here. Tested byte for byte in test_network.cpp (networks, odd tile sizes, one and many threads).
void add_pointwise_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x,
                       float* y, int64_t tile);

/// add_pointwise_run keeping every layer's output, for a trace: outputs[k] (N×C×H×W, the whole
/// batch) receives run[k]'s output, written tile by tile; each layer reads its input tile while it
/// is still in cache. Same bytes as add_forward of every layer (same sgemm, bias and ReLU as
/// add_pointwise_run; a ReLU after a convolution reads the convolution's output tile).
void add_pointwise_trace_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x,
                             const std::vector<float*>& outputs, int64_t tile);

/// The backward-data of the pointwise layers `run` (as in add_pointwise_run) tile by tile: dy is
/// the signal at the run's output, dx receives it at the run's input; inputs[k] is run[k]'s input
/// (read by a ReLU only), so only dy, dx and the ReLUs' inputs travel to memory. A ReLU passes
/// dy · (x <= 0 ? 0 : 1); a convolution is one sgemm with the transposed weights (in×out times
/// out×tile, beta 0). Same bytes as add_backward_data of every layer: oneDNN's gemm convolution
/// computes the backward-data of a 1×1 kernel on nchw as that sgemm over a range of pixels, and its
/// ReLU's backward as that product. Tested byte for byte in test_network.cpp.
void add_pointwise_backward_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input,
                                const std::vector<const float*>& inputs, const float* dy, float* dx, int64_t tile);

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

/// Max-pooling over kh×kw windows of an N×C×H×W input (padding never wins: oneDNN pads with −∞).
/// The backward routes each window's gradient to its argmax recorded in oneDNN's workspace: to
/// the *first* maximum in the window's row-major order when several inputs tie (never split);
/// an input that is the argmax of overlapping windows receives the sum. The workspace comes from
/// the training forward (add_forward_keep, which Network::trace uses); add_forward runs oneDNN's
/// inference forward, which keeps none (the values are the same: a max is exact).
struct MaxPool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
  /// Throws lab::Error naming the field if a value is impossible (pad < kernel).
  void validate() const;
};

class MaxPool2d final : public Layer {
 public:
  explicit MaxPool2d(MaxPool2dParams params);
  LayerKind kind() const override { return LayerKind::kMaxPool2d; }
  const MaxPool2dParams& params() const { return params_; }
  Shape output_shape(const Shape& input) const override;
  void add_forward(Pass& pass, const Shape& input, const float* x, float* y) const override;
  /// Refuses (LAB_CHECK): the backward needs the workspace, see add_backward_keep.
  void add_backward_data(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy,
                         float* dx) const override;
  int64_t workspace_numel(const Shape& input) const override;
  void add_forward_keep(Pass& pass, const Shape& input, const float* x, float* y, float* workspace) const override;
  void add_backward_keep(Pass& pass, const Shape& input, const float* x, const float* y, const float* dy, float* dx,
                         const float* workspace) const override;
  std::string describe() const override;

 private:
  MaxPool2dParams params_;
};

/// Batch normalisation at inference (Ioffe & Szegedy 2015, eq. in Alg. 1 with the running
/// statistics): y = γ (x − μ)/√(σ² + eps) + β per channel (dimension 1) of an N×C×… input. It is
/// affine, y = a x + b with a = γ/√(σ² + eps), b = β − a μ (computed once in double and rounded
/// to float): weights() holds a (C) as the weight and b (C) as the bias, so the LRP rules and
/// the canonizer (canonize.h) treat it as any affine layer. Computed on the host.
class BatchNorm final : public AffineLayer {
 public:
  /// gamma, beta, mean, var: (C) each; var ≥ 0, eps > 0.
  BatchNorm(Tensor gamma, Tensor beta, Tensor mean, Tensor var, double eps = 1e-5);
  LayerKind kind() const override { return LayerKind::kBatchNorm; }
  int64_t channels() const { return gamma_.numel(); }
  const Tensor& gamma() const { return gamma_; }
  const Tensor& beta() const { return beta_; }
  const Tensor& mean() const { return mean_; }
  const Tensor& var() const { return var_; }
  double eps() const { return eps_; }
  Shape output_shape(const Shape& input) const override;
  void add_apply(Pass& pass, const Weights& w, const Shape& input, const float* x, bool use_bias,
                 float* z) const override;
  void add_apply_transpose(Pass& pass, const Weights& w, const Shape& input, const float* s,
                           float* c) const override;
  int64_t parameter_count() const override { return 2 * channels(); }
  std::string describe() const override;

 private:
  Tensor gamma_, beta_, mean_, var_;
  double eps_;
};

/// A layer of several inputs: a graph node that joins branches. The single-input interface of
/// Layer is refused (LAB_CHECK); Network calls these instead. Computed on the host, in input order.
class Merge : public Layer {
 public:
  bool is_merge() const final { return true; }
  /// Output shape for the inputs' shapes; throws lab::Error if they do not fit together.
  virtual Shape merged_shape(const std::vector<Shape>& inputs) const = 0;
  virtual void add_merge_forward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                                 float* y) const = 0;
  /// dL/dx_k from dL/dy for every input k (written, not accumulated).
  virtual void add_merge_backward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                                  const float* dy, const std::vector<float*>& dxs) const = 0;

  Tensor forward(const std::vector<Tensor>& xs) const;
  std::vector<Tensor> backward_data(const std::vector<Tensor>& xs, const Tensor& dy) const;

  Shape output_shape(const Shape& input) const final;
  void add_forward(Pass&, const Shape&, const float*, float*) const final;
  void add_backward_data(Pass&, const Shape&, const float*, const float*, const float*, float*) const final;
};

/// y = Σ_k x_k (a residual sum), two or more inputs of one shape, summed in input order.
class Add final : public Merge {
 public:
  LayerKind kind() const override { return LayerKind::kAdd; }
  Shape merged_shape(const std::vector<Shape>& inputs) const override;
  void add_merge_forward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                         float* y) const override;
  void add_merge_backward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                          const float* dy, const std::vector<float*>& dxs) const override;
  std::string describe() const override { return ""; }
};

/// Concatenation along dimension 1 (channels, or features of N×K), inputs in order.
class Concat final : public Merge {
 public:
  LayerKind kind() const override { return LayerKind::kConcat; }
  Shape merged_shape(const std::vector<Shape>& inputs) const override;
  void add_merge_forward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                         float* y) const override;
  void add_merge_backward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                          const float* dy, const std::vector<float*>& dxs) const override;
  std::string describe() const override { return "dim 1"; }
};

/// y = x₀ ⊙ x₁ (gating), exactly two inputs of one shape: input 0 is the signal, input 1 the gate
/// (the LRP rules give all relevance to the signal, Arras et al. 2017).
class Multiply final : public Merge {
 public:
  LayerKind kind() const override { return LayerKind::kMultiply; }
  Shape merged_shape(const std::vector<Shape>& inputs) const override;
  void add_merge_forward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                         float* y) const override;
  void add_merge_backward(Pass& pass, const std::vector<Shape>& inputs, const std::vector<const float*>& xs,
                          const float* dy, const std::vector<float*>& dxs) const override;
  std::string describe() const override { return "signal ⊙ gate"; }
};

}  // namespace lab
