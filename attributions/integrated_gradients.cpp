#include "attributions/integrated_gradients.h"

#include <algorithm>

#include "lab/core/error.h"
#include "lab/core/quadrature.h"

namespace attributions {

void IntegratedGradients::Params::validate() const {
  const auto& names = lab::quadrature_names();
  if (std::find(names.begin(), names.end(), quadrature) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : "|") + n;
    lab::fail_parameter("-p quadrature={}: expected one of {}", quadrature, list);
  }
  const int64_t least = quadrature == "trapezoid" ? 2 : 1;
  lab::require(steps >= least && steps <= 100000, "-p steps",
               fmt::format("an integer in {}..100000 for {}", least, quadrature), std::to_string(steps));
}

IntegratedGradients::Params IntegratedGradients::Params::from_options(lab::Options& options) {
  Params p;
  p.steps = options.get_int("steps", p.steps);
  p.quadrature = options.get_string("quadrature", p.quadrature);
  p.baseline = read_baseline(options, "baseline", p.baseline);
  p.output = read_output(options, p.output);
  p.validate();
  return p;
}

nlohmann::json IntegratedGradients::Params::to_json() const {
  return {{"steps", steps}, {"quadrature", quadrature}, {"baseline", baseline.to_string()},
          {"output", output_name(output)}};
}

IntegratedGradients::IntegratedGradients(Params params) : params_(std::move(params)) { params_.validate(); }

Result IntegratedGradients::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor& x = batch.x;
  const lab::Tensor base = params_.baseline.resolve(context, x.sample_shape());
  const lab::Quadrature q = lab::make_quadrature(params_.quadrature, static_cast<int>(params_.steps));
  const int64_t n = x.batch(), m = x.sample_numel(), steps = params_.steps;

  // Virtual batch of n·steps path points, sample-major: input i is sample i / steps at node i % steps.
  auto path = [&](int64_t begin, int64_t end) {
    lab::Shape shape = x.shape();
    shape[0] = end - begin;
    lab::Tensor out(shape);
    for (int64_t i = begin; i < end; ++i) {
      const float* xs = x.sample(i / steps);
      const float t = static_cast<float>(q.nodes[static_cast<size_t>(i % steps)]);
      float* o = out.sample(i - begin);
      for (int64_t j = 0; j < m; ++j) o[j] = base[j] + t * (xs[j] - base[j]);
    }
    return out;
  };
  auto target = [&](int64_t i) { return batch.target[static_cast<size_t>(i / steps)]; };
  std::vector<double> integral(static_cast<size_t>(n * m), 0.0);
  Backprop bp{.net = &net};
  Result r;
  r.evaluations = run_backprop(bp, n * steps, context.chunk, path, target,
                               [&](int64_t begin, const lab::Trace&, const lab::Tensor& grad) {
                                 for (int64_t b = 0; b < grad.batch(); ++b) {
                                   const int64_t i = begin + b;
                                   const double w = q.weights[static_cast<size_t>(i % steps)];
                                   double* acc = integral.data() + (i / steps) * m;
                                   const float* g = grad.sample(b);
                                   for (int64_t j = 0; j < m; ++j) acc[j] += w * g[j];
                                 }
                               });

  r.attr = lab::Tensor(x.shape());
  for (int64_t s = 0; s < n; ++s)
    for (int64_t j = 0; j < m; ++j)
      r.attr[s * m + j] = static_cast<float>((static_cast<double>(x[s * m + j]) - base[j]) * integral[static_cast<size_t>(s * m + j)]);

  auto sample_target = [&](int64_t s) { return batch.target[static_cast<size_t>(s)]; };
  const std::vector<double> fx = output_at(net, x, sample_target, context.chunk);
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

MethodInfo IntegratedGradients::info() {
  return make_info<IntegratedGradients>(
      "integrated-gradients",
      "path integral of gradients from a baseline to the input (Sundararajan et al. 2017); reports the completeness gap",
      {{"steps", "quadrature points along the path (paper: 50)"},
       {"quadrature", "riemann-left | riemann-right | riemann-middle | trapezoid | gauss-legendre"},
       {"baseline", "zero | background (IG*: the task's true background) | R,G,B | file.npy | file.png"},
       {"output", "probability (after the final softmax; App. G.2) | logit (before it)"}});
}

}  // namespace attributions
