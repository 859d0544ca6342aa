#include "lab/nn/layers.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"
#include "lab/core/simd.h"
#include "lab/core/storage.h"
#include "lab/nn/gradient_trace.h"
#include "lab/nn/linear_product.h"
#include "lab/nn/patch_run.h"
#include "lab/nn/patch_kernel.h"
#include "lab/nn/pointwise_gemm.h"
#include "lab/nn/sparse_program.h"
#include "lab/nn/tile_loop.h"

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
// Primitives may run on several threads at once (the perturbation engine's concurrent samples,
// lab/core/runtime.h): each is made with a user scratchpad, and a step gives it its thread's
// scratch buffer (oneDNN's own scratchpad would be one per creating thread, shared by every
// primitive made there, and is not safe to use from another thread).

/// Primitive attributes with the scratchpad given at execution (scratch_buffer below).
dnnl::primitive_attr scratch_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

/// The calling thread's scratch memory of at least `bytes` bytes (grown on demand, kept for the
/// thread's later primitives: the steps of a thread run one after the other on its stream).
void* scratch_buffer(size_t bytes) {
  thread_local std::vector<std::byte> buffer;
  if (buffer.size() < bytes) {
    Runtime::get().stream().wait();  // a submitted primitive may still use the old buffer
    buffer.assign(bytes, std::byte{0});
  }
  return buffer.data();
}

enum class Op {
  kConvForward, kConvForwardNoBias, kConvBackwardData,
  kInnerForward, kInnerForwardNoBias,
  kReluForward, kReluBackward, kCopy,
  kPoolForwardInference, kPoolForwardTraining, kPoolBackward
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
  if (it == cache.end()) {
    Described d = describe();
    const dnnl::primitive_desc_base pd(const_cast<dnnl_primitive_desc_t>(d.primitive.get_primitive_desc()), true);
    const memory::desc scratch = pd.scratchpad_desc();
    if (scratch.get_size() > 0) d.args.emplace_back(DNNL_ARG_SCRATCHPAD, scratch);
    it = cache.emplace(key, std::move(d)).first;
  }
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
      if (arg == DNNL_ARG_SCRATCHPAD) {
        args.emplace(arg, memory(md, Runtime::get().engine(), scratch_buffer(md.get_size())));
        continue;
      }
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
    case LayerKind::kMaxPool2d: return "max-pool2d";
    case LayerKind::kBatchNorm: return "batch-norm";
    case LayerKind::kAdd: return "add";
    case LayerKind::kConcat: return "concat";
    case LayerKind::kMultiply: return "multiply";
  }
  return "?";
}

Tensor Layer::forward(const Tensor& x) const {
  Tensor y = uninitialized(output_shape(x.shape()));
  Pass pass;
  add_forward(pass, x.shape(), x.data(), y.data());
  pass.run();
  return y;
}

Tensor Layer::backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const {
  const Shape out = output_shape(x.shape());
  LAB_CHECK(y.shape() == out && dy.shape() == out, "{} backward: output {} and signal {} for input {}",
            kind_name(kind()), to_string(y.shape()), to_string(dy.shape()), to_string(x.shape()));
  Tensor dx = uninitialized(x.shape());
  const int64_t ws_numel = workspace_numel(x.shape());
  Pass pass;
  if (ws_numel == 0) {
    add_backward_data(pass, x.shape(), x.data(), y.data(), dy.data(), dx.data());
    pass.run();
    return dx;
  }
  std::vector<float> ws(static_cast<size_t>(ws_numel));
  Tensor y_again = uninitialized(out);
  add_forward_keep(pass, x.shape(), x.data(), y_again.data(), ws.data());
  add_backward_keep(pass, x.shape(), x.data(), y.data(), dy.data(), dx.data(), ws.data());
  pass.run();
  return dx;
}

Tensor AffineLayer::apply(const Weights& w, const Tensor& x, bool use_bias) const {
  Tensor z = uninitialized(output_shape(x.shape()));
  Pass pass;
  add_apply(pass, w, x.shape(), x.data(), use_bias, z.data());
  pass.run();
  return z;
}

Tensor AffineLayer::apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const {
  LAB_CHECK(s.shape() == output_shape(input_shape), "{} backward signal {} for input {}", kind_name(kind()),
            to_string(s.shape()), to_string(input_shape));
  Tensor c = uninitialized(input_shape);
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

// The eltwise ReLU post-op of a forward variant (none without v.relu).
dnnl::primitive_attr variant_attr(const ForwardVariant& v) {
  dnnl::primitive_attr attr = scratch_attr();
  if (v.relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return attr;
}

int64_t variant_code(const ForwardVariant& v) { return (v.relu ? 1 : 0) + (v.inference ? 2 : 0); }

// The convolution `op` (forward with or without bias, backward-data) for input shape `in`; a
// forward runs as variant `v` (the backward-data's hint is always the plain training forward).
Described describe_conv(Op op, const Conv2dParams& p, const Shape& in, const Shape& out, const ForwardVariant& v) {
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
  const auto forward = [&](bool with_bias, const ForwardVariant& fv) {
    const prop_kind kind = fv.inference ? prop_kind::forward_inference : prop_kind::forward_training;
    return convolution_forward::primitive_desc(
        with_bias ? convolution_forward::desc(kind, algorithm::convolution_direct, src, weights, bias, dst, strides,
                                              pad_l, pad_r)
                  : convolution_forward::desc(kind, algorithm::convolution_direct, src, weights, dst, strides, pad_l,
                                              pad_r),
        variant_attr(fv), eng);
  };
  switch (op) {
    case Op::kConvForward:
      return {convolution_forward(forward(true, v)),
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}}};
    case Op::kConvForwardNoBias:
      return {convolution_forward(forward(false, v)),
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}}};
    default: {
      const convolution_backward_data::desc bd(algorithm::convolution_direct, src, weights, dst, strides, pad_l, pad_r);
      return {convolution_backward_data(convolution_backward_data::primitive_desc(bd, scratch_attr(), eng, forward(true, {}))),
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
  const int64_t rows = params_.in_channels * params_.kernel_h * params_.kernel_w;  // a patch's column rows
  const int64_t per_output = weights_.weight.numel() / params_.out_channels;
  for (int64_t o = 0; o < params_.out_channels; ++o) {
    double sum = 0.0;
    for (int64_t j = 0; j < per_output; ++j) sum += std::fabs(static_cast<double>(weights_.weight[o * per_output + j]));
    bound_.gain = std::max(bound_.gain, sum);
    if (!weights_.bias.empty())
      bound_.offset = std::max(bound_.offset, std::fabs(static_cast<double>(weights_.bias[o])));
  }
  if (params_.groups == 1)
    sparse_ = sparse_chains(params_.out_channels, rows, weights_.weight.data(), rows, 1, kPointwiseFiniteDensity,
                            weights_.bias.empty() ? nullptr : weights_.bias.data());
  if (params_.kernel_h == 1 && params_.kernel_w == 1 && params_.groups == 1) {
    sparse_transposed_ = sparse_chains(params_.in_channels, params_.out_channels, weights_.weight.data(), 1,
                                       params_.in_channels, kPointwiseSparseDensity);
  }
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

const Described& conv(Op op, const Conv2dParams& p, const Shape& in, const Shape& out, const ForwardVariant& v = {}) {
  const Key key{op, {in[0], in[1], in[2], in[3], p.out_channels, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w,
                     p.pad_h, p.pad_w, p.groups, variant_code(v)}};
  return described(key, [&] { return describe_conv(op, p, in, out, v); });
}

}  // namespace

// A patch convolution (patch_run.h) runs as add_patch_conv in every pass: the forward, the trace,
// the rules' products z = W'x and the incremental engine's crops; its transposed products (the
// backward-data, the rules' c = W'ᵀs) as add_patch_transpose (with lab::set_onednn_forward(true),
// a benchmark's comparison, both as oneDNN's gemm convolution, as before).
void Conv2d::add_apply(Pass& pass, const Weights& w, const Shape& in, const float* x, bool use_bias, float* z) const {
  if (!onednn_forward() && is_forward_patch_conv(*this, in))
    return add_patch_conv(pass, *this, w, in, x, use_bias, false, z);
  const bool bias = use_bias && !w.bias.empty();
  const Described& d = conv(bias ? Op::kConvForward : Op::kConvForwardNoBias, params_, in, output_shape(in));
  pass.steps().add(d, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w.weight.data()}, {DNNL_ARG_BIAS, w.bias.data()},
                       {DNNL_ARG_DST, z}});
}

void Conv2d::add_forward_variant(Pass& pass, const Shape& in, const float* x, float* y, const ForwardVariant& v) const {
  // A patch convolution: its one way (a fused ReLU writes +0, as the ReLU layer).
  if (!onednn_forward() && is_forward_patch_conv(*this, in))
    return add_patch_conv(pass, *this, weights_, in, x, true, v.relu, y);
  const bool bias = !weights_.bias.empty();
  const Described& d = conv(bias ? Op::kConvForward : Op::kConvForwardNoBias, params_, in, output_shape(in), v);
  pass.steps().add(d, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, weights_.weight.data()},
                       {DNNL_ARG_BIAS, weights_.bias.data()}, {DNNL_ARG_DST, y}});
}

void Conv2d::add_apply_transpose(Pass& pass, const Weights& w, const Shape& in, const float* s, float* c) const {
  if (!onednn_forward() && is_patch_conv(*this, in)) return add_patch_transpose(pass, *this, w, in, s, c);
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
  prepared_ = prepare_linear_weights(in_features(), out_features(), weights_.weight.data());
}

Shape Linear::output_shape(const Shape& in) const {
  if (in.size() != 2 || in[1] != in_features())
    fail("linear expects N×{} input, got {}", in_features(), to_string(in));
  return {in[0], out_features()};
}

namespace {

// The inner product forward `op` (with or without bias) of N×in → N×out; the transposed map is
// lab::linear_rows_transpose (below).
const Described& inner(Op op, int64_t n, int64_t in, int64_t out, const ForwardVariant& v = {}) {
  return described(Key{op, {n, in, out, variant_code(v)}}, [&]() -> Described {
    const memory::desc src({n, in}, dt::f32, tag::nc), dst({n, out}, dt::f32, tag::nc);
    const memory::desc weights({out, in}, dt::f32, tag::oi), bias({out}, dt::f32, tag::a);
    auto& eng = Runtime::get().engine();
    using namespace dnnl;
    const prop_kind kind = v.inference ? prop_kind::forward_inference : prop_kind::forward_training;
    if (op == Op::kInnerForward)
      return {inner_product_forward(inner_product_forward::primitive_desc(
                  inner_product_forward::desc(kind, src, weights, bias, dst), variant_attr(v), eng)),
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}}};
    return {inner_product_forward(inner_product_forward::primitive_desc(
                inner_product_forward::desc(kind, src, weights, dst), variant_attr(v), eng)),
            {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}}};
  });
}

}  // namespace

// Every product of the layer is one chain of fused multiply-adds per element (linear_product.h):
// the forward with its own weights linear_chain on the weights it packed once, a product with
// other weights (the rules' W⁺x and W⁻x) linear_rows, the transposed map (every backward through
// the layer) linear_rows_transpose; so each image's values are one way whatever the batch and the
// threads. With lab::set_linear_chains(false) the forward is oneDNN's inner product, the path
// before (bench_runtime's "tiles-ip").
void Linear::add_apply(Pass& pass, const Weights& w, const Shape& in, const float* x, bool use_bias, float* z) const {
  const bool bias = use_bias && !w.bias.empty();
  const Shape out = output_shape(in);
  const float* b = bias ? w.bias.data() : nullptr;
  if (&w != &weights_) {
    const float* wd = w.weight.data();
    pass.add_host([=] { linear_rows(in[0], in[1], out[1], x, wd, b, z); });
    return;
  }
  if (linear_chains()) return add_chain(pass, in, x, b, false, z);
  const Described& d = inner(bias ? Op::kInnerForward : Op::kInnerForwardNoBias, in[0], in[1], out[1]);
  pass.steps().add(d, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w.weight.data()}, {DNNL_ARG_BIAS, w.bias.data()},
                       {DNNL_ARG_DST, z}});
}

void Linear::add_forward_variant(Pass& pass, const Shape& in, const float* x, float* y, const ForwardVariant& v) const {
  const bool bias = !weights_.bias.empty();
  const Shape out = output_shape(in);
  // The fused ReLU `v > 0 ? v : +0`, as the ReLU layer writes it.
  if (linear_chains()) return add_chain(pass, in, x, bias ? weights_.bias.data() : nullptr, v.relu, y);
  const Described& d = inner(bias ? Op::kInnerForward : Op::kInnerForwardNoBias, in[0], in[1], out[1], v);
  pass.steps().add(d, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, weights_.weight.data()},
                       {DNNL_ARG_BIAS, weights_.bias.data()}, {DNNL_ARG_DST, y}});
}

void Linear::add_chain(Pass& pass, const Shape& in, const float* x, const float* bias, bool relu, float* y) const {
  const int64_t n = in[0], features = in[1], out = out_features();
  const LinearWeights* prepared = &prepared_;
  pass.add_host([=] { linear_chain(n, features, out, x, *prepared, bias, relu, y); });
}

size_t linear_run_end(const std::vector<std::shared_ptr<const Layer>>& layers, size_t i, size_t end) {
  if (!linear_chains()) return i;
  const auto joins = [&](size_t k) {
    if (layers[k]->kind() != LayerKind::kLinear) return false;
    const auto& linear = static_cast<const Linear&>(*layers[k]);
    return (sparse_weights() && !linear.prepared().rows.empty()) ||
           linear.in_features() * linear.out_features() <= kLinearRunDenseWeights;
  };
  size_t j = i, linears = 0;
  while (j < end && joins(j)) {
    ++linears;
    ++j;
    if (j < end && layers[j]->kind() == LayerKind::kReLU) ++j;
  }
  return linears >= 2 ? j : i;
}

void add_linear_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x, float* y) {
  std::vector<LinearRunStep> steps;
  for (const Layer* layer : run) {
    if (layer->kind() == LayerKind::kReLU) {
      steps.back().relu = true;
      continue;
    }
    const auto& linear = static_cast<const Linear&>(*layer);
    const Weights& w = linear.weights();
    steps.push_back(LinearRunStep{linear.in_features(), linear.out_features(), &linear.prepared(),
                                  w.bias.empty() ? nullptr : w.bias.data(), false});
  }
  const int64_t n = input[0];
  pass.add_host([=, steps = std::move(steps)] { linear_run(n, steps, x, y); });
}

void Linear::add_apply_transpose(Pass& pass, const Weights& w, const Shape& in, const float* s, float* c) const {
  const Shape out = output_shape(in);
  const float* wd = w.weight.data();
  const LinearWeights* prepared = &w == &weights_ ? &prepared_ : nullptr;
  pass.add_host([=] { linear_rows_transpose(in[0], in[1], out[1], s, wd, c, prepared); });
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
                    eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu, md, 0.f, 0.f),
                    scratch_attr(), eng)),
                {{DNNL_ARG_SRC, md}, {DNNL_ARG_DST, md}}};
      case Op::kReluBackward: {
        const eltwise_forward::primitive_desc fpd(
            eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu, md, 0.f, 0.f), eng);
        return {eltwise_backward(eltwise_backward::primitive_desc(
                    eltwise_backward::desc(algorithm::eltwise_relu, md, md, 0.f, 0.f), scratch_attr(), eng, fpd)),
                {{DNNL_ARG_SRC, md}, {DNNL_ARG_DIFF_DST, md}, {DNNL_ARG_DIFF_SRC, md}}};
      }
      default:
        return {reorder(reorder::primitive_desc(eng, md, eng, md, scratch_attr())),
                {{DNNL_ARG_FROM, md}, {DNNL_ARG_TO, md}}};
    }
  });
}

}  // namespace

namespace {

// A ReLU or a flatten copy of at most this many floats runs as a host step on the calling thread:
// its own OpenMP region (oneDNN's eltwise or reorder) costs more than the work (the ReLUs between
// the Linear layers, single-color-modulo's head on a batch). The same bytes: oneDNN's ReLU writes
// x > 0 ? x : +0 (−0 and NaN to +0) and its backward dy · (x <= 0 ? 0 : 1) (tests/lab/test_layers.cpp).
constexpr int64_t kHostBelow = int64_t{1} << 16;

LAB_VECTOR_CLONES void relu_row(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = dy · (x <= 0 ? 0 : 1): oneDNN's ReLU backward, which passes the signal where x is NaN.
LAB_VECTOR_CLONES void relu_backward_row(const float* dy, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (x[i] <= 0.0f ? 0.0f : 1.0f);
}

// row = from · (x <= 0 ? 0 : 1): the tiled runs' gradient rule of a ReLU, relu_backward_row's
// (the signal passes where x is NaN).
LAB_VECTOR_CLONES void times_positive(const float* from, const float* x, float* row, int64_t width) {
  for (int64_t i = 0; i < width; ++i) row[i] = from[i] * (x[i] <= 0.0f ? 0.0f : 1.0f);
}

}  // namespace

void ReLU::add_forward(Pass& pass, const Shape& in, const float* x, float* y) const {
  if (const int64_t n = numel(in); n <= kHostBelow && !onednn_forward()) {
    pass.add_host([=] { relu_row(x, y, n); });
    return;
  }
  pass.steps().add(activation(Op::kReluForward, in), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

void ReLU::add_backward_data(Pass& pass, const Shape& in, const float* x, const float*, const float* dy,
                             float* dx) const {
  if (const int64_t n = numel(in); n <= kHostBelow && !onednn_forward()) {
    pass.add_host([=] { relu_backward_row(dy, x, dx, n); });
    return;
  }
  pass.steps().add(activation(Op::kReluBackward, in), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
}

bool is_per_pixel(const Layer& layer) {
  switch (layer.kind()) {
    case LayerKind::kReLU:
    case LayerKind::kBatchNorm:
      return true;
    case LayerKind::kConv2d: {
      const Conv2dParams& p = static_cast<const Conv2d&>(layer).params();
      return p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
    }
    default:
      return false;
  }
}

bool is_pointwise(const Layer& layer) {
  if (!is_per_pixel(layer)) return false;
  return layer.kind() == LayerKind::kReLU ||
         (layer.kind() == LayerKind::kConv2d && static_cast<const Conv2d&>(layer).params().groups == 1);
}

bool is_run_pointwise(const Layer& layer) {
  if (is_pointwise(layer)) return true;
  if (!is_per_pixel(layer) || layer.kind() != LayerKind::kConv2d) return false;
  const Conv2dParams& p = static_cast<const Conv2d&>(layer).params();
  return p.out_channels == p.groups && p.in_channels / p.groups <= 64;
}

namespace {

// The largest magnitude of a product's output (its OutputBound b) from its input's (`largest`; +∞:
// unknown or not finite), +∞ where it may exceed the largest float: 2 · (gain · largest + offset),
// the factor 2 for the rounding (a chain of k ≤ 64 rounded steps exceeds the exact sum's bound by
// a factor under 1 + 2⁻¹⁷). A ReLU leaves the bound as it is. A tiled run bounds its steps' inputs
// so from its input's largest magnitude (largest_magnitude): a sparse step with the ReLU whose
// input is finite then takes pointwise_gemm's chains unchecked (`finite`).
double next_bound(const OutputBound& b, double largest) {
  const double next = 2.0 * (b.gain * largest + b.offset);
  return next <= std::numeric_limits<float>::max() ? next : std::numeric_limits<double>::infinity();
}

// Whether `largest` (next_bound) bounds finite values.
bool finite_bound(double largest) { return largest <= std::numeric_limits<float>::max(); }

// One layer of a pointwise run: a convolution (nullptr: a ReLU) from `in` to `out` channels.
struct PointwiseStep {
  const Conv2d* conv = nullptr;
  int64_t in = 0, out = 0;
};

// The steps of a pointwise run on `input` (one per layer) and the widest of their channels.
std::vector<PointwiseStep> pointwise_steps(const std::vector<const Layer*>& run, const Shape& input,
                                           int64_t& widest) {
  LAB_CHECK(!run.empty() && input.size() == 4, "pointwise run of {} layers on {}", run.size(), to_string(input));
  std::vector<PointwiseStep> steps;
  int64_t channels = input[1];
  widest = channels;
  for (const Layer* layer : run) {
    LAB_CHECK(is_run_pointwise(*layer), "{} in a pointwise run", kind_name(layer->kind()));
    if (layer->kind() == LayerKind::kReLU) {
      steps.push_back(PointwiseStep{nullptr, channels, channels});
      continue;
    }
    const auto* conv = static_cast<const Conv2d*>(layer);
    LAB_CHECK(conv->params().in_channels == channels, "pointwise run: {} channels into {}", channels,
              conv->describe());
    steps.push_back(PointwiseStep{conv, channels, conv->params().out_channels});
    channels = conv->params().out_channels;
    widest = std::max(widest, channels);
  }
  return steps;
}

// The ReLU rows of the gradient's traces (lab/nn/gradient_trace.h). relu_signs: row[i] = from[i] >
// 0 ? from[i] : 0 and, if bits, bit i % 8 of bits[i / 8] = !(from[i] <= 0) (from[i] > 0 or NaN:
// where oneDNN's ReLU backward passes the signal; the bits past `width` in its last byte 0);
// times_signs: row[i] = from[i] · (bit i ? 1 : 0), with Guided first
// from[i] ↦ std::max(from[i], 0.0f) (the guided rule's clip; −0 and NaN stay, as
// _mm256_max_ps(0, v) keeps its second operand). With AVX2 eight values at a time (the
// comparison's lane j is bit j, the same product), the same bytes as the scalar loops, which do
// the tails (both in tests/lab/test_network.cpp's byte comparisons, −0 and NaN included).
// relu_signs_scalar does [i, width), i a multiple of 8, a byte of bits per 8 values.
void relu_signs_scalar(const float* from, float* row, uint8_t* bits, int64_t i, int64_t width) {
  for (; i < width; i += 8) {
    unsigned byte = 0;
    for (int64_t j = i; j < std::min<int64_t>(i + 8, width); ++j) {
      row[j] = from[j] > 0.0f ? from[j] : 0.0f;
      byte |= (from[j] <= 0.0f ? 0u : 1u) << (j - i);
    }
    if (bits) bits[i / 8] = static_cast<uint8_t>(byte);
  }
}

template <bool Guided>
void times_signs_scalar(const float* from, const uint8_t* bits, float* row, int64_t i, int64_t width) {
  for (; i < width; ++i)
    row[i] = (Guided ? std::max(from[i], 0.0f) : from[i]) * (((bits[i >> 3] >> (i & 7)) & 1u) != 0 ? 1.0f : 0.0f);
}

__attribute__((target("avx2"))) void relu_signs_avx2(const float* from, float* row, uint8_t* bits, int64_t width) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= width; i += 8) {
    const __m256 v = _mm256_loadu_ps(from + i);
    _mm256_storeu_ps(row + i, _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
    if (bits) bits[i / 8] = static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NLE_UQ)));
  }
  relu_signs_scalar(from, row, bits, i, width);
}

template <bool Guided>
__attribute__((target("avx2"))) void times_signs_avx2(const float* from, const uint8_t* bits, float* row,
                                                       int64_t width) {
  const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= width; i += 8) {
    const __m256i set = _mm256_and_si256(_mm256_set1_epi32(bits[i / 8]), lanes);
    const __m256 factor = _mm256_blendv_ps(zero, one, _mm256_castsi256_ps(_mm256_cmpeq_epi32(set, lanes)));
    __m256 v = _mm256_loadu_ps(from + i);
    if constexpr (Guided) v = _mm256_max_ps(zero, v);  // zero > v ? zero : v, as std::max(v, 0.0f)
    _mm256_storeu_ps(row + i, _mm256_mul_ps(v, factor));
  }
  times_signs_scalar<Guided>(from, bits, row, i, width);
}

bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

// The signs of a tile's channels lie a row of the whole batch apart (sign_row_bytes), each
// channel's few cache lines of them in another place: the loops over channels ask for the lines
// of the channel kSignsAhead further on (`write`: to be written) while they work on this one.
constexpr int64_t kSignsAhead = 4;

void prefetch_signs(const uint8_t* bits, int64_t width, bool write) {
  const int64_t bytes = (width + 7) / 8;
  for (int64_t b = 0; b < bytes; b += 64) {
    if (write) __builtin_prefetch(bits + b, 1);
    else __builtin_prefetch(bits + b, 0);
  }
  if (write) __builtin_prefetch(bits + bytes - 1, 1);
  else __builtin_prefetch(bits + bytes - 1, 0);
}

void relu_signs(const float* from, float* row, uint8_t* bits, int64_t width) {
  if (has_avx2()) return relu_signs_avx2(from, row, bits, width);
  relu_signs_scalar(from, row, bits, 0, width);
}

// The signs alone of a ReLU's output row, v > 0, on [i, width), i a multiple of 8: relu_signs'
// bits of its input where that input was not NaN (the fused steps of add_pointwise_sign_trace_run).
void positive_signs_scalar(const float* row, uint8_t* bits, int64_t i, int64_t width) {
  for (; i < width; i += 8) {
    unsigned byte = 0;
    for (int64_t j = i; j < std::min<int64_t>(i + 8, width); ++j) byte |= (row[j] > 0.0f ? 1u : 0u) << (j - i);
    bits[i / 8] = static_cast<uint8_t>(byte);
  }
}

__attribute__((target("avx2"))) void positive_signs_avx2(const float* row, uint8_t* bits, int64_t width) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= width; i += 8)
    bits[i / 8] = static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + i), zero, _CMP_GT_OQ)));
  positive_signs_scalar(row, bits, i, width);
}

void positive_signs(const float* row, uint8_t* bits, int64_t width) {
  if (has_avx2()) return positive_signs_avx2(row, bits, width);
  positive_signs_scalar(row, bits, 0, width);
}

template <bool Guided>
void times_signs(const float* from, const uint8_t* bits, float* row, int64_t width) {
  if (has_avx2()) return times_signs_avx2<Guided>(from, bits, row, width);
  times_signs_scalar<Guided>(from, bits, row, 0, width);
}

// The other rows of a ReLU's backward by its rule (gradient_trace.h's ReluBackward): from the
// input's values, dy · (x <= 0 ? 0 : 1) (times_positive, above), after the guided clip in
// guided_times_positive; the deconv rule's clip.
LAB_VECTOR_CLONES void guided_times_positive(const float* from, const float* x, float* row, int64_t width) {
  for (int64_t i = 0; i < width; ++i) row[i] = std::max(from[i], 0.0f) * (x[i] <= 0.0f ? 0.0f : 1.0f);
}

LAB_VECTOR_CLONES void clip_positive(const float* from, float* row, int64_t width) {
  for (int64_t i = 0; i < width; ++i) row[i] = std::max(from[i], 0.0f);
}

// The product of a convolution's out × in/groups weights w on `width` columns (a 1×1 one's
// channels, a patch convolution's column rows): y (out rows) = the product on x (in rows), + bias,
// then the ReLU if relu; or (trans) y (in rows) = the transposed product on x (out rows), the
// backward-data. One pointwise_gemm, with the sparse chains `sparse` (and `finite`) where there is
// one group; with several (is_run_pointwise, lab/nn/patch_run.h's grouped patch convolutions) one
// per group on that group's rows of x, as oneDNN's gemm convolution runs the groups.
bool conv_product(bool trans, int64_t groups, int64_t out, int64_t width, int64_t in, const float* w, const float* x,
                  int64_t ldx, float* y, int64_t ldy, const float* bias, bool relu,
                  const SparseChains* sparse = nullptr, bool finite = false) {
  const int64_t gi = in / groups, go = out / groups, m = trans ? gi : go, k = trans ? go : gi;
  bool ok = true;
  for (int64_t g = 0; g < groups; ++g)
    ok = pointwise_gemm(trans, m, width, k, w + g * go * gi, gi, x + g * k * ldx, ldx, y + g * m * ldy, ldy,
                        bias != nullptr ? bias + g * m : nullptr, relu, groups == 1 ? sparse : nullptr, finite) &&
         ok;
  return ok;
}

// y (out×width, row stride ldy) = the convolution's weights (out×in) times x (in×width, row
// stride ldx), plus the bias, then the ReLU if relu: the product, bias and ReLU of
// add_pointwise_run (lab/nn/pointwise_gemm.h: the bytes of dnnl_sgemm and separate loops).
bool conv_tile(const Conv2d& conv, int64_t in, int64_t out, int64_t width, const float* x, int64_t ldx, float* y,
               int64_t ldy, bool relu, bool finite) {
  const Weights& w = conv.weights();
  return conv_product(false, conv.params().groups, out, width, in, w.weight.data(), x, ldx, y, ldy,
                      w.bias.empty() ? nullptr : w.bias.data(), relu, &conv.sparse(), finite);
}

}  // namespace

namespace {

// A step of a tiled forward run: a convolution's product with out×in weights (with its bias and
// the ReLU right after it, if any) or a ReLU on its own (weight null). A grouped convolution
// (is_run_pointwise) has `groups` products of out/groups × in/groups weights, each on its
// group's input channels.
struct TileStep {
  const float* weight = nullptr;
  const float* bias = nullptr;
  bool relu = false;
  bool chain = false;       // the product by chain_gemm (a deep patch convolution), else pointwise_gemm
  int64_t in = 0, out = 0;  // channels (a patch convolution: in = its column rows, in·kh·kw)
  const SparseChains* sparse = nullptr;  // the weights' nonzero ones (Conv2d::sparse), or null
  OutputBound bound;  // a convolution's (Conv2d::bound)
  int64_t groups = 1;
};

// Appends the steps of the pointwise layers run[first..] on `channels` input channels to `steps`
// (a ReLU right after a convolution joins its step); widest: the most channels of any step.
void append_tile_steps(const std::vector<const Layer*>& run, size_t first, int64_t channels,
                       std::vector<TileStep>& steps, int64_t& widest) {
  for (size_t k = first; k < run.size(); ++k) {
    const Layer* layer = run[k];
    LAB_CHECK(is_run_pointwise(*layer), "{} in a pointwise run", kind_name(layer->kind()));
    if (layer->kind() == LayerKind::kReLU) {
      if (!steps.empty() && steps.back().weight != nullptr && !steps.back().relu) steps.back().relu = true;
      else steps.push_back(TileStep{nullptr, nullptr, true, false, channels, channels});
      continue;
    }
    const auto* conv = static_cast<const Conv2d*>(layer);
    LAB_CHECK(conv->params().in_channels == channels, "pointwise run: {} channels into {}", channels,
              conv->describe());
    const Weights& w = conv->weights();
    steps.push_back(TileStep{w.weight.data(), w.bias.empty() ? nullptr : w.bias.data(), false, false, channels,
                             conv->params().out_channels, &conv->sparse(), conv->bound(), conv->params().groups});
    channels = conv->params().out_channels;
    widest = std::max(widest, channels);
  }
}

// The largest magnitude's bits (the sign cleared, so ordered as the magnitudes; above 0x7f7fffff:
// ∞ or NaN) of the values passing through a copy, as lab::largest_magnitude measures them.
struct Magnitudes {
  uint32_t top = 0;
  void add(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    top = std::max(top, bits & 0x7fffffffu);
  }
  // The largest magnitude, +∞ if a value was not finite.
  float largest() const {
    if (top > 0x7f7fffffu) return std::numeric_limits<float>::infinity();
    float v;
    std::memcpy(&v, &top, sizeof v);
    return v;
  }
};

// d0[t] = src[2t], d1[t] = src[2t + 1] for t < len: the two columns of a 2-wide window row (a
// copy: every bit kept). With AVX2 eight of each per step, the rest one at a time. With m, the
// values also go into m (a patch run's bound, without a second pass over its column tile).
__attribute__((target("avx2"))) void deinterleave_avx2(const float* src, float* d0, float* d1, int64_t len,
                                                       Magnitudes* m) {
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  __m256i high = _mm256_setzero_si256();
  int64_t t = 0;
  for (; t + 8 <= len; t += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * t), b = _mm256_loadu_ps(src + 2 * t + 8);
    if (m != nullptr) {
      high = _mm256_max_epi32(high, _mm256_and_si256(_mm256_castps_si256(a), magnitude));
      high = _mm256_max_epi32(high, _mm256_and_si256(_mm256_castps_si256(b), magnitude));
    }
    // Within each 128-bit lane: a0 a2 b0 b2 | a4 a6 b4 b6; then the lanes' 64-bit halves in order.
    const __m256d even = _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88));
    const __m256d odd = _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD));
    _mm256_storeu_ps(d0 + t, _mm256_castpd_ps(_mm256_permute4x64_pd(even, 0xD8)));
    _mm256_storeu_ps(d1 + t, _mm256_castpd_ps(_mm256_permute4x64_pd(odd, 0xD8)));
  }
  for (; t < len; ++t) {
    d0[t] = src[2 * t];
    d1[t] = src[2 * t + 1];
    if (m != nullptr) m->add(d0[t]), m->add(d1[t]);
  }
  if (m == nullptr) return;
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), high);
  for (const uint32_t bits : lanes) m->top = std::max(m->top, bits);
}

void deinterleave(const float* src, float* d0, float* d1, int64_t len, Magnitudes* m = nullptr) {
  if (has_avx2()) return deinterleave_avx2(src, d0, d1, len, m);
  for (int64_t t = 0; t < len; ++t) {
    d0[t] = src[2 * t];
    d1[t] = src[2 * t + 1];
    if (m != nullptr) m->add(d0[t]), m->add(d1[t]);
  }
}

// dst[2t] = s0[t], dst[2t + 1] = s1[t] for t < len: two column rows of a 2-wide window row back
// into the row (deinterleave's inverse, a copy). With AVX2 eight of each per step, the rest one at
// a time.
__attribute__((target("avx2"))) void interleave_avx2(const float* s0, const float* s1, float* dst, int64_t len) {
  int64_t t = 0;
  for (; t + 8 <= len; t += 8) {
    const __m256 a = _mm256_loadu_ps(s0 + t), b = _mm256_loadu_ps(s1 + t);
    // Within each 128-bit lane: a0 b0 a1 b1 | a4 b4 a5 b5 and a2 b2 a3 b3 | a6 b6 a7 b7.
    const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
    _mm256_storeu_ps(dst + 2 * t, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 2 * t + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  for (; t < len; ++t) {
    dst[2 * t] = s0[t];
    dst[2 * t + 1] = s1[t];
  }
}

void interleave(const float* s0, const float* s1, float* dst, int64_t len) {
  if (has_avx2()) return interleave_avx2(s0, s1, dst, len);
  for (int64_t t = 0; t < len; ++t) {
    dst[2 * t] = s0[t];
    dst[2 * t + 1] = s1[t];
  }
}

// The windows of a patch convolution (is_patch_conv) on one image of C×H×W, as oneDNN's im2col
// lays them out: column row (c·kh + i)·kw + j, column p = oy·ow + ox holds x[c][oy·kh + i][ox·kw + j].
struct PatchGeometry {
  int64_t channels = 0, h = 0, w = 0, kh = 1, kw = 1, ow = 1;
  int64_t rows() const { return channels * kh * kw; }
  // Writes columns [p0, p0 + width) of image `image` (C×H×W floats) into col (rows × ld, ld ≥
  // width), and zeros into its columns [width, ld). With `largest`, also the largest magnitude of
  // the columns (lab::largest_magnitude's, +∞ if one is not finite), measured as 2-wide windows
  // are copied.
  void gather(const float* image, int64_t p0, int64_t width, int64_t ld, float* col, float* largest = nullptr) const {
    Magnitudes m;
    const bool measured = largest != nullptr && kw == 2;
    for (int64_t p = p0; p < p0 + width;) {
      const int64_t oy = p / ow, ox0 = p % ow, len = std::min(ow - ox0, p0 + width - p);
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t i = 0; i < kh; ++i) {
          const float* src = image + (c * h + oy * kh + i) * w + ox0 * kw;
          float* dst0 = col + (c * kh + i) * kw * ld + (p - p0);
          if (kw == 2) {
            deinterleave(src, dst0, dst0 + ld, len, measured ? &m : nullptr);
            continue;
          }
          for (int64_t j = 0; j < kw; ++j) {
            float* dst = col + ((c * kh + i) * kw + j) * ld + (p - p0);
            for (int64_t t = 0; t < len; ++t) dst[t] = src[t * kw + j];
          }
        }
      p += len;
    }
    if (ld > width)
      for (int64_t r = 0; r < rows(); ++r) std::fill(col + r * ld + width, col + (r + 1) * ld, 0.0f);
    if (largest != nullptr) *largest = measured ? m.largest() : largest_magnitude(col, rows(), ld, ld);
  }
  // gather's inverse on columns [p0, p0 + width) of an image of oh × ow windows: col (rows × ld,
  // its column t the pixel p0 + t) into image (C×H×W), x[c][oy·kh + i][ox·kw + j] =
  // col[(c·kh + i)·kw + j][p], and +0 on the pixels no window covers (the last rows and columns
  // when kh, kw do not divide H, W), written with the last window of their row, or of the image:
  // oneDNN's col2im of a convolution whose windows do not overlap, which adds each value into
  // zeros (the same value: an sgemm's value is never −0, its chains start at +0).
  void scatter(const float* col, int64_t ld, int64_t p0, int64_t width, int64_t oh, float* image) const {
    for (int64_t p = p0; p < p0 + width;) {
      const int64_t oy = p / ow, ox0 = p % ow, len = std::min(ow - ox0, p0 + width - p);
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t i = 0; i < kh; ++i) {
          float* row = image + (c * h + oy * kh + i) * w;
          const float* src = col + (c * kh + i) * kw * ld + (p - p0);
          if (kw == 2) {
            interleave(src, src + ld, row + ox0 * kw, len);
          } else {
            for (int64_t j = 0; j < kw; ++j)
              for (int64_t t = 0; t < len; ++t) row[(ox0 + t) * kw + j] = src[j * ld + t];
          }
          if (ox0 + len == ow) std::fill(row + ow * kw, row + w, 0.0f);
        }
      p += len;
    }
    if (p0 + width == oh * ow)
      for (int64_t c = 0; c < channels; ++c) std::fill(image + (c * h + oh * kh) * w, image + (c + 1) * h * w, 0.0f);
  }
};

// The windows of the patch convolution `conv` on `input` (is_patch_conv).
PatchGeometry patch_geometry(const Conv2d& conv, const Shape& input) {
  const Conv2dParams& p = conv.params();
  return PatchGeometry{p.in_channels, input[2], input[3], p.kernel_h, p.kernel_w, conv.output_shape(input)[3]};
}

// Floats of a thread's buffers for tiles of `tile` pixels: two of the widest step (`widest`
// channels), then the patch's column tile, if any.
int64_t tile_buffers(int64_t widest, const std::optional<PatchGeometry>& patch, int64_t tile) {
  return 2 * widest * tile + (patch ? patch->rows() * tile : 0);
}

// The product of a tiled step with weights (a convolution; see TileStep) on `width` columns.
bool tile_product(const TileStep& st, int64_t width, const float* a, int64_t lda, float* b, int64_t ldb,
                  bool finite = false) {
  if (st.chain) {
    chain_gemm(st.out, width, st.in, st.weight, st.in, a, lda, b, ldb, st.bias, st.relu);
    return true;
  }
  return conv_product(false, st.groups, st.out, width, st.in, st.weight, a, lda, b, ldb, st.bias, st.relu, st.sparse,
                      finite);
}

// The largest magnitude of the step's output from its input's (next_bound; a ReLU's: the same).
double step_bound(const TileStep& st, double largest) {
  return st.weight == nullptr ? largest : next_bound(st.bound, largest);
}

// Whether a step of a tiled run takes pointwise_gemm's chains for finite inputs (run_tile bounds
// its input).
bool finite_chains(const TileStep& st) {
  return st.weight != nullptr && st.relu && !st.chain && st.sparse != nullptr && !st.sparse->empty() &&
         sparse_weights();
}

// A tiled forward run: `steps` on tiles of `tile` output pixels of each of the `batch` images of
// `pixels` pixels (a multiple of 16, but the image's last tile); a tile's input is the first
// step's `in` channels of x (row stride `pixels`) or, with a patch, the windows of its pixels
// (patch->gather); the last step writes y. A patch convolution (the first step, with a patch)
// runs on its tile's columns padded with zeros to a multiple of 16 (the tile's width but at the
// image's end): every pixel is then in a full block of 16 columns of its product, computed alike
// wherever its tile and image start and end (patch_run.h).
struct TiledRun {
  std::vector<TileStep> steps;
  int64_t batch = 0, pixels = 0, in_numel = 0;  // in_numel: the input's floats per image
  std::optional<PatchGeometry> patch;
  int64_t tile = 0, widest = 0;
  // Steps [program_first, program_end) as one SparseProgram (attach_program), where it applies.
  std::shared_ptr<const SparseProgram> program;
  size_t program_first = 0, program_end = 0;
  // A pointwise run folded in (tiled_folds): patch gathers the windows of its input, and its
  // steps on each window position's rows give the column tile (this run's first step's input).
  std::shared_ptr<const TiledRun> pre;
  // Floats of a thread's tile buffers: two of the widest step (the first reads x or the column
  // tile, the last writes y), then the column tile; with pre, then the gathered windows and two
  // buffers of pre's widest step.
  int64_t scratch() const {
    if (!pre) return tile_buffers(widest, patch, tile);
    return (2 * widest + steps.front().in + patch->rows() + 2 * pre->widest) * tile;
  }
  int64_t out_numel() const { return steps.back().out * pixels; }
  int64_t tiles() const { return (pixels + tile - 1) / tile; }
};

// Whether a step can be one of a SparseProgram's: a 1×1 convolution with the ReLU within
// pointwise_gemm's kernel, of one group on sparse chains (finite_chains), or of one output per
// group (is_run_pointwise: one chain_gemm row per group, whose dense chain gives the bytes of its
// nonzero weights' chain under the ReLU on finite inputs, see SparseChains).
bool program_step(const TileStep& st) {
  if (st.weight == nullptr || !st.relu || st.chain || st.in > 64 || st.out > 64 || !sparse_weights()) return false;
  return st.groups == 1 ? finite_chains(st) : st.out == st.groups;
}

// The chains of a grouped step of one output per group (program_step) as one product's: row g
// the nonzero weights of group g on its inputs.
SparseChains group_chains(const TileStep& st) {
  const int64_t per = st.in / st.groups;
  std::vector<float> w(static_cast<size_t>(st.out * st.in), 0.0f);
  for (int64_t g = 0; g < st.groups; ++g)
    std::copy(st.weight + g * per, st.weight + (g + 1) * per, w.begin() + g * st.in + g * per);
  return sparse_chains(st.out, st.in, w.data(), st.in, 1, 1, st.bias);
}

// Gives r the SparseProgram of its first two or more consecutive steps from step `first` on that
// a program takes (program_step, SparseProgram::takes), if any.
void attach_program(TiledRun& r, size_t first) {
  // The grouped steps' chains, while the program is built (it copies the weights).
  std::vector<SparseChains> grouped;
  grouped.reserve(r.steps.size());
  std::vector<SparseStep> steps;
  size_t k = first;
  for (size_t i = first; i < r.steps.size(); ++i) {
    const TileStep& st = r.steps[i];
    const bool candidate = program_step(st);
    const SparseChains* chains = candidate && st.groups > 1 ? &grouped.emplace_back(group_chains(st)) : st.sparse;
    const SparseStep step{st.in, st.out, chains, st.bias, st.groups};
    if (candidate && SparseProgram::takes(step)) {
      steps.push_back(step);
      continue;
    }
    if (steps.size() >= 2) break;
    steps.clear();
    k = i + 1;
  }
  if (steps.size() < 2) return;
  r.program = SparseProgram::shared(steps);
  r.program_first = k;
  r.program_end = k + steps.size();
  // Tiles of whole strips of 64 pixels: a program's last 16 or 32 pixels of a tile cost it about
  // twice as much per pixel (its rows' dispatch over 2 vectors instead of 8).
  if (r.program && r.tile >= 64) r.tile = r.tile / 64 * 64;
}

// Where the run's program computes its steps on a tile of `width` columns whose first program
// step's input is bounded by `bound` (step_bound), the bound of its last step's output; else
// nothing. It does where the columns are all in full blocks of 16 (as its rows' shapes assume),
// every step's input and output is bounded by the largest float (the chains' `finite`, and no
// ReLU meets a NaN), and the program's shapes are still pointwise_gemm's.
std::optional<double> program_bound(const TiledRun& r, int64_t width, double bound) {
  if (!r.program || !sparse_programs() || width % 16 != 0 || !finite_bound(bound)) return std::nullopt;
  for (size_t k = r.program_first; k < r.program_end; ++k)
    if (!finite_bound(bound = step_bound(r.steps[k], bound))) return std::nullopt;
  if (!r.program->current()) return std::nullopt;
  return bound;
}

// run_tile's steps from `first` on (below): step first's input a (row stride lda), of largest
// magnitude input_bound (step_bound; +∞: unknown), the last step's output y (row stride ldy); its
// bound into output_bound. from_memory: a is the run's input x in memory (a pointwise run's), whose
// next tile a program from step 0 asks for meanwhile.
bool run_steps(const TiledRun& r, size_t first, const float* a, int64_t lda, float* y, int64_t ldy, int64_t width,
               float* buffer, double input_bound, double* output_bound = nullptr, bool from_memory = false) {
  const std::vector<TileStep>& steps = r.steps;
  bool ok = true;
  for (size_t k = first; k < steps.size(); ++k) {
    const TileStep& st = steps[k];
    const std::optional<double> after = k == r.program_first ? program_bound(r, width, input_bound) : std::nullopt;
    const bool program = after.has_value();
    if (program) k = r.program_end - 1;  // the program's last step writes the output of steps k..
    const bool last = k + 1 == steps.size();
    float* b = last ? y : buffer + (k % 2) * r.widest * r.tile;
    const int64_t ldb = last ? ldy : width;
    if (program) {
      // A pointwise run's input comes from memory: its next tile asked for meanwhile (multi-color-
      // sum's forward at batch 32: 0.85–1.08 of the time without over 8 process pairs, median 0.90).
      r.program->run(width, a, lda, b, ldb, r.program_first == 0 && from_memory ? width : 0);
      input_bound = *after;
      a = b;
      lda = ldb;
      continue;
    }
    if (st.weight != nullptr)
      ok = tile_product(st, width, a, lda, b, ldb, finite_bound(input_bound)) && ok;
    else
      for (int64_t c = 0; c < st.out; ++c) relu_row(a + c * lda, b + c * ldb, width);
    input_bound = step_bound(st, input_bound);
    a = b;
    lda = ldb;
  }
  if (output_bound != nullptr) *output_bound = input_bound;
  return ok;
}

// Tile [p0, p0 + width) of image n of the run r from x to y (whole-batch pointers); buffer: the
// run's scratch(). False if an sgemm failed.
bool run_tile(const TiledRun& r, const float* x, float* y, int64_t n, int64_t p0, int64_t width, float* buffer) {
  const std::vector<TileStep>& steps = r.steps;
  const int64_t in_channels = steps.front().in, out_channels = steps.back().out, pixels = r.pixels;
  float* const tile_out = y + (n * out_channels) * pixels + p0;  // the tile's output, row stride pixels
  bool ok = true;
  const float* a = x + (n * in_channels) * pixels + p0;
  int64_t lda = pixels;
  size_t first = 0;
  // The largest magnitude of the next step's input (step_bound), where some step can use it.
  double input_bound = std::numeric_limits<double>::infinity();
  if (r.patch) {
    // The patch convolution into tile buffer 0 (out × padded), then y's columns if it is the
    // run's only step.
    const int64_t padded = (width + 15) / 16 * 16;
    float* columns = buffer + 2 * r.widest * r.tile;
    // The columns' largest magnitude where a step can use it (measured as they are gathered, or
    // the folded run's bound).
    double bound = std::numeric_limits<double>::infinity();
    if (r.pre) {
      // The folded pointwise run's input windows, then its steps on each window position's rows
      // (rows (c·kh + i)·kw + j: position i·kw + j every kh·kw rows) into the column tile.
      float* windows = columns + steps.front().in * r.tile;
      float* pre_buffer = windows + r.patch->rows() * r.tile;
      float gathered = std::numeric_limits<float>::infinity();
      r.patch->gather(x + n * r.in_numel, p0, width, padded, windows, &gathered);
      const int64_t positions = r.patch->kh * r.patch->kw;
      for (int64_t q = 0; q < positions; ++q)
        ok = run_steps(*r.pre, 0, windows + q * padded, positions * padded, columns + q * padded, positions * padded,
                       padded, pre_buffer, gathered, &bound) && ok;
    }
    // A patch convolution to 6 or 8 channels, then a 1×1 convolution to one: the fused kernel
    // (lab/nn/patch_kernel.h), the same bytes without storing the channels.
    const bool fused = steps.size() == 2 && !steps[0].chain && steps[0].groups == 1 && steps[1].weight != nullptr &&
                       steps[1].out == 1 && patch_kernel_fits(steps[0].in, steps[0].out);
    // The pixels the fused kernel took from the image, and the column tile's row stride for the rest.
    int64_t done = 0, ld = padded;
    if (!r.pre) {
      const bool bounded = r.program || std::any_of(steps.begin(), steps.end(), finite_chains);
      const float* image = x + n * r.in_numel;
      // 2×2 windows of one channel: as many pixels as it takes read straight from the image.
      if (fused && !bounded && r.patch->channels == 1 && r.patch->kh == 2 && r.patch->kw == 2)
        done = patch_kernel_image(image, r.patch->w, r.patch->ow, p0, width, steps[0].out, steps[0].weight,
                                  steps[0].bias, steps[0].relu, steps[1].weight, steps[1].bias, steps[1].relu,
                                  tile_out);
      if (done == width) return ok;
      float largest = std::numeric_limits<float>::infinity();
      ld = (width - done + 15) / 16 * 16;
      r.patch->gather(image, p0 + done, width - done, ld, columns, bounded ? &largest : nullptr);
      bound = largest;
    }
    if (fused) {
      patch_kernel_tile(steps[0].in, steps[0].out, width - done, columns, ld, steps[0].weight, steps[0].bias,
                        steps[0].relu, steps[1].weight, steps[1].bias, steps[1].relu, tile_out + done);
      return ok;
    }
    // A program from the patch convolution on: run_steps runs it on the columns (width a
    // multiple of 16, so padded is width).
    if (r.program_first == 0 && program_bound(r, width, bound))
      return run_steps(r, 0, columns, padded, tile_out, pixels, width, buffer, bound) && ok;
    // The run's only step writes y's columns: directly where the tile needs no padding, else
    // through tile buffer 0.
    const bool direct = steps.size() == 1 && padded == width;
    float* out = direct ? tile_out : buffer;
    ok = tile_product(steps[0], padded, columns, padded, out, direct ? pixels : padded, finite_bound(bound)) && ok;
    input_bound = step_bound(steps[0], bound);
    if (steps.size() == 1 && !direct)
      for (int64_t c = 0; c < out_channels; ++c)
        std::copy(buffer + c * padded, buffer + c * padded + width, y + (n * out_channels + c) * pixels + p0);
    a = buffer;
    lda = padded;
    first = 1;
  } else if (r.program || std::any_of(steps.begin(), steps.end(), finite_chains)) {
    input_bound = largest_magnitude(a, in_channels, width, lda);
  }
  return run_steps(r, first, a, lda, tile_out, pixels, width, buffer, input_bound, nullptr, !r.patch) && ok;
}

// add_tiled_sequence takes whole images per thread from this many images per thread on (fewer:
// the threads would wait for each other at the end on unequal shares of images).
constexpr int64_t kImagesPerThread = 4;

// Adds the run r on x to `pass`: its tiles spread over the OpenMP threads (for_each_tile).
void add_tiled_run(Pass& pass, TiledRun r, const float* x, float* y) {
  LAB_CHECK(r.tile % 16 == 0 || !r.patch, "patch run of tile {}", r.tile);
  pass.add_host([=, r = std::move(r)] {
    for_each_tile(r.batch, r.pixels, r.tile, r.scratch(), [&](int64_t n, int64_t p0, int64_t width, float* buffer) {
      return run_tile(r, x, y, n, p0, width, buffer);
    });
  });
}

// The TiledRun of the pointwise layers `run` on `input` (add_pointwise_run).
TiledRun pointwise_tiled_run(const std::vector<const Layer*>& run, const Shape& input, int64_t tile) {
  LAB_CHECK(!run.empty() && input.size() == 4 && tile > 0, "pointwise run of {} layers on {}", run.size(),
            to_string(input));
  TiledRun r{.batch = input[0], .pixels = input[2] * input[3], .in_numel = numel(input) / input[0], .tile = tile,
             .widest = input[1]};
  append_tile_steps(run, 0, input[1], r.steps, r.widest);
  attach_program(r, 0);
  return r;
}

std::atomic<bool> onednn_forward_set{false};
std::atomic<bool> tiled_sequences_set{true};
std::atomic<bool> tiled_folds_set{true};

}  // namespace

void add_pointwise_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x,
                       float* y, int64_t tile) {
  add_tiled_run(pass, pointwise_tiled_run(run, input, tile), x, y);
}

namespace {

// Whether a patch convolution of `rows` column rows and `out` channels takes lab::chain_gemm (more
// than 64 of either: beyond lab::pointwise_gemm's kernel), else lab::pointwise_gemm.
bool chained(int64_t rows, int64_t out) { return rows > 64 || out > 64; }

}  // namespace

bool is_forward_patch_conv(const Layer& layer, const Shape& input) {
  if (layer.kind() != LayerKind::kConv2d || input.size() != 4) return false;
  const Conv2dParams& p = static_cast<const Conv2d&>(layer).params();
  const int64_t rows = p.in_channels / p.groups * p.kernel_h * p.kernel_w, out = p.out_channels / p.groups;
  return (p.groups == 1 || !chained(rows, out)) && p.pad_h == 0 && p.pad_w == 0 && p.stride_h == p.kernel_h &&
         p.stride_w == p.kernel_w && p.kernel_h * p.kernel_w > 1 && input[1] == p.in_channels &&
         input[2] >= p.kernel_h && input[3] >= p.kernel_w;
}

bool is_patch_conv(const Layer& layer, const Shape& input) {
  return layer.kind() == LayerKind::kConv2d && static_cast<const Conv2d&>(layer).params().groups == 1 &&
         is_forward_patch_conv(layer, input);
}

namespace {

// The TiledRun of the patch convolution `conv` (is_forward_patch_conv) alone on `input`, with
// weights w, the bias (may be null) and the ReLU after it if relu, on tiles of `tile` pixels: its
// one step, the product on the column tile (chain_gemm past pointwise_gemm's kernel), without
// sparse chains or bound.
TiledRun patch_conv_run(const Conv2d& conv, const Weights& w, const float* bias, bool relu, const Shape& input,
                        int64_t tile) {
  LAB_CHECK(tile > 0 && is_forward_patch_conv(conv, input), "{} on {} is not a patch convolution", conv.describe(),
            to_string(input));
  const Conv2dParams& p = conv.params();
  const Shape out = conv.output_shape(input);
  const PatchGeometry patch = patch_geometry(conv, input);
  return TiledRun{.steps = {TileStep{.weight = w.weight.data(), .bias = bias, .relu = relu,
                                     .chain = p.groups == 1 && chained(patch.rows(), p.out_channels),
                                     .in = patch.rows(), .out = p.out_channels, .groups = p.groups}},
                  .batch = input[0], .pixels = out[2] * out[3], .in_numel = numel(input) / input[0], .patch = patch,
                  .tile = tile, .widest = p.out_channels};
}

}  // namespace

void add_patch_conv(Pass& pass, const Conv2d& conv, const Weights& w, const Shape& input, const float* x,
                    bool use_bias, bool relu, float* y) {
  const Conv2dParams& p = conv.params();
  const int64_t rows = p.in_channels * p.kernel_h * p.kernel_w;  // the column tile's
  const float* bias = use_bias && !w.bias.empty() ? w.bias.data() : nullptr;
  add_tiled_run(pass, patch_conv_run(conv, w, bias, relu, input, tile_of_patch(rows, p.out_channels)), x, y);
}

void add_patch_transpose(Pass& pass, const Conv2d& conv, const Weights& w, const Shape& input, const float* s,
                         float* c) {
  LAB_CHECK(is_patch_conv(conv, input), "{} on {} is not a patch convolution", conv.describe(), to_string(input));
  const Conv2dParams& p = conv.params();
  const Shape out = conv.output_shape(input);
  const PatchGeometry patch = patch_geometry(conv, input);
  const int64_t pixels = out[2] * out[3], rows = patch.rows(), oc = p.out_channels, in_numel = numel(input) / input[0];
  const float* weight = w.weight.data();
  // Tiles of a multiple of 16 pixels where the product splits by columns alike (a multiple of 16
  // pixels; pointwise_columns_alike), else the whole image per job.
  const bool split = pixels % 16 == 0 && pointwise_columns_alike(rows, oc);
  const int64_t tile = split ? std::min(pixels, tile_of_pair(rows + oc)) : pixels;
  pass.add_host([=] {
    // Per pixel, s's oc floats read, the column rows written and read and c's window written.
    for_each_tile(
        input[0], pixels, tile, rows * tile,
        [&](int64_t n, int64_t p0, int64_t width, float* col) {
          if (!pointwise_gemm(true, rows, width, oc, weight, rows, s + n * oc * pixels + p0, pixels, col, width,
                              nullptr, false))
            return false;
          patch.scatter(col, width, p0, width, out[2], c + n * in_numel);
          return true;
        },
        oc + 3 * rows);
  });
}

// The TiledRun of the patch run `run` on `input` (add_patch_run).
TiledRun patch_tiled_run(const std::vector<const Layer*>& run, const Shape& input, int64_t tile) {
  LAB_CHECK(!run.empty() && run.front()->kind() == LayerKind::kConv2d, "patch run of {} layers on {}", run.size(),
            to_string(input));
  const auto& conv = static_cast<const Conv2d&>(*run.front());
  const Weights& w = conv.weights();
  TiledRun r = patch_conv_run(conv, w, w.bias.empty() ? nullptr : w.bias.data(), false, input, tile);
  r.steps[0].sparse = &conv.sparse();
  r.steps[0].bound = conv.bound();
  append_tile_steps(run, 1, conv.params().out_channels, r.steps, r.widest);
  attach_program(r, 0);
  return r;
}

void add_patch_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x, float* y,
                   int64_t tile) {
  add_tiled_run(pass, patch_tiled_run(run, input, tile), x, y);
}

void add_tiled_sequence(Pass& pass, const std::vector<TiledRunSpec>& specs, const float* x, float* y) {
  LAB_CHECK(!specs.empty(), "empty tiled sequence");
  std::vector<TiledRun> unfolded;
  for (const TiledRunSpec& s : specs) {
    unfolded.push_back(s.patch ? patch_tiled_run(s.layers, s.input, s.tile) : pointwise_tiled_run(s.layers, s.input, s.tile));
    LAB_CHECK(unfolded.back().tile % 16 == 0 || !unfolded.back().patch, "patch run of tile {}", s.tile);
    LAB_CHECK(unfolded.size() == 1 || unfolded[unfolded.size() - 2].out_numel() == unfolded.back().in_numel,
              "tiled sequence: {} floats per image into a run of {}", unfolded[unfolded.size() - 2].out_numel(),
              unfolded.back().in_numel);
  }
  // A pointwise run into a patch run that gathers no more rows from its input than from its output
  // (tiled_folds): one run, the pointwise steps on the patch run's column tiles at its tile.
  std::vector<TiledRun> folded = unfolded;
  bool folds = false;
  for (size_t i = 0; tiled_folds() && i + 1 < folded.size(); ++i) {
    const TiledRun& a = folded[i];
    TiledRun& b = folded[i + 1];
    if (a.patch || !b.patch || b.pre || a.steps.front().in > a.steps.back().out) continue;
    auto pre = std::make_shared<TiledRun>(a);
    pre->tile = b.tile;  // its buffers hold b's tile of columns
    b.patch->channels = a.steps.front().in;
    b.in_numel = a.in_numel;
    b.pre = std::move(pre);
    folded.erase(folded.begin() + static_cast<std::ptrdiff_t>(i));
    folds = true;
  }
  if (!folds) folded.clear();
  pass.add_host([=, all = std::move(unfolded), folded = std::move(folded)] {
    const int64_t batch = all.front().batch;
    int64_t work = 0;
    for (const TiledRun& r : all) work += batch * r.pixels * (r.scratch() / r.tile);
    // As for_each_tile: small work on the calling thread alone (the same bytes).
    const bool serial = work < kSerialTileFloats;
    const OmpThreads one(serial, 1);
    const int threads = serial ? 1 : omp_get_max_threads();
    const bool by_image = batch >= kImagesPerThread * threads;
    // The folded runs where the runs go in turn over the whole batch, whose outputs between runs
    // go through memory (multi-color-sum's forward at batch 1, 4 and 8: 0.86, 0.84, 0.95 of the
    // time unfolded); by image, where an image's activations stay in its core's cache, the runs
    // as they are (folded: 1.03–1.07 at batch 16 to 64; in-process A/B, 20 alternations).
    const std::vector<TiledRun>& runs = by_image || folded.empty() ? all : folded;
    int64_t scratch = 0, inner = 0;
    for (const TiledRun& r : runs) scratch = std::max(scratch, r.scratch());
    for (size_t i = 0; i + 1 < runs.size(); ++i) inner = std::max(inner, runs[i].out_numel());
    // The runs' outputs but the last: per thread one image's (by image), else the whole batch's.
    std::vector<std::unique_ptr<float[]>> between;
    if (!by_image)
      for (size_t i = 0; i + 1 < runs.size(); ++i)
        between.push_back(std::make_unique_for_overwrite<float[]>(static_cast<size_t>(batch * runs[i].out_numel())));
    std::atomic<int> failed{0};
#pragma omp parallel if (!serial)
    {
      // Uninitialised: every step writes a tile buffer (and the column tile) before reading it,
      // and every run writes its whole output before the next reads it.
      const std::unique_ptr<float[]> buffer = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(scratch));
      if (by_image) {
        const std::unique_ptr<float[]> own = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(2 * inner));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < batch; ++n) {
          const float* in = x + n * runs.front().in_numel;
          for (size_t i = 0; i < runs.size(); ++i) {
            const TiledRun& r = runs[i];
            float* out = i + 1 == runs.size() ? y + n * r.out_numel() : own.get() + (i % 2) * inner;
            for (int64_t p0 = 0; p0 < r.pixels; p0 += r.tile)
              if (!run_tile(r, in, out, 0, p0, std::min(r.tile, r.pixels - p0), buffer.get())) failed = 1;
            in = out;
          }
        }
      } else {
        const float* in = x;
        for (size_t i = 0; i < runs.size(); ++i) {
          const TiledRun& r = runs[i];
          float* out = i + 1 == runs.size() ? y : between[i].get();
          const int64_t tiles = r.tiles();
#pragma omp for schedule(static)
          for (int64_t job = 0; job < batch * tiles; ++job) {
            const int64_t n = job / tiles, p0 = (job % tiles) * r.tile;
            if (!run_tile(r, in, out, n, p0, std::min(r.tile, r.pixels - p0), buffer.get())) failed = 1;
          }
          in = out;
        }
      }
    }
    LAB_CHECK(failed == 0, "oneDNN sgemm failed in a tiled sequence");
  });
}

bool tiled_folds() { return tiled_folds_set.load(); }
void set_tiled_folds(bool on) { tiled_folds_set.store(on); }

bool tiled_sequences() { return tiled_sequences_set.load() && !onednn_forward(); }
void set_tiled_sequences(bool on) { tiled_sequences_set.store(on); }

bool onednn_forward() { return onednn_forward_set.load(); }
void set_onednn_forward(bool on) { onednn_forward_set.store(on); }

namespace {

// The parts of a tiled run of the gradient's trace or backward: a patch convolution first (head,
// is_patch_conv on the run's input) or none, then the pointwise layers' steps on `in` (the
// convolution's output, else the run's input); run[k + o] is steps[k].
struct SignRun {
  const Conv2d* head = nullptr;
  std::optional<PatchGeometry> patch;  // the head's windows
  Shape in;
  size_t o = 0;
  std::vector<PointwiseStep> steps;
  int64_t widest = 0;  // the most channels of a step
  // Floats of a thread's tile buffers: two of the widest step, then the patch's column tile.
  int64_t scratch(int64_t tile) const { return tile_buffers(widest, patch, tile); }
};

SignRun sign_run(const std::vector<const Layer*>& run, const Shape& input) {
  SignRun r;
  r.in = input;
  if (is_patch_conv(*run.front(), input)) {
    r.head = static_cast<const Conv2d*>(run.front());
    r.patch = patch_geometry(*r.head, input);
    r.in = r.head->output_shape(input);
    r.o = 1;
  }
  r.steps = pointwise_steps(std::vector<const Layer*>(run.begin() + static_cast<std::ptrdiff_t>(r.o), run.end()),
                            r.in, r.widest);
  return r;
}

}  // namespace

void add_pointwise_trace_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x,
                             const std::vector<float*>& outputs, int64_t tile) {
  add_pointwise_sign_trace_run(pass, run, input, x, outputs, std::vector<uint8_t*>(run.size(), nullptr), tile);
}

void add_pointwise_sign_trace_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input, const float* x,
                                  const std::vector<float*>& outputs, const std::vector<uint8_t*>& masks, int64_t tile) {
  LAB_CHECK(!run.empty() && outputs.size() == run.size() && masks.size() == run.size() && outputs.back() != nullptr &&
                tile > 0 && tile % 8 == 0,
            "pointwise trace of {} layers into {} outputs, tile {}", run.size(), outputs.size(), tile);
  // A patch convolution first: its product on the tile's gathered windows, padded to a multiple
  // of 16 columns as a patch run computes it (the same bytes), then the pointwise layers after it
  // on the convolution's output (`in`).
  SignRun parts = sign_run(run, input);
  const std::optional<PatchGeometry> patch = parts.patch;
  const Shape in = parts.in;
  const size_t o = parts.o;
  const int64_t widest = parts.widest, scratch = parts.scratch(tile), in_numel = numel(input) / input[0];
  std::vector<PointwiseStep> steps = std::move(parts.steps);
  TileStep head;
  const Conv2d* head_conv = parts.head;
  if (parts.head != nullptr) {
    const Weights& w = parts.head->weights();
    head = patch_conv_run(*parts.head, w, w.bias.empty() ? nullptr : w.bias.data(), false, input, tile).steps[0];
    LAB_CHECK(run.size() >= 2 && tile % 16 == 0, "patch trace of {} layers, tile {}", run.size(), tile);
  }
  // Whether a step reads the bound of its input (`largest` below): a sparse one (its chains
  // unchecked), or a convolution whose output is left out with a ReLU after it (fused); and the
  // head's ReLU the same way (fused_head).
  bool bounded = false;
  for (size_t k = 0; k < steps.size(); ++k)
    bounded = bounded || (steps[k].conv != nullptr &&
                          ((sparse_weights() && !steps[k].conv->sparse().empty()) ||
                           (outputs[k + o] == nullptr && k + 1 < steps.size() && steps[k + 1].conv == nullptr)));
  const bool fused_head = patch && outputs[0] == nullptr && steps[0].conv == nullptr;
  // The patch convolution, its ReLU, a 1×1 convolution to one channel and its ReLU (or none), with
  // the inner outputs left out: the forward's fused patch kernel, the same bytes.
  const bool kernel = patch && (steps.size() == 2 || (steps.size() == 3 && steps[2].conv == nullptr)) &&
                      steps[0].conv == nullptr && steps[1].conv != nullptr && steps[1].out == 1 && !head.chain &&
                      patch_kernel_fits(head.in, head.out) &&
                      std::all_of(outputs.begin(), outputs.end() - 1, [](const float* out) { return out == nullptr; });
  pass.add_host([=, steps = std::move(steps)] {
    const int64_t pixels = in[2] * in[3], stride = sign_row_bytes(pixels);
    // Two tile buffers used in turn by the layers whose output is left out, then the patch's
    // column tile (scratch).
    for_each_tile(in[0], pixels, tile, scratch, [&](int64_t n, int64_t p0, int64_t width, float* buffer) {
      bool ok = true;
      const float* a = x + n * in[1] * pixels + p0;
      int64_t lda = pixels;
      int slot = 0;  // the tile buffer the next output left out goes to (the other holds a)
      size_t k = 0;  // the next step
      // The largest magnitude of the next step's input (next_bound; after a patch convolution, from
      // its column tile's below; +∞ where no step reads it). It lets a sparse step run unchecked,
      // and a convolution whose output is left out take the ReLU after it in its store: only where
      // that output cannot be NaN does the ReLU's output tell its input's signs (a NaN input's bit
      // is 1, as oneDNN's ReLU backward passes the signal there, and the ReLU writes +0).
      double largest = std::numeric_limits<double>::infinity();
      if (!patch && bounded) largest = largest_magnitude(a, in[1], width, lda);
      // The signs of the ReLU steps[r]'s input, row c of image n, tile p0.
      const auto mask_row = [&](size_t r, int64_t c) {
        uint8_t* m = masks[r + o];
        return m ? m + (n * steps[r].in + c) * stride + p0 / 8 : nullptr;
      };
      if (patch) {
        // The convolution, and the ReLU right after it in its store if its output is left out
        // (as below); into its output directly where the tile needs no padding.
        const int64_t padded = (width + 15) / 16 * 16;
        float* columns = buffer + 2 * widest * tile;
        patch->gather(x + n * in_numel, p0, width, padded, columns);
        if (kernel) {
          // The fused kernel, the forward's (patch_kernel.h), writing the ReLUs' signs too.
          const Weights& w1 = steps[1].conv->weights();
          patch_kernel_tile(head.in, head.out, width, columns, padded, head.weight, head.bias, true, w1.weight.data(),
                            w1.bias.empty() ? nullptr : w1.bias.data(), steps.size() == 3,
                            outputs.back() + n * pixels + p0,
                            PatchSigns{mask_row(0, 0), stride, steps.size() == 3 ? mask_row(2, 0) : nullptr});
          return true;
        }
        if (bounded || fused_head)
          largest = next_bound(head_conv->bound(), largest_magnitude(columns, patch->rows(), padded, padded));
        const bool fused = fused_head && finite_bound(largest);
        float* out = outputs[fused ? 1 : 0];
        out = out ? out + n * in[1] * pixels + p0 : nullptr;
        const bool direct = out != nullptr && padded == width;
        float* b = direct ? out : buffer + slot * widest * tile;
        const int64_t ldb = direct ? pixels : padded;
        if (!direct) slot = 1 - slot;
        TileStep st = head;
        st.relu = fused;
        ok = tile_product(st, padded, columns, padded, b, ldb);
        for (int64_t c = 0; out != nullptr && !direct && c < in[1]; ++c)
          std::copy(b + c * ldb, b + c * ldb + width, out + c * pixels);
        for (int64_t c = 0; fused && mask_row(0, 0) != nullptr && c < in[1]; ++c) {
          if (c + kSignsAhead < in[1]) prefetch_signs(mask_row(0, c + kSignsAhead), width, true);
          positive_signs(b + c * ldb, mask_row(0, c), width);
        }
        a = b;
        lda = ldb;
        k = fused ? 1 : 0;
      }
      for (; k < steps.size(); ++k) {
        const PointwiseStep& st = steps[k];
        // A convolution whose output is left out and bounded (not NaN), then a ReLU: the ReLU in
        // the product's store (its bytes, v > 0 ? v : +0), and the ReLU's signs read off that
        // output (v > 0 before the ReLU exactly where after it).
        const bool fused = st.conv != nullptr && outputs[k + o] == nullptr && k + 1 < steps.size() &&
                           steps[k + 1].conv == nullptr && finite_bound(next_bound(st.conv->bound(), largest));
        const size_t last = fused ? k + 1 : k;  // the step whose output b is
        float* out = outputs[last + o];
        float* b = out ? out + n * steps[last].out * pixels + p0 : buffer + slot * widest * tile;
        const int64_t ldb = out ? pixels : width;
        if (!out) slot = 1 - slot;
        if (st.conv != nullptr) {
          ok = conv_tile(*st.conv, st.in, st.out, width, a, lda, b, ldb, fused, finite_bound(largest)) && ok;
          largest = next_bound(st.conv->bound(), largest);
        }
        if (st.conv == nullptr || fused) {
          // The signs: bit i % 8 of byte i / 8 of the row; the tile starts at a whole byte.
          const bool mask = mask_row(last, 0) != nullptr;
          for (int64_t c = 0; c < steps[last].out && (mask || !fused); ++c) {
            float* row = b + c * ldb;
            if (mask && c + kSignsAhead < steps[last].out)
              prefetch_signs(mask_row(last, c + kSignsAhead), width, true);
            if (fused) positive_signs(row, mask_row(last, c), width);
            else relu_signs(a + c * lda, row, mask_row(last, c), width);
          }
        }
        k = last;
        a = b;
        lda = ldb;
      }
      return ok;
    });
  });
}

void add_pointwise_backward_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input,
                                const std::vector<const float*>& inputs, const float* dy, float* dx, int64_t tile) {
  add_pointwise_sign_backward_run(pass, run, input, inputs, std::vector<const uint8_t*>(run.size(), nullptr), dy, dx,
                                  tile);
}

void add_pointwise_sign_backward_run(Pass& pass, const std::vector<const Layer*>& run, const Shape& input,
                                     const std::vector<const float*>& inputs, const std::vector<const uint8_t*>& masks,
                                     const float* dy, float* dx, int64_t tile,
                                     const std::vector<ReluBackward>& modes) {
  LAB_CHECK(!run.empty() && inputs.size() == run.size() && masks.size() == run.size() &&
                (modes.empty() || modes.size() == run.size()) && tile > 0 && tile % 8 == 0,
            "pointwise backward of {} layers with {} inputs, {} modes, tile {}", run.size(), inputs.size(),
            modes.size(), tile);
  // A patch convolution first (patch_backward_joins): the pointwise layers' signal at its output
  // stays in a tile buffer, and its transposed product runs on the tile's columns, then back to
  // the windows' pixels (add_patch_transpose's operations on the same columns).
  SignRun parts = sign_run(run, input);
  const std::optional<PatchGeometry> patch = parts.patch;
  const Conv2d* head = parts.head;
  const Shape in = parts.in;
  const size_t o = parts.o;
  const int64_t widest = parts.widest, scratch = parts.scratch(tile);
  std::vector<PointwiseStep> steps = std::move(parts.steps);
  if (head != nullptr)
    LAB_CHECK(run.size() >= 2 && tile % 16 == 0 && patch_backward_joins(*head, input),
              "patch backward of {} layers on {}, tile {}", run.size(), to_string(input), tile);
  const auto mode = [modes, o](size_t k) { return modes.empty() ? ReluBackward::kGradient : modes[k + o]; };
  for (size_t k = 0; k < steps.size(); ++k)
    LAB_CHECK(steps[k].conv != nullptr || inputs[k + o] != nullptr || masks[k + o] != nullptr ||
                  mode(k) == ReluBackward::kDeconv,
              "pointwise backward: ReLU {} of the run without its input or its signs", k + o);
  const int64_t in_numel = numel(input) / input[0];
  pass.add_host([=, steps = std::move(steps)] {
    const int64_t pixels = in[2] * in[3];
    const int64_t in_channels = in[1], out_channels = steps.back().out;
    // Two tile buffers used in turn by the inner steps (the last reads dy, the first writes dx),
    // then the patch's column tile (scratch).
    for_each_tile(in[0], pixels, tile, scratch, [&](int64_t n, int64_t p0, int64_t width, float* buffer) {
      bool ok = true;
      const float* g = dy + n * out_channels * pixels + p0;
      int64_t ldg = pixels;
      for (size_t k = steps.size(); k-- > 0;) {
        const PointwiseStep& st = steps[k];
        const bool out = k == 0 && !patch;  // the step writes dx
        float* b = out ? dx + n * in_channels * pixels + p0 : buffer + (k % 2) * widest * tile;
        const int64_t ldb = out ? pixels : width;
        if (st.conv != nullptr) {
          // dx (in×width) = weightsᵀ (in×out) · dy (out×width): the sgemm of oneDNN's 1×1
          // backward-data on nchw (pre-transposed weights would change the bytes), by
          // pointwise_gemm (its bytes).
          ok = conv_product(true, st.conv->params().groups, st.out, width, st.in, st.conv->weights().weight.data(), g,
                            ldg, b, ldb, nullptr, false, &st.conv->sparse_transposed()) &&
               ok;
        } else if (mode(k) == ReluBackward::kDeconv) {
          for (int64_t c = 0; c < st.out; ++c) clip_positive(g + c * ldg, b + c * ldb, width);
        } else if (inputs[k + o] != nullptr) {
          const bool guided = mode(k) == ReluBackward::kGuided;
          const float* xs = inputs[k + o] + n * st.in * pixels + p0;
          for (int64_t c = 0; c < st.out; ++c) {
            const float* from = g + c * ldg;
            const float* xr = xs + c * pixels;
            float* row = b + c * ldb;
            if (guided) guided_times_positive(from, xr, row, width);
            else times_positive(from, xr, row, width);
          }
        } else {
          // The same product, x > 0 read from the trace's signs.
          const bool guided = mode(k) == ReluBackward::kGuided;
          const int64_t stride = sign_row_bytes(pixels);
          const uint8_t* ms = masks[k + o] + n * st.in * stride + p0 / 8;
          for (int64_t c = 0; c < st.out; ++c) {
            const float* from = g + c * ldg;
            const uint8_t* mr = ms + c * stride;
            float* row = b + c * ldb;
            if (c + kSignsAhead < st.out) prefetch_signs(ms + (c + kSignsAhead) * stride, width, false);
            if (guided) times_signs<true>(from, mr, row, width);
            else times_signs<false>(from, mr, row, width);
          }
        }
        g = b;
        ldg = ldb;
      }
      if (patch) {
        const int64_t rows = patch->rows();
        float* col = buffer + 2 * widest * tile;
        ok = pointwise_gemm(true, rows, width, in_channels, head->weights().weight.data(), rows, g, ldg, col, width,
                            nullptr, false) && ok;
        patch->scatter(col, width, p0, width, in[2], dx + n * in_numel);
      }
      return ok;
    });
  });
}

bool patch_backward_joins(const Conv2d& conv, const Shape& input) {
  if (onednn_forward() || !is_patch_conv(conv, input)) return false;
  const Shape out = conv.output_shape(input);
  return (out[2] * out[3]) % 16 == 0 &&
         pointwise_columns_alike(patch_geometry(conv, input).rows(), conv.params().out_channels);
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
  if (const int64_t n = numel(in); n <= kHostBelow && !onednn_forward()) {
    pass.add_host([=] { std::copy(x, x + n, y); });
    return;
  }
  pass.steps().add(activation(Op::kCopy, {numel(output_shape(in))}), {{DNNL_ARG_FROM, x}, {DNNL_ARG_TO, y}});
}

void Flatten::add_backward_data(Pass& pass, const Shape& in, const float*, const float*, const float* dy,
                                float* dx) const {
  if (const int64_t n = numel(in); n <= kHostBelow && !onednn_forward()) {
    pass.add_host([=] { std::copy(dy, dy + n, dx); });
    return;
  }
  pass.steps().add(activation(Op::kCopy, {numel(in)}), {{DNNL_ARG_FROM, dy}, {DNNL_ARG_TO, dx}});
}

// ---------------------------------------------------------------------------------------------
// MaxPool2d: oneDNN max pooling on nchw; the training forward writes the workspace (the argmax of
// each window), which the backward reads.

void MaxPool2dParams::validate() const {
  require(kernel_h > 0 && kernel_w > 0, "max-pool2d kernel", "positive", fmt::format("{}x{}", kernel_h, kernel_w));
  require(stride_h > 0 && stride_w > 0, "max-pool2d stride", "positive", fmt::format("{}x{}", stride_h, stride_w));
  require(pad_h >= 0 && pad_w >= 0 && pad_h < kernel_h && pad_w < kernel_w, "max-pool2d padding",
          "non-negative and smaller than the kernel", fmt::format("{}x{}", pad_h, pad_w));
}

MaxPool2d::MaxPool2d(MaxPool2dParams params) : params_(params) { params_.validate(); }

Shape MaxPool2d::output_shape(const Shape& in) const {
  const auto& p = params_;
  if (in.size() != 4) fail("max-pool2d expects N×C×H×W input, got {}", to_string(in));
  if (in[2] + 2 * p.pad_h < p.kernel_h || in[3] + 2 * p.pad_w < p.kernel_w)
    fail("max-pool2d kernel {}x{} larger than padded input {}", p.kernel_h, p.kernel_w, to_string(in));
  return {in[0], in[1], (in[2] + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1,
          (in[3] + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1};
}

namespace {

const Described& pool(Op op, const MaxPool2dParams& p, const Shape& in, const Shape& out) {
  const Key key{op, {in[0], in[1], in[2], in[3], p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w}};
  return described(key, [&]() -> Described {
    const memory::desc src = plain_md(in), dst = plain_md(out);
    const memory::dims strides{p.stride_h, p.stride_w}, kernel{p.kernel_h, p.kernel_w}, pad_l{p.pad_h, p.pad_w};
    // Right padding so that the last window lands exactly on the output size.
    const memory::dims pad_r{(out[2] - 1) * p.stride_h + p.kernel_h - in[2] - p.pad_h,
                             (out[3] - 1) * p.stride_w + p.kernel_w - in[3] - p.pad_w};
    auto& eng = Runtime::get().engine();
    using namespace dnnl;
    const auto forward = [&](prop_kind kind) {
      return pooling_forward::primitive_desc(
          pooling_forward::desc(kind, algorithm::pooling_max, src, dst, strides, kernel, pad_l, pad_r), scratch_attr(),
          eng);
    };
    switch (op) {
      case Op::kPoolForwardInference:
        return {pooling_forward(forward(prop_kind::forward_inference)), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}};
      case Op::kPoolForwardTraining: {
        const auto fpd = forward(prop_kind::forward_training);
        return {pooling_forward(fpd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, fpd.workspace_desc()}}};
      }
      default: {
        const auto fpd = forward(prop_kind::forward_training);
        const pooling_backward::primitive_desc bpd(
            pooling_backward::desc(algorithm::pooling_max, src, dst, strides, kernel, pad_l, pad_r), scratch_attr(), eng,
            fpd);
        return {pooling_backward(bpd),
                {{DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_WORKSPACE, fpd.workspace_desc()}, {DNNL_ARG_DIFF_SRC, src}}};
      }
    }
  });
}

}  // namespace

void MaxPool2d::add_forward(Pass& pass, const Shape& in, const float* x, float* y) const {
  pass.steps().add(pool(Op::kPoolForwardInference, params_, in, output_shape(in)), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

void MaxPool2d::add_backward_data(Pass&, const Shape&, const float*, const float*, const float*, float*) const {
  LAB_CHECK(false, "max-pool2d backward needs the workspace of its training forward (add_backward_keep)");
}

int64_t MaxPool2d::workspace_numel(const Shape& in) const {
  const Described& d = pool(Op::kPoolForwardTraining, params_, in, output_shape(in));
  for (const auto& [arg, md] : d.args)
    if (arg == DNNL_ARG_WORKSPACE) return static_cast<int64_t>((md.get_size() + sizeof(float) - 1) / sizeof(float));
  return 0;
}

void MaxPool2d::add_forward_keep(Pass& pass, const Shape& in, const float* x, float* y, float* ws) const {
  pass.steps().add(pool(Op::kPoolForwardTraining, params_, in, output_shape(in)),
                   {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws}});
}

void MaxPool2d::add_backward_keep(Pass& pass, const Shape& in, const float*, const float*, const float* dy, float* dx,
                                  const float* ws) const {
  LAB_CHECK(ws != nullptr, "max-pool2d backward without a workspace");
  pass.steps().add(pool(Op::kPoolBackward, params_, in, output_shape(in)),
                   {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WORKSPACE, ws}, {DNNL_ARG_DIFF_SRC, dx}});
}

std::string MaxPool2d::describe() const {
  const auto& p = params_;
  return fmt::format("k{}x{} s{}x{} p{}x{}", p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w);
}

// ---------------------------------------------------------------------------------------------
// BatchNorm: per-channel y = a x + b on the host.

namespace {

// a = γ/√(σ² + eps), b = β − a μ, in double, rounded once.
Weights batch_norm_affine(const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var, double eps) {
  const int64_t c = gamma.numel();
  if (gamma.rank() != 1 || c < 1) fail_parameter("batch-norm gamma must be (C), got {}", to_string(gamma.shape()));
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"beta", &beta}, {"mean", &mean}, {"var", &var}})
    if (t->shape() != gamma.shape())
      fail_parameter("batch-norm {} shape {} does not match gamma's {}", name, to_string(t->shape()), to_string(gamma.shape()));
  require(eps > 0, "batch-norm eps", "positive", std::to_string(eps));
  Weights w{Tensor({c}), Tensor({c})};
  for (int64_t k = 0; k < c; ++k) {
    require(var[k] >= 0, "batch-norm var", "non-negative", std::to_string(var[k]));
    const double a = static_cast<double>(gamma[k]) / std::sqrt(static_cast<double>(var[k]) + eps);
    w.weight[k] = static_cast<float>(a);
    w.bias[k] = static_cast<float>(static_cast<double>(beta[k]) - a * static_cast<double>(mean[k]));
  }
  return w;
}

}  // namespace

BatchNorm::BatchNorm(Tensor gamma, Tensor beta, Tensor mean, Tensor var, double eps)
    : AffineLayer(batch_norm_affine(gamma, beta, mean, var, eps)),
      gamma_(std::move(gamma)), beta_(std::move(beta)), mean_(std::move(mean)), var_(std::move(var)), eps_(eps) {}

Shape BatchNorm::output_shape(const Shape& in) const {
  if (in.size() < 2 || in[1] != channels()) fail("batch-norm expects N×{}×… input, got {}", channels(), to_string(in));
  return in;
}

void BatchNorm::add_apply(Pass& pass, const Weights& w, const Shape& in, const float* x, bool use_bias, float* z) const {
  const int64_t n = in[0], c = channels(), inner = numel(in) / (in[0] * channels());
  const float* a = w.weight.data();
  const float* b = use_bias && !w.bias.empty() ? w.bias.data() : nullptr;
  pass.add_host([=] {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k) {
        const int64_t o = (i * c + k) * inner;
        for (int64_t j = 0; j < inner; ++j) z[o + j] = a[k] * x[o + j] + (b ? b[k] : 0.0f);
      }
  });
}

void BatchNorm::add_apply_transpose(Pass& pass, const Weights& w, const Shape& in, const float* s, float* c_out) const {
  const int64_t n = in[0], c = channels(), inner = numel(in) / (in[0] * channels());
  const float* a = w.weight.data();
  pass.add_host([=] {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k) {
        const int64_t o = (i * c + k) * inner;
        for (int64_t j = 0; j < inner; ++j) c_out[o + j] = a[k] * s[o + j];
      }
  });
}

std::string BatchNorm::describe() const { return fmt::format("{} eps {}", channels(), eps_); }

// ---------------------------------------------------------------------------------------------
// Merge layers, on the host.

Tensor Merge::forward(const std::vector<Tensor>& xs) const {
  std::vector<Shape> shapes;
  std::vector<const float*> ptrs;
  for (const Tensor& x : xs) {
    shapes.push_back(x.shape());
    ptrs.push_back(x.data());
  }
  Tensor y = uninitialized(merged_shape(shapes));
  Pass pass;
  add_merge_forward(pass, shapes, ptrs, y.data());
  pass.run();
  return y;
}

std::vector<Tensor> Merge::backward_data(const std::vector<Tensor>& xs, const Tensor& dy) const {
  std::vector<Shape> shapes;
  std::vector<const float*> ptrs;
  std::vector<Tensor> dxs;
  std::vector<float*> outs;
  for (const Tensor& x : xs) {
    shapes.push_back(x.shape());
    ptrs.push_back(x.data());
  }
  LAB_CHECK(dy.shape() == merged_shape(shapes), "{} backward signal {}", kind_name(kind()), to_string(dy.shape()));
  for (const Tensor& x : xs) dxs.push_back(uninitialized(x.shape()));
  for (Tensor& d : dxs) outs.push_back(d.data());
  Pass pass;
  add_merge_backward(pass, shapes, ptrs, dy.data(), outs);
  pass.run();
  return dxs;
}

Shape Merge::output_shape(const Shape&) const {
  LAB_CHECK(false, "{} takes several inputs (merged_shape)", kind_name(kind()));
  return {};
}
void Merge::add_forward(Pass&, const Shape&, const float*, float*) const {
  LAB_CHECK(false, "{} takes several inputs (add_merge_forward)", kind_name(kind()));
}
void Merge::add_backward_data(Pass&, const Shape&, const float*, const float*, const float*, float*) const {
  LAB_CHECK(false, "{} takes several inputs (add_merge_backward)", kind_name(kind()));
}

namespace {

void require_same_shapes(const char* what, const std::vector<Shape>& in, size_t min_inputs, size_t max_inputs) {
  if (in.size() < min_inputs || in.size() > max_inputs)
    fail("{} takes {} inputs, got {}", what,
         min_inputs == max_inputs ? std::to_string(min_inputs) : fmt::format("at least {}", min_inputs), in.size());
  for (const Shape& s : in)
    if (s != in[0]) fail("{} inputs must have one shape, got {} and {}", what, to_string(in[0]), to_string(s));
}

}  // namespace

Shape Add::merged_shape(const std::vector<Shape>& in) const {
  require_same_shapes("add", in, 2, std::numeric_limits<size_t>::max());
  return in[0];
}

void Add::add_merge_forward(Pass& pass, const std::vector<Shape>& in, const std::vector<const float*>& xs, float* y) const {
  const int64_t n = numel(in[0]);
  pass.add_host([n, xs, y] {
    std::copy(xs[0], xs[0] + n, y);
    for (size_t k = 1; k < xs.size(); ++k)
      for (int64_t i = 0; i < n; ++i) y[i] += xs[k][i];
  });
}

void Add::add_merge_backward(Pass& pass, const std::vector<Shape>& in, const std::vector<const float*>&, const float* dy,
                             const std::vector<float*>& dxs) const {
  const int64_t n = numel(in[0]);
  pass.add_host([n, dy, dxs] {
    for (float* dx : dxs) std::copy(dy, dy + n, dx);
  });
}

Shape Concat::merged_shape(const std::vector<Shape>& in) const {
  if (in.size() < 2) fail("concat takes at least 2 inputs, got {}", in.size());
  Shape out = in[0];
  if (out.size() < 2) fail("concat expects inputs of rank ≥ 2, got {}", to_string(out));
  for (size_t k = 1; k < in.size(); ++k) {
    Shape a = in[k], b = in[0];
    if (a.size() != b.size()) fail("concat inputs {} and {} differ in rank", to_string(in[0]), to_string(in[k]));
    a[1] = b[1] = 0;
    if (a != b) fail("concat inputs {} and {} differ outside dimension 1", to_string(in[0]), to_string(in[k]));
    out[1] += in[k][1];
  }
  return out;
}

namespace {

// Copies between the inputs' rows and the concatenated rows: sample i of input k is one block of
// sample_numel(k) floats at offset Σ_{j<k} sample_numel(j) in sample i of the output.
void concat_copy(const std::vector<Shape>& in, const std::vector<float*>& parts, float* whole, bool to_whole) {
  const int64_t batch = in[0][0];
  int64_t row = 0;
  for (const Shape& s : in) row += numel(s) / batch;
  int64_t offset = 0;
  for (size_t k = 0; k < in.size(); ++k) {
    const int64_t len = numel(in[k]) / batch;
    for (int64_t i = 0; i < batch; ++i) {
      float* w = whole + i * row + offset;
      float* p = parts[k] + i * len;
      if (to_whole)
        std::copy(p, p + len, w);
      else
        std::copy(w, w + len, p);
    }
    offset += len;
  }
}

}  // namespace

void Concat::add_merge_forward(Pass& pass, const std::vector<Shape>& in, const std::vector<const float*>& xs,
                               float* y) const {
  std::vector<float*> parts;
  for (const float* x : xs) parts.push_back(const_cast<float*>(x));  // read only: to_whole copies from them
  pass.add_host([in, parts, y] { concat_copy(in, parts, y, true); });
}

void Concat::add_merge_backward(Pass& pass, const std::vector<Shape>& in, const std::vector<const float*>&,
                                const float* dy, const std::vector<float*>& dxs) const {
  pass.add_host([in, dxs, dy] { concat_copy(in, dxs, const_cast<float*>(dy), false); });
}

Shape Multiply::merged_shape(const std::vector<Shape>& in) const {
  require_same_shapes("multiply", in, 2, 2);
  return in[0];
}

void Multiply::add_merge_forward(Pass& pass, const std::vector<Shape>& in, const std::vector<const float*>& xs,
                                 float* y) const {
  const int64_t n = numel(in[0]);
  const float *a = xs[0], *g = xs[1];
  pass.add_host([=] {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * g[i];
  });
}

void Multiply::add_merge_backward(Pass& pass, const std::vector<Shape>& in, const std::vector<const float*>& xs,
                                  const float* dy, const std::vector<float*>& dxs) const {
  const int64_t n = numel(in[0]);
  const float *a = xs[0], *g = xs[1];
  float *da = dxs[0], *dg = dxs[1];
  pass.add_host([=] {
    for (int64_t i = 0; i < n; ++i) {
      da[i] = dy[i] * g[i];
      dg[i] = dy[i] * a[i];
    }
  });
}

}  // namespace lab
