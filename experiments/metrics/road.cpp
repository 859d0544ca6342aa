#include "experiments/metrics/road.h"

#include <cmath>
#include <cstring>

#include "experiments/metrics/param_parts.h"
#include "lab/core/error.h"

namespace experiments {

const lab::Schema<RoadParams>& RoadParams::schema() {
  using Params = RoadParams;
  static const auto s =
      lab::Schema<Params>()
          .field("fractions", &Params::fractions,
                 {.range = lab::between(0, 1), .help = "shares of the pixels removed (MoRF and LeRF), each below 1",
                  .source = "Rong et al. 2022: 10%, 20%, ..., 90%"})
          .with(score_output_param(&Params::output, "the target's score after the softmax or before it",
                                   "Rong et al. 2022 (confidence)"))
          .nested(&Params::imputation, ImputationParams::schema())
          .check([](const Params& p, const std::string& flag) {
            if (p.fractions.empty()) lab::fail_value(flag, "fractions", "", "one or more numbers in [0, 1)");
            for (double f : p.fractions)
              if (f >= 1.0)
                lab::fail_value(flag, "fractions", lab::option_text(f),
                                "numbers below 1 (removing every pixel leaves nothing to impute from)");
          });
  return s;
}

std::vector<Variant> Road::all_variants() {
  return {{"morf", Direction::kLowerIsBetter}, {"lerf", Direction::kHigherIsBetter}, {"combined", Direction::kHigherIsBetter}};
}

MetricOutput Road::evaluate_batch(const Context& context, const Batch& batch) const {
  MetricOutput out;
  const lab::Network& net = *context.net;
  const OutputReader reader(net, params_.output);
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const int64_t c = batch.x.dim(1), per = c * hw;
  const size_t nf = params_.fractions.size();
  const double sigma = params_.imputation.sigma(context);
  const int64_t chunk = std::max<int64_t>(1, context.batch);
  for (int64_t i = 0; i < batch.size(); ++i) {
    const size_t si = static_cast<size_t>(i);
    const std::vector<int64_t> order = attribution_order(batch.attr.data() + i * hw, hw);
    const lab::Tensor image = batch.x.slice(i, i + 1).reshaped({c, batch.x.dim(2), batch.x.dim(3)});
    const uint64_t seed = lab::derive_seed(batch.seeds[si], params_.imputation.seed);
    // Inputs q = 0..2·nf−1: MoRF for q < nf, LeRF after; scores[q].
    const int64_t inputs = static_cast<int64_t>(2 * nf);
    std::vector<double> scores(static_cast<size_t>(inputs));
    for (int64_t begin = 0; begin < inputs; begin += chunk) {
      const int64_t stop = std::min(inputs, begin + chunk);
      lab::Tensor x({stop - begin, c, image.dim(1), image.dim(2)});
      for (int64_t q = begin; q < stop; ++q) {
        const bool morf = q < static_cast<int64_t>(nf);
        const double f = params_.fractions[static_cast<size_t>(morf ? q : q - static_cast<int64_t>(nf))];
        const int64_t count = static_cast<int64_t>(std::floor(static_cast<double>(hw) * f + 1e-9));
        std::vector<uint8_t> removed(static_cast<size_t>(hw), 0);
        for (int64_t k = 0; k < count; ++k)
          removed[static_cast<size_t>(order[static_cast<size_t>(morf ? k : hw - 1 - k)])] = 1;
        const uint64_t stream = (static_cast<uint64_t>(count) << 1) | (morf ? 0u : 1u);
        const lab::Tensor filled = impute_noisy_linear(image, removed, sigma, seed, stream);
        std::memcpy(x.sample(q - begin), filled.data(), static_cast<size_t>(per) * sizeof(float));
      }
      const lab::Tensor y = net.forward_range(0, reader.end(), x);
      const int64_t k = y.sample_numel();
      for (int64_t q = begin; q < stop; ++q) scores[static_cast<size_t>(q)] = reader.score(y.sample(q - begin), k, batch.target[si]);
    }
    const std::string& id = batch.ids[si];
    double morf = 0.0, lerf = 0.0;
    for (size_t k = 0; k < nf; ++k) {
      out.curves.push_back({id, "morf", params_.fractions[k], scores[k]});
      morf += scores[k];
    }
    for (size_t k = 0; k < nf; ++k) {
      out.curves.push_back({id, "lerf", params_.fractions[k], scores[nf + k]});
      lerf += scores[nf + k];
    }
    morf /= static_cast<double>(nf);
    lerf /= static_cast<double>(nf);
    out.rows.push_back({id, "morf", morf});
    out.rows.push_back({id, "lerf", lerf});
    out.rows.push_back({id, "combined", (lerf - morf) / 2.0});
  }
  return out;
}

}  // namespace experiments
