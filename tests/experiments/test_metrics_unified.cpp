// The unified study's metrics (experiments/metrics/pixel_flipping.h, reference_pixel_flipping.h):
// App. E's counterexample exactly, and Proposition 1's expected Dice overlap n/N.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "experiments/metrics/pixel_flipping.h"
#include "experiments/metrics/reference_pixel_flipping.h"
#include "lab/core/random.h"
#include "lab/nn/layers.h"

namespace {

using namespace experiments;

/// App. E: x = (1, 1), W = [w1 w2 w3] with w1 = (2, 1), w2 = (√6, 0), w3 = (√5, 0): logits
/// y = (3, √6, √5). The input is one row of two pixels.
struct AppendixE {
  lab::Network net{lab::Shape{1, 1, 2}};
  Context context;
  Batch batch;

  explicit AppendixE(std::vector<float> map) {
    const float s6 = std::sqrt(6.0f), s5 = std::sqrt(5.0f);
    net.add("flatten", std::make_shared<lab::Flatten>());
    net.add("linear", std::make_shared<lab::Linear>(lab::Tensor({3, 2}, {2, 1, s6, 0, s5, 0}), lab::Tensor()));
    context.net = &net;
    context.input_max = 1.0f;
    batch.ids = {"x"};
    batch.x = lab::Tensor({1, 1, 1, 2}, {1, 1});
    batch.attr = lab::Tensor({1, 1, 2}, std::move(map));
    batch.target = {0};
    batch.seeds = {1};
  }

  MetricOutput score(const std::vector<std::string>& p) const {
    lab::Options options = lab::Options::parse(p, "-p");
    return make_metric("pixel-flipping", options, MetricSetup{})->evaluate(context, batch);
  }
};

std::vector<double> ys(const MetricOutput& out) {
  std::vector<double> y;
  for (const CurvePoint& c : out.curves) y.push_back(c.y);
  return y;
}

}  // namespace

TEST_CASE("App. E: the target logit ranks the Hadamard map first; the accuracy indicator ranks it last") {
  // The Hadamard explanation of class 1 is w1 ⊙ x = (2, 1); its reverse ranks x2 first.
  const AppendixE hadamard({2, 1}), reverse({1, 2});
  // Score indicator: masking x1 first drops y1 = 3 → 1 → 0; x2 first 3 → 2 → 0.
  const MetricOutput a = hadamard.score({});
  const MetricOutput b = reverse.score({});
  CHECK(ys(a) == std::vector<double>{3, 1, 0});
  CHECK(ys(b) == std::vector<double>{3, 2, 0});
  REQUIRE(a.rows.size() == 2);  // the sample and "all"
  CHECK(a.rows[0].variant == "auc");
  CHECK(a.rows[0].value == 1.25);  // (3 + 1)/4 + (1 + 0)/4
  CHECK(b.rows[0].value == 1.75);
  // Accuracy indicator: masking x1 gives (1, 0, 0): still class 1; masking x2 gives (2, √6, √5):
  // class 2 — the map that is worse on the score looks better on accuracy (App. E's point).
  const MetricOutput c = hadamard.score({"indicator=accuracy"});
  const MetricOutput d = reverse.score({"indicator=accuracy"});
  CHECK(c.rows[0].variant == "auc-accuracy");
  CHECK(ys(c) == std::vector<double>{1, 1, 1});  // all masked: (0, 0, 0), argmax = the first
  CHECK(ys(d) == std::vector<double>{1, 0, 1});
  CHECK(c.rows[0].value == 1.0);
  CHECK(d.rows[0].value == 0.5);
  CHECK(c.rows[0].value > d.rows[0].value);  // lower is better: accuracy prefers the wrong map
  CHECK(a.rows[0].value < b.rows[0].value);  // the score prefers the right one
}

TEST_CASE("pixel flipping's random control ignores the map and is reproducible by seed") {
  const AppendixE one({2, 1}), other({1, 2});
  const MetricOutput a = one.score({"order=random", "seed=3"});
  const MetricOutput b = other.score({"order=random", "seed=3"});
  CHECK(a.rows[0].variant == "auc-random");
  CHECK(ys(a) == ys(b));
  CHECK(ys(a).back() == 0.0);
  // Noise replacement draws values in [0, noise-high).
  const MetricOutput n = one.score({"replacement=noise", "noise-high=0.5"});
  CHECK(ys(n).back() >= 0.0);
  CHECK(ys(n).back() < 3 * 0.5 + 1e-6);
}

TEST_CASE("reference pixel flipping: expected Dice of a random n of the top N with the top n is n/N") {
  // Proposition 1 / App. F. Monte Carlo over 4000 draws: the Dice of one draw is k/n with k
  // hypergeometric (standard deviation ≈ 0.12 for n = 10, N = 40), so the mean's standard error
  // is ≈ 0.002; the tolerance 0.01 is five of them.
  const int64_t pixels = 100;
  std::vector<float> attr(pixels);
  std::mt19937 gen(5);
  for (float& v : attr) v = std::uniform_real_distribution<float>(0, 1)(gen);
  const std::vector<int64_t> top = attribution_order(attr.data(), pixels);
  for (auto [n, big] : {std::pair<int64_t, int64_t>{10, 40}, {10, 20}, {5, 100}, {10, 10}}) {
    CAPTURE(n);
    CAPTURE(big);
    lab::Rng rng(9, static_cast<uint64_t>(big));
    double sum = 0.0;
    const int draws = 4000;
    for (int d = 0; d < draws; ++d) {
      const std::vector<int64_t> order = reference_order(attr.data(), pixels, big, rng);
      int64_t both = 0;
      for (int64_t i = 0; i < n; ++i)
        both += std::find(top.begin(), top.begin() + n, order[static_cast<size_t>(i)]) != top.begin() + n;
      sum += 2.0 * static_cast<double>(both) / static_cast<double>(2 * n);
    }
    CHECK(std::abs(sum / draws - static_cast<double>(n) / static_cast<double>(big)) < 0.01);
  }
}

TEST_CASE("reference pixel flipping with N = P/2 flips only pixels of the top half") {
  AppendixE e({2, 1});
  lab::Options options = lab::Options::parse({"reference=0.5"}, "-p");
  const MetricOutput out = make_metric("reference-pixel-flipping", options, MetricSetup{})->evaluate(e.context, e.batch);
  // N = 1: the only pixel it may flip is x1: 3 → 1 at x = 1/2.
  REQUIRE(out.curves.size() == 2);
  CHECK(out.curves[1].x == 0.5);
  CHECK(out.curves[1].y == 1.0);
  CHECK(out.rows[0].value == 1.0);  // (3 + 1)/2 · 1/2
}
