#include "experiments/metrics/invariant.h"

#include <algorithm>
#include <cmath>

#include "attributions/deeplift.h"
#include "lab/core/error.h"
#include "lab/core/quadrature.h"

namespace experiments {

namespace {

const std::vector<std::pair<Promise, std::string>>& promise_names() {
  static const std::vector<std::pair<Promise, std::string>> names = {
      {Promise::kAuto, "auto"},
      {Promise::kNone, "none"},
      {Promise::kCompleteness, "completeness"},
      {Promise::kSummationToDelta, "summation-to-delta"},
      {Promise::kConservation, "conservation"}};
  return names;
}

Promise promise_named(const std::string& name) {
  for (const auto& [p, n] : promise_names())
    if (n == name) return p;
  return Promise::kNone;
}

attributions::Output output_named(const nlohmann::json& params, attributions::Output fallback) {
  if (!params.is_object() || !params.contains("output") || !params["output"].is_string()) return fallback;
  for (const auto& [o, n] : attributions::output_choices())
    if (n == params["output"].get<std::string>()) return o;
  return fallback;
}

std::string text_param(const nlohmann::json& params, const char* key, const std::string& fallback) {
  return params.is_object() && params.contains(key) && params[key].is_string() ? params[key].get<std::string>()
                                                                                 : fallback;
}

}  // namespace

const lab::Schema<InvariantParams>& InvariantParams::schema() {
  using Params = InvariantParams;
  static const auto s =
      lab::Schema<Params>()
          .choice("promise", &Params::promise, promise_names(),
                  {.help = "auto: the promise of the method that made the maps; or check a named one (maps from "
                           "elsewhere)",
                   .source = "Sundararajan et al. 2017 Prop. 1; Shrikumar et al. 2017 eq. 1; Bach et al. 2015 eq. 2"})
          .custom("baseline", &Params::baseline, attributions::baseline_codec(),
                  {.help = "reference input x' of a named completeness or summation-to-delta promise: zero | "
                           "background | R,G,B | file.npy | file.png (auto: the method's own)",
                   .source = "Sundararajan et al. 2017, Sec. 3"})
          .choice("output", &Params::output, attributions::output_choices(),
                  {.help = "explained output f of a named promise: probability | logit (auto: the method's own)"})
          .field("tolerance", &Params::tolerance,
                 {.range = lab::between(0, 1),
                  .help = "allowed relative violation |S - delta| / max(|f(x)|, |f(x')|), plus IG's quadrature bound",
                  .source = "float32 sums of ~10^3 terms; the issue's 1e-5"});
  return s;
}

std::vector<Variant> Invariant::all_variants() {
  return {{"violation", Direction::kLowerIsBetter},
          {"allowed", Direction::kLowerIsBetter},
          {"pass", Direction::kHigherIsBetter}};
}

std::string Invariant::promise_of(const std::string& method) {
  if (method == "integrated-gradients" || method == "input-x-gradient") return "completeness";
  if (method == "deeplift" || method == "deepshap") return "summation-to-delta";
  if (method == "lrp") return "conservation";
  return "none";
}

double Invariant::quadrature_weight(const std::string& rule, int64_t steps) {
  if (rule == "exact") return 0.0;
  const lab::Quadrature q = lab::make_quadrature(rule, static_cast<int>(steps));
  return *std::max_element(q.weights.begin(), q.weights.end());
}

MetricOutput Invariant::evaluate_batch(const Context& context, const Batch& batch) const {
  const ScoredMethod& method = context.method;
  Promise promise = params_.promise;
  if (promise == Promise::kAuto) {
    if (method.name.empty())
      lab::fail_parameter("-p promise=auto: the method that made the maps is not known here (maps read from files); "
                          "name the promise (completeness, summation-to-delta or conservation) with its baseline "
                          "and output");
    promise = promise_named(promise_of(method.name));
  }
  MetricOutput out;
  if (promise == Promise::kNone) return out;
  const bool from_method = params_.promise == Promise::kAuto;

  // The method context baselines resolve against (the method's own, or one made from the task).
  attributions::Context local;
  local.net = context.net;
  local.background = context.background;
  local.batch = context.batch;
  const attributions::Context& actx = from_method && method.context != nullptr ? *method.context : local;

  const attributions::Output output = from_method ? output_named(method.params, params_.output) : params_.output;
  const lab::Network net = attributions::explained_network(*context.net, output);
  const int64_t n = batch.size();
  const lab::Shape shape = batch.x.sample_shape();
  const int64_t m = batch.x.sample_numel();
  const auto target_of = [&](int64_t per) {
    return [&batch, per](int64_t i) { return batch.target[static_cast<size_t>(i / per)]; };
  };

  // References: K per image (K = 1 but for DeepSHAP over data), laid out image-major.
  int64_t k = 1;
  lab::Tensor refs;
  if (promise != Promise::kConservation) {
    if (from_method && method.name == "deepshap") {
      const std::optional<attributions::DeepShap::Baselines> b =
          attributions::DeepShap::Baselines::parse(text_param(method.params, "baselines", "zero"));
      LAB_CHECK(b.has_value(), "deepshap params without readable baselines: {}", method.params.dump());
      if (b->data_count == 0) {
        refs = b->fixed.resolve(actx, shape);
      } else {
        const lab::Tensor& data = actx.reference_inputs;
        LAB_CHECK(!data.empty(), "deepshap baselines={} without reference inputs", b->to_string());
        const int64_t available = data.batch();
        k = b->data_count < 0 ? available : std::min(b->data_count, available);
        lab::Shape full = shape;
        full.insert(full.begin(), n * k);
        refs = lab::Tensor(full);
        for (int64_t i = 0; i < n; ++i) {
          LAB_CHECK(method.seed != nullptr, "deepshap maps without their seeds");
          const std::vector<int64_t> pick =
              attributions::DeepShap::draw_baselines(method.seed(batch.ids[static_cast<size_t>(i)]), available, k);
          for (int64_t j = 0; j < k; ++j) {
            const float* src = data.sample(pick[static_cast<size_t>(j)]);
            std::copy(src, src + m, refs.sample(i * k + j));
          }
        }
      }
    } else {
      const attributions::Baseline baseline =
          from_method ? attributions::Baseline::parse(text_param(method.params, "baseline", "zero"))
                      : params_.baseline;
      refs = baseline.resolve(actx, shape);
    }
  }
  // A single reference shared by every image: replicate it so each image has its own.
  if (!refs.empty() && refs.batch() == 1 && n * k > 1) {
    lab::Shape full = shape;
    full.insert(full.begin(), n * k);
    lab::Tensor rep(full);
    for (int64_t i = 0; i < n * k; ++i) std::copy(refs.data(), refs.data() + m, rep.sample(i));
    refs = std::move(rep);
  }

  const std::vector<double> fx = attributions::output_at(net, batch.x, target_of(1), context.batch);
  std::vector<double> fr;
  if (!refs.empty()) fr = attributions::output_at(net, refs, target_of(k), context.batch);

  // IG's quadrature term: w_max times the variation of g(α) = ∇f(x' + α(x − x')) · (x − x') at
  // the rule's nodes with 0 and 1 added.
  double w_max = 0.0;
  std::vector<double> variation(static_cast<size_t>(n), 0.0);
  if (from_method && method.name == "integrated-gradients") {
    const std::string rule = text_param(method.params, "quadrature", "gauss-legendre");
    const int64_t steps = method.params.value("steps", int64_t{50});
    w_max = quadrature_weight(rule, steps);
    if (w_max > 0.0) {
      std::vector<double> t = lab::make_quadrature(rule, static_cast<int>(steps)).nodes;
      t.push_back(0.0);
      t.push_back(1.0);
      std::sort(t.begin(), t.end());
      const auto points = static_cast<int64_t>(t.size());
      lab::Shape full = shape;
      full.insert(full.begin(), n * points);
      lab::Tensor path(full);
      std::vector<int64_t> targets;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t q = 0; q < points; ++q) {
          const float* x = batch.x.sample(i);
          const float* base = refs.sample(i);
          float* dst = path.sample(i * points + q);
          const auto a = static_cast<float>(t[static_cast<size_t>(q)]);
          for (int64_t j = 0; j < m; ++j) dst[j] = base[j] + a * (x[j] - base[j]);
          targets.push_back(batch.target[static_cast<size_t>(i)]);
        }
      attributions::Backprop bp;
      bp.net = &net;
      const attributions::Signal grad = attributions::backprop_batch(bp, path, targets, context.batch);
      for (int64_t i = 0; i < n; ++i) {
        const float* x = batch.x.sample(i);
        const float* base = refs.sample(i);
        double previous = 0.0;
        for (int64_t q = 0; q < points; ++q) {
          const float* g = grad.signal.sample(i * points + q);
          double dot = 0.0;
          for (int64_t j = 0; j < m; ++j) dot += static_cast<double>(g[j]) * (static_cast<double>(x[j]) - base[j]);
          if (q > 0) variation[static_cast<size_t>(i)] += std::abs(dot - previous);
          previous = dot;
        }
      }
    }
  }

  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  for (int64_t i = 0; i < n; ++i) {
    const auto si = static_cast<size_t>(i);
    double sum = 0.0;
    for (int64_t p = 0; p < hw; ++p) sum += batch.attr.data()[i * hw + p];
    double delta = fx[si], scale = std::abs(fx[si]);
    if (promise != Promise::kConservation) {
      double mean = 0.0;
      for (int64_t j = 0; j < k; ++j) {
        const double f = fr[static_cast<size_t>(i * k + j)];
        mean += f;
        scale = std::max(scale, std::abs(f));
      }
      delta -= mean / static_cast<double>(k);
    }
    const double gap = std::abs(sum - delta);
    const double violation = scale > 0.0 ? gap / scale : gap;
    const double quadrature = w_max * variation[si];
    const double allowed = params_.tolerance + (scale > 0.0 ? quadrature / scale : quadrature);
    const std::string& id = batch.ids[si];
    out.rows.push_back({id, "violation", violation});
    out.rows.push_back({id, "allowed", allowed});
    out.rows.push_back({id, "pass", violation <= allowed ? 1.0 : 0.0});
  }
  return out;
}

}  // namespace experiments
