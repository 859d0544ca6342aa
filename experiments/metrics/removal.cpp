#include "experiments/metrics/removal.h"

#include <algorithm>
#include <cstring>

#include "experiments/engine/incremental.h"
#include "experiments/engine/perturbation.h"
#include "lab/core/error.h"

namespace experiments {

const std::vector<std::pair<RemovalKind, std::string>>& removal_names() {
  static const std::vector<std::pair<RemovalKind, std::string>> names = {{RemovalKind::kBackground, "background"},
                                                                         {RemovalKind::kRoad, "road"}};
  return names;
}

const std::vector<std::pair<Indicator, std::string>>& indicator_names() {
  static const std::vector<std::pair<Indicator, std::string>> names = {
      {Indicator::kProbability, "probability"}, {Indicator::kLogit, "logit"}, {Indicator::kCorrect, "correct"}};
  return names;
}

const std::vector<std::pair<Predictive, std::string>>& predictive_names() {
  static const std::vector<std::pair<Predictive, std::string>> names = {{Predictive::kPositive, "positive"},
                                                                        {Predictive::kOverall, "overall"}};
  return names;
}

namespace {

/// Layers read for an indicator: the whole network for `correct` (Context::predicted_label
/// takes the network's output row), else the OutputReader's.
size_t indicator_end(const lab::Network& net, Indicator indicator) {
  if (indicator == Indicator::kCorrect) return net.size();
  return OutputReader(net, indicator == Indicator::kLogit ? OutputKind::kLogit : OutputKind::kProbability).end();
}

lab::Tensor background_image(const Context& context, const lab::Shape& shape) {
  if (context.background.empty()) lab::fail_parameter("-p removal=background: the data gives no background");
  const int64_t c = shape[0], hw = shape[1] * shape[2];
  if (static_cast<int64_t>(context.background.size()) != c)
    lab::fail_parameter("the background has {} values for {} input channels", context.background.size(), c);
  lab::Tensor out(shape, 0.0f);
  for (int64_t ch = 0; ch < c; ++ch)
    std::fill(out.data() + ch * hw, out.data() + (ch + 1) * hw, context.background[static_cast<size_t>(ch)]);
  return out;
}

/// Whether the steps' bounding rectangles cover on average at most a quarter of the image.
bool mostly_local(const PerturbationPath& path, int64_t h, int64_t w) {
  double covered = 0.0;
  int64_t begin = 0;
  for (int64_t end : path.step_ends) {
    int64_t y0 = h, y1 = -1, x0 = w, x1 = -1;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t p = path.order[static_cast<size_t>(k)];
      y0 = std::min(y0, p / w), y1 = std::max(y1, p / w);
      x0 = std::min(x0, p % w), x1 = std::max(x1, p % w);
    }
    if (y1 >= 0) covered += static_cast<double>((y1 - y0 + 1) * (x1 - x0 + 1));
    begin = end;
  }
  return covered <= 0.25 * static_cast<double>(h * w) * static_cast<double>(path.steps());
}

}  // namespace

IndicatorValues indicator_along(const Context& context, RemovalKind removal, const ImputationParams& imputation,
                                Indicator indicator, const lab::Tensor& x, const std::vector<int64_t>& order,
                                const std::vector<int64_t>& counts, bool keep, int64_t target, uint64_t sample_seed) {
  const lab::Network& net = *context.net;
  const lab::Tensor image = x.rank() == 4 ? x.reshaped(x.sample_shape()) : x;
  const int64_t hw = image.dim(1) * image.dim(2), per = image.numel();
  LAB_CHECK(static_cast<int64_t>(order.size()) == hw, "order of {} pixels for {}", order.size(), hw);
  const size_t end = indicator_end(net, indicator);

  // Distinct counts; the unperturbed input is count H·W when keeping, 0 when removing.
  const int64_t untouched = keep ? hw : 0;
  std::vector<int64_t> distinct = counts;
  distinct.push_back(untouched);
  for (int64_t n : distinct) LAB_CHECK(n >= 0 && n <= hw, "count {} of {} pixels", n, hw);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  std::vector<std::vector<float>> rows(distinct.size());
  if (removal == RemovalKind::kBackground) {
    // One nested path: keeping inserts the image into the background, removing the reverse.
    const lab::Tensor canvas = background_image(context, image.shape());
    PerturbationPath path;
    path.start = keep ? canvas : image;
    path.source = keep ? image : canvas;
    path.order = order;
    for (int64_t n : distinct)
      if (n > 0) path.step_ends.push_back(n);
    // Incremental evaluation pays only when steps change small regions; a step whose pixels
    // spread over the image degenerates to a full pass plus window overhead. Judged from the
    // path alone (deterministic); both ways give the same outputs on the designed networks.
    Context knobs = context;
    knobs.incremental = context.incremental && mostly_local(path, image.dim(1), image.dim(2));
    const lab::Tensor y = path_evaluator(knobs, end).run(path);
    size_t step = 0;
    for (size_t i = 0; i < distinct.size(); ++i) {
      const int64_t row = distinct[i] == 0 ? 0 : static_cast<int64_t>(++step);
      rows[i].assign(y.sample(row), y.sample(row) + y.sample_numel());
    }
  } else {
    const double sigma = imputation.sigma(context);
    const uint64_t seed = lab::derive_seed(sample_seed, imputation.seed);
    const int64_t chunk = std::max<int64_t>(1, context.batch);
    for (size_t begin = 0; begin < distinct.size(); begin += static_cast<size_t>(chunk)) {
      const size_t stop = std::min(distinct.size(), begin + static_cast<size_t>(chunk));
      lab::Tensor batch({static_cast<int64_t>(stop - begin), image.dim(0), image.dim(1), image.dim(2)});
      for (size_t i = begin; i < stop; ++i) {
        const int64_t n = distinct[i];
        std::vector<uint8_t> removed(static_cast<size_t>(hw), keep ? 1 : 0);
        for (int64_t k = 0; k < n; ++k) removed[static_cast<size_t>(order[static_cast<size_t>(k)])] = keep ? 0 : 1;
        const lab::Tensor filled = impute_noisy_linear(image, removed, sigma, seed, static_cast<uint64_t>(n));
        std::memcpy(batch.sample(static_cast<int64_t>(i - begin)), filled.data(), static_cast<size_t>(per) * sizeof(float));
      }
      const lab::Tensor y = net.forward_range(0, end, batch);
      for (size_t i = begin; i < stop; ++i) {
        const int64_t r = static_cast<int64_t>(i - begin);
        rows[i].assign(y.sample(r), y.sample(r) + y.sample_numel());
      }
    }
  }

  auto row_of = [&](int64_t n) -> const std::vector<float>& {
    return rows[static_cast<size_t>(std::lower_bound(distinct.begin(), distinct.end(), n) - distinct.begin())];
  };
  const std::vector<float>& original = row_of(untouched);
  const int64_t k = static_cast<int64_t>(original.size());
  const int64_t original_label = predicted_label(context, original.data(), k);
  const OutputReader reader(net, indicator == Indicator::kLogit ? OutputKind::kLogit : OutputKind::kProbability);
  auto rho = [&](const std::vector<float>& row) -> double {
    if (indicator == Indicator::kCorrect) return predicted_label(context, row.data(), k) == original_label ? 1.0 : 0.0;
    return reader.score(row.data(), k, target);
  };
  IndicatorValues out;
  out.original = rho(original);
  out.values.reserve(counts.size());
  for (int64_t n : counts) out.values.push_back(rho(row_of(n)));
  return out;
}

std::vector<double> positive_normalised(const float* attr, int64_t n) {
  double top = 0.0;
  for (int64_t p = 0; p < n; ++p) top = std::max(top, static_cast<double>(attr[p]));
  std::vector<double> out(static_cast<size_t>(n), 0.0);
  if (top > 0.0)
    for (int64_t p = 0; p < n; ++p) out[static_cast<size_t>(p)] = std::max(0.0, static_cast<double>(attr[p])) / top;
  return out;
}

std::vector<double> predictive_weights(const float* gt, int64_t n, bool positive_only) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    const double g = gt[p];
    out[static_cast<size_t>(p)] = positive_only ? std::max(g, 0.0) : std::abs(g);
  }
  return out;
}

}  // namespace experiments
