// IBA: the analytic gradient of the bottleneck objective against finite differences, recall on
// easy multi-color-sum images, refused settings, and chunk/thread invariance.
#include "attributions/iba.h"
#include "test_perturbation_util.h"

namespace {

struct SmallSetup {
  lab::Network net;
  attributions::Context context;
  lab::Tensor x;
};

SmallSetup small_setup(bool softmax) {
  SmallSetup s{ptest::random_convnet({2, 6, 6}, 3, 7, softmax), {}, {}};
  std::mt19937 rng(3);
  s.context.net = &s.net;
  s.context.reference_inputs = lab::Tensor({12, 2, 6, 6}, ptest::random_values(12 * 72, rng, -1.0f, 1.0f));
  s.context.batch = 4;
  s.x = lab::Tensor({1, 2, 6, 6}, ptest::random_values(72, rng, -1.0f, 1.0f));
  return s;
}

}  // namespace

TEST_CASE("IBA: the gradient of the objective w.r.t. alpha matches central differences") {
  for (const bool softmax : {true, false}) {
    CAPTURE(softmax);
    SmallSetup s = small_setup(softmax);
    attributions::Iba::Params p;
    p.layer = "features.1";
    p.samples = 3;
    p.beta = 5.0;
    const attributions::Iba iba(p);
    const int64_t elements = 4 * 6 * 6;
    std::mt19937 rng(11);
    std::vector<double> alpha(static_cast<size_t>(elements));
    for (double& a : alpha) a = std::uniform_real_distribution<double>(-2.0, 3.0)(rng);
    std::vector<float> noise(static_cast<size_t>(p.samples * elements));
    for (float& v : noise) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    const auto base = iba.objective(s.context, s.x, 1, alpha, noise);
    REQUIRE(static_cast<int64_t>(base.grad.size()) == elements);
    // Losses come from float32 activations: a step of 1e-2 keeps rounding well below the
    // difference, and the objective is smooth enough in α for its O(h²) error to stay small.
    const double h = 1e-2;
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < elements; i += 5) {
      std::vector<double> a = alpha;
      a[static_cast<size_t>(i)] += h;
      const double up = iba.objective(s.context, s.x, 1, a, noise).loss;
      a[static_cast<size_t>(i)] -= 2 * h;
      const double down = iba.objective(s.context, s.x, 1, a, noise).loss;
      const double numeric = (up - down) / (2 * h);
      worst = std::max(worst, std::abs(numeric - base.grad[static_cast<size_t>(i)]));
      scale = std::max(scale, std::abs(numeric));
    }
    CHECK(scale > 1e-4);
    CHECK(worst <= 5e-4 * scale);
  }
}

TEST_CASE("IBA: the heatmap is the capacity of the information kept, upsampled, never negative") {
  SmallSetup s = small_setup(true);
  attributions::Batch b{s.x, {1}, {5}, {}};
  attributions::Iba::Params p;
  p.layer = "features.1";
  const attributions::Iba iba(p);
  const attributions::Result r = iba.attribute(s.context, b);
  CHECK(r.attr.shape() == s.x.shape());
  for (float v : r.attr.values()) CHECK(v >= 0.0f);
  // Two references to recognise the network, all references (12 to the layer) for the
  // statistics, the batch to the layer, then 2 per noise draw and step.
  CHECK(r.evaluations == 2 + 12 + 1 + 2 * p.samples * p.iterations);
  // A second call reuses the statistics: the same map, without the 12 reference evaluations.
  const attributions::Result again = iba.attribute(s.context, b);
  CHECK(again.evaluations == 2 + 1 + 2 * p.samples * p.iterations);
  CHECK(again.attr.values() == r.attr.values());
  // Other reference inputs are recognised as such and estimated afresh.
  attributions::Context other = s.context;
  other.reference_inputs = s.context.reference_inputs.slice(0, 6);
  CHECK(iba.attribute(other, b).evaluations == 2 + 6 + 1 + 2 * p.samples * p.iterations);
}

TEST_CASE("IBA: settings it cannot work without are refused") {
  SmallSetup s = small_setup(true);
  attributions::Batch b{s.x, {1}, {5}, {}};
  attributions::Iba::Params p;
  CHECK_THROWS_WITH_AS(attributions::Iba(p).attribute(s.context, b), doctest::Contains("-p layer="), lab::Error);
  p.layer = "flatten";
  CHECK_THROWS_WITH_AS(attributions::Iba(p).attribute(s.context, b), doctest::Contains("C×h×w"), lab::Error);
  p.layer = "features.1";
  s.context.reference_inputs = lab::Tensor();
  CHECK_THROWS_WITH_AS(attributions::Iba(p).attribute(s.context, b), doctest::Contains("reference inputs"), lab::Error);
  CHECK_THROWS_AS(ptest::make("iba", {{"loss", "hinge"}}), lab::Error);
  CHECK_THROWS_AS(ptest::make("iba", {{"beta", "-1"}}), lab::Error);
}

TEST_CASE("IBA recalls the winning patch of easy multi-color-sum images") {
  // The paper's β = 20 weighs the information loss against a cross-entropy of logits equal to the
  // pixel counts, so the network is built with logit-scale = 1 here (the lab's default 2^-8
  // scales the logits; `temperature` = 2^-8 restores the counts, next test). Easy images: solid
  // patches.
  // The per-element mean and std come from 1,000 generated images (the authors recommend many:
  // with few, rarely covered elements are dropped as inactive and the map has holes).
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 64, {0, 1, 2}, 1, {{"logit-scale", "1"}}, true);
  e.context.reference_inputs = ptest::reference_inputs(*e.env, 1000);
  const attributions::Result r = ptest::make("iba", {})->attribute(e.context, e.batch);
  const lab::Tensor map = attributions::reduce_channels(r.attr);
  for (int64_t s = 0; s < 3; ++s) {
    const float* m = map.sample(s);
    const float* gt = e.samples[static_cast<size_t>(s)].gt_smooth.data();
    double on = 0, all = 0;
    for (int64_t p = 0; p < 64 * 64; ++p) {
      all += m[p];
      if (gt[p] > 0) on += m[p];
    }
    const double recall = ptest::positive_recall(m, gt, 64 * 64);
    CAPTURE(s);
    CAPTURE(recall);
    CAPTURE(on / all);
    CHECK(recall >= 0.5);
    CHECK(on / all > 0.4);
  }
}

TEST_CASE("IBA: temperature = logit-scale on the default model is the paper's objective on count logits") {
  // The paper's β = 20 is set against logits equal to pixel counts. On the default model
  // (logits = 2^-8 × counts) T = 2^-8 gives exactly the map of the model whose logits are the
  // counts; T = 1 (β = 20 against logits 256 times smaller) gives another map.
  ptest::EnvBatch scaled = ptest::env_batch("multi-color-sum", 64, {0, 1}, 1);
  ptest::EnvBatch counts = ptest::env_batch("multi-color-sum", 64, {0, 1}, 1, {{"logit-scale", "1"}});
  scaled.context.reference_inputs = ptest::reference_inputs(*scaled.env, 64);
  counts.context.reference_inputs = ptest::reference_inputs(*counts.env, 64);
  const double logit_scale = scaled.env->options().at("logit-scale").get<double>();
  REQUIRE(logit_scale == 1.0 / 256.0);
  const auto paper = ptest::make("iba", {})->attribute(counts.context, counts.batch);
  const auto tempered = ptest::make("iba", {{"temperature", "0.00390625"}})->attribute(scaled.context, scaled.batch);
  const auto untempered = ptest::make("iba", {})->attribute(scaled.context, scaled.batch);
  REQUIRE(tempered.attr.numel() == paper.attr.numel());
  double worst = 0, differ = 0, peak = 0;
  for (int64_t i = 0; i < paper.attr.numel(); ++i) {
    worst = std::max(worst, std::abs(double(tempered.attr[i]) - paper.attr[i]));
    differ = std::max(differ, std::abs(double(untempered.attr[i]) - paper.attr[i]));
    peak = std::max(peak, std::abs(double(paper.attr[i])));
  }
  CAPTURE(peak);
  CAPTURE(differ);
  REQUIRE(peak > 0);
  CHECK(worst <= 1e-6 * peak);
  CHECK(differ > 0.1 * peak);
  CHECK_THROWS_AS(ptest::make("iba", {{"temperature", "0"}}), lab::Error);
}

TEST_CASE("IBA: the same map for any chunk size and thread count") {
  SmallSetup s = small_setup(true);
  std::mt19937 rng(5);
  attributions::Batch b{lab::Tensor({3, 2, 6, 6}, ptest::random_values(216, rng, -1.0f, 1.0f)), {0, 1, 2}, {4, 5, 6}, {}};
  ptest::check_invariance(
      [] { return ptest::make("iba", {{"layer", "features.1"}, {"iterations", "4"}, {"samples", "3"}}); }, s.context, b,
      {64, 1, 2, 5}, 1e-5);
}
