// Average Drop %, Increase in Confidence, Average Gain (experiments/metrics/confidence_change.h)
// and Monotonicity (monotonicity.h) on hand-computed cases.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "experiments/metrics/confidence_change.h"
#include "experiments/metrics/monotonicity.h"
#include "lab/nn/layers.h"

namespace {

using namespace experiments;

/// Two pixels, two classes: logits z = (x1, x2), probabilities their softmax.
struct TwoPixels {
  lab::Network net{lab::Shape{1, 1, 2}};
  Context context;
  Batch batch;

  TwoPixels(std::vector<float> x, std::vector<float> map) {
    net.add("flatten", std::make_shared<lab::Flatten>());
    net.add("linear", std::make_shared<lab::Linear>(lab::Tensor({2, 2}, {1, 0, 0, 1}), lab::Tensor()));
    net.add("softmax", std::make_shared<lab::Softmax>());
    context.net = &net;
    batch.ids = {"s"};
    batch.x = lab::Tensor({1, 1, 1, 2}, std::move(x));
    batch.attr = lab::Tensor({1, 1, 2}, std::move(map));
    batch.target = {0};
    batch.seeds = {1};
  }

  double score(const std::string& metric, const std::vector<std::string>& p = {}) const {
    lab::Options options = lab::Options::parse(p, "-p");
    const MetricOutput out = make_metric(metric, options, MetricSetup{})->evaluate(context, batch);
    REQUIRE(out.rows.size() >= 1);
    return out.rows[0].value;
  }
};

double p0(double z0, double z1) { return 1.0 / (1.0 + std::exp(z1 - z0)); }

}  // namespace

TEST_CASE("AD, IC and AG on hand-computed softmax outputs") {
  // x = (2, 4): y = p0(2, 4). A map on pixel 2 keeps (0, 4): y' = p0(0, 4) < y.
  const TwoPixels away({2, 4}, {0, 1});
  const double y = p0(2, 4), masked = p0(0, 4);
  CHECK(away.score("average-drop") == doctest::Approx(100 * (y - masked) / y).epsilon(1e-5));
  CHECK(away.score("increase-in-confidence") == 0.0);
  CHECK(away.score("average-gain") == 0.0);
  // A map on pixel 1 keeps (2, 0): y' = p0(2, 0) > y.
  const TwoPixels onto({2, 4}, {1, 0});
  const double up = p0(2, 0);
  CHECK(onto.score("average-drop") == 0.0);
  CHECK(onto.score("increase-in-confidence") == 100.0);
  CHECK(onto.score("average-gain") == doctest::Approx(100 * (up - y) / (1 - y)).epsilon(1e-5));
  // Min-max scaling: (3, 5) scales to (0, 1) like (0, 1); the logit reads z directly.
  const TwoPixels scaled({2, 4}, {3, 5});
  CHECK(scaled.score("average-drop") == away.score("average-drop"));
  CHECK(away.score("average-drop", {"output=logit"}) == doctest::Approx(100 * (2.0 - 0.0) / 2.0));
  // A constant map keeps the whole input: no drop, no increase.
  const TwoPixels constant({2, 4}, {7, 7});
  CHECK(constant.score("average-drop") == 0.0);
  CHECK(constant.score("increase-in-confidence") == 0.0);
}

TEST_CASE("binarised masks: the percentile of numpy's linear interpolation, ties kept") {
  const std::vector<float> v = {3, 1, 2, 4};
  CHECK(percentile_of(v.data(), 4, 50) == 2.5);
  CHECK(percentile_of(v.data(), 4, 0) == 1.0);
  CHECK(percentile_of(v.data(), 4, 100) == 4.0);
  CHECK(percentile_of(v.data(), 4, 75) == doctest::Approx(3.25));
  CHECK(percentile_mask(v.data(), 4, 50) == std::vector<float>{1, 0, 0, 1});
  const std::vector<float> flat = {2, 2, 2};
  CHECK(percentile_mask(flat.data(), 3, 50) == std::vector<float>{1, 1, 1});
  CHECK(minmax_mask(flat.data(), 3) == std::vector<float>{1, 1, 1});
  const std::vector<float> ramp = {2, 4, 3};
  CHECK(minmax_mask(ramp.data(), 3) == std::vector<float>{0, 1, 0.5f});
  // maps=both writes both variants; a binarised (0.2, 1) at the 50th percentile is (0, 1).
  const TwoPixels t({2, 4}, {0.2f, 1});
  lab::Options options = lab::Options::parse({"maps=both"}, "-p");
  const MetricOutput out = make_metric("average-drop", options, MetricSetup{})->evaluate(t.context, t.batch);
  REQUIRE(out.rows.size() == 4);
  CHECK(out.rows[0].variant == "percent");
  CHECK(out.rows[1].variant == "percent-binarised");
  const double y = p0(2, 4);
  CHECK(out.rows[1].value == doctest::Approx(100 * (y - p0(0, 4)) / y).epsilon(1e-5));
  // Real: m = (0, 1) too after min-max scaling.
  CHECK(out.rows[0].value == out.rows[1].value);
}

TEST_CASE("monotonicity: the per-pixel effect itself correlates 1, its negation -1") {
  // Logit = w · x with w = (1, 2, 3, 4) on a 2×2 image of ones: keeping only pixel j gives w_j.
  lab::Network net{lab::Shape{1, 2, 2}};
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("linear", std::make_shared<lab::Linear>(lab::Tensor({2, 4}, {1, 2, 3, 4, 0, 0, 0, 0}), lab::Tensor()));
  Context context;
  context.net = &net;
  Batch batch;
  batch.ids = {"s"};
  batch.x = lab::Tensor({1, 1, 2, 2}, 1.0f);
  batch.target = {0};
  batch.seeds = {0};
  auto score = [&](std::vector<float> map, std::vector<std::string> p) {
    batch.attr = lab::Tensor({1, 2, 2}, std::move(map));
    p.push_back("output=logit");
    lab::Options options = lab::Options::parse(p, "-p");
    return make_metric("monotonicity", options, MetricSetup{})->evaluate(context, batch).rows[0].value;
  };
  CHECK(score({1, 2, 3, 4}, {}) == doctest::Approx(1.0));
  CHECK(score({-1, -2, -3, -4}, {}) == doctest::Approx(-1.0));
  // Sets of two pixels in increasing order: {1, 2} and {3, 4}: two points always correlate ±1.
  CHECK(score({4, 3, 2, 1}, {"pixels-per-step=2"}) == doctest::Approx(-1.0));
  // A map unrelated in rank: saliency (4, 1, 1, 4) → sets by increasing value: the scores of
  // pixels 2, 3, 1, 4 are (2, 3, 1, 4) against saliency (1, 1, 4, 4): Pearson r = 0.
  CHECK(score({4, 1, 1, 4}, {}) == doctest::Approx(0.0).epsilon(1e-9));
  // A constant map: saliency constant → r reported as 0.
  CHECK(score({1, 1, 1, 1}, {}) == 0.0);
}
