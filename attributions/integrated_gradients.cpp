#include "attributions/integrated_gradients.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lab/core/error.h"
#include "lab/core/quadrature.h"
#include "lab/core/storage.h"
#include "lab/nn/gradient_trace.h"
#include "attributions/linear_regions.h"

namespace attributions {

const lab::Schema<IntegratedGradients::Params>& IntegratedGradients::Params::schema() {
  static const auto s = [] {
    std::vector<std::string> rules = lab::quadrature_names();
    rules.push_back("exact");
    return lab::Schema<Params>()
        .field("steps", &Params::steps,
               {.range = lab::between(1, 100000),
                .help = "quadrature points along the path (paper: 50; steps unused by exact)",
                .source = "Sundararajan et al. 2017, eq. 3; Captum n_steps"})
        .field("quadrature", &Params::quadrature,
               {.choices = rules,
                .help = "quadrature rule on [0, 1]; exact sums over the linear regions the path crosses",
                .source = "Captum's default gauss-legendre"})
        .with(baseline_param(&Params::baseline, "reference input of the path (background: IG*)", "Sec. 4.3"))
        .with(output_param(&Params::output, "App. G.2: IG measured after the softmax"))
        .check([](const Params& p, const std::string& flag) {
          if (p.quadrature == "trapezoid" && p.steps < 2)
            lab::fail_value(flag, "steps", std::to_string(p.steps), "an integer in 2..100000 for trapezoid");
        });
  }();
  return s;
}

IntegratedGradients::IntegratedGradients(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

namespace {

/// ∫ over [a, b] of ∂ softmax(z(u))_t / ∂z, z(u) = z_mid + (u − mid) ż, by 32-point Gauss–Legendre
/// (the integrand is smooth on a linear region): the seed at the logits whose backward is the
/// region's integral of the probability's gradient.
void softmax_gradient_integral(const float* z_mid, const float* z_dot, int64_t k, int64_t t, double a, double b,
                               float* seed) {
  static const lab::Quadrature q = lab::make_quadrature("gauss-legendre", 32);
  const double mid = 0.5 * (a + b);
  std::vector<double> acc(static_cast<size_t>(k), 0.0), p(static_cast<size_t>(k));
  for (size_t node = 0; node < q.nodes.size(); ++node) {
    const double u = a + q.nodes[node] * (b - a);
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < k; ++j) {
      p[static_cast<size_t>(j)] = z_mid[j] + (u - mid) * z_dot[j];
      top = std::max(top, p[static_cast<size_t>(j)]);
    }
    double sum = 0;
    for (double& v : p) sum += (v = std::exp(v - top));
    for (double& v : p) v /= sum;
    const double w = q.weights[node] * (b - a), pt = p[static_cast<size_t>(t)];
    for (int64_t j = 0; j < k; ++j)
      acc[static_cast<size_t>(j)] += w * pt * ((j == t ? 1.0 : 0.0) - p[static_cast<size_t>(j)]);
  }
  for (int64_t j = 0; j < k; ++j) seed[j] = static_cast<float>(acc[static_cast<size_t>(j)]);
}

}  // namespace

/// quadrature=exact: ∫₀¹ ∇f dα as a sum over the linear regions of the path (linear_regions.h).
/// On a region [a, b] the logits' gradient is constant: it is taken at the midpoint, times b − a;
/// for the probability, the backward starts from the region's integral of ∂p_t/∂z instead.
int64_t IntegratedGradients::exact_integral(const Context& context, const Batch& batch, const lab::Tensor& base,
                                            std::vector<double>& integral) const {
  const lab::Network net = explained_network(*context.net, Output::kLogit);
  require_piecewise_linear(net, "integrated-gradients -p quadrature=exact");
  const bool softmax = params_.output == Output::kProbability && ends_with_softmax(*context.net);
  const lab::Tensor& x = batch.x;
  const int64_t n = x.batch(), m = x.sample_numel(), k = lab::numel(net.output_shape(1));
  constexpr int64_t kMaxRegions = 1000000;
  int64_t evaluations = 0;

  // 1. The walk: every sample's regions [a, b] and the logits' tangent on each (2 evaluations per
  // region), the samples of a chunk advancing together.
  struct Region {
    int64_t sample;
    double a, b;
    std::vector<float> logit_tangent;
  };
  std::vector<std::vector<Region>> regions(static_cast<size_t>(n));
  for (int64_t begin = 0; begin < n; begin += context.batch) {
    std::vector<int64_t> active;
    for (int64_t s = begin; s < std::min(n, begin + context.batch); ++s) active.push_back(s);
    std::vector<double> alpha(active.size(), 0.0);
    for (int64_t round = 0; !active.empty(); ++round) {
      if (round >= kMaxRegions)
        lab::fail_parameter("integrated-gradients -p quadrature=exact: the path crosses more than {} linear regions; "
                            "use a quadrature rule with -p steps",
                            kMaxRegions);
      const int64_t count = static_cast<int64_t>(active.size());
      lab::Shape shape = x.shape();
      shape[0] = count;
      lab::Tensor ends = lab::uninitialized(shape);
      for (int64_t i = 0; i < count; ++i)
        std::copy(x.sample(active[static_cast<size_t>(i)]), x.sample(active[static_cast<size_t>(i)]) + m, ends.sample(i));
      const RegionStep step = next_region(net, base, ends, alpha);
      evaluations += 2 * count;
      std::vector<int64_t> still;
      std::vector<double> still_alpha;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t s = active[static_cast<size_t>(i)];
        const double end = step.end[static_cast<size_t>(i)];
        const float* tangent = step.output_tangent.sample(i);
        regions[static_cast<size_t>(s)].push_back({s, alpha[static_cast<size_t>(i)], end,
                                                   softmax ? std::vector<float>(tangent, tangent + k)
                                                           : std::vector<float>{}});
        if (end < 1.0) {
          still.push_back(s);
          still_alpha.push_back(end);
        }
      }
      active = std::move(still);
      alpha = std::move(still_alpha);
    }
  }

  // 2. The gradient on every region at its midpoint, all regions of all samples as one virtual
  // batch (sample-major, so sums run in the same order for any chunk size). On [a, b] the logits'
  // gradient is constant: seed (b − a) at the target; for the probability, the seed is the
  // region's integral of ∂p_t/∂z.
  std::vector<const Region*> all;
  for (const auto& list : regions)
    for (const Region& r : list) all.push_back(&r);
  const int64_t total = static_cast<int64_t>(all.size());
  for (int64_t begin = 0; begin < total; begin += context.batch) {
    const int64_t end = std::min(total, begin + context.batch);
    lab::Shape shape = x.shape();
    shape[0] = end - begin;
    lab::Tensor mid = lab::uninitialized(shape);
    for (int64_t i = begin; i < end; ++i) {
      const Region& r = *all[static_cast<size_t>(i)];
      point_on_path(base.data(), x.sample(r.sample), static_cast<float>(0.5 * (r.a + r.b)), mid.sample(i - begin), m);
    }
    lab::Trace trace = lab::trace_for_gradient(net, mid);  // read: the output
    lab::Tensor seed(trace.output().shape());
    for (int64_t i = begin; i < end; ++i) {
      const Region& r = *all[static_cast<size_t>(i)];
      const int64_t t = batch.target[static_cast<size_t>(r.sample)];
      if (softmax)
        softmax_gradient_integral(trace.output().sample(i - begin), r.logit_tangent.data(), k, t, r.a, r.b,
                                  seed.sample(i - begin));
      else
        seed.sample(i - begin)[t] = static_cast<float>(r.b - r.a);
    }
    lab::Tensor grad = net.gradient(trace, seed);
    evaluations += 2 * (end - begin);
    for (int64_t i = begin; i < end; ++i) {
      double* acc = integral.data() + all[static_cast<size_t>(i)]->sample * m;
      const float* g = grad.sample(i - begin);
      for (int64_t j = 0; j < m; ++j) acc[j] += g[j];
    }
    if (end < total) {  // for the next chunk (lab/core/storage.h)
      lab::recycle(mid);
      lab::recycle(trace.acts);
      lab::recycle(grad);
    }
  }
  return evaluations;
}

Result IntegratedGradients::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor& x = batch.x;
  const lab::Tensor base = params_.baseline.resolve(context, x.sample_shape());
  const int64_t n = x.batch(), m = x.sample_numel();
  std::vector<double> integral(static_cast<size_t>(n * m), 0.0);
  Result r;
  if (params_.quadrature == "exact")
    r.evaluations = exact_integral(context, batch, base, integral);
  else
    r.evaluations = quadrature_integral(context, batch, base, integral);

  r.attr = lab::uninitialized(x.shape());
  for (int64_t s = 0; s < n; ++s)
    for (int64_t j = 0; j < m; ++j)
      r.attr[s * m + j] = static_cast<float>((static_cast<double>(x[s * m + j]) - base[j]) * integral[static_cast<size_t>(s * m + j)]);

  auto sample_target = [&](int64_t s) { return batch.target[static_cast<size_t>(s)]; };
  const std::vector<double> fx = output_at(net, x, sample_target, context.batch);
  const lab::Tensor fb = net.forward(base);
  r.evaluations += n + 1;
  r.convergence_delta.resize(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    double sum = 0;
    for (int64_t j = 0; j < m; ++j) sum += r.attr[s * m + j];
    r.convergence_delta[static_cast<size_t>(s)] = sum - (fx[static_cast<size_t>(s)] - fb[sample_target(s)]);
  }
  return r;
}

int64_t IntegratedGradients::quadrature_integral(const Context& context, const Batch& batch, const lab::Tensor& base,
                                                 std::vector<double>& integral) const {
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor& x = batch.x;
  const lab::Quadrature q = lab::make_quadrature(params_.quadrature, static_cast<int>(params_.steps));
  const int64_t n = x.batch(), m = x.sample_numel(), steps = params_.steps;

  // Virtual batch of n·steps path points, sample-major: input i is sample i / steps at node i % steps.
  auto path = [&](int64_t begin, int64_t end) {
    lab::Shape shape = x.shape();
    shape[0] = end - begin;
    lab::Tensor out = lab::uninitialized(shape);
    for (int64_t i = begin; i < end; ++i) {
      point_on_path(base.data(), x.sample(i / steps), static_cast<float>(q.nodes[static_cast<size_t>(i % steps)]),
                    out.sample(i - begin), m);
    }
    return out;
  };
  auto target = [&](int64_t i) { return batch.target[static_cast<size_t>(i / steps)]; };
  Backprop bp{.net = &net};
  return run_backprop(bp, n * steps, context.batch, path, target,
                      [&](int64_t begin, const lab::Trace&, const lab::Tensor& grad) {
                        for (int64_t b = 0; b < grad.batch(); ++b) {
                          const int64_t i = begin + b;
                          const double w = q.weights[static_cast<size_t>(i % steps)];
                          double* acc = integral.data() + (i / steps) * m;
                          const float* g = grad.sample(b);
                          for (int64_t j = 0; j < m; ++j) acc[j] += w * g[j];
                        }
                      });
}

MethodInfo IntegratedGradients::info() {
  return method_info<IntegratedGradients>(
      "integrated-gradients",
      "path integral of gradients from a baseline to the input (Sundararajan et al. 2017); reports the completeness gap");
}

}  // namespace attributions
