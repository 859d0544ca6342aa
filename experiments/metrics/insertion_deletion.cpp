#include "experiments/metrics/insertion_deletion.h"

#include "experiments/metrics/incremental.h"
#include "lab/core/error.h"

namespace experiments {

void InsertionDeletion::Params::validate() const {
  perturbation.validate();
  lab::require(pixels_per_step >= 1, "-p pixels_per_step", ">= 1", std::to_string(pixels_per_step));
  if (perturbation.mode == PerturbationMode::kModulo && pixels_per_step != 1)
    lab::fail_parameter("-p pixels_per_step must be 1 in modulo mode (App. F.4 perturbs one pixel per step), got {}",
                        pixels_per_step);
}

InsertionDeletion::Params InsertionDeletion::Params::from_options(lab::Options& options, const MetricSetup& setup) {
  Params p;
  p.perturbation = PerturbationParams::from_options(options, setup);
  p.pixels_per_step = options.get_int("pixels_per_step", p.pixels_per_step);
  p.validate();
  return p;
}

nlohmann::json InsertionDeletion::Params::to_json() const {
  nlohmann::json j = perturbation.to_json();
  j["pixels_per_step"] = pixels_per_step;
  return j;
}

InsertionDeletion::InsertionDeletion(Kind kind, Params params) : kind_(kind), params_(std::move(params)) {
  params_.validate();
}

std::string InsertionDeletion::variant() const {
  return params_.perturbation.mode == PerturbationMode::kModulo ? "auc-modulo" : "auc";
}

std::vector<Variant> InsertionDeletion::variants() const {
  return {{variant(), kind_ == Kind::kInsertion ? Direction::kHigherIsBetter : Direction::kLowerIsBetter}};
}

PathEvaluator InsertionDeletion::evaluator(const Context& context, bool incremental) const {
  const lab::Network& net = *context.net;
  const size_t end = params_.perturbation.mode == PerturbationMode::kModulo
                         ? net.size()
                         : OutputReader(net, params_.perturbation.output).end();
  PathEvaluator::Params knobs;
  knobs.max_chunk = context.max_chunk;
  knobs.incremental = incremental;
  return PathEvaluator(net, end, knobs);
}

std::vector<CurvePoint> InsertionDeletion::curve(const Context& context, const PathEvaluator& evaluator,
                                                 const lab::Tensor& x, const float* attr, const float* gt,
                                                 int64_t target, const std::string& id, uint64_t seed) const {
  const lab::Network& net = *context.net;
  const int64_t hw = x.dim(-2) * x.dim(-1);
  const bool modulo = params_.perturbation.mode == PerturbationMode::kModulo;
  int64_t gt_pixels = 0;
  if (modulo) {
    for (int64_t p = 0; p < hw; ++p) gt_pixels += gt[p] != 0.0f;
    if (gt_pixels == 0) return {};
  }

  const lab::Tensor replacement = replacement_image(params_.perturbation, x, context, seed);
  const lab::Tensor image = x.rank() == 4 ? x.reshaped(x.sample_shape()) : x;
  PerturbationPath path;
  path.start = kind_ == Kind::kInsertion ? replacement : image;
  path.source = kind_ == Kind::kInsertion ? image : replacement;
  path.order = attribution_order(attr, hw);
  path.step_ends = uniform_steps(hw, params_.pixels_per_step);

  const OutputReader reader(net, params_.perturbation.output);
  const lab::Tensor outputs = evaluator.run(path);
  const int64_t k = outputs.dim(1);

  std::vector<CurvePoint> points;
  points.reserve(static_cast<size_t>(path.steps() + 1));
  const std::string v = variant();
  int64_t correct = 0;
  int64_t previous_label = modulo ? predicted_label(context, outputs.sample(0), k) : 0;
  for (int64_t s = 0; s <= path.steps(); ++s) {
    const double fraction = s == 0 ? 0.0 : static_cast<double>(path.step_ends[static_cast<size_t>(s - 1)]) / hw;
    double y = 0.0;
    if (modulo) {
      if (s > 0) {
        const int64_t label = predicted_label(context, outputs.sample(s), k);
        correct += label != previous_label;
        previous_label = label;
      }
      const double share = static_cast<double>(correct) / static_cast<double>(gt_pixels);
      y = kind_ == Kind::kInsertion ? share : 1.0 - share;
    } else {
      y = reader.score(outputs.sample(s), k, target);
    }
    points.push_back({id, v, fraction, y});
  }
  return points;
}

MetricOutput InsertionDeletion::evaluate_batch(const Context& context, const Batch& batch) const {
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  if (params_.perturbation.mode == PerturbationMode::kModulo && batch.gt.empty())
    lab::fail("metric {} in modulo mode needs the pixel ground truth", name());
  const PathEvaluator paths = evaluator(context, context.incremental);
  for (int64_t i = 0; i < batch.size(); ++i) {
    const size_t si = static_cast<size_t>(i);
    std::vector<CurvePoint> points =
        curve(context, paths, batch.x.slice(i, i + 1), batch.attr.data() + i * hw,
              batch.gt.empty() ? nullptr : batch.gt.data() + i * hw, batch.target[si], batch.ids[si], batch.seeds[si]);
    if (points.empty()) continue;
    std::vector<double> xs, ys;
    for (const CurvePoint& p : points) {
      xs.push_back(p.x);
      ys.push_back(p.y);
    }
    out.rows.push_back({batch.ids[si], variant(), trapezoid_auc(xs, ys)});
    out.curves.insert(out.curves.end(), points.begin(), points.end());
  }
  return out;
}

}  // namespace experiments
