// RISE: mask properties, the map of a linear model against w ⊙ x, and chunk/thread invariance.
#include <cmath>

#include "attributions/rise.h"
#include "test_perturbation_util.h"

namespace {

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i] / n, mb += b[i] / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

}  // namespace

TEST_CASE("RISE masks: values in [0, 1], mean p, a pure function of (seed, index)") {
  for (const double p : {0.5, 0.2}) {
    CAPTURE(p);
    attributions::Rise::Params params;
    params.p = p;
    const attributions::Rise rise(params);
    double mean = 0;
    const int count = 400;
    for (int i = 0; i < count; ++i) {
      const std::vector<float> m = rise.mask(7, i, 20, 24);
      REQUIRE(m.size() == 480);
      for (float v : m) REQUIRE((v >= 0.0f && v <= 1.0f));
      for (float v : m) mean += v / (480.0 * count);
    }
    // Bilinear interpolation preserves the mean of the Bernoulli grid in expectation.
    CHECK(mean == doctest::Approx(p).epsilon(0.05));
    CHECK(rise.mask(7, 3, 20, 24) == rise.mask(7, 3, 20, 24));
    CHECK(rise.mask(7, 3, 20, 24) != rise.mask(8, 3, 20, 24));
    CHECK(rise.mask(7, 3, 20, 24) != rise.mask(7, 4, 20, 24));
  }
  // cell-size 1 on a 4×4 image: a 4×4 grid upsampled to 5×5 and cropped.
  attributions::Rise::Params fine;
  fine.cell_size = 1;
  CHECK(attributions::Rise(fine).mask(1, 0, 4, 4).size() == 16);
  CHECK_THROWS_AS(ptest::make("rise", {{"p", "0"}}), lab::Error);
  CHECK_THROWS_AS(ptest::make("rise", {{"cell-size", "0"}}), lab::Error);
  CHECK_NOTHROW(ptest::make("rise", {{"cell-size", "auto"}}));
}

TEST_CASE("RISE on a linear model approximates w ⊙ x up to a constant factor") {
  // f = w·x on a 2×16×16 input. E[f(M ⊙ x) M(λ)] = Σ_v w_v x_v E[M(v) M(λ)]: RISE is w ⊙ x seen
  // through the masks' autocorrelation, so it follows w ⊙ x where w ⊙ x varies slowly against
  // the cells (here two Gaussian bumps of opposite sign, on the default 7×7 grid).
  const int64_t c = 2, h = 16, w = 16, n = c * h * w;
  std::vector<float> weights(static_cast<size_t>(n)), x(static_cast<size_t>(n));
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) {
        const size_t i = static_cast<size_t>((ch * h + y) * w + xx);
        weights[i] = static_cast<float>(std::exp(-((y - 5.0) * (y - 5.0) + (xx - 10.0) * (xx - 10.0)) / 18.0) -
                                        0.5 * std::exp(-((y - 12.0) * (y - 12.0) + (xx - 4.0) * (xx - 4.0)) / 12.0));
        x[i] = 1.0f + 0.5f * static_cast<float>(ch);
      }
  const lab::Network net = ptest::linear_network({c, h, w}, weights, {0.0f});
  attributions::Context context;
  context.net = &net;
  context.batch = 256;
  const auto method = ptest::make("rise", {{"masks", "4000"}});
  const attributions::Result r = method->attribute(context, {lab::Tensor({1, c, h, w}, x), {0}, {11}, {}});
  CHECK(r.evaluations == 4000);
  const lab::Tensor map = attributions::reduce_channels(r.attr);
  std::vector<double> a(static_cast<size_t>(h * w)), truth(static_cast<size_t>(h * w), 0.0);
  for (int64_t p = 0; p < h * w; ++p) {
    a[static_cast<size_t>(p)] = map[p];
    for (int64_t ch = 0; ch < c; ++ch)
      truth[static_cast<size_t>(p)] += double(weights[static_cast<size_t>(ch * h * w + p)]) * x[static_cast<size_t>(ch * h * w + p)];
  }
  const double rho = pearson(a, truth);
  CAPTURE(rho);
  CHECK(rho > 0.9);
}

TEST_CASE("RISE equals its definition, 1/(N·p) Σ_i f(M_i ⊙ x + (1 − M_i) ⊙ b) M_i, on any linear model") {
  const int64_t c = 3, h = 9, w = 11, n = c * h * w, masks = 150;
  std::mt19937 rng(5);
  const std::vector<float> weights = ptest::random_values(static_cast<size_t>(n), rng, -1.0f, 1.0f);
  const lab::Tensor x({1, c, h, w}, ptest::random_values(static_cast<size_t>(n), rng, 0.0f, 2.0f));
  const lab::Network net = ptest::linear_network({c, h, w}, weights, {0.5f});
  attributions::Context context;
  context.net = &net;
  context.batch = 64;
  attributions::Rise::Params params;
  params.masks = masks;
  params.p = 0.3;
  params.cell_size = 3;
  params.baseline = attributions::Baseline::parse("1,2,3");
  const attributions::Rise rise(params);
  const attributions::Result r = rise.attribute(context, {x, {0}, {42}, {}});
  std::vector<double> expected(static_cast<size_t>(h * w), 0.0);
  for (int64_t i = 0; i < masks; ++i) {
    const std::vector<float> m = rise.mask(42, i, h, w);
    double f = 0.5;
    for (int64_t k = 0; k < n; ++k) {
      const double keep = m[static_cast<size_t>(k % (h * w))];
      f += double(weights[static_cast<size_t>(k)]) * (keep * x[k] + (1.0 - keep) * static_cast<double>(1 + k / (h * w)));
    }
    for (int64_t p = 0; p < h * w; ++p) expected[static_cast<size_t>(p)] += f * m[static_cast<size_t>(p)] / (masks * 0.3);
  }
  const lab::Tensor map = attributions::reduce_channels(r.attr);
  for (int64_t p = 0; p < h * w; ++p) CHECK(map[p] == doctest::Approx(expected[static_cast<size_t>(p)]).epsilon(1e-4));
}

TEST_CASE("RISE: the same map for any chunk size and thread count") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0, 1});
  ptest::check_invariance([] { return ptest::make("rise", {{"masks", "300"}}); }, e.context, e.batch, {600, 1, 13}, 1e-6);
}
