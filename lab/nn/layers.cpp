#include "lab/nn/layers.h"

#include <oneapi/dnnl/dnnl.hpp>

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

memory wrap(const memory::desc& md, const float* p) {
  return memory(md, Runtime::get().engine(), const_cast<float*>(p));
}

void run(dnnl::primitive& prim, const std::unordered_map<int, memory>& args) {
  prim.execute(Runtime::get().stream(), args);
  Runtime::get().stream().wait();
}

}  // namespace

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

struct Conv2d::Primitives {
  memory::desc src, dst, weights, bias;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd, fwd_nobias;
  dnnl::convolution_backward_data bwd;
};

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

Conv2d::~Conv2d() = default;

Shape Conv2d::output_shape(const Shape& in) const {
  if (in.size() != 4 || in[1] != params_.in_channels)
    fail("conv2d expects N×{}×H×W input, got {}", params_.in_channels, to_string(in));
  const int64_t oh = (in[2] + 2 * params_.pad_h - params_.kernel_h) / params_.stride_h + 1;
  const int64_t ow = (in[3] + 2 * params_.pad_w - params_.kernel_w) / params_.stride_w + 1;
  if (in[2] + 2 * params_.pad_h < params_.kernel_h || in[3] + 2 * params_.pad_w < params_.kernel_w)
    fail("conv2d kernel {}x{} larger than padded input {}", params_.kernel_h, params_.kernel_w, to_string(in));
  return {in[0], params_.out_channels, oh, ow};
}

Conv2d::Primitives& Conv2d::primitives(const Shape& in) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(in);
  if (it != cache_.end()) return *it->second;
  const Shape out = output_shape(in);
  const auto& p = params_;
  auto prims = std::make_unique<Primitives>();
  prims->src = plain_md(in);
  prims->dst = plain_md(out);
  if (p.groups == 1) {
    prims->weights = memory::desc({p.out_channels, p.in_channels, p.kernel_h, p.kernel_w}, dt::f32, tag::oihw);
  } else {
    prims->weights = memory::desc({p.groups, p.out_channels / p.groups, p.in_channels / p.groups, p.kernel_h, p.kernel_w},
                                  dt::f32, tag::goihw);
  }
  prims->bias = memory::desc({p.out_channels}, dt::f32, tag::a);
  const memory::dims strides{p.stride_h, p.stride_w};
  const memory::dims pad_l{p.pad_h, p.pad_w};
  // Right padding so that the last window lands exactly on the output size computed above.
  const memory::dims pad_r{(out[2] - 1) * p.stride_h + p.kernel_h - in[2] - p.pad_h,
                           (out[3] - 1) * p.stride_w + p.kernel_w - in[3] - p.pad_w};
  auto& eng = Runtime::get().engine();
  using namespace dnnl;
  convolution_forward::desc fd(prop_kind::forward_training, algorithm::convolution_direct, prims->src, prims->weights,
                               prims->bias, prims->dst, strides, pad_l, pad_r);
  prims->fwd_pd = convolution_forward::primitive_desc(fd, eng);
  prims->fwd = convolution_forward(prims->fwd_pd);
  convolution_forward::desc fdn(prop_kind::forward_training, algorithm::convolution_direct, prims->src,
                                prims->weights, prims->dst, strides, pad_l, pad_r);
  prims->fwd_nobias = convolution_forward(convolution_forward::primitive_desc(fdn, eng));
  convolution_backward_data::desc bd(algorithm::convolution_direct, prims->src, prims->weights, prims->dst, strides,
                                     pad_l, pad_r);
  prims->bwd = convolution_backward_data(convolution_backward_data::primitive_desc(bd, eng, prims->fwd_pd));
  return *cache_.emplace(in, std::move(prims)).first->second;
}

Tensor Conv2d::apply(const Weights& w, const Tensor& x, bool use_bias) const {
  Tensor y(output_shape(x.shape()));
  Primitives& p = primitives(x.shape());
  if (use_bias && !w.bias.empty()) {
    run(p.fwd, {{DNNL_ARG_SRC, wrap(p.src, x.data())},
                {DNNL_ARG_WEIGHTS, wrap(p.weights, w.weight.data())},
                {DNNL_ARG_BIAS, wrap(p.bias, w.bias.data())},
                {DNNL_ARG_DST, wrap(p.dst, y.data())}});
  } else {
    run(p.fwd_nobias, {{DNNL_ARG_SRC, wrap(p.src, x.data())},
                       {DNNL_ARG_WEIGHTS, wrap(p.weights, w.weight.data())},
                       {DNNL_ARG_DST, wrap(p.dst, y.data())}});
  }
  return y;
}

Tensor Conv2d::apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const {
  LAB_CHECK(s.shape() == output_shape(input_shape), "conv2d backward signal {} for input {}", to_string(s.shape()),
            to_string(input_shape));
  Tensor dx(input_shape);
  Primitives& p = primitives(input_shape);
  run(p.bwd, {{DNNL_ARG_DIFF_DST, wrap(p.dst, s.data())},
              {DNNL_ARG_WEIGHTS, wrap(p.weights, w.weight.data())},
              {DNNL_ARG_DIFF_SRC, wrap(p.src, dx.data())}});
  return dx;
}

std::string Conv2d::describe() const {
  const auto& p = params_;
  return fmt::format("{}->{} k{}x{} s{}x{} p{}x{} g{}{}", p.in_channels, p.out_channels, p.kernel_h, p.kernel_w,
                     p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.groups, weights_.bias.empty() ? " nobias" : "");
}

// ---------------------------------------------------------------------------------------------
// Linear: src N×IN (nc), weights OUT×IN (oi), dst N×OUT.

struct Linear::Primitives {
  memory::desc src, dst, weights, bias;
  dnnl::inner_product_forward fwd, fwd_nobias;
  dnnl::inner_product_backward_data bwd;
};

Linear::Linear(Tensor weight, Tensor bias) : AffineLayer(Weights{std::move(weight), std::move(bias)}) {
  if (weights_.weight.rank() != 2 || weights_.weight.dim(0) < 1 || weights_.weight.dim(1) < 1)
    fail_parameter("linear weight must be (out, in), got {}", to_string(weights_.weight.shape()));
  if (!weights_.bias.empty() && weights_.bias.shape() != Shape{weights_.weight.dim(0)})
    fail_parameter("linear bias shape {} does not match [{}]", to_string(weights_.bias.shape()), weights_.weight.dim(0));
}

Linear::~Linear() = default;

Shape Linear::output_shape(const Shape& in) const {
  if (in.size() != 2 || in[1] != in_features())
    fail("linear expects N×{} input, got {}", in_features(), to_string(in));
  return {in[0], out_features()};
}

Linear::Primitives& Linear::primitives(const Shape& in) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(in);
  if (it != cache_.end()) return *it->second;
  auto prims = std::make_unique<Primitives>();
  prims->src = memory::desc({in[0], in_features()}, dt::f32, tag::nc);
  prims->dst = memory::desc({in[0], out_features()}, dt::f32, tag::nc);
  prims->weights = memory::desc({out_features(), in_features()}, dt::f32, tag::oi);
  prims->bias = memory::desc({out_features()}, dt::f32, tag::a);
  auto& eng = Runtime::get().engine();
  using namespace dnnl;
  inner_product_forward::desc fd(prop_kind::forward_training, prims->src, prims->weights, prims->bias, prims->dst);
  inner_product_forward::primitive_desc fpd(fd, eng);
  prims->fwd = inner_product_forward(fpd);
  inner_product_forward::desc fdn(prop_kind::forward_training, prims->src, prims->weights, prims->dst);
  prims->fwd_nobias = inner_product_forward(inner_product_forward::primitive_desc(fdn, eng));
  inner_product_backward_data::desc bd(prims->src, prims->weights, prims->dst);
  prims->bwd = inner_product_backward_data(inner_product_backward_data::primitive_desc(bd, eng, fpd));
  return *cache_.emplace(in, std::move(prims)).first->second;
}

Tensor Linear::apply(const Weights& w, const Tensor& x, bool use_bias) const {
  Tensor y(output_shape(x.shape()));
  Primitives& p = primitives(x.shape());
  if (use_bias && !w.bias.empty()) {
    run(p.fwd, {{DNNL_ARG_SRC, wrap(p.src, x.data())},
                {DNNL_ARG_WEIGHTS, wrap(p.weights, w.weight.data())},
                {DNNL_ARG_BIAS, wrap(p.bias, w.bias.data())},
                {DNNL_ARG_DST, wrap(p.dst, y.data())}});
  } else {
    run(p.fwd_nobias, {{DNNL_ARG_SRC, wrap(p.src, x.data())},
                       {DNNL_ARG_WEIGHTS, wrap(p.weights, w.weight.data())},
                       {DNNL_ARG_DST, wrap(p.dst, y.data())}});
  }
  return y;
}

Tensor Linear::apply_transpose(const Weights& w, const Tensor& s, const Shape& input_shape) const {
  LAB_CHECK(s.shape() == output_shape(input_shape), "linear backward signal {} for input {}", to_string(s.shape()),
            to_string(input_shape));
  Tensor dx(input_shape);
  Primitives& p = primitives(input_shape);
  run(p.bwd, {{DNNL_ARG_DIFF_DST, wrap(p.dst, s.data())},
              {DNNL_ARG_WEIGHTS, wrap(p.weights, w.weight.data())},
              {DNNL_ARG_DIFF_SRC, wrap(p.src, dx.data())}});
  return dx;
}

std::string Linear::describe() const {
  return fmt::format("{}->{}{}", in_features(), out_features(), weights_.bias.empty() ? " nobias" : "");
}

// ---------------------------------------------------------------------------------------------
// ReLU and Softmax: oneDNN eltwise / softmax on plain layouts.

struct ReLU::Primitives {
  memory::desc md;
  dnnl::eltwise_forward fwd;
  dnnl::eltwise_backward bwd;
};

ReLU::ReLU() = default;
ReLU::~ReLU() = default;

ReLU::Primitives& ReLU::primitives(const Shape& in) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(in);
  if (it != cache_.end()) return *it->second;
  auto prims = std::make_unique<Primitives>();
  prims->md = plain_md(in);
  auto& eng = Runtime::get().engine();
  using namespace dnnl;
  eltwise_forward::desc fd(prop_kind::forward_training, algorithm::eltwise_relu, prims->md, 0.f, 0.f);
  eltwise_forward::primitive_desc fpd(fd, eng);
  prims->fwd = eltwise_forward(fpd);
  eltwise_backward::desc bd(algorithm::eltwise_relu, prims->md, prims->md, 0.f, 0.f);
  prims->bwd = eltwise_backward(eltwise_backward::primitive_desc(bd, eng, fpd));
  return *cache_.emplace(in, std::move(prims)).first->second;
}

Tensor ReLU::forward(const Tensor& x) const {
  Tensor y(x.shape());
  Primitives& p = primitives(x.shape());
  run(p.fwd, {{DNNL_ARG_SRC, wrap(p.md, x.data())}, {DNNL_ARG_DST, wrap(p.md, y.data())}});
  return y;
}

Tensor ReLU::backward_data(const Tensor& x, const Tensor&, const Tensor& dy) const {
  LAB_CHECK(dy.shape() == x.shape(), "relu backward {} vs {}", to_string(dy.shape()), to_string(x.shape()));
  Tensor dx(x.shape());
  Primitives& p = primitives(x.shape());
  run(p.bwd, {{DNNL_ARG_SRC, wrap(p.md, x.data())},
              {DNNL_ARG_DIFF_DST, wrap(p.md, dy.data())},
              {DNNL_ARG_DIFF_SRC, wrap(p.md, dx.data())}});
  return dx;
}

struct Softmax::Primitives {
  memory::desc md;
  dnnl::softmax_forward fwd;
  dnnl::softmax_backward bwd;
};

Softmax::Softmax() = default;
Softmax::~Softmax() = default;

Shape Softmax::output_shape(const Shape& in) const {
  if (in.size() != 2) fail("softmax expects N×K input, got {}", to_string(in));
  return in;
}

Softmax::Primitives& Softmax::primitives(const Shape& in) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(in);
  if (it != cache_.end()) return *it->second;
  auto prims = std::make_unique<Primitives>();
  prims->md = plain_md(in);
  auto& eng = Runtime::get().engine();
  using namespace dnnl;
  softmax_forward::desc fd(prop_kind::forward_training, prims->md, 1);
  softmax_forward::primitive_desc fpd(fd, eng);
  prims->fwd = softmax_forward(fpd);
  softmax_backward::desc bd(prims->md, prims->md, 1);
  prims->bwd = softmax_backward(softmax_backward::primitive_desc(bd, eng, fpd));
  return *cache_.emplace(in, std::move(prims)).first->second;
}

Tensor Softmax::forward(const Tensor& x) const {
  Tensor y(output_shape(x.shape()));
  Primitives& p = primitives(x.shape());
  run(p.fwd, {{DNNL_ARG_SRC, wrap(p.md, x.data())}, {DNNL_ARG_DST, wrap(p.md, y.data())}});
  return y;
}

Tensor Softmax::backward_data(const Tensor& x, const Tensor& y, const Tensor& dy) const {
  LAB_CHECK(dy.shape() == y.shape(), "softmax backward {} vs {}", to_string(dy.shape()), to_string(y.shape()));
  Tensor dx(x.shape());
  Primitives& p = primitives(x.shape());
  run(p.bwd, {{DNNL_ARG_DST, wrap(p.md, y.data())},
              {DNNL_ARG_DIFF_DST, wrap(p.md, dy.data())},
              {DNNL_ARG_DIFF_SRC, wrap(p.md, dx.data())}});
  return dx;
}

// ---------------------------------------------------------------------------------------------

Shape Flatten::output_shape(const Shape& in) const {
  if (in.size() < 2) fail("flatten expects a batch of at least rank 2, got {}", to_string(in));
  return {in[0], numel(in) / in[0]};
}

Tensor Flatten::forward(const Tensor& x) const { return x.reshaped(output_shape(x.shape())); }

Tensor Flatten::backward_data(const Tensor& x, const Tensor&, const Tensor& dy) const { return dy.reshaped(x.shape()); }

}  // namespace lab
