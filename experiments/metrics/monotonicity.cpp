#include "experiments/metrics/monotonicity.h"

#include <algorithm>

#include "experiments/engine/incremental.h"
#include "experiments/metrics/curve.h"
#include "experiments/metrics/param_parts.h"
#include "experiments/rank.h"

namespace experiments {

const lab::Schema<MonotonicityParams>& MonotonicityParams::schema() {
  using Params = MonotonicityParams;
  static const auto s =
      lab::Schema<Params>()
          .with(pixels_per_step_param(&Params::pixels_per_step,
                                      "pixels per set m(i) (K = ceil(H*W / pixels-per-step) sets)",
                                      "false-sense Sec. 4.1; Quantus: one feature per step"))
          .with(score_output_param(&Params::output, "f(.)c: the target's probability, or its logit",
                                   "false-sense Sec. 4.1"));
  return s;
}

MetricOutput Monotonicity::evaluate_batch(const Context& context, const Batch& batch) const {
  const lab::Network& net = *context.net;
  const OutputReader reader(net, params_.output);
  const PathEvaluator evaluator = path_evaluator(context, reader.end());
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const int64_t step = params_.pixels_per_step;
  const int64_t sets = (hw + step - 1) / step;
  return score_samples(context, batch.size(), [&](int64_t i, MetricOutput& slot) {
    const size_t si = static_cast<size_t>(i);
    const float* attr = batch.attr.data() + i * hw;
    const lab::Tensor image = batch.x.slice(i, i + 1).reshaped(batch.x.sample_shape());
    // Increasing attribution: attribution_order reversed, ties kept by ascending index.
    std::vector<int64_t> order(static_cast<size_t>(hw));
    for (int64_t p = 0; p < hw; ++p) order[static_cast<size_t>(p)] = p;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return attr[a] < attr[b]; });
    std::vector<double> saliency(static_cast<size_t>(sets));
    const lab::Tensor zero(image.shape(), 0.0f);
    const lab::Tensor y = evaluate_subsets(
        net, evaluator, reader.end(), zero, image, sets,
        [&](int64_t q, std::vector<int64_t>& pixels) {
          const auto from = order.begin() + q * step, to = order.begin() + std::min(hw, (q + 1) * step);
          pixels.assign(from, to);
          double sum = 0.0;
          for (int64_t p : pixels) sum += attr[p];
          saliency[static_cast<size_t>(q)] = sum;
        },
        subset_plan(context));
    const int64_t k = y.sample_numel();
    std::vector<double> score(static_cast<size_t>(sets));
    for (int64_t q = 0; q < sets; ++q) score[static_cast<size_t>(q)] = reader.score(y.sample(q), k, batch.target[si]);
    slot.rows.push_back({batch.ids[si], "pearson", pearson(saliency, score)});
  });
}

}  // namespace experiments
