#include "attributions/iba.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "attributions/perturbation.h"
#include "lab/core/error.h"
#include "lab/core/hash.h"

namespace attributions {

namespace {

constexpr uint64_t kIbaStream = 0x494241;  // "IBA"

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

/// Index i folded into [0, n) by reflection without repeating the edge (torch ReflectionPad2d,
/// OpenCV BORDER_REFLECT_101), for any i.
int64_t reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i = std::abs(i) % period;
  return i < n ? i : period - i;
}

/// Separable Gaussian smoothing of each h×w plane with reflected borders, and its transpose.
class Smoother {
 public:
  Smoother(double sigma, int64_t h, int64_t w) : h_(h), w_(w) {
    if (sigma <= 0) return;
    const int64_t half = std::lround(2.0 * sigma);
    double sum = 0;
    for (int64_t d = -half; d <= half; ++d) sum += kernel_.emplace_back(std::exp(-0.5 * d * d / (sigma * sigma)));
    for (double& k : kernel_) k /= sum;
  }
  /// out = K * in on `planes` planes.
  void apply(const std::vector<double>& in, std::vector<double>& out, int64_t planes) const {
    if (kernel_.empty()) {
      out = in;
      return;
    }
    std::vector<double> tmp(in.size());
    out.resize(in.size());
    pass(in, tmp, planes, true, false);
    pass(tmp, out, planes, false, false);
  }
  /// out = Kᵀ * in (the gradient of apply).
  void transpose(const std::vector<double>& in, std::vector<double>& out, int64_t planes) const {
    if (kernel_.empty()) {
      out = in;
      return;
    }
    std::vector<double> tmp(in.size());
    out.resize(in.size());
    pass(in, tmp, planes, false, true);
    pass(tmp, out, planes, true, true);
  }

 private:
  void pass(const std::vector<double>& in, std::vector<double>& out, int64_t planes, bool along_rows,
            bool transposed) const {
    const int64_t half = static_cast<int64_t>(kernel_.size() / 2);
    std::fill(out.begin(), out.end(), 0.0);
    for (int64_t p = 0; p < planes; ++p) {
      const double* src = in.data() + p * h_ * w_;
      double* dst = out.data() + p * h_ * w_;
      for (int64_t y = 0; y < h_; ++y)
        for (int64_t x = 0; x < w_; ++x)
          for (int64_t d = -half; d <= half; ++d) {
            const int64_t sy = along_rows ? reflect(y + d, h_) : y;
            const int64_t sx = along_rows ? x : reflect(x + d, w_);
            const double k = kernel_[static_cast<size_t>(d + half)];
            if (transposed) {
              dst[sy * w_ + sx] += k * src[y * w_ + x];
            } else {
              dst[y * w_ + x] += k * src[sy * w_ + sx];
            }
          }
    }
  }
  int64_t h_, w_;
  std::vector<double> kernel_;
};

/// What one attribute() call sets up: the network to the logits, the layer, the statistics.
struct Bottleneck {
  lab::Network net;
  size_t layer = 0;
  bool cross_entropy = true;
  int64_t channels = 0, h = 0, w = 0, elements = 0;
  std::vector<double> mean, std;
  std::vector<uint8_t> active;
  int64_t evaluations = 0;
};

Bottleneck make_bottleneck(const Iba::Params& params, const Context& context) {
  if (!context.net) lab::fail_parameter("attribution context has no network");
  Bottleneck b;
  b.net = explained_network(*context.net, Output::kLogit);
  std::string layer = params.layer;
  if (layer.empty()) {
    auto it = context.layers.find("iba");
    if (it == context.layers.end() || it->second.empty())
      lab::fail_parameter("iba needs a layer: give -p layer=NAME (this network names no default IBA layer)");
    layer = it->second;
  }
  b.layer = b.net.index_of(layer);
  const lab::Shape shape = b.net.shape_after(b.layer, 1);
  if (shape.size() != 4)
    lab::fail_parameter("iba: layer {} has activations of shape {}; the bottleneck needs a C×h×w feature map", layer,
                        lab::to_string(shape));
  b.channels = shape[1];
  b.h = shape[2];
  b.w = shape[3];
  b.elements = b.channels * b.h * b.w;
  b.cross_entropy = params.loss == "cross-entropy" || (params.loss == "auto" && ends_with_softmax(*context.net));
  if (b.cross_entropy && lab::numel(b.net.output_shape(1)) < 2)
    lab::fail_parameter("iba: loss=cross-entropy needs at least two output units");
  const lab::Tensor& ref = context.reference_inputs;
  if (ref.empty() || ref.batch() < 2)
    lab::fail_parameter("iba needs at least 2 reference inputs to estimate the activation mean and std at {}", layer);
  return b;
}

/// Identifies (network, layer, reference inputs, statistics parameters): the layer's activations
/// of the first two reference inputs stand for the network. Spends those two evaluations.
uint64_t statistics_key(const Iba::Params& params, Bottleneck& b, const lab::Tensor& ref) {
  uint64_t h = lab::fnv1a(b.net.name(b.layer).data(), b.net.name(b.layer).size());
  h = lab::fnv1a(ref.shape().data(), ref.shape().size() * sizeof(int64_t), h);
  h = lab::fnv1a(ref.data(), static_cast<size_t>(ref.numel()) * sizeof(float), h);
  const double settings[2] = {params.min_std, params.active_threshold};
  h = lab::fnv1a(settings, sizeof(settings), h);
  const lab::Tensor probe = b.net.forward_range(0, b.layer + 1, ref.slice(0, 2));
  b.evaluations += 2;
  return lab::fnv1a(probe.data(), static_cast<size_t>(probe.numel()) * sizeof(float), h);
}

/// Per-element mean and std over the reference inputs (Welford, in input order) and the active
/// elements.
void estimate(const Iba::Params& params, Bottleneck& b, const lab::Tensor& ref, int64_t max_batch,
              Iba::Statistics& stats) {
  std::vector<double>& mean = stats.mean;
  std::vector<double>& std = stats.std;
  std::vector<uint8_t>& active = stats.active;
  const size_t e = static_cast<size_t>(b.elements);
  std::vector<double> m(e, 0.0), s(e, 0.0);
  std::vector<int64_t> nonzero(e, 0);
  int64_t count = 0;
  for (int64_t begin = 0; begin < ref.batch(); begin += max_batch) {
    const int64_t end = std::min(ref.batch(), begin + max_batch);
    const lab::Tensor r = b.net.forward_range(0, b.layer + 1, ref.slice(begin, end));
    b.evaluations += end - begin;
    for (int64_t n = 0; n < r.batch(); ++n) {
      ++count;
      const float* v = r.sample(n);
      for (size_t i = 0; i < e; ++i) {
        const double old = m[i];
        m[i] += (v[i] - old) / static_cast<double>(count);
        s[i] += (v[i] - m[i]) * (v[i] - old);
        nonzero[i] += v[i] != 0.0f;
      }
    }
  }
  mean = m;
  std.resize(e);
  active.resize(e);
  for (size_t i = 0; i < e; ++i) {
    std[i] = std::max(std::sqrt(s[i] / static_cast<double>(count - 1)), params.min_std);
    active[i] = static_cast<double>(nonzero[i]) / static_cast<double>(count) > params.active_threshold;
  }
}

/// Sets the bottleneck's statistics, from `iba`'s cache or estimated afresh.
void attach_statistics(const Iba& iba, const Iba::Params& params, Bottleneck& b, const Context& context) {
  const lab::Tensor& ref = context.reference_inputs;
  const uint64_t key = statistics_key(params, b, ref);
  const auto stats = iba.statistics(key, [&](Iba::Statistics& s) { estimate(params, b, ref, context.batch, s); });
  b.mean = stats->mean;
  b.std = stats->std;
  b.active = stats->active;
}

/// One evaluation of the objective for every sample of a batch: loss, ∂loss/∂α and the capacity
/// per element (C, before the active mask is summed away).
struct StepResult {
  std::vector<double> loss;
  std::vector<std::vector<double>> grad, capacity;
};

/// `r`: the samples' activations at the layer (N×C×h×w); `reference_output`: f_t at r (for
/// squared error); `noise(s, k, out)` writes the k-th standard normal draw of sample s.
StepResult bottleneck_step(const Iba::Params& params, Bottleneck& b, const Smoother& smoother, const lab::Tensor& r,
                           const std::vector<double>& reference_output, const std::vector<int64_t>& target,
                           const std::vector<std::vector<double>>& alpha,
                           const std::function<void(int64_t, int64_t, float*)>& noise, int64_t max_batch) {
  const int64_t n = r.batch(), e = b.elements, k_samples = params.samples;
  const size_t es = static_cast<size_t>(e);
  StepResult out;
  out.loss.assign(static_cast<size_t>(n), 0.0);
  out.grad.assign(static_cast<size_t>(n), std::vector<double>(es, 0.0));
  out.capacity.assign(static_cast<size_t>(n), std::vector<double>(es, 0.0));
  // λ = smooth(sigmoid(α)); 1 − λ = smooth(sigmoid(−α)) keeps precision when λ is near 1.
  std::vector<std::vector<double>> lam(static_cast<size_t>(n)), rest(static_cast<size_t>(n)),
      xnorm(static_cast<size_t>(n)), g_lambda(static_cast<size_t>(n), std::vector<double>(es, 0.0));
  parallel_items(0, n, [&](int64_t s) {
    std::vector<double> sig(es), sig_rest(es);
    for (size_t i = 0; i < es; ++i) {
      sig[i] = sigmoid(alpha[s][i]);
      sig_rest[i] = sigmoid(-alpha[s][i]);
    }
    smoother.apply(sig, lam[s], b.channels);
    smoother.apply(sig_rest, rest[s], b.channels);
    xnorm[s].resize(es);
    const float* rv = r.sample(s);
    double info = 0;
    for (size_t i = 0; i < es; ++i) {
      xnorm[s][i] = (rv[i] - b.mean[i]) / b.std[i];
      if (!b.active[i]) continue;
      const double l = lam[s][i], q = rest[s][i], mu = xnorm[s][i] * l;
      const double c = -0.5 * (1.0 + 2.0 * std::log(q) - mu * mu - q * q);
      out.capacity[s][i] = c;
      info += c;
      g_lambda[s][i] = params.beta * (1.0 / q + xnorm[s][i] * xnorm[s][i] * l - q) / static_cast<double>(e);
    }
    out.loss[s] = params.beta * info / static_cast<double>(e);
  });

  // Virtual batch entry v = s·samples + k: sample s with its k-th noise draw.
  const int64_t total = n * k_samples;
  const lab::Shape layer_shape{1, b.channels, b.h, b.w};
  for (int64_t begin = 0; begin < total; begin += max_batch) {
    const int64_t end = std::min(total, begin + max_batch);
    lab::Tensor z({end - begin, b.channels, b.h, b.w});
    std::vector<float> eps(static_cast<size_t>((end - begin) * e));
    parallel_items(begin, end, [&](int64_t v) {
      const int64_t s = v / k_samples;
      float* ev = eps.data() + (v - begin) * e;
      noise(s, v % k_samples, ev);
      float* zv = z.sample(v - begin);
      for (size_t i = 0; i < es; ++i) {
        const double zn = xnorm[s][i] * lam[s][i] + rest[s][i] * ev[i];
        zv[i] = b.active[i] ? static_cast<float>(zn * b.std[i] + b.mean[i]) : 0.0f;
      }
    });
    // A trace from the layer on: only the activations after it are read by the backward pass.
    lab::Trace trace;
    trace.acts.resize(b.net.size() + 1);
    trace.acts[b.layer + 1] = std::move(z);
    for (size_t i = b.layer + 1; i < b.net.size(); ++i) trace.acts[i + 1] = b.net.forward_range(i, i + 1, trace.acts[i]);
    const lab::Tensor& y = trace.output();
    const int64_t units = y.sample_numel();
    lab::Tensor seed(y.shape(), 0.0f);
    std::vector<double> model_loss(static_cast<size_t>(end - begin));
    for (int64_t v = begin; v < end; ++v) {
      const int64_t s = v / k_samples, t = target[static_cast<size_t>(s)];
      const float* row = y.sample(v - begin);
      float* sd = seed.sample(v - begin);
      if (b.cross_entropy) {
        // −log softmax(z/T)_t and its gradient (softmax(z/T) − e_t)/T w.r.t. the logits z.
        const double inv_t = 1.0 / params.temperature;
        const double top = static_cast<double>(*std::max_element(row, row + units)) * inv_t;
        double den = 0;
        for (int64_t u = 0; u < units; ++u) den += std::exp(row[u] * inv_t - top);
        model_loss[static_cast<size_t>(v - begin)] = -(row[t] * inv_t - top - std::log(den));
        for (int64_t u = 0; u < units; ++u)
          sd[u] = static_cast<float>((std::exp(row[u] * inv_t - top) / den - (u == t ? 1.0 : 0.0)) * inv_t /
                                     static_cast<double>(k_samples));
      } else {
        const double d = row[t] - reference_output[static_cast<size_t>(s)];
        model_loss[static_cast<size_t>(v - begin)] = d * d;
        sd[t] = static_cast<float>(2.0 * d / static_cast<double>(k_samples));
      }
    }
    const lab::Tensor g = b.net.gradient(trace, seed, b.layer);
    b.evaluations += 2 * (end - begin);
    // Entries are added in index order, so sums do not depend on the chunk size.
    const int64_t first = begin / k_samples, last = (end - 1) / k_samples;
    parallel_items(first, last + 1, [&](int64_t s) {
      for (int64_t v = std::max(begin, s * k_samples); v < std::min(end, (s + 1) * k_samples); ++v) {
        out.loss[s] += model_loss[static_cast<size_t>(v - begin)] / static_cast<double>(k_samples);
        const float* gv = g.sample(v - begin);
        const float* ev = eps.data() + (v - begin) * e;
        for (size_t i = 0; i < es; ++i)
          if (b.active[i]) g_lambda[s][i] += gv[i] * (xnorm[s][i] - ev[i]) * b.std[i];
      }
    });
  }
  // ∂λ/∂α: the transposed smoothing, then sigmoid' = sigmoid(α)·sigmoid(−α).
  parallel_items(0, n, [&](int64_t s) {
    std::vector<double> g_sig(es);
    smoother.transpose(g_lambda[s], g_sig, b.channels);
    for (size_t i = 0; i < es; ++i) out.grad[s][i] = g_sig[i] * sigmoid(alpha[s][i]) * sigmoid(-alpha[s][i]);
  });
  return out;
}

/// f_t(R) per sample from the layer activations (squared-error loss only).
std::vector<double> outputs_from_layer(Bottleneck& b, const lab::Tensor& r, const std::vector<int64_t>& target,
                                       int64_t max_batch) {
  std::vector<double> out(static_cast<size_t>(r.batch()), 0.0);
  if (b.cross_entropy) return out;
  for (int64_t begin = 0; begin < r.batch(); begin += max_batch) {
    const int64_t end = std::min(r.batch(), begin + max_batch);
    const lab::Tensor y = b.net.forward_range(b.layer + 1, b.net.size(), r.slice(begin, end));
    b.evaluations += end - begin;
    for (int64_t n = begin; n < end; ++n) out[static_cast<size_t>(n)] = y.sample(n - begin)[target[static_cast<size_t>(n)]];
  }
  return out;
}

lab::Tensor layer_activations(Bottleneck& b, const lab::Tensor& x, int64_t max_batch) {
  std::vector<lab::Tensor> parts;
  for (int64_t begin = 0; begin < x.batch(); begin += max_batch) {
    const int64_t end = std::min(x.batch(), begin + max_batch);
    parts.push_back(b.net.forward_range(0, b.layer + 1, x.slice(begin, end)));
    b.evaluations += end - begin;
  }
  return parts.size() == 1 ? parts.front() : lab::Tensor::concat(parts);
}

}  // namespace

const lab::Schema<Iba::Params>& Iba::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .with(layer_param(&Params::layer, "layer of the bottleneck", "iba", "accumulator.layers.7"))
          .field("beta", &Params::beta,
                 {.range = lab::at_least(0),
                  .help = "weight β of the information loss",
                  .source = "App. F.2, G.2: 20 (Schulz et al. 2020: 10)"})
          .field("temperature", &Params::temperature,
                 {.range = lab::above(0),
                  .help = "T of the cross-entropy -log softmax(z/T); the environment's logit-scale gives the count logits",
                  .source = "App. F.2, G.2: beta = 20 against logits equal to pixel counts"})
          .field("iterations", &Params::iterations,
                 {.range = lab::at_least(1), .help = "Adam steps", .source = "Schulz et al. 2020, the authors' settings"})
          .field("samples", &Params::samples,
                 {.range = lab::at_least(1), .help = "noise draws per step", .source = "Schulz et al. 2020, the authors' settings"})
          .field("lr", &Params::lr,
                 {.range = lab::above(0), .help = "Adam learning rate on α", .source = "Schulz et al. 2020, the authors' settings"})
          .field("init-alpha", &Params::init_alpha,
                 {.help = "initial α of λ = sigmoid(α)", .source = "the authors' code"})
          .field("smooth-sigma", &Params::smooth_sigma,
                 {.range = lab::at_least(0),
                  .help = "σ of the Gaussian smoothing of λ, in feature-map elements (0 = none)",
                  .source = "Schulz et al. 2020, the authors' settings"})
          .field("min-std", &Params::min_std,
                 {.range = lab::above(0), .help = "lower bound of the estimated activation std", .source = "the authors' code"})
          .field("active-threshold", &Params::active_threshold,
                 {.range = lab::Range{.min = 0, .max = 1, .max_open = true},
                  .help = "elements nonzero on at most this fraction of the reference inputs are dropped",
                  .source = "the authors' code"})
          .field("loss", &Params::loss,
                 {.choices = {"auto", "cross-entropy", "squared-error"},
                  .help = "auto: cross-entropy with a final softmax, else squared error",
                  .source = "Schulz et al. 2020: the cross-entropy of the prediction"});
  return s;
}

Iba::Iba(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

std::shared_ptr<const Iba::Statistics> Iba::statistics(uint64_t key,
                                                       const std::function<void(Statistics&)>& estimate) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (statistics_ && statistics_->key == key) return statistics_;
  }
  auto fresh = std::make_shared<Statistics>();
  fresh->key = key;
  estimate(*fresh);
  std::lock_guard<std::mutex> lock(mutex_);
  statistics_ = fresh;
  return fresh;
}

Iba::Objective Iba::objective(const Context& context, const lab::Tensor& x1, int64_t target,
                              const std::vector<double>& alpha, const std::vector<float>& noise) const {
  Bottleneck b = make_bottleneck(params_, context);
  attach_statistics(*this, params_, b, context);
  const Smoother smoother(params_.smooth_sigma, b.h, b.w);
  LAB_CHECK(x1.batch() == 1 && static_cast<int64_t>(alpha.size()) == b.elements &&
                static_cast<int64_t>(noise.size()) == params_.samples * b.elements,
            "objective of one sample");
  const lab::Tensor r = layer_activations(b, x1, context.batch);
  const std::vector<int64_t> targets{target};
  const std::vector<double> reference = outputs_from_layer(b, r, targets, context.batch);
  const StepResult step = bottleneck_step(
      params_, b, smoother, r, reference, targets, {alpha},
      [&](int64_t, int64_t k, float* out) { std::copy_n(noise.data() + k * b.elements, b.elements, out); },
      context.batch);
  return {step.loss[0], step.grad[0]};
}

Result Iba::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, true);
  const lab::Tensor& x = batch.x;
  if (x.rank() != 4) lab::fail_parameter("iba needs C×H×W inputs, got {}", lab::to_string(x.sample_shape()));
  Bottleneck b = make_bottleneck(params_, context);
  attach_statistics(*this, params_, b, context);
  const Smoother smoother(params_.smooth_sigma, b.h, b.w);
  const int64_t n = x.batch(), e = b.elements;
  const lab::Tensor r = layer_activations(b, x, context.batch);
  const std::vector<double> reference = outputs_from_layer(b, r, batch.target, context.batch);

  std::vector<std::vector<double>> alpha(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(e), params_.init_alpha));
  std::vector<Adam> adam(static_cast<size_t>(n), Adam(static_cast<size_t>(e), params_.lr));
  StepResult step;
  for (int64_t t = 0; t < params_.iterations; ++t) {
    auto noise = [&](int64_t s, int64_t k, float* out) {
      const uint64_t draw = static_cast<uint64_t>(t * params_.samples + k);
      Draws draws(lab::Rng(lab::derive_seed(batch.seeds[static_cast<size_t>(s)], draw), kIbaStream).engine());
      for (int64_t i = 0; i < e; ++i) out[i] = static_cast<float>(draws.normal());
    };
    step = bottleneck_step(params_, b, smoother, r, reference, batch.target, alpha, noise, context.batch);
    parallel_items(0, n, [&](int64_t s) { adam[s].step(alpha[s], step.grad[s]); });
  }

  // The heatmap of the last step: capacity summed over channels, in bits per input pixel.
  const int64_t height = x.dim(2), width = x.dim(3), hw = b.h * b.w;
  lab::Tensor coarse({n, b.h, b.w}, 0.0f);
  const double scale = static_cast<double>(hw) / static_cast<double>(height * width) / std::numbers::ln2;
  for (int64_t s = 0; s < n; ++s)
    for (int64_t c = 0; c < b.channels; ++c)
      for (int64_t i = 0; i < hw; ++i)
        coarse[s * hw + i] += static_cast<float>(step.capacity[static_cast<size_t>(s)][static_cast<size_t>(c * hw + i)] * scale);
  Result out;
  out.attr = spread_over_channels(upsample_bilinear(coarse, height, width), x.dim(1));
  out.evaluations = b.evaluations;
  return out;
}

MethodInfo Iba::info() {
  return method_info<Iba>("iba", "per-sample information bottleneck at a hidden layer (Schulz et al. 2020)");
}

}  // namespace attributions
