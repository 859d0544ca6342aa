// Soundness and completeness (experiments/metrics/soundness.h, completeness.h; Gao et al. 2024):
// hand-computed schedules and rules for every switch, the estimators against the exact values
// from the designed ground truth where the paper's assumption holds (multi-color-sum's logit)
// and where it does not (the modulo network), and the ground-truth map's exact scores.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "datasets/environment.h"
#include "experiments/metrics/completeness.h"
#include "experiments/metrics/soundness.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

/// One designed environment (32×32) with one sample, its network and a metric context.
struct Lab {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  datasets::Sample sample;
  Context context;

  explicit Lab(const std::string& name, int64_t index = 0) {
    lab::Options options = lab::Options::parse({"size=32"}, "-o");
    env = datasets::make_environment(name, options);
    net = env->build_network();
    sample = env->generate(5, index);
    context.net = &net;
    context.env = name;
    context.background = env->background();
    context.input_max = env->image_channels() == 3 ? 255.0f : 1.0f;
    context.predicted_label = [this](const float* row) { return env->predicted_label(row); };
  }

  Batch batch(const lab::Tensor& attr) const {
    Batch b;
    b.ids = {sample.id};
    const lab::Tensor x = env->to_input(sample.image);
    b.x = x.reshaped({1, x.dim(0), x.dim(1), x.dim(2)});
    b.attr = attr.reshaped({1, attr.dim(0), attr.dim(1)});
    b.target = {env->target_output(sample.label)};
    b.gt = sample.gt.reshaped({1, sample.gt.dim(0), sample.gt.dim(1)});
    b.seeds = {7};
    return b;
  }

  MetricOutput run(const std::string& name, const lab::Tensor& attr, const std::vector<std::string>& p = {}) const {
    lab::Options options = lab::Options::parse(p, "-p");
    return make_metric(name, options, MetricSetup::of(*env))->evaluate(context, batch(attr));
  }
};

double row(const MetricOutput& out, const std::string& variant) {
  for (const MetricRow& r : out.rows)
    if (r.sample != kAllSamples && r.variant == variant) return r.value;
  FAIL("no row " << variant);
  return 0.0;
}

std::vector<CurvePoint> curve(const MetricOutput& out, const std::string& variant) {
  std::vector<CurvePoint> points;
  for (const CurvePoint& p : out.curves)
    if (p.variant == variant) points.push_back(p);
  return points;
}

Soundness::Params rule(FalseIf false_if, UpdateOrder update) {
  Soundness::Params p;
  p.epsilon = 0.25;
  p.false_if = false_if;
  p.update = update;
  return p;
}

}  // namespace

TEST_CASE("soundness schedule: Alg. 3's mask ratios as kept pixel counts") {
  const Soundness::Params defaults;
  const std::vector<int64_t> p100 = Soundness::schedule(defaults, 100);
  REQUIRE(p100.size() == 99);  // M = {0.99, ..., 0.01}
  for (size_t i = 0; i < p100.size(); ++i) CHECK(p100[i] == static_cast<int64_t>(i) + 1);
  CHECK(p100[70] == 71);  // m = 0.29: floor(29.000000000000004) = 29 masked, not 28
  // 50 pixels: floor(49.5) = 49, floor(49) = 49, floor(48.5) = 48, ...: kept 1, 1, 2, 2, ...
  const std::vector<int64_t> p50 = Soundness::schedule(defaults, 50);
  CHECK(std::vector<int64_t>(p50.begin(), p50.begin() + 5) == std::vector<int64_t>{1, 1, 2, 2, 3});
  CHECK(p50.back() == 50 - 0);  // m = 0.01: floor(0.5) = 0 masked
  Soundness::Params text = defaults;
  text.mask_first = 0.98;  // App. E's text
  CHECK(Soundness::schedule(text, 100).size() == 98);
  CHECK(Soundness::schedule(text, 100).front() == 2);
}

TEST_CASE("soundness: the false-increment rule and each switch, hand computed") {
  // Indicator after each step and the eta mass of each increment (kept mass 1, 3, 7, 15).
  // Rises from s_0 = 0: 0.5, 0.25, 0, 0.75 against epsilon = 0.25.
  const std::vector<double> s = {0.5, 0.75, 0.75, 1.5}, inc = {1, 2, 4, 8}, kept = {1, 3, 7, 15};
  using V = std::vector<double>;
  auto approx = [](const V& a, const V& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-15));
  };
  SUBCASE("Alg. 3: rise < epsilon is false (step 3 only), update then ratio") {
    approx(Soundness::estimate(rule(FalseIf::kLess, UpdateOrder::kUpdateThenRatio), s, inc, kept),
           V{1, 1, 3.0 / 7, 11.0 / 15});
  }
  SUBCASE("reference code: ratio then update lags one step") {
    approx(Soundness::estimate(rule(FalseIf::kLess, UpdateOrder::kRatioThenUpdate), s, inc, kept), V{1, 1, 1, 11.0 / 15});
  }
  SUBCASE("reference code: rise <= epsilon is false (steps 2 and 3)") {
    approx(Soundness::estimate(rule(FalseIf::kLessEqual, UpdateOrder::kUpdateThenRatio), s, inc, kept),
           V{1, 1.0 / 3, 1.0 / 7, 9.0 / 15});
    approx(Soundness::estimate(rule(FalseIf::kLessEqual, UpdateOrder::kRatioThenUpdate), s, inc, kept),
           V{1, 1, 5.0 / 7, 9.0 / 15});
  }
  SUBCASE("the guard: steps at or below guard-level mark nothing false") {
    Soundness::Params p = rule(FalseIf::kLessEqual, UpdateOrder::kUpdateThenRatio);
    p.guard = true;
    p.guard_level = 0.75;
    approx(Soundness::estimate(p, s, inc, kept), V{1, 1, 1, 1});
    p.guard_level = 0.5;  // only step 1 guarded; steps 2 and 3 false as before
    approx(Soundness::estimate(p, s, inc, kept), V{1, 1.0 / 3, 1.0 / 7, 9.0 / 15});
  }
  SUBCASE("stabilizer in the denominator; s_0 = 0 makes a first step below epsilon false") {
    Soundness::Params p = rule(FalseIf::kLess, UpdateOrder::kUpdateThenRatio);
    p.stabilizer = 1.0;
    approx(Soundness::estimate(p, s, inc, kept), V{0.5, 0.75, 3.0 / 8, 11.0 / 16});
    approx(Soundness::estimate(rule(FalseIf::kLess, UpdateOrder::kUpdateThenRatio), {0.125, 0.5}, {1, 1}, {1, 2}),
           V{0, 0.5});
  }
}

TEST_CASE("completeness: thresholds relative to the map's maximum, > or >=, and the guard") {
  Completeness::Params p;
  p.thresholds = {0.5, 0.25, 1.0};
  const std::vector<float> map = {4, 2, 1, 0, -4, 2};  // relative: 1, .5, .25, 0, -1, .5
  CHECK(Completeness::removed_counts(p, map.data(), 6) == std::vector<int64_t>{1, 3, 0});
  p.removed = ThresholdRule::kAtOrAbove;
  CHECK(Completeness::removed_counts(p, map.data(), 6) == std::vector<int64_t>{3, 4, 1});
  const std::vector<float> none = {0, -1, -2};  // no positive attribution: nothing removed, even at >= 0
  p.thresholds = {0.0, 0.5};
  CHECK(Completeness::removed_counts(p, none.data(), 3) == std::vector<int64_t>{0, 0});
}

TEST_CASE("the ground-truth map gets exact soundness and exact completeness 1") {
  for (const char* env : {"multi-color-sum", "single-color-modulo"}) {
    CAPTURE(env);
    const Lab lab(env);
    const MetricOutput s = lab.run("soundness", lab.sample.gt);
    const MetricOutput c = lab.run("completeness", lab.sample.gt);
    CHECK(row(s, "soundness-exact") == 1.0);
    CHECK(row(c, "completeness-exact") == 1.0);
    for (const CurvePoint& p : curve(s, "soundness-exact")) CHECK(p.y == 1.0);
    for (const CurvePoint& p : curve(c, "completeness-exact")) CHECK(p.y == 1.0);
  }
}

TEST_CASE("soundness estimator equals the exact value on multi-color-sum's logit, one pixel per step") {
  // The target logit is 2^-8 x (target pixels present), exactly: every increment holding a target
  // pixel raises it by 2^-8 > epsilon = 2^-9, every other increment leaves it unchanged, and with
  // one pixel per step no increment mixes the two — Assumption 4.10 with a strict margin.
  const Lab lab("multi-color-sum");
  lab::Tensor attr(lab.sample.gt.shape(), 0.0f);
  int64_t decoys = 0;
  for (int64_t p = 0; p < attr.numel(); ++p) {
    if (lab.sample.gt[p] > 0.0f) attr[p] = 2.0f;
    else if (p % 3 == 0) {  // attributed, not predictive
      attr[p] = 1.0f + 0.001f * static_cast<float>(p % 7);
      ++decoys;
    }
  }
  REQUIRE(decoys > 100);
  // Interleave: some decoys outrank some target pixels, so false increments come between true ones.
  for (int64_t p = 0; p < attr.numel(); p += 5)
    if (lab.sample.gt[p] > 0.0f) attr[p] = 0.5f;
  const std::vector<std::string> params = {"indicator=logit", "epsilon=0.001953125", "mask-first=0.9990234375",
                                           "mask-step=0.0009765625", "mask-last=0"};
  const MetricOutput out = lab.run("soundness", attr, params);
  const auto q = curve(out, "soundness"), exact = curve(out, "soundness-exact");
  REQUIRE(q.size() == 1024);
  REQUIRE(exact.size() == 1024);
  double lowest = 1.0;
  for (size_t k = 0; k < q.size(); ++k) {
    CAPTURE(k);
    REQUIRE(q[k].x == exact[k].x);
    REQUIRE(q[k].y == doctest::Approx(exact[k].y).epsilon(1e-12));  // tolerance: double rounding of the sums
    lowest = std::min(lowest, exact[k].y);
  }
  CHECK(lowest < 0.9);  // the map is far from sound: the equality is not trivial
  CHECK(row(out, "soundness") == doctest::Approx(row(out, "soundness-exact")).epsilon(1e-12));

  // The default 1% schedule mixes decoys and target pixels in some increments: a mixed increment
  // counts as true, so the estimate can only be higher than exact.
  const MetricOutput coarse = lab.run("soundness", attr, {"indicator=logit", "epsilon=0.001953125"});
  const auto qc = curve(coarse, "soundness"), ec = curve(coarse, "soundness-exact");
  for (size_t k = 0; k < qc.size(); ++k) CHECK(qc[k].y >= ec[k].y - 1e-12);
}

TEST_CASE("soundness estimator departs from the exact value on the modulo network") {
  // label = (white pixels) mod N: adding white pixels changes the label back and forth, so the
  // indicator does not rise with predictive information and true increments are marked false.
  const Lab lab("single-color-modulo");
  const MetricOutput out = lab.run("soundness", lab.sample.gt, {"indicator=correct"});
  CHECK(row(out, "soundness-exact") == 1.0);
  CHECK(row(out, "soundness") < 0.5);
}

TEST_CASE("completeness: normalised estimator equals exact on multi-color-sum's logit") {
  const Lab lab("multi-color-sum");
  std::mt19937 rng(4);
  lab::Tensor attr(lab.sample.gt.shape());
  for (float& v : attr.values()) v = std::uniform_real_distribution<float>(-0.2f, 1.0f)(rng);
  for (int64_t p = 0; p < attr.numel(); ++p)
    if (lab.sample.gt[p] > 0.0f) attr[p] += 0.3f;  // a better-than-random map
  for (const char* removed : {"removed=above", "removed=at-or-above"}) {
    CAPTURE(removed);
    const MetricOutput out = lab.run("completeness", attr, {"indicator=logit", removed});
    const auto n = curve(out, "completeness-normalised"), e = curve(out, "completeness-exact");
    REQUIRE(n.size() == 9);
    REQUIRE(e.size() == 9);
    for (size_t k = 0; k < n.size(); ++k) {
      CAPTURE(k);
      CHECK(n[k].x == e[k].x);
      CHECK(n[k].y == doctest::Approx(e[k].y).epsilon(1e-12));
    }
    CHECK(e.front().y < e.back().y);  // more removed at lower thresholds
  }
  // On the probability the drop is not proportional to the removed target pixels.
  const MetricOutput prob = lab.run("completeness", attr, {"indicator=probability"});
  double gap = 0.0;
  const auto n = curve(prob, "completeness-normalised"), e = curve(prob, "completeness-exact");
  for (size_t k = 0; k < n.size(); ++k) gap = std::max(gap, std::abs(n[k].y - e[k].y));
  CHECK(gap > 0.01);
}

TEST_CASE("completeness: Theorem 4.12's ordering fails on the modulo network") {
  // Two maps removing all white pixels but r1 = label resp. r1 + 1 of them: the first is more
  // complete, yet what stays of it still gives the label (no accuracy drop) while the second's
  // rest does not (drop 1): the estimator ranks the less complete map higher.
  for (int64_t index = 0; index < 20; ++index) {
    const Lab lab("single-color-modulo", index);
    const int64_t white = lab.sample.counts[0], label = lab.sample.label;
    if (white < label + 2) continue;
    auto map_leaving = [&](int64_t left) {
      lab::Tensor a(lab.sample.gt.shape(), 0.0f);
      int64_t seen = 0;
      for (int64_t p = 0; p < a.numel(); ++p)
        if (lab.sample.gt[p] > 0.0f && seen++ >= left) a[p] = 1.0f;
      return a;
    };
    const MetricOutput more = lab.run("completeness", map_leaving(label));
    const MetricOutput less = lab.run("completeness", map_leaving(label + 1));
    CHECK(row(more, "completeness-exact") > row(less, "completeness-exact"));
    CHECK(row(more, "completeness") == 0.0);
    CHECK(row(less, "completeness") == 1.0);
    return;
  }
  FAIL("no modulo sample with enough white pixels");
}

TEST_CASE("soundness and completeness: parameters are checked, and ROAD removal runs") {
  const Lab lab("multi-color-sum");
  CHECK_THROWS_AS(lab.run("soundness", lab.sample.gt, {"mask-first=0.5", "mask-last=0.6"}), lab::Error);
  CHECK_THROWS_AS(lab.run("completeness", lab.sample.gt, {"thresholds="}), lab::Error);
  const MetricOutput s = lab.run("soundness", lab.sample.gt, {"removal=road", "mask-step=0.1", "mask-first=0.9"});
  CHECK(row(s, "soundness") > 0.0);
  const MetricOutput c = lab.run("completeness", lab.sample.gt, {"removal=road", "indicator=logit"});
  CHECK(curve(c, "completeness-normalised").empty());
  CHECK(row(c, "completeness") > 0.0);  // removing the target pixels lowers the target logit
}
