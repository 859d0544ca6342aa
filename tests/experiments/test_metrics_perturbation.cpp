// Insertion/Deletion (experiments/metrics/insertion_deletion.h), Sensitivity-N
// (sensitivity_n.h) and their shared engine parts (experiments/engine/perturbation.h) on the designed networks, where the
// curves follow from the pixel counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>

#include <opencv2/imgproc.hpp>

#include "datasets/environment.h"
#include "experiments/metrics/insertion_deletion.h"
#include "experiments/metrics/sensitivity_n.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

/// One designed environment (32×32 unless said) with one sample, its network and a metric context.
struct Lab {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  datasets::Sample sample;
  Context context;

  explicit Lab(const std::string& name, int64_t index = 0, int64_t size = 32) {
    lab::Options options = lab::Options::parse({"size=" + std::to_string(size)}, "-o");
    env = datasets::make_environment(name, options);
    net = env->build_network();
    sample = env->generate(5, index);
    context.net = &net;
    context.env = name;
    context.background = env->background();
    context.input_max = env->image_channels() == 3 ? 255.0f : 1.0f;
    context.predicted_label = [this](const float* row) { return env->predicted_label(row); };
  }

  /// A batch of this sample with `attr` (H×W).
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

  std::unique_ptr<Metric> metric(const std::string& name, const std::vector<std::string>& p = {}) const {
    lab::Options options = lab::Options::parse(p, "-p");
    return make_metric(name, options, MetricSetup::of(*env));
  }
};

double row_value(const MetricOutput& out, const std::string& sample) {
  for (const MetricRow& r : out.rows)
    if (r.sample == sample) return r.value;
  FAIL("no row for " << sample);
  return 0.0;
}

lab::Tensor positive_part(const lab::Tensor& gt) {
  lab::Tensor a = gt;
  for (float& v : a.values()) v = std::max(v, 0.0f);
  return a;
}

int64_t count_nonzero(const lab::Tensor& t) {
  return std::count_if(t.values().begin(), t.values().end(), [](float v) { return v != 0.0f; });
}

}  // namespace

TEST_CASE("modulo Insertion/Deletion: a map ranking every white pixel first reaches App. F.4's optimum") {
  const Lab lab("single-color-modulo");
  const double g = static_cast<double>(count_nonzero(lab.sample.gt)), p = 32.0 * 32.0;
  REQUIRE(g > 0);
  const auto insertion = lab.metric("insertion");
  const auto deletion = lab.metric("deletion");
  CHECK(insertion->params()["mode"] == "modulo");  // the default on modulo data
  REQUIRE(insertion->variants().front().name == "auc-modulo");

  const MetricOutput ins = insertion->evaluate(lab.context, lab.batch(lab.sample.gt));
  const MetricOutput del = deletion->evaluate(lab.context, lab.batch(lab.sample.gt));
  // Insertion rises linearly to 1 at x = G/P, then stays: AUC = 1 − G/(2P); Deletion mirrors it.
  CHECK(row_value(ins, lab.sample.id) == doctest::Approx(1.0 - g / (2.0 * p)).epsilon(1e-12));
  CHECK(row_value(del, lab.sample.id) == doctest::Approx(g / (2.0 * p)).epsilon(1e-12));
  REQUIRE(ins.curves.size() == 1025);
  CHECK(ins.curves.front().y == 0.0);
  CHECK(ins.curves[static_cast<size_t>(g)].y == 1.0);
  CHECK(ins.curves.back().x == 1.0);
  CHECK(del.curves.front().y == 1.0);
  CHECK(del.curves.back().y == 0.0);

  // Any other order does worse.
  std::mt19937 rng(3);
  lab::Tensor random(lab.sample.gt.shape());
  for (float& v : random.values()) v = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
  CHECK(row_value(insertion->evaluate(lab.context, lab.batch(random)), lab.sample.id) < 1.0 - g / (2.0 * p) - 0.1);
  CHECK(row_value(deletion->evaluate(lab.context, lab.batch(random)), lab.sample.id) > g / (2.0 * p) + 0.1);
}

TEST_CASE("standard Insertion/Deletion of the target logit follow the designed pixel counts") {
  const Lab lab("multi-color-sum");
  const lab::Tensor attr = positive_part(lab.sample.gt);  // the winning colour's pixels first
  const double g = static_cast<double>(count_nonzero(attr)), p = 32.0 * 32.0;
  const std::vector<std::string> params = {"output=logit", "replacement=background"};
  const MetricOutput del = lab.metric("deletion", params)->evaluate(lab.context, lab.batch(attr));
  const MetricOutput ins = lab.metric("insertion", params)->evaluate(lab.context, lab.batch(attr));
  REQUIRE(del.curves.size() == 1025);
  // The logit is scale × (target pixels present); deleting them first empties it in G steps.
  const double top = del.curves.front().y;
  REQUIRE(top > 0.0);
  for (size_t k = 0; k < del.curves.size(); ++k) {
    CAPTURE(k);
    const double left = std::max(0.0, g - static_cast<double>(k));
    REQUIRE(del.curves[k].y == doctest::Approx(top * left / g).epsilon(1e-9));
    REQUIRE(ins.curves[k].y == doctest::Approx(top - top * left / g).epsilon(1e-9));
    REQUIRE(del.curves[k].x == static_cast<double>(k) / p);
  }
  CHECK(row_value(del, lab.sample.id) == doctest::Approx(top * g / p / 2.0).epsilon(1e-9));
  CHECK(row_value(ins, lab.sample.id) == doctest::Approx(top * (1.0 - g / (2.0 * p))).epsilon(1e-9));
}

TEST_CASE("standard Deletion of the probability: from the model's output to the uniform background") {
  const Lab lab("multi-color-sum");
  const Batch b = lab.batch(positive_part(lab.sample.gt));
  const MetricOutput del = lab.metric("deletion", {"replacement=background"})->evaluate(lab.context, b);
  const lab::Tensor y = lab.net.forward(b.x);
  CHECK(del.curves.front().y == doctest::Approx(y[b.target[0]]).epsilon(1e-7));
  // All pixels background: every colour count is 0, the softmax is uniform.
  CHECK(del.curves.back().y == doctest::Approx(1.0 / static_cast<double>(lab.env->num_classes())).epsilon(1e-7));
  CHECK(lab.metric("deletion")->direction("auc") == Direction::kLowerIsBetter);
}

TEST_CASE("pixels-per-step coarsens the curve on the [0, 1] fraction axis") {
  const Lab lab("multi-color-sum");
  const MetricOutput out =
      lab.metric("insertion", {"pixels-per-step=100"})->evaluate(lab.context, lab.batch(lab.sample.gt));
  REQUIRE(out.curves.size() == 12);  // 0, 100, …, 1000, 1024
  CHECK(out.curves[1].x == doctest::Approx(100.0 / 1024.0).epsilon(1e-15));
  CHECK(out.curves.back().x == 1.0);
  CHECK_THROWS_AS(lab.metric("insertion", {"mode=modulo", "pixels-per-step=2"}), lab::Error);
}

TEST_CASE("Insertion/Deletion curves: incremental equals full evaluation for every replacement") {
  // 16 pixels per step keeps the full side short; full resolution is test_metrics_incremental's.
  const Lab lab("multi-color-sum", 1, 16);
  std::mt19937 rng(9);
  lab::Tensor attr(lab.sample.gt.shape());
  for (float& v : attr.values()) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  const lab::Tensor x = lab.env->to_input(lab.sample.image);
  for (const char* replacement : {"replacement=constant", "replacement=background", "replacement=blur",
                                  "replacement=noise"}) {
    for (const char* name : {"insertion", "deletion"}) {
      CAPTURE(replacement);
      CAPTURE(name);
      lab::Options o = lab::Options::parse({replacement, "pixels-per-step=16"}, "-p");
      const InsertionDeletion::Params p = InsertionDeletion::Params::schema().read(o);
      const InsertionDeletion m(std::string(name) == "insertion" ? InsertionDeletion::Kind::kInsertion
                                                                 : InsertionDeletion::Kind::kDeletion,
                                p);
      const auto fast = m.curve(lab.context, m.evaluator(lab.context, true), x, attr.data(), nullptr, 0, "s", 3);
      const auto slow = m.curve(lab.context, m.evaluator(lab.context, false), x, attr.data(), nullptr, 0, "s", 3);
      REQUIRE(fast.size() == slow.size());
      for (size_t k = 0; k < fast.size(); ++k) REQUIRE(fast[k].y == slow[k].y);
    }
  }
}

TEST_CASE("replacement images") {
  const Lab lab("multi-color-sum");
  const lab::Tensor x = lab.env->to_input(lab.sample.image);
  PerturbationParams p;
  SUBCASE("constant, one value or one per channel") {
    p.value = {1.0, 2.0, 3.0};
    const lab::Tensor r = replacement_image(p, x, lab.context, 0);
    CHECK(r[2 * 1024 + 5 * 32 + 7] == 3.0f);
    CHECK(r[0] == 1.0f);
    p.value = {1.0, 2.0};
    CHECK_THROWS_AS(replacement_image(p, x, lab.context, 0), lab::Error);
  }
  SUBCASE("background") {
    p.replacement = ReplacementKind::kBackground;
    const lab::Tensor r = replacement_image(p, x, lab.context, 0);
    CHECK(std::all_of(r.values().begin(), r.values().end(), [&](float v) { return v == lab.context.background[0]; }));
  }
  SUBCASE("blur is OpenCV's Gaussian per channel") {
    p.replacement = ReplacementKind::kBlur;
    p.blur_sigma = 2.0;
    const lab::Tensor r = replacement_image(p, x, lab.context, 0);
    cv::Mat channel(32, 32, CV_32F, const_cast<float*>(x.data() + 1024)), blurred;
    cv::GaussianBlur(channel, blurred, cv::Size(0, 0), 2.0, 2.0, cv::BORDER_REFLECT_101);
    CHECK(r[1024 + 5 * 32 + 9] == blurred.at<float>(5, 9));
  }
  SUBCASE("noise: in range, determined by the seeds") {
    p.replacement = ReplacementKind::kNoise;
    const lab::Tensor a = replacement_image(p, x, lab.context, 1);
    CHECK(std::all_of(a.values().begin(), a.values().end(), [](float v) { return v >= 0.0f && v < 255.0f; }));
    CHECK(a.values() == replacement_image(p, x, lab.context, 1).values());
    CHECK(a.values() != replacement_image(p, x, lab.context, 2).values());
    p.seed = 4;
    CHECK(a.values() != replacement_image(p, x, lab.context, 1).values());
  }
}

TEST_CASE("the log-spaced Sensitivity-N schedule runs from 1 up to, not including, H·W") {
  CHECK(log_schedule(1024, 5) == std::vector<int64_t>{1, 4, 16, 64, 256});  // 1024^(i/5), rounded
  CHECK(log_schedule(4, 16) == std::vector<int64_t>{1, 2, 3});              // clamped to P − 1, duplicates removed
  CHECK(log_schedule(50176, 1) == std::vector<int64_t>{1});
  CHECK(log_schedule(1, 16).empty());
  // At every image size of the shipped experiments and the paper, every N is in [1, P) and the
  // schedule starts at 1: the N = P point, whose ρ is undefined, is never averaged in.
  for (int64_t side : {16, 32, 64, 224})
    for (int64_t points : {1, 3, 8, 16, 64}) {
      const int64_t p = side * side;
      const std::vector<int64_t> ns = log_schedule(p, points);
      CAPTURE(side);
      CAPTURE(points);
      REQUIRE(!ns.empty());
      CHECK(ns.front() == 1);
      CHECK(ns.back() < p);
      CHECK(static_cast<int64_t>(ns.size()) <= points);
      CHECK(std::is_sorted(ns.begin(), ns.end()));
    }
  CHECK(log_schedule(50176, 16).back() == 25510);  // round(50176^(15/16))
}

TEST_CASE("standard Sensitivity-N: the designed per-pixel effect correlates perfectly") {
  const Lab lab("multi-color-sum", 0, 16);
  // With logits and background replacement, the output change of a subset is scale × (target
  // pixels in it): ρ = 1 for the map marking them, −1 for its negation.
  const std::vector<std::string> params = {"output=logit", "replacement=background", "n=8,32,128",
                                           "subsets=30"};
  const auto metric = lab.metric("sensitivity-n", params);
  lab::Tensor attr = positive_part(lab.sample.gt);
  const MetricOutput out = metric->evaluate(lab.context, lab.batch(attr));
  REQUIRE(out.curves.size() == 3);
  CHECK(out.curves[0].x == 8.0);
  for (size_t i = 0; i < 3; ++i) CHECK(out.curves[i].y == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(row_value(out, lab.sample.id) == doctest::Approx(1.0).epsilon(1e-9));
  for (float& v : attr.values()) v = -v;
  CHECK(row_value(metric->evaluate(lab.context, lab.batch(attr)), lab.sample.id) == doctest::Approx(-1.0).epsilon(1e-9));
  // N = H·W (every subset the whole image, ρ undefined) is outside the set: refused, as is more.
  for (const char* n : {"n=8,256", "n=257"})
    CHECK_THROWS_WITH_AS(lab.metric("sensitivity-n", {n})->evaluate(lab.context, lab.batch(attr)),
                         doctest::Contains("expected N < H*W"), lab::Error);
  // The derived schedule, resolved from the 16×16 images, starts at 1 and stays below P = 256.
  const auto derived = lab.metric("sensitivity-n", {"output=logit", "replacement=background", "subsets=30", "points=6"});
  const MetricOutput d = derived->evaluate(lab.context, lab.batch(positive_part(lab.sample.gt)));
  REQUIRE(!d.curves.empty());
  CHECK(d.curves.back().x < 256.0);
  CHECK(d.curves.front().x == 1.0);
}

TEST_CASE("standard Sensitivity-N: small subsets on incremental paths equal full forward passes") {
  const Lab lab("multi-color-sum", 2, 16);
  std::mt19937 rng(5);
  lab::Tensor attr(lab.sample.gt.shape());
  for (float& v : attr.values()) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  // P = 256: N ≤ 8 goes on paths, 64 and 255 are full passes.
  const auto metric = lab.metric("sensitivity-n", {"n=2,8,64,255", "subsets=12"});
  // A second metric object: the first keeps the image's subset outputs for further maps.
  const auto fresh = lab.metric("sensitivity-n", {"n=2,8,64,255", "subsets=12"});
  Context full = lab.context;
  full.incremental = false;
  const MetricOutput a = metric->evaluate(lab.context, lab.batch(attr));
  const MetricOutput b = fresh->evaluate(full, lab.batch(attr));
  REQUIRE(a.curves.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK(a.curves[i].y == b.curves[i].y);
  CHECK(a.curves[0].y != 0.0);  // the default (0, 0, 0) replacement moves the output
}

TEST_CASE("evaluate_subsets: every plan gives the outputs of full forward passes of the whole input") {
  // Incremental paths, full passes assembled after the colour detector (the cut) or from the
  // input, any size limit between them: the reference (every subset a full pass of the input).
  for (const int64_t size : {int64_t{16}, int64_t{32}}) {
    CAPTURE(size);
    const Lab lab("multi-color-sum", 3, size);
    const lab::Tensor image = lab.env->to_input(lab.sample.image);
    const int64_t hw = size * size;
    std::vector<std::vector<int64_t>> subsets;
    std::mt19937 rng(3);
    std::vector<int64_t> pixels(static_cast<size_t>(hw));
    for (int64_t p = 0; p < hw; ++p) pixels[static_cast<size_t>(p)] = p;
    for (const int64_t n : {int64_t{1}, int64_t{2}, int64_t{5}, hw / 16, hw / 3, hw - 1})
      for (int r = 0; r < 7; ++r) {
        std::shuffle(pixels.begin(), pixels.end(), rng);
        subsets.emplace_back(pixels.begin(), pixels.begin() + n);
      }
    const auto count = static_cast<int64_t>(subsets.size());
    const auto draw = [&](int64_t q, std::vector<int64_t>& out) { out = subsets[static_cast<size_t>(q)]; };
    for (const bool logit : {false, true}) {
      CAPTURE(logit);
      const size_t end = lab.net.size() - (logit ? 1 : 0);
      for (const bool background : {false, true}) {
        CAPTURE(background);
        const lab::Tensor start = background ? lab::Tensor(image.shape(), 0.0f) : image;
        const lab::Tensor source = background ? image : lab::Tensor(image.shape(), 0.0f);
        const PathEvaluator evaluator(lab.net, end);
        const lab::Tensor reference =
            evaluate_subsets(lab.net, evaluator, end, start, source, count, draw, {.incremental = false, .max_batch = 9});
        SubsetStats stats;
        for (const int64_t below : {int64_t{-1}, int64_t{0}, int64_t{2}, hw / 32, hw})
          for (const bool at_cut : {true, false}) {
            CAPTURE(below);
            CAPTURE(at_cut);
            const lab::Tensor y = evaluate_subsets(lab.net, evaluator, end, start, source, count, draw,
                                                   {.path_below = below, .assemble_at_cut = at_cut, .max_batch = 9}, &stats);
            REQUIRE(y.shape() == reference.shape());
            CHECK(y.values() == reference.values());
            CHECK(stats.cut == (at_cut ? 10u : 0u));
            CHECK(stats.on_path + stats.full == count);
            if (below == 0) CHECK(stats.on_path == 0);
            if (below == hw) CHECK(stats.full == 0);
            if (below == -1) CHECK(stats.path_below == subset_path_limit(lab.net, evaluator, end, stats.cut));
          }
      }
    }
  }
}

TEST_CASE("standard Sensitivity-N: further maps of an image reuse its subset outputs with the same values") {
  const Lab lab("multi-color-sum", 1, 16);
  const std::vector<std::string> params = {"n=2,8,64,200", "subsets=10"};
  std::mt19937 rng(9);
  std::vector<lab::Tensor> maps;
  for (int m = 0; m < 3; ++m) {
    lab::Tensor attr(lab.sample.gt.shape());
    for (float& v : attr.values()) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    maps.push_back(attr);
  }
  maps.push_back(positive_part(lab.sample.gt));
  // One metric object scores every map (as a run scores every method of a model); each result
  // equals that of a metric object that never saw the image.
  const auto shared = lab.metric("sensitivity-n", params);
  for (const lab::Tensor& attr : maps) {
    const MetricOutput a = shared->evaluate(lab.context, lab.batch(attr));
    const MetricOutput b = lab.metric("sensitivity-n", params)->evaluate(lab.context, lab.batch(attr));
    REQUIRE(a.curves.size() == b.curves.size());
    for (size_t i = 0; i < a.curves.size(); ++i) CHECK(a.curves[i].y == b.curves[i].y);
    CHECK(row_value(a, lab.sample.id) == row_value(b, lab.sample.id));
  }
  // Another target, another seed, other parameters: scored afresh, not from the kept outputs.
  Batch other_seed = lab.batch(maps[3]);
  other_seed.seeds = {8};
  Batch other_target = lab.batch(maps[3]);
  other_target.target = {(other_target.target[0] + 1) % lab.net.output_shape(1)[1]};
  for (const Batch& batch : {other_seed, other_target}) {
    const MetricOutput a = shared->evaluate(lab.context, batch);
    const MetricOutput b = lab.metric("sensitivity-n", params)->evaluate(lab.context, batch);
    for (size_t i = 0; i < a.curves.size(); ++i) CHECK(a.curves[i].y == b.curves[i].y);
  }
  // The model without the unseen-data effect answers the unperturbed image alike but its
  // perturbed copies differently: the same metric object on that network gives its own values.
  lab::Options options = lab::Options::parse({"size=16", "ude=false", "accumulator=uniform"}, "-o");
  const auto env = datasets::make_environment("multi-color-sum", options);
  const lab::Network other = env->build_network();
  Context context = lab.context;
  context.net = &other;
  const MetricOutput a = shared->evaluate(context, lab.batch(maps[0]));
  const MetricOutput b = lab.metric("sensitivity-n", params)->evaluate(context, lab.batch(maps[0]));
  const MetricOutput before = shared->evaluate(lab.context, lab.batch(maps[0]));
  bool differs = false;
  for (size_t i = 0; i < a.curves.size(); ++i) {
    CHECK(a.curves[i].y == b.curves[i].y);
    differs = differs || a.curves[i].y != before.curves[i].y;
  }
  CHECK(differs);
}

TEST_CASE("modulo Sensitivity-N (App. F.5): correct steps equal the white pixels perturbed") {
  const Lab lab("single-color-modulo");
  const auto metric = lab.metric("sensitivity-n", {"n=64,256,1023", "subsets=20"});
  CHECK(metric->variants().front().name == "mean-modulo");
  const MetricOutput out = metric->evaluate(lab.context, lab.batch(lab.sample.gt));
  REQUIRE(out.curves.size() == 3);
  CHECK(out.curves[0].y == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(out.curves[1].y == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(row_value(out, lab.sample.id) > 0.5);
  // At N = H·W every order has perturbed everything (constant vectors): outside the set.
  CHECK_THROWS_WITH_AS(lab.metric("sensitivity-n", {"n=64,1024"})->evaluate(lab.context, lab.batch(lab.sample.gt)),
                       doctest::Contains("expected N < H*W"), lab::Error);
  // A constant map has no association at all.
  const lab::Tensor constant(lab.sample.gt.shape(), 1.0f);
  CHECK(row_value(metric->evaluate(lab.context, lab.batch(constant)), lab.sample.id) == 0.0);
}
