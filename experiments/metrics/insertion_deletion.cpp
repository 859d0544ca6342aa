#include "experiments/metrics/insertion_deletion.h"

#include "experiments/engine/incremental.h"
#include "experiments/metrics/param_parts.h"
#include "lab/core/error.h"

namespace experiments {

const lab::Schema<InsertionDeletionParams>& InsertionDeletionParams::schema() {
  using Params = InsertionDeletionParams;
  static const auto s =
      lab::Schema<Params>()
          .nested(&Params::perturbation, PerturbationParams::schema())
          .with(pixels_per_step_param(&Params::pixels_per_step,
                                      "pixels perturbed per step (1: the full-resolution curve; modulo needs 1)",
                                      "App. G.4; modulo App. F.4"))
          .check([](const Params& p, const std::string& flag) {
            if (p.perturbation.modulo() && p.pixels_per_step != 1)
              lab::fail_value(flag, "pixels-per-step", std::to_string(p.pixels_per_step),
                              "1 in modulo mode (App. F.4 perturbs one pixel per step)");
          });
  return s;
}

InsertionDeletion::InsertionDeletion(Kind kind, Params params) : MetricWith(std::move(params)), kind_(kind) {}

std::string InsertionDeletion::variant() const {
  return params_.perturbation.modulo() ? "auc-modulo" : "auc";
}

std::vector<Variant> InsertionDeletion::variants() const {
  return {{variant(), kind_ == Kind::kInsertion ? Direction::kHigherIsBetter : Direction::kLowerIsBetter}};
}

std::vector<Variant> InsertionDeletion::all_variants(Kind kind) {
  const Direction d = kind == Kind::kInsertion ? Direction::kHigherIsBetter : Direction::kLowerIsBetter;
  return {{"auc", d}, {"auc-modulo", d}};
}

PathEvaluator InsertionDeletion::evaluator(const Context& context, bool incremental) const {
  const lab::Network& net = *context.net;
  const size_t end = params_.perturbation.modulo() ? net.size() : OutputReader(net, params_.perturbation.output).end();
  Context knobs = context;
  knobs.incremental = incremental;
  return path_evaluator(knobs, end);
}

std::vector<CurvePoint> InsertionDeletion::curve(const Context& context, const PathEvaluator& evaluator,
                                                 const lab::Tensor& x, const float* attr, const float* gt,
                                                 int64_t target, const std::string& id, uint64_t seed) const {
  const lab::Network& net = *context.net;
  const int64_t hw = x.dim(-2) * x.dim(-1);
  const bool modulo = params_.perturbation.modulo();
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

  int64_t correct = 0;
  int64_t previous_label = modulo ? predicted_label(context, outputs.sample(0), k) : 0;
  return path_curve(path, hw, id, variant(), [&](int64_t s) -> double {
    if (!modulo) return reader.score(outputs.sample(s), k, target);
    if (s > 0) {
      const int64_t label = predicted_label(context, outputs.sample(s), k);
      correct += label != previous_label;
      previous_label = label;
    }
    const double share = static_cast<double>(correct) / static_cast<double>(gt_pixels);
    return kind_ == Kind::kInsertion ? share : 1.0 - share;
  });
}

MetricOutput InsertionDeletion::evaluate_batch(const Context& context, const Batch& batch) const {
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  if (params_.perturbation.modulo() && batch.gt.empty())
    lab::fail("metric {} in modulo mode needs the pixel ground truth", name());
  const PathEvaluator paths = evaluator(context, context.incremental);
  return score_samples(context, batch.size(), [&](int64_t i, MetricOutput& slot) {
    const size_t si = static_cast<size_t>(i);
    add_auc_curve(slot, curve(context, paths, batch.x.slice(i, i + 1), batch.attr.data() + i * hw,
                              batch.gt.empty() ? nullptr : batch.gt.data() + i * hw, batch.target[si],
                              batch.ids[si], batch.seeds[si]));
  });
}

}  // namespace experiments
