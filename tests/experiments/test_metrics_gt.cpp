// Ground-truth precision/recall/F1 (experiments/metrics/gt.h), eq. 17, the faithfulness test
// (faithfulness.h), the metric base and registry (metric.h).
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>

#include "experiments/metrics/faithfulness.h"
#include "experiments/metrics/gt.h"
#include "experiments/metrics/metric.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

/// A one-layer network: the ground-truth metrics never evaluate it, the base requires one.
const lab::Network& unevaluated_network() {
  static const lab::Network net = [] {
    lab::Network n({1, 1, 1});
    n.add("flatten", std::make_shared<lab::Flatten>());
    return n;
  }();
  return net;
}

Context context() {
  Context c;
  c.net = &unevaluated_network();
  return c;
}

/// A batch of samples with H×W maps and ground truths given row-major.
Batch make_batch(int64_t h, int64_t w, const std::vector<std::vector<float>>& maps,
                 const std::vector<std::vector<float>>& gts) {
  Batch b;
  const int64_t n = static_cast<int64_t>(maps.size());
  b.x = lab::Tensor({n, 1, h, w}, 0.0f);
  std::vector<float> a, g;
  for (int64_t i = 0; i < n; ++i) {
    b.ids.push_back("s" + std::to_string(i));
    b.target.push_back(0);
    a.insert(a.end(), maps[static_cast<size_t>(i)].begin(), maps[static_cast<size_t>(i)].end());
    g.insert(g.end(), gts[static_cast<size_t>(i)].begin(), gts[static_cast<size_t>(i)].end());
  }
  b.attr = lab::Tensor({n, h, w}, a);
  b.gt = lab::Tensor({n, h, w}, g);
  return b;
}

std::map<std::string, double> values_of(const MetricOutput& out, const std::string& sample) {
  std::map<std::string, double> v;
  for (const MetricRow& r : out.rows)
    if (r.sample == sample) v[r.variant] = r.value;
  return v;
}

GroundTruthMetric gt_metric(GtSource source = GtSource::kPixel) {
  GroundTruthMetric::Params p;
  p.ground_truth = source;
  return GroundTruthMetric(p);
}

}  // namespace

TEST_CASE("eq. 17 divides the positive part by its max and the negative part by |min|") {
  const lab::Tensor a({2, 1, 3}, {2.0f, -1.0f, 0.5f, 0.0f, 3.0f, 1.5f});
  const lab::Tensor t = normalise_eq17(a);
  CHECK(t.values() == std::vector<float>{1.0f, -1.0f, 0.25f, 0.0f, 1.0f, 0.5f});
  // Per sample: the second sample has no negative part and is scaled by its own max.
  const lab::Tensor all_negative({1, 1, 2}, {-4.0f, -1.0f});
  CHECK(normalise_eq17(all_negative).values() == std::vector<float>{-1.0f, -0.25f});
  const lab::Tensor zeros({1, 1, 2}, 0.0f);
  CHECK(normalise_eq17(zeros).values() == std::vector<float>{0.0f, 0.0f});
}

TEST_CASE("channel reduction sums the channels of N×C×H×W maps") {
  const lab::Tensor a({1, 2, 1, 2}, {1.0f, 2.0f, 10.0f, -20.0f});
  CHECK(pixel_map(a).shape() == lab::Shape{1, 1, 2});
  CHECK(pixel_map(a).values() == std::vector<float>{11.0f, -18.0f});
}

TEST_CASE("hand-computed precision, recall and F1 with signs and eq. 17") {
  // attr after eq. 17 (max 2, min -4): [1, -0.25, 0.25, -1, 0.5, 0].
  const Batch b = make_batch(2, 3, {{2, -1, 0.5f, -4, 1, 0}}, {{1, -1, 0, -1, 0, 1}});
  const MetricOutput out = gt_metric().evaluate(context(), b);
  auto v = values_of(out, "s0");
  // positive: a+ = [1,0,.25,0,.5,0], g+ = [1,0,0,0,0,1]: overlap 1, Σa+ 1.75, Σg+ 2.
  CHECK(v["precision-positive"] == doctest::Approx(4.0 / 7.0).epsilon(1e-12));
  CHECK(v["recall-positive"] == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(v["f1-positive"] == doctest::Approx(8.0 / 15.0).epsilon(1e-12));
  // negative: a- = [0,.25,0,1,0,0], g- = [0,1,0,1,0,0]: overlap 1.25, Σa- 1.25, Σg- 2.
  CHECK(v["precision-negative"] == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(v["recall-negative"] == doctest::Approx(0.625).epsilon(1e-12));
  CHECK(v["f1-negative"] == doctest::Approx(10.0 / 13.0).epsilon(1e-12));
  // overall: |a| = [1,.25,.25,1,.5,0], |g| = [1,1,0,1,0,1]: overlap 2.25, Σ|a| 3, Σ|g| 4.
  CHECK(v["precision-overall"] == doctest::Approx(0.75).epsilon(1e-12));
  CHECK(v["recall-overall"] == doctest::Approx(0.5625).epsilon(1e-12));
  CHECK(v["f1-overall"] == doctest::Approx(9.0 / 14.0).epsilon(1e-12));
  // One summary row per variant, the mean over the (single) sample.
  CHECK(values_of(out, kAllSamples) == v);
  CHECK(out.rows.size() == 18);
}

TEST_CASE("a map without negative values scores 0 on negative GT; an empty GT kind gives no rows") {
  const Batch b = make_batch(1, 4, {{1, 2, 0, 0}, {1, 1, 0, 0}}, {{1, -1, 0, 0}, {1, 1, 0, 0}});
  const MetricOutput out = gt_metric().evaluate(context(), b);
  auto v0 = values_of(out, "s0");
  CHECK(v0["precision-negative"] == 0.0);
  CHECK(v0["recall-negative"] == 0.0);
  CHECK(v0["f1-negative"] == 0.0);
  auto v1 = values_of(out, "s1");
  CHECK(v1.count("f1-negative") == 0);  // sample 1 has no negative ground truth
  CHECK(v1["f1-positive"] == 1.0);
  // The aggregate of negative GT averages over the one sample that has it.
  CHECK(values_of(out, kAllSamples)["f1-negative"] == 0.0);
  // Positive precision: sample 0 (eq. 17 map [0.5, 1, 0, 0]) 0.5 / 1.5, sample 1 exactly 1.
  CHECK(values_of(out, kAllSamples)["precision-positive"] == doctest::Approx((1.0 / 3.0 + 1.0) / 2.0).epsilon(1e-12));
}

TEST_CASE("the ground-truth map scores F1 = 1; constant and random maps score what arithmetic predicts") {
  const int64_t h = 32, w = 32, n = h * w;
  std::vector<float> gt(static_cast<size_t>(n), 0.0f);
  int64_t pos = 0, neg = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      float& g = gt[static_cast<size_t>(y * w + x)];
      if (y < 8 && x < 12) g = 1.0f, ++pos;
      else if (y >= 20 && x >= 20) g = -1.0f, ++neg;
    }
  const int64_t overall = pos + neg;

  SUBCASE("ground truth itself") {
    std::vector<float> scaled(gt);
    for (float& v : scaled) v *= 7.0f;  // eq. 17 removes the scale
    auto v = values_of(gt_metric().evaluate(context(), make_batch(h, w, {scaled}, {gt})), "s0");
    for (const char* k : {"overall", "positive", "negative"}) {
      CAPTURE(k);
      CHECK(v[std::string("f1-") + k] == 1.0);
      CHECK(v[std::string("precision-") + k] == 1.0);
      CHECK(v[std::string("recall-") + k] == 1.0);
    }
  }
  SUBCASE("constant") {
    auto v = values_of(gt_metric().evaluate(context(), make_batch(h, w, {std::vector<float>(n, 0.3f)}, {gt})), "s0");
    const double p_all = static_cast<double>(overall) / n, p_pos = static_cast<double>(pos) / n;
    CHECK(v["precision-overall"] == doctest::Approx(p_all).epsilon(1e-12));
    CHECK(v["recall-overall"] == 1.0);
    CHECK(v["f1-overall"] == doctest::Approx(2 * p_all / (1 + p_all)).epsilon(1e-12));
    CHECK(v["precision-positive"] == doctest::Approx(p_pos).epsilon(1e-12));
    CHECK(v["recall-positive"] == 1.0);
    CHECK(v["f1-negative"] == 0.0);
  }
  SUBCASE("random uniform in [0, 1)") {
    // E[precision] = |GT| / n (independent of the map), E[recall] = E[a / max a] = 1/2.
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<std::vector<float>> maps(8, std::vector<float>(static_cast<size_t>(n)));
    for (auto& m : maps)
      for (float& v : m) v = u(rng);
    const MetricOutput out = gt_metric().evaluate(context(), make_batch(h, w, maps, std::vector(8, gt)));
    auto v = values_of(out, kAllSamples);
    CHECK(v["precision-overall"] == doctest::Approx(static_cast<double>(overall) / n).epsilon(0.03));
    CHECK(v["recall-overall"] == doctest::Approx(0.5).epsilon(0.03));
    CHECK(v["recall-positive"] == doctest::Approx(0.5).epsilon(0.03));
  }
}

TEST_CASE("smooth ground truth adds -smooth variants and requires the smooth GT") {
  Batch b = make_batch(1, 4, {{1, 0, 0, 0}}, {{1, 0, 0, 0}});
  CHECK_THROWS_AS(gt_metric(GtSource::kSmooth).evaluate(context(), b), lab::Error);
  b.gt_smooth = lab::Tensor({1, 1, 4}, {1, 1, 0, 0});
  auto v = values_of(gt_metric(GtSource::kBoth).evaluate(context(), b), "s0");
  CHECK(v["f1-positive"] == 1.0);
  CHECK(v["precision-positive-smooth"] == 1.0);
  CHECK(v["recall-positive-smooth"] == 0.5);
  CHECK(gt_metric(GtSource::kBoth).variants().size() == 18);
}

TEST_CASE("faithfulness test: per-sample pass at F1 >= gamma, the model passes on the mean F1") {
  // Constant maps on GT fractions f give overall F1 = 2f / (1 + f): f = 1/4 → 0.4, f = 3/4 → 6/7.
  const Batch b = make_batch(1, 4, {{1, 1, 1, 1}, {1, 1, 1, 1}}, {{1, 0, 0, 0}, {1, 1, -1, 0}});
  const double f1_0 = 0.4, f1_1 = 6.0 / 7.0, mean = (f1_0 + f1_1) / 2.0;  // mean ≈ 0.629
  for (double gamma : {0.39, 0.41, mean - 1e-9, mean + 1e-9}) {
    CAPTURE(gamma);
    FaithfulnessTest::Params p;
    p.gamma = gamma;
    const MetricOutput out = FaithfulnessTest(p).evaluate(context(), b);
    CHECK(values_of(out, "s0")["f1-overall"] == doctest::Approx(f1_0).epsilon(1e-12));
    CHECK(values_of(out, "s0")["pass-overall"] == (f1_0 >= gamma ? 1.0 : 0.0));
    CHECK(values_of(out, "s1")["pass-overall"] == (f1_1 >= gamma ? 1.0 : 0.0));
    CHECK(values_of(out, kAllSamples)["f1-overall"] == doctest::Approx(mean).epsilon(1e-12));
    CHECK(values_of(out, kAllSamples)["pass-overall"] == (mean >= gamma ? 1.0 : 0.0));
  }
}

TEST_CASE("(gamma, F)-model-agnostic verdict fails when any model fails") {
  CHECK(model_agnostic_verdict({{"a", 0.9}, {"b", 0.5}}, 0.5).pass);
  const AgnosticVerdict v = model_agnostic_verdict({{"a", 0.9}, {"b", 0.49}, {"c", 0.1}}, 0.5);
  CHECK_FALSE(v.pass);
  CHECK(v.failed_on == std::vector<std::string>{"b", "c"});
  CHECK_THROWS_AS(model_agnostic_verdict({}, 0.5), lab::Error);
}

TEST_CASE("registry: shared -p options, unknown keys, names and values are refused") {
  SUBCASE("every metric is listed with its parameters") {
    for (const MetricInfo& info : registry()) {
      CAPTURE(info.name);
      lab::Options none("-p");
      const auto m = make_metric(info.name, none, {});
      CHECK(m->name() == info.name);
      CHECK(!m->variants().empty());
      const nlohmann::json params = m->params();
      for (const auto& [key, value] : params.items()) {
        CAPTURE(key);
        CHECK(std::any_of(info.params.begin(), info.params.end(), [&](const lab::ParamDoc& p) { return p.name == key; }));
      }
    }
  }
  SUBCASE("one -p set for several metrics") {
    lab::Options p = lab::Options::parse({"gamma=0.7", "ground-truth=both"}, "-p");
    const auto metrics = make_metrics({"gt", "faithfulness-test"}, p, {});
    CHECK(metrics[1]->params()["gamma"] == 0.7);
    CHECK(metrics[0]->params()["ground-truth"] == "both");
  }
  SUBCASE("a key no chosen metric knows") {
    lab::Options p = lab::Options::parse({"gamma=0.7"}, "-p");
    CHECK_THROWS_AS(make_metrics({"gt"}, p, {}), lab::Error);
    lab::Options q = lab::Options::parse({"gama=0.7"}, "-p");
    CHECK_THROWS_AS(make_metric("faithfulness-test", q, {}), lab::Error);
  }
  SUBCASE("bad names and values") {
    lab::Options p("-p");
    CHECK_THROWS_AS(make_metric("precision", p, {}), lab::Error);
    CHECK_THROWS_AS(make_metrics({"gt", "gt"}, p, {}), lab::Error);
    lab::Options g = lab::Options::parse({"gamma=1.5"}, "-p");
    CHECK_THROWS_AS(make_metric("faithfulness-test", g, {}), lab::Error);
  }
  SUBCASE("directions") {
    lab::Options p("-p");
    CHECK(make_metric("insertion", p, {})->direction("auc") == Direction::kHigherIsBetter);
    CHECK(make_metric("deletion", p, {})->direction("auc") == Direction::kLowerIsBetter);
    CHECK_THROWS_AS(make_metric("deletion", p, {})->direction("f1"), lab::Error);
  }
}

TEST_CASE("the base refuses maps of the wrong shape") {
  Batch b = make_batch(2, 2, {{1, 0, 0, 0}}, {{1, 0, 0, 0}});
  b.attr = lab::Tensor({1, 3, 2}, 0.0f);
  CHECK_THROWS_AS(gt_metric().evaluate(context(), b), lab::Error);
  b.attr = lab::Tensor({1, 2, 2}, {0.0f, NAN, 0.0f, 0.0f});
  CHECK_THROWS_AS(gt_metric().evaluate(context(), b), lab::Error);
  b.attr = lab::Tensor({1, 2, 2}, 0.0f);
  b.target.clear();
  CHECK_THROWS_AS(gt_metric().evaluate(context(), b), lab::Error);
}
