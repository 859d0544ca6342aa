#include "lab/nn/layers.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"

namespace lab {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

tag plain_tag(size_t rank) {
  switch (rank) {
    case 1: return tag::a;
    case 2: return tag::ab;
    case 3: return tag::abc;
    case 4: return tag::abcd;
    case 5: return tag::abcde;
    default: LAB_CHECK(false, "unsupported rank {}", rank);
  }
  return tag::undef;
}

memory::desc plain_md(const Shape& shape) { return memory::desc(memory::dims(shape.begin(), shape.end()), dt::f32, plain_tag(shape.size())); }

// ---------------------------------------------------------------------------------------------
// The primitive cache shared by every layer. A primitive is described once per kind and numbers
// it depends on (shapes, strides, paddings) and holds no data, so every layer of the same
// geometry, in every network, runs the same primitive; the buffers come with each step.

enum class Op {
  kConvForward, kConvForwardNoBias, kConvBackwardData,
  kInnerForward, kInnerForwardNoBias, kInnerBackwardData,
  kReluForward, kReluBackward, kCopy
};

struct Key {
  Op op;
  std::vector<int64_t> dims;
  auto operator<=>(const Key&) const = default;
};

/// A primitive and the memory each of its arguments takes.
struct Described {
  dnnl::primitive primitive;
  std::vector<std::pair<int, memory::desc>> args;
};

template <class Describe>
const Described& described(const Key& key, Describe describe) {
  Runtime::get();  // constructed before the cache, so the engine outlives the primitives at exit
  static std::mutex mutex;
  static std::map<Key, Described> cache;  // map nodes are stable: references stay valid
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, describe()).first;
  return it->second;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pass: the ordered (primitive, arguments) steps of one piece of work, and host steps.

// Each primitive is submitted to the stream when it is added, so the host's work between two
// additions (allocating the next output) overlaps nothing it could disturb: it never touches a
// buffer of a submitted primitive. The runtime's stream is in order (oneDNN's default stream
// flags), so each primitive sees the results of the ones submitted before it without a wait in
// between. The host waits before it touches any such buffer: before a host step and in run().
// oneDNN's CPU engine with the OpenMP runtime even executes synchronously on this stream, but
// nothing here relies on that: a buffer is read, written or freed by the host only after a wait.
struct Pass::Steps {
  std::vector<std::unordered_map<int, memory>> in_flight;  // arguments of the submitted primitives
  bool pending = false;  // primitives submitted and not yet waited for

  /// Submits d with one buffer per argument of d (by DNNL_ARG_*); the buffers are wrapped, not copied.
  void add(const Described& d, std::initializer_list<std::pair<int, const float*>> buffers) {
    std::unordered_map<int, memory> args;
    for (const auto& [arg, md] : d.args) {
      const float* p = nullptr;
      for (const auto& [a, b] : buffers)
        if (a == arg) p = b;
      LAB_CHECK(p != nullptr, "no buffer for argument {} of a primitive", arg);
      args.emplace(arg, memory(md, Runtime::get().engine(), const_cast<float*>(p)));
    }
    pending = true;
    d.primitive.execute(Runtime::get().stream(), args);
    in_flight.push_back(std::move(args));
  }

  void wait() {
    if (pending) Runtime::get().stream().wait();
    pending = false;
    in_flight.clear();
  }
};

Pass::Pass() : steps_(std::make_unique<Steps>()) {}

Pass::~Pass() {
  // A pass left by an exception may have primitives in flight on buffers about to be freed.
  try {
    steps_->wait();
  } catch (...) {
  }
}

void Pass::add_host(std::function<void()> step) {
  steps_->wait();
  step();
}

void Pass::run() { steps_->wait(); }

std::string kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::kConv2d: return "conv2d";
    case LayerKind::kLinear: return "linear";
    case LayerKind::kReLU: return "relu";
    case LayerKind::kSoftmax: return "softmax";
    case LayerKind::kFlatten: return "flatten";
  }
  return "?";
}

Tensor Layer::forward(const Tensor& x) const {
  Tensor y(output_shape(x.shape()));
  Pass pass;
  add_forward(pass, x.shape(), x.data(), y.data());
  pass.run();
  return y;
}

Tensor Layer::backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const {
  const Shape out = output_shape(x.shape());
  LAB_CHECK(y.shape() == out && dy.shape() == out, "{} backward: output {} and signal {} for input {}",
            kind_name(kind()), to_string(y.shape()), to_string(dy.shape()), to_string(x.shape()));
  Tensor dx(x.shape());
  Pass pass;
  add_backward_data(pass, x.shape(), x.data(), y.data(), dy.data(), dx.data());
  pass.run();
  return dx;
}

Tensor AffineLayer::apply(const Weights& w, const Tensor& x, bool use_bias) const {
  Tensor z(output_shape(x.shape()));
  Pass pass;
  add_apply(pass, w, x.shape(), x.data(), use_bias, z.data());
  pass.run();
  return z;
}

Tensor AffineLayer::apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const {
  LAB_CHECK(s.shape() == output_shape(input_shape), "{} backward signal {} for input {}", kind_name(kind()),
            to_string(s.shape()), to_string(input_shape));
  Tensor c(input_shape);
  Pass pass;
  add_apply_transpose(pass, w, input_shape, s.data(), c.data());
  pass.run();
  return c;
}

// ---------------------------------------------------------------------------------------------
// Conv2d: src N×IC×H×W (nchw), weights OC×IC/G×KH×KW (oihw, or goihw when grouped), dst N×OC×OH×OW.

void Conv2dParams::validate() const {
  require(in_channels > 0, "conv2d in_channels", "positive", std::to_string(in_channels));
  require(out_channels > 0, "conv2d out_channels", "positive", std::to_string(out_channels));
  require(kernel_h > 0 && kernel_w > 0, "conv2d kernel", "positive", fmt::format("{}x{}", kernel_h, kernel_w));
  require(stride_h > 0 && stride_w > 0, "conv2d stride", "positive", fmt::format("{}x{}", stride_h, stride_w));
  require(pad_h >= 0 && pad_w >= 0, "conv2d padding", "non-negative", fmt::format("{}x{}", pad_h, pad_w));
  require(groups > 0 && in_channels % groups == 0 && out_channels % groups == 0, "conv2d groups",
          "a positive divisor of in and out channels", std::to_string(groups));
}

namespace {

// The convolution `op` (forward with or without bias, backward-data) for input shape `in`.
Described describe_conv(Op op, const Conv2dParams& p, const Shape& in, const Shape& out) {
  const memory::desc src = plain_md(in), dst = plain_md(out);
  const memory::desc weights =
      p.groups == 1
          ? memory::desc({p.out_channels, p.in_channels, p.kernel_h, p.kernel_w}, dt::f32, tag::oihw)
          : memory::desc({p.groups, p.out_channels / p.groups, p.in_channels / p.groups, p.kernel_h, p.kernel_w},
                         dt::f32, tag::goihw);
  const memory::desc bias({p.out_channels}, dt::f32, tag::a);
  const memory::dims strides{p.stride_h, p.stride_w};
  const memory::dims pad_l{p.pad_h, p.pad_w};
  // Right padding so that the last window lands exactly on the output size.
  const memory::dims pad_r{(out[2] - 1) * p.stride_h + p.kernel_h - in[2] - p.pad_h,
                           (out[3] - 1) * p.stride_w + p.kernel_w - in[3] - p.pad_w};
  auto& eng = Runtime::get().engine();
  using namespace dnnl;
  const auto forward = [&](bool with_bias) {
    return convolution_forward::primitive_desc(
        with_bias ? convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src,
                                              weights, bias, dst, strides, pad_l, pad_r)
                  : convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src,
                                              weights, dst, strides, pad_l, pad_r),
        eng);
  };
  switch (op) {
    case Op::kConvForward:
      return {convolution_forward(forward(true)),
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}}};
    case Op::kConvForwardNoBias:
      return {convolution_forward(forward(false)), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}}};
    default: {
      const convolution_backward_data::desc bd(algorithm::convolution_direct, src, weights, dst, strides, pad_l, pad_r);
      return {convolution_backward_data(convolution_backward_data::primitive_desc(bd, eng, forward(true))),
              {{DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, src}}};
    }
  }
}

}  // namespace

Conv2d::Conv2d(Conv2dParams params, Tensor weight, Tensor bias)
    : AffineLayer(Weights{std::move(weight), std::move(bias)}), params_(params) {
  params_.validate();
  const Shape expected{params_.out_channels, params_.in_channels / params_.groups, params_.kernel_h, params_.kernel_w};
  if (weights_.weight.shape() != expected)
    fail_parameter("conv2d weight shape {} does not match {} (out, in/groups, kh, kw)",
                   to_string(weights_.weight.shape()), to_string(expected));
  if (!weights_.bias.empty() && weights_.bias.shape() != Shape{params_.out_channels})
    fail_parameter("conv2d bias shape {} does not match [{}]", to_string(weights_.bias.shape()), params_.out_channels);
}

Shape Conv2d::output_shape(const Shape& in) const {
  if (in.size() != 4 || in[1] != params_.in_channels)
    fail("conv2d expects N×{}×H×W input, got {}", params_.in_channels, to_string(in));
  const int64_t oh = (in[2] + 2 * params_.pad_h - params_.kernel_h) / params_.stride_h + 1;
  const int64_t ow = (in[3] + 2 * params_.pad_w - params_.kernel_w) / params_.stride_w + 1;
  if (in[2] + 2 * params_.pad_h < params_.kernel_h || in[3] + 2 * params_.pad_w < params_.kernel_w)
    fail("conv2d kernel {}x{} larger than padded input {}", params_.kernel_h, params_.kernel_w, to_string(in));
  return {in[0], params_.out_channels, oh, ow};
}

namespace {

const Described& conv(Op op, const Conv2dParams& p, const Shape& in, const Shape& out) {
  const Key key{op, {in[0], in[1], in[2], in[3], p.out_channels, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w,
                     p.pad_h, p.pad_w, p.groups}};
  return described(key, [&] { return describe_conv(op, p, in, out); });
}

}  // namespace

void Conv2d::add_apply(Pass& pass, const Weights& w, const Shape& in, const float* x, bool use_bias, float* z) const {
  const bool bias = use_bias && !w.bias.empty();
  const Described& d = conv(bias ? Op::kConvForward : Op::kConvForwardNoBias, params_, in, output_shape(in));
  pass.steps().add(d, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w.weight.data()}, {DNNL_ARG_BIAS, w.bias.data()},
                       {DNNL_ARG_DST, z}});
}

void Conv2d::add_apply_transpose(Pass& pass, const Weights& w, const Shape& in, const float* s, float* c) const {
  const Described& d = conv(Op::kConvBackwardData, params_, in, output_shape(in));
  pass.steps().add(d, {{DNNL_ARG_DIFF_DST, s}, {DNNL_ARG_WEIGHTS, w.weight.data()}, {DNNL_ARG_DIFF_SRC, c}});
}

std::string Conv2d::describe() const {
  const auto& p = params_;
  return fmt::format("{}->{} k{}x{} s{}x{} p{}x{} g{}{}", p.in_channels, p.out_channels, p.kernel_h, p.kernel_w,
                     p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.groups, weights_.bias.empty() ? " nobias" : "");
}

// ---------------------------------------------------------------------------------------------
// Linear: src N×IN (nc), weights OUT×IN (oi), dst N×OUT.

Linear::Linear(Tensor weight, Tensor bias) : AffineLayer(Weights{std::move(weight), std::move(bias)}) {
  if (weights_.weight.rank() != 2 || weights_.weight.dim(0) < 1 || weights_.weight.dim(1) < 1)
    fail_parameter("linear weight must be (out, in), got {}", to_string(weights_.weight.shape()));
  if (!weights_.bias.empty() && weights_.bias.shape() != Shape{weights_.weight.dim(0)})
    fail_parameter("linear bias shape {} does not match [{}]", to_string(weights_.bias.shape()), weights_.weight.dim(0));
}

Shape Linear::output_shape(const Shape& in) const {
  if (in.size() != 2 || in[1] != in_features())
    fail("linear expects N×{} input, got {}", in_features(), to_string(in));
  return {in[0], out_features()};
}

namespace {

// The inner product `op` (forward with or without bias, backward-data) of N×in → N×out.
const Described& inner(Op op, int64_t n, int64_t in, int64_t out) {
  return described(Key{op, {n, in, out}}, [&]() -> Described {
    const memory::desc src({n, in}, dt::f32, tag::nc), dst({n, out}, dt::f32, tag::nc);
    const memory::desc weights({out, in}, dt::f32, tag::oi), bias({out}, dt::f32, tag::a);
    auto& eng = Runtime::get().engine();
    using namespace dnnl;
    const inner_product_forward::primitive_desc fpd(
        inner_product_forward::desc(prop_kind::forward_training, src, weights, bias, dst), eng);
    switch (op) {
      case Op::kInnerForward:
        return {inner_product_forward(fpd),
                {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}}};
      case Op::kInnerForwardNoBias:
        return {inner_product_forward(inner_product_forward::primitive_desc(
                    inner_product_forward::desc(prop_kind::forward_training, src, weights, dst), eng)),
                {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}}};
      default:
        return {inner_product_backward_data(inner_product_backward_data::primitive_desc(
                    inner_product_backward_data::desc(src, weights, dst), eng, fpd)),
                {{DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, src}}};
    }
  });
}

}  // namespace

void Linear::add_apply(Pass& pass, const Weights& w, const Shape& in, const float* x, bool use_bias, float* z) const {
  const bool bias = use_bias && !w.bias.empty();
  const Shape out = output_shape(in);
  const Described& d = inner(bias ? Op::kInnerForward : Op::kInnerForwardNoBias, in[0], in[1], out[1]);
  pass.steps().add(d, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w.weight.data()}, {DNNL_ARG_BIAS, w.bias.data()},
                       {DNNL_ARG_DST, z}});
}

void Linear::add_apply_transpose(Pass& pass, const Weights& w, const Shape& in, const float* s, float* c) const {
  const Shape out = output_shape(in);
  const Described& d = inner(Op::kInnerBackwardData, in[0], in[1], out[1]);
  pass.steps().add(d, {{DNNL_ARG_DIFF_DST, s}, {DNNL_ARG_WEIGHTS, w.weight.data()}, {DNNL_ARG_DIFF_SRC, c}});
}

std::string Linear::describe() const {
  return fmt::format("{}->{}{}", in_features(), out_features(), weights_.bias.empty() ? " nobias" : "");
}

// ---------------------------------------------------------------------------------------------
// ReLU: oneDNN eltwise on plain layouts; Flatten: a oneDNN copy (reorder), so that it runs in the
// stream with the primitives around it; Softmax: a host step in double (below).

namespace {

// The ReLU `op` (or a copy) on a plain tensor of shape `shape`, forward or backward.
const Described& activation(Op op, const Shape& shape) {
  return described(Key{op, shape}, [&]() -> Described {
    const memory::desc md = plain_md(shape);
    auto& eng = Runtime::get().engine();
    using namespace dnnl;
    switch (op) {
      case Op::kReluForward:
        return {eltwise_forward(eltwise_forward::primitive_desc(
                    eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu, md, 0.f, 0.f), eng)),
                {{DNNL_ARG_SRC, md}, {DNNL_ARG_DST, md}}};
      case Op::kReluBackward: {
        const eltwise_forward::primitive_desc fpd(
            eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu, md, 0.f, 0.f), eng);
        return {eltwise_backward(eltwise_backward::primitive_desc(
                    eltwise_backward::desc(algorithm::eltwise_relu, md, md, 0.f, 0.f), eng, fpd)),
                {{DNNL_ARG_SRC, md}, {DNNL_ARG_DIFF_DST, md}, {DNNL_ARG_DIFF_SRC, md}}};
      }
      default:
        return {reorder(reorder::primitive_desc(eng, md, eng, md)), {{DNNL_ARG_FROM, md}, {DNNL_ARG_TO, md}}};
    }
  });
}

}  // namespace

void ReLU::add_forward(Pass& pass, const Shape& in, const float* x, float* y) const {
  pass.steps().add(activation(Op::kReluForward, in), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

void ReLU::add_backward_data(Pass& pass, const Shape& in, const float* x, const float*, const float* dy,
                             float* dx) const {
  pass.steps().add(activation(Op::kReluBackward, in), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
}

Shape Softmax::output_shape(const Shape& in) const {
  if (in.size() != 2) fail("softmax expects N×K input, got {}", to_string(in));
  return in;
}

namespace {

// The probabilities of one row of k logits, p_j = exp(z_j − max z) / Σ_i exp(z_i − max z), in
// double: a probability below float32's normal range (e^{−97} ≈ 7.5e-43 next to a winner) is
// then rounded once to the nearest float, a denormal, where oneDNN's float softmax flushes it
// to 0.
void softmax_row(const float* z, int64_t k, double* p) {
  double top = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < k; ++j) top = std::max(top, static_cast<double>(z[j]));
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(static_cast<double>(z[j]) - top);
  for (int64_t j = 0; j < k; ++j) p[j] /= sum;
}

}  // namespace

void Softmax::add_forward(Pass& pass, const Shape& in, const float* x, float* y) const {
  const Shape shape = output_shape(in);
  pass.add_host([shape, x, y] {
    const int64_t k = shape[1];
    std::vector<double> p(static_cast<size_t>(k));
    for (int64_t n = 0; n < shape[0]; ++n) {
      softmax_row(x + n * k, k, p.data());
      for (int64_t j = 0; j < k; ++j) y[n * k + j] = static_cast<float>(p[static_cast<size_t>(j)]);
    }
  });
}

// dL/dz_j = p_j (dL/dp_j − Σ_i dL/dp_i p_i), with p recomputed in double from the logits x (the
// float output y has lost the digits of its denormal probabilities).
void Softmax::add_backward_data(Pass& pass, const Shape& in, const float* x, const float*, const float* dy,
                                float* dx) const {
  const Shape shape = output_shape(in);
  pass.add_host([shape, x, dy, dx] {
    const int64_t k = shape[1];
    std::vector<double> p(static_cast<size_t>(k));
    for (int64_t n = 0; n < shape[0]; ++n) {
      softmax_row(x + n * k, k, p.data());
      double dot = 0.0;
      for (int64_t j = 0; j < k; ++j) dot += static_cast<double>(dy[n * k + j]) * p[static_cast<size_t>(j)];
      for (int64_t j = 0; j < k; ++j)
        dx[n * k + j] = static_cast<float>(p[static_cast<size_t>(j)] * (static_cast<double>(dy[n * k + j]) - dot));
    }
  });
}

Shape Flatten::output_shape(const Shape& in) const {
  if (in.size() < 2) fail("flatten expects a batch of at least rank 2, got {}", to_string(in));
  return {in[0], numel(in) / in[0]};
}

void Flatten::add_forward(Pass& pass, const Shape& in, const float* x, float* y) const {
  pass.steps().add(activation(Op::kCopy, {numel(output_shape(in))}), {{DNNL_ARG_FROM, x}, {DNNL_ARG_TO, y}});
}

void Flatten::add_backward_data(Pass& pass, const Shape& in, const float*, const float*, const float* dy,
                                float* dx) const {
  pass.steps().add(activation(Op::kCopy, {numel(in)}), {{DNNL_ARG_FROM, dy}, {DNNL_ARG_TO, dx}});
}

}  // namespace lab
