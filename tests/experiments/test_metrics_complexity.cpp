// Complexity, effective complexity, sparseness (experiments/metrics/complexity.h), the pointing
// game (pointing_game.h) on hand-computed maps, and max-/avg-sensitivity (max_avg_sensitivity.h)
// with methods whose sensitivity is known.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "datasets/environment.h"
#include "experiments/metrics/complexity.h"
#include "experiments/metrics/max_avg_sensitivity.h"
#include "experiments/metrics/pointing_game.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

std::unique_ptr<Metric> metric(const std::string& name, const std::vector<std::string>& p = {}) {
  lab::Options options = lab::Options::parse(p, "-p");
  return make_metric(name, options, MetricSetup{});
}

}  // namespace

TEST_CASE("complexity is the entropy of |S| / sum |S|") {
  const std::vector<float> two = {1, -1, 0, 0}, one = {0, 0, 5, 0}, flat = {2, 2, 2, 2, 2};
  CHECK(*entropy_complexity(two.data(), 4) == doctest::Approx(std::log(2.0)));
  CHECK(*entropy_complexity(one.data(), 4) == 0.0);
  CHECK(*entropy_complexity(flat.data(), 5) == doctest::Approx(std::log(5.0)));
  const std::vector<float> zero(6, 0.0f);
  CHECK_FALSE(entropy_complexity(zero.data(), 6).has_value());
  // p = (1/4, 3/4): H = −(1/4 ln 1/4 + 3/4 ln 3/4).
  const std::vector<float> skew = {1, 3};
  CHECK(*entropy_complexity(skew.data(), 2) == doctest::Approx(-(0.25 * std::log(0.25) + 0.75 * std::log(0.75))));
}

TEST_CASE("effective complexity counts the max-normalised magnitudes above eps") {
  const std::vector<float> a = {1, 1e-6f, -0.5f, 0};
  CHECK(effective_complexity(a.data(), 4, 1e-5) == 2.0);
  CHECK(effective_complexity(a.data(), 4, 1e-7) == 3.0);
  CHECK(effective_complexity(a.data(), 4, 0.6) == 1.0);
  const std::vector<float> zero(3, 0.0f);
  CHECK(effective_complexity(zero.data(), 3, 1e-5) == 0.0);
}

TEST_CASE("sparseness is the Gini index: one-hot 1 - 1/n, constant 0, a hand-computed case") {
  for (int64_t n : {2, 5, 64}) {
    std::vector<float> hot(static_cast<size_t>(n), 0.0f);
    hot[1] = -3.0f;
    CHECK(*gini_sparseness(hot.data(), n) == doctest::Approx(1.0 - 1.0 / static_cast<double>(n)));
    const std::vector<float> flat(static_cast<size_t>(n), 0.7f);
    CHECK(*gini_sparseness(flat.data(), n) == doctest::Approx(0.0).scale(1));
  }
  // Sorted (0, 0, 1, 3): Σ (2i − 5) a_i = 1 + 9 = 10; / (4 · 4) = 0.625.
  const std::vector<float> a = {3, 0, 1, 0};
  CHECK(*gini_sparseness(a.data(), 4) == doctest::Approx(0.625));
  const std::vector<float> zero(3, 0.0f);
  CHECK_FALSE(gini_sparseness(zero.data(), 3).has_value());
}

TEST_CASE("pointing game: hit and miss with tolerance, shared maxima, empty regions") {
  const PointingGame strict({.tolerance = 2.0});
  const PointingGame near({.tolerance = 3.0});
  const PointingGame overall({.tolerance = 0.0, .region = PointingGame::Region::kOverall});
  lab::Tensor gt({8, 8}, 0.0f), attr({8, 8}, 0.0f);
  gt[2 * 8 + 2] = 1.0f;   // positive region: pixel (2, 2)
  gt[6 * 8 + 6] = -1.0f;  // negative pixel (6, 6)
  attr[2 * 8 + 5] = 1.0f;  // maximum at (2, 5): 3 pixels from the region
  CHECK(*strict.hit(attr.data(), gt.data(), 8, 8) == 0.0);
  CHECK(*near.hit(attr.data(), gt.data(), 8, 8) == 1.0);
  attr[2 * 8 + 2] = 1.0f;  // a second maximum inside the region: half of the maxima hit
  CHECK(*strict.hit(attr.data(), gt.data(), 8, 8) == 0.5);
  // Diagonal distance: (4, 4) is √8 ≈ 2.83 from (2, 2).
  lab::Tensor diag({8, 8}, 0.0f);
  diag[4 * 8 + 4] = 1.0f;
  CHECK(*strict.hit(diag.data(), gt.data(), 8, 8) == 0.0);
  CHECK(*near.hit(diag.data(), gt.data(), 8, 8) == 1.0);
  // The overall region also holds the negative pixel.
  lab::Tensor neg({8, 8}, 0.0f);
  neg[6 * 8 + 6] = 2.0f;
  CHECK(*overall.hit(neg.data(), gt.data(), 8, 8) == 1.0);
  CHECK(*PointingGame({.tolerance = 0.0}).hit(neg.data(), gt.data(), 8, 8) == 0.0);
  const lab::Tensor empty({8, 8}, 0.0f);
  CHECK_FALSE(strict.hit(attr.data(), empty.data(), 8, 8).has_value());
  CHECK(metric("pointing-game")->params()["tolerance"] == 15.0);
}

TEST_CASE("max- and avg-sensitivity re-explain perturbed inputs with the method") {
  // single-color-modulo: one channel, input maximum 1, so ε = radius.
  lab::Options o = lab::Options::parse({"size=16"}, "-o");
  const auto env = datasets::make_environment("single-color-modulo", o);
  const lab::Network net = env->build_network();
  const datasets::Sample s = env->generate(1, 0);
  Context context;
  context.net = &net;
  context.input_max = 1.0f;
  Batch batch;
  batch.ids = {s.id};
  const lab::Tensor x = env->to_input(s.image);
  batch.x = x.reshaped({1, 1, 16, 16});
  batch.attr = x.reshaped({1, 16, 16});  // the map of the identity "method" S(x) = x
  batch.target = {env->target_output(s.label)};
  batch.seeds = {4};

  // No method: refused naming the metric.
  CHECK_THROWS_WITH_AS(metric("max-sensitivity")->evaluate(context, batch), doctest::Contains("max-sensitivity"),
                       lab::Error);
  // A method whose map does not depend on the input (here: the unperturbed map): 0.
  context.explain = [&](const lab::Tensor& xs, const std::string&, int64_t, const std::vector<uint64_t>&) {
    lab::Tensor out(xs.shape());
    for (int64_t j = 0; j < xs.batch(); ++j) std::copy(x.data(), x.data() + x.numel(), out.sample(j));
    return out;
  };
  CHECK(metric("max-sensitivity")->evaluate(context, batch).rows[0].value == 0.0);
  CHECK(metric("avg-sensitivity")->evaluate(context, batch).rows[0].value == 0.0);
  // The identity S(x') = x': ‖S(x) − S(x')‖ = ‖u‖ with u uniform in [−ε, ε]^256, so the mean is
  // ≈ ε √(256/3) (‖u‖² has mean 256 ε²/3 and a relative spread of ≈ 5%, which 500 draws average
  // down to ≈ 0.2%); the tolerance 1% covers it and the Jensen gap (< 0.1%).
  context.explain = [](const lab::Tensor& xs, const std::string&, int64_t, const std::vector<uint64_t>&) { return xs; };
  const double eps = 0.1;
  const double avg = metric("avg-sensitivity", {"normalise=off", "radius=0.1", "samples=500"})
                         ->evaluate(context, batch).rows[0].value;
  const double top = metric("max-sensitivity", {"normalise=off", "radius=0.1", "samples=500"})
                         ->evaluate(context, batch).rows[0].value;
  CHECK(avg == doctest::Approx(eps * std::sqrt(256.0 / 3.0)).epsilon(0.01));
  CHECK(top > avg);
  CHECK(top <= eps * 16.0);  // ‖u‖ ≤ ε √256
  // The same seeds give the same value.
  CHECK(metric("avg-sensitivity", {"normalise=off", "radius=0.1", "samples=500"})->evaluate(context, batch).rows[0].value ==
        avg);
}
