// The perturbation engine's concurrent samples (experiments/engine/perturbation.h, for_samples):
// every metric that evaluates its samples through it gives, bit for bit, the rows and curves of
// the samples evaluated one after the other, and those of a runtime on one thread. Units of
// several samples at 32×32, where the metrics run on the incremental engine (windows of a few
// pixels on one OpenMP thread each, full passes from the pixel-wise cut).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "datasets/environment.h"
#include "experiments/metrics/metric.h"
#include "lab/core/runtime.h"

namespace {

using namespace experiments;

/// Four samples of one designed environment (32×32), each with a map of its own (the ground
/// truth plus noise, so each sample has its own order) and its own seed.
struct Unit {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  Batch batch;

  explicit Unit(const std::string& name) {
    lab::Options options = lab::Options::parse({"size=32"}, "-o");
    env = datasets::make_environment(name, options);
    net = env->build_network();
    const int64_t n = 4;
    std::vector<datasets::Sample> samples;
    for (int64_t i = 0; i < n; ++i) samples.push_back(env->generate(11, i));
    const lab::Tensor x0 = env->to_input(samples[0].image);
    const int64_t h = samples[0].gt.dim(0), w = samples[0].gt.dim(1);
    batch.x = lab::Tensor({n, x0.dim(0), x0.dim(1), x0.dim(2)});
    batch.attr = lab::Tensor({n, h, w});
    batch.gt = lab::Tensor({n, h, w});
    std::mt19937 rng(3);
    std::normal_distribution<float> noise(0.0f, 0.5f);
    for (int64_t i = 0; i < n; ++i) {
      const auto& s = samples[static_cast<size_t>(i)];
      const lab::Tensor x = env->to_input(s.image);
      std::memcpy(batch.x.sample(i), x.data(), static_cast<size_t>(x.numel()) * sizeof(float));
      std::memcpy(batch.gt.sample(i), s.gt.data(), static_cast<size_t>(h * w) * sizeof(float));
      for (int64_t p = 0; p < h * w; ++p) batch.attr.sample(i)[p] = s.gt.data()[p] + noise(rng);
      batch.ids.push_back(s.id);
      batch.target.push_back(env->target_output(s.label));
      batch.seeds.push_back(static_cast<uint64_t>(100 + 7 * i));
    }
  }

  Context context(bool concurrent) const {
    Context c;
    c.net = &net;
    c.env = env->name();
    c.background = env->background();
    c.input_max = env->image_channels() == 3 ? 255.0f : 1.0f;
    c.predicted_label = [this](const float* row) { return env->predicted_label(row); };
    c.unit = 4;
    c.concurrent_samples = concurrent;
    return c;
  }
};

uint64_t bits(double v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

/// Rows and curves equal bit for bit, in the same order.
void check_identical(const MetricOutput& a, const MetricOutput& b) {
  REQUIRE(a.rows.size() == b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    CAPTURE(i);
    CHECK(a.rows[i].sample == b.rows[i].sample);
    CHECK(a.rows[i].variant == b.rows[i].variant);
    CHECK(bits(a.rows[i].value) == bits(b.rows[i].value));
  }
  REQUIRE(a.curves.size() == b.curves.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.curves.size(); ++i)
    differing += a.curves[i].sample != b.curves[i].sample || a.curves[i].variant != b.curves[i].variant ||
                 bits(a.curves[i].x) != bits(b.curves[i].x) || bits(a.curves[i].y) != bits(b.curves[i].y);
  CHECK(differing == 0);
}

/// Restores the runtime's thread count at the end of a test.
struct ThreadsRestored {
  int saved = lab::Runtime::get().threads();
  ~ThreadsRestored() { lab::Runtime::get().set_threads(saved); }
};

}  // namespace

TEST_CASE("concurrent samples give the serial samples' rows and curves bit for bit, on 2 threads and on 1") {
  const ThreadsRestored restore;
  struct Case {
    const char* env;
    const char* metric;
    std::vector<std::string> params;
  };
  const std::vector<Case> cases = {
      {"multi-color-sum", "insertion", {}},
      {"multi-color-sum", "deletion", {}},
      {"multi-color-sum", "deletion", {"pixels-per-step=16", "replacement=noise"}},
      {"multi-color-sum", "sensitivity-n", {"subsets=20", "points=8"}},
      {"multi-color-sum", "pixel-flipping", {"order=random", "replacement=noise"}},
      {"multi-color-sum", "reference-pixel-flipping", {}},
      {"multi-color-sum", "monotonicity", {"pixels-per-step=8"}},
      {"single-color-modulo", "insertion", {}},
      {"single-color-modulo", "sensitivity-n", {"subsets=10", "points=6"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.env);
    CAPTURE(c.metric);
    const Unit unit(c.env);
    lab::Options options = lab::Options::parse(c.params, "-p");
    // A fresh metric per evaluation: Sensitivity-N's score cache would otherwise answer the
    // later evaluations without a network call.
    auto run = [&](int threads, bool concurrent) {
      lab::Runtime::get().set_threads(threads);
      const std::unique_ptr<Metric> metric = make_metric(c.metric, options, MetricSetup::of(*unit.env));
      return metric->evaluate(unit.context(concurrent), unit.batch);
    };
    const MetricOutput serial = run(2, false);
    REQUIRE(serial.rows.size() >= 4);
    CHECK(!serial.curves.empty() == (std::string(c.metric) != "monotonicity"));
    for (int repeat = 0; repeat < 2; ++repeat) check_identical(run(2, true), serial);
    check_identical(run(1, true), serial);
    check_identical(run(1, false), serial);
  }
}
