// Noisy linear imputation (experiments/engine/imputation.h) and the ROAD metric
// (experiments/metrics/road.h, Rong et al. 2022).
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>

#include "datasets/environment.h"
#include "experiments/engine/imputation.h"
#include "experiments/metrics/road.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

lab::Tensor random_image(int64_t c, int64_t h, int64_t w, uint32_t seed) {
  std::mt19937 rng(seed);
  lab::Tensor x({c, h, w});
  for (float& v : x.values()) v = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
  return x;
}

std::vector<uint8_t> random_mask(int64_t n, double share, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> removed(static_cast<size_t>(n));
  for (uint8_t& r : removed) r = std::uniform_real_distribution<double>(0.0, 1.0)(rng) < share;
  return removed;
}

double row(const MetricOutput& out, const std::string& variant) {
  for (const MetricRow& r : out.rows)
    if (r.sample != kAllSamples && r.variant == variant) return r.value;
  FAIL("no row " << variant);
  return 0.0;
}

}  // namespace

TEST_CASE("noisy linear imputation: before noise, an imputed pixel is the weighted mean of its neighbours") {
  CHECK(road_weight(1, 1) == 1.0 / 12.0);
  CHECK(road_weight(0, -1) == 1.0 / 6.0);
  const int64_t c = 3, h = 13, w = 11;
  const lab::Tensor x = random_image(c, h, w, 1);  // values in [0, 1]: float rounding far below 1e-5
  for (double share : {0.2, 0.6, 0.95}) {
    CAPTURE(share);
    std::vector<uint8_t> removed = random_mask(h * w, share, 2);
    removed[0] = removed[static_cast<size_t>(h * w - 1)] = 1;  // corners: three neighbours only
    const lab::Tensor y = impute_linear(x, removed);
    int64_t checked = 0;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) {
          const int64_t p = i * w + j;
          if (!removed[static_cast<size_t>(p)]) {
            REQUIRE(y[ch * h * w + p] == x[ch * h * w + p]);  // kept pixels unchanged
            continue;
          }
          double sum = 0.0, weights = 0.0;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              if ((dy == 0 && dx == 0) || i + dy < 0 || i + dy >= h || j + dx < 0 || j + dx >= w) continue;
              const double wt = (dy != 0 && dx != 0) ? 1.0 / 12.0 : 1.0 / 6.0;
              sum += wt * y[ch * h * w + (i + dy) * w + (j + dx)];
              weights += wt;
            }
          CAPTURE(p);
          REQUIRE(std::abs(y[ch * h * w + p] - sum / weights) <= 1e-5);
          ++checked;
        }
    CHECK(checked > 0);
  }
  // One kept pixel is enough (every unknown then takes its value); none is refused.
  std::vector<uint8_t> all(static_cast<size_t>(h * w), 1);
  all[5] = 0;
  const lab::Tensor one = impute_linear(x, all);
  CHECK(one[17] == doctest::Approx(x[5]).epsilon(1e-5));
  all[5] = 1;
  CHECK_THROWS_AS(impute_linear(x, all), lab::Error);
}

TEST_CASE("noisy linear imputation: Gaussian noise of the requested spread, seeded") {
  const int64_t c = 3, h = 64, w = 64;
  const lab::Tensor x = random_image(c, h, w, 3);
  const std::vector<uint8_t> removed = random_mask(h * w, 0.5, 4);
  const lab::Tensor plain = impute_linear(x, removed);
  const lab::Tensor noisy = impute_noisy_linear(x, removed, 0.5, 9, 1);
  double sum = 0.0, squares = 0.0;
  int64_t n = 0;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t p = 0; p < h * w; ++p) {
      const double d = noisy[ch * h * w + p] - plain[ch * h * w + p];
      if (!removed[static_cast<size_t>(p)]) {
        REQUIRE(d == 0.0);
        continue;
      }
      sum += d;
      squares += d * d;
      ++n;
    }
  REQUIRE(n > 5000);
  const double mean = sum / n, sd = std::sqrt(squares / n - mean * mean);
  // n ≈ 6,100 draws: the standard error of the mean is 0.5/sqrt(n) ≈ 0.0064, of the sd ≈ 0.0045.
  CHECK(std::abs(mean) < 0.03);
  CHECK(sd == doctest::Approx(0.5).epsilon(0.05));
  CHECK(impute_noisy_linear(x, removed, 0.5, 9, 1).values() == noisy.values());
  CHECK(impute_noisy_linear(x, removed, 0.5, 9, 2).values() != noisy.values());
}

TEST_CASE("road: MoRF and LeRF on a designed network, seeded and independent of the batching") {
  lab::Options options = lab::Options::parse({"size=32"}, "-o");
  const auto env = datasets::make_environment("multi-color-sum", options);
  const lab::Network net = env->build_network();
  Context context;
  context.net = &net;
  context.env = env->name();
  context.background = env->background();
  context.predicted_label = [&](const float* row) { return env->predicted_label(row); };
  Batch batch;
  std::vector<lab::Tensor> xs, attrs;
  for (int64_t i = 0; i < 2; ++i) {
    const datasets::Sample s = env->generate(5, i);
    batch.ids.push_back(s.id);
    batch.target.push_back(env->target_output(s.label));
    batch.seeds.push_back(static_cast<uint64_t>(i) + 3);
    xs.push_back(env->to_input(s.image));
    attrs.push_back(s.gt);
  }
  batch.x = lab::Tensor::stack(xs);
  batch.attr = lab::Tensor::stack(attrs);
  lab::Options p = lab::Options::parse({"output=logit"}, "-p");
  const auto road = make_metric("road", p, MetricSetup::of(*env));
  CHECK(road->params()["noise"] == 2.55);  // 0.01 x 255
  const MetricOutput out = road->evaluate(context, batch);
  REQUIRE(out.curves.size() == 2 * 2 * 9);
  CHECK(out.curves.front().x == 0.1);
  // The ground-truth map removes the winning colour's pixels first under MoRF: its logit falls;
  // LeRF removes background and the other colours first: the logit stays higher.
  CHECK(row(out, "morf") < row(out, "lerf"));
  CHECK(row(out, "combined") == doctest::Approx((row(out, "lerf") - row(out, "morf")) / 2.0));
  CHECK(road->direction("morf") == Direction::kLowerIsBetter);
  context.unit = 1;
  context.batch = 3;
  const MetricOutput again = road->evaluate(context, batch);
  REQUIRE(again.rows.size() == out.rows.size());
  for (size_t i = 0; i < out.rows.size(); ++i) CHECK(again.rows[i].value == out.rows[i].value);
  lab::Options bad = lab::Options::parse({"fractions=0.5,1"}, "-p");
  CHECK_THROWS_AS(make_metric("road", bad, MetricSetup::of(*env)), lab::Error);
}
