// Occlusion: the closed form on linear models, the exact occluded inputs seen by a spy network,
// the designed closed form of Occlusion* on multi-color-sum, and chunk/thread invariance.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "attributions/occlusion.h"
#include "test_perturbation_util.h"

namespace {

/// attr_i = (1/n_i) Σ_{P ∋ i} Σ_{j ∈ P} w_j (x_j − b_j), windows enumerated here independently:
/// along each dimension the window slides by its stride until it touches (or passes) the border,
/// and the part past the border is dropped.
std::vector<double> occlusion_closed_form(const std::vector<float>& w, const std::vector<float>& x,
                                          const std::vector<float>& b, const int64_t dims[3],
                                          const std::vector<int64_t>& window, const std::vector<int64_t>& strides) {
  const int64_t n = dims[0] * dims[1] * dims[2];
  std::vector<double> sum(static_cast<size_t>(n), 0.0), count(static_cast<size_t>(n), 0.0);
  auto index = [&](int64_t c, int64_t y, int64_t xx) { return (c * dims[1] + y) * dims[2] + xx; };
  auto starts = [&](int d) {
    std::vector<int64_t> v;
    for (int64_t p = 0;; p += strides[static_cast<size_t>(d)]) {
      v.push_back(p);
      if (p + window[static_cast<size_t>(d)] >= dims[d]) break;
    }
    return v;
  };
  auto end = [&](int d, int64_t p) { return std::min(p + window[static_cast<size_t>(d)], dims[d]); };
  for (int64_t c0 : starts(0))
    for (int64_t y0 : starts(1))
      for (int64_t x0 : starts(2)) {
        double delta = 0;
        for (int64_t c = c0; c < end(0, c0); ++c)
          for (int64_t y = y0; y < end(1, y0); ++y)
            for (int64_t xx = x0; xx < end(2, x0); ++xx) {
              const size_t i = static_cast<size_t>(index(c, y, xx));
              delta += double(w[i]) * (double(x[i]) - double(b[i]));
            }
        for (int64_t c = c0; c < end(0, c0); ++c)
          for (int64_t y = y0; y < end(1, y0); ++y)
            for (int64_t xx = x0; xx < end(2, x0); ++xx) {
              sum[static_cast<size_t>(index(c, y, xx))] += delta;
              count[static_cast<size_t>(index(c, y, xx))] += 1;
            }
      }
  for (int64_t i = 0; i < n; ++i) sum[static_cast<size_t>(i)] = count[static_cast<size_t>(i)] ? sum[static_cast<size_t>(i)] / count[static_cast<size_t>(i)] : 0.0;
  return sum;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

/// An identity layer that records every batch it sees.
class Spy final : public lab::Layer {
 public:
  struct Log {
    std::mutex mutex;
    std::vector<lab::Tensor> batches;
  };
  explicit Spy(std::shared_ptr<Log> log) : log_(std::move(log)) {}
  lab::LayerKind kind() const override { return lab::LayerKind::kReLU; }
  lab::Shape output_shape(const lab::Shape& input) const override { return input; }
  void add_forward(lab::Pass& pass, const lab::Shape& input, const float* x, float* y) const override {
    pass.add_host([this, input, x, y] {
      const lab::Tensor batch(input, std::vector<float>(x, x + lab::numel(input)));
      std::copy(x, x + batch.numel(), y);
      std::lock_guard<std::mutex> lock(log_->mutex);
      log_->batches.push_back(batch);
    });
  }
  void add_backward_data(lab::Pass& pass, const lab::Shape& input, const float*, const float*, const float* dy,
                         float* dx) const override {
    pass.add_host([input, dy, dx] { std::copy(dy, dy + lab::numel(input), dx); });
  }
  std::string describe() const override { return "spy"; }

 private:
  std::shared_ptr<Log> log_;
};

}  // namespace

TEST_CASE("occlusion on a linear model equals its closed form") {
  const int64_t dims[3] = {3, 11, 12};
  const int64_t n = dims[0] * dims[1] * dims[2];
  std::mt19937 rng(1);
  const std::vector<float> w = ptest::random_values(static_cast<size_t>(n), rng, -1.0f, 1.0f);
  const lab::Network net = ptest::linear_network({3, 11, 12}, w, {0.25f});
  attributions::Context context;
  context.net = &net;
  context.batch = 16;
  lab::Tensor x({2, 3, 11, 12}, ptest::random_values(static_cast<size_t>(2 * n), rng, 0.0f, 4.0f));
  const attributions::Batch batch{x, {0, 0}, {}, {}};
  const std::vector<float> base_values = {0.5f, -1.0f, 2.0f};
  std::vector<float> b(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) b[static_cast<size_t>(i)] = base_values[static_cast<size_t>(i / (dims[1] * dims[2]))];

  struct Case {
    std::vector<int64_t> window, strides;
  };
  // Paper default on RGB; unequal windows; overlapping channel windows; clipped border windows
  // (12 columns, windows of 5 every 3 start at 0, 3, 6, 9, the last clipped to 9–11); one window
  // over everything.
  for (const Case& c : std::vector<Case>{{{3, 5, 5}, {3, 3, 3}}, {{1, 4, 3}, {1, 2, 3}}, {{2, 3, 3}, {1, 3, 2}},
                                          {{3, 11, 12}, {1, 1, 1}}}) {
    CAPTURE(join(c.window));
    CAPTURE(join(c.strides));
    const auto method = ptest::make("occlusion", {{"window", join(c.window)}, {"strides", join(c.strides)},
                                                  {"baseline", "0.5,-1,2"}});
    const attributions::Result r = method->attribute(context, batch);
    REQUIRE(r.attr.shape() == x.shape());
    for (int64_t s = 0; s < 2; ++s) {
      const std::vector<float> xs(x.sample(s), x.sample(s) + n);
      const std::vector<double> expected = occlusion_closed_form(w, xs, b, dims, c.window, c.strides);
      for (int64_t i = 0; i < n; ++i)
        REQUIRE(r.attr.sample(s)[i] == doctest::Approx(expected[static_cast<size_t>(i)]).epsilon(1e-5).scale(1.0));
    }
  }
  // `auto` picks (C,5,5)/(C,3,3) by channel count: (3,5,5)/(3,3,3) here, (1,5,5)/(1,3,3) on gray.
  const attributions::Occlusion automatic({});
  CHECK(automatic.window_for(3) == std::vector<int64_t>{3, 5, 5});
  CHECK(automatic.strides_for(3) == std::vector<int64_t>{3, 3, 3});
  CHECK(automatic.window_for(1) == std::vector<int64_t>{1, 5, 5});
  CHECK(automatic.strides_for(1) == std::vector<int64_t>{1, 3, 3});
  const attributions::Result a = automatic.attribute(context, batch);
  const std::vector<float> zero(static_cast<size_t>(n), 0.0f);
  const std::vector<double> expected =
      occlusion_closed_form(w, std::vector<float>(x.sample(1), x.sample(1) + n), zero, dims, {3, 5, 5}, {3, 3, 3});
  for (int64_t i = 0; i < n; ++i)
    REQUIRE(a.attr.sample(1)[i] == doctest::Approx(expected[static_cast<size_t>(i)]).epsilon(1e-5).scale(1.0));
  CHECK_THROWS_AS(ptest::make("occlusion", {{"window", "3,5"}}), lab::Error);
  CHECK_THROWS_AS(ptest::make("occlusion", {{"strides", "0,3,3"}}), lab::Error);
  CHECK_THROWS_AS(ptest::make("occlusion", {{"window", "1,12,12"}})->attribute(context, batch), lab::Error);
  // A stride longer than the window would skip features: refused, naming both.
  CHECK_THROWS_WITH_AS(ptest::make("occlusion", {{"window", "3,2,2"}, {"strides", "3,3,3"}})->attribute(context, batch),
                       doctest::Contains("strides 3,3,3 exceed the window 3,2,2"), lab::Error);
}

TEST_CASE("occlusion covers every pixel with Captum's window count when the stride does not divide") {
  // Captum's layout: ⌈(D − w)/s⌉ + 1 windows per dimension, the last one clipped at the border.
  auto captum = [](int64_t d, int64_t w, int64_t s) {
    return static_cast<int64_t>(std::ceil(static_cast<double>(d - w) / static_cast<double>(s))) + 1;
  };
  CHECK(attributions::Occlusion::window_counts({3, 5, 5}, {3, 3, 3}, {3, 64, 64}) == std::vector<int64_t>{1, 21, 21});
  CHECK(attributions::Occlusion::window_counts({3, 5, 5}, {3, 3, 3}, {3, 224, 224}) ==
        std::vector<int64_t>{1, 74, 74});
  for (int64_t size : {13, 17, 31, 62, 64, 65, 224})
    for (const auto& [w, s] : {std::pair<int64_t, int64_t>{5, 3}, {4, 3}, {7, 2}, {3, 3}}) {
      CAPTURE(size);
      CAPTURE(w);
      CAPTURE(s);
      CHECK(attributions::Occlusion::window_counts({1, w, w}, {1, s, s}, {1, size, size}) ==
            std::vector<int64_t>{1, captum(size, w, s), captum(size, w, s)});
    }
  // A ground-truth patch in the bottom-right corner (the last two rows and columns, which 5/3
  // windows aligned at 0 miss at 64 and 17) on f = Σ x: every window over it drops f, so each
  // of its pixels gets a positive share, and the whole map equals the closed form.
  for (int64_t size : {17, 64}) {
    CAPTURE(size);
    const int64_t n = size * size;
    const lab::Network net = ptest::linear_network({1, size, size}, std::vector<float>(static_cast<size_t>(n), 1.0f), {0.0f});
    attributions::Context context;
    context.net = &net;
    lab::Tensor x({1, 1, size, size}, 0.0f);
    for (int64_t y = size - 2; y < size; ++y)
      for (int64_t xx = size - 3; xx < size; ++xx) x[y * size + xx] = 1.0f;
    const attributions::Result r = ptest::make("occlusion", {})->attribute(context, {x, {0}, {}, {}});
    for (int64_t y = size - 2; y < size; ++y)
      for (int64_t xx = size - 3; xx < size; ++xx) CHECK(r.attr[y * size + xx] > 0.0f);
    const int64_t dims[3] = {1, size, size};
    const std::vector<double> expected =
        occlusion_closed_form(std::vector<float>(static_cast<size_t>(n), 1.0f), x.values(),
                              std::vector<float>(static_cast<size_t>(n), 0.0f), dims, {1, 5, 5}, {1, 3, 3});
    for (int64_t i = 0; i < n; ++i)
      REQUIRE(r.attr[i] == doctest::Approx(expected[static_cast<size_t>(i)]).epsilon(1e-6).scale(1.0));
    CHECK(r.evaluations == 1 + captum(size, 5, 3) * captum(size, 5, 3));
  }
}

TEST_CASE("occlusion: a spy network sees the input, then each window replaced by the baseline, in chunks") {
  auto log = std::make_shared<Spy::Log>();
  lab::Network net({1, 4, 5});
  net.add("spy", std::make_shared<Spy>(log));
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("linear", std::make_shared<lab::Linear>(lab::Tensor({1, 20}, 1.0f), lab::Tensor({1}, 0.0f)));
  attributions::Context context;
  context.net = &net;
  context.batch = 3;
  lab::Tensor x({2, 1, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i + 1);
  const auto method = ptest::make("occlusion", {{"window", "1,2,3"}, {"strides", "1,2,2"}, {"baseline", "-7"}});
  // The full-forward way: on the incremental engine the spy (a ReLU by its kind) would see only
  // the windows' receptive fields (that way is compared with this one below).
  dynamic_cast<attributions::Occlusion&>(*method).set_incremental(false);
  const attributions::Result r = method->attribute(context, {x, {0, 0}, {}, {}});
  // Windows: rows {0, 2} × columns {0, 2}: 4 per sample, plus the unoccluded input.
  CHECK(r.evaluations == 10);
  std::vector<lab::Tensor> seen;
  for (const lab::Tensor& t : log->batches) {
    CHECK(t.batch() <= 3);
    for (int64_t i = 0; i < t.batch(); ++i) seen.push_back(t.slice(i, i + 1));
  }
  REQUIRE(seen.size() == 10);
  for (int64_t s = 0; s < 2; ++s) {
    CHECK(seen[static_cast<size_t>(s * 5)].values() == x.slice(s, s + 1).values());
    int64_t k = 1;
    for (int64_t y0 : {0, 2})
      for (int64_t x0 : {0, 2}) {
        lab::Tensor expected = x.slice(s, s + 1);
        for (int64_t y = y0; y < y0 + 2; ++y)
          for (int64_t xx = x0; xx < x0 + 3; ++xx) expected[y * 5 + xx] = -7.0f;
        CHECK(seen[static_cast<size_t>(s * 5 + k)].values() == expected.values());
        ++k;
      }
  }
}

TEST_CASE("occlusion* on multi-color-sum: each window's drop is the designed count of winning pixels in it") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0, 1});
  const auto method = ptest::make("occlusion", {{"baseline", "background"}});
  const attributions::Result r = method->attribute(e.context, e.batch);
  const double scale = e.env->options().at("logit-scale").get<double>();
  const int64_t size = 32, plane = size * size;
  for (int64_t s = 0; s < 2; ++s) {
    const float* gt = e.samples[static_cast<size_t>(s)].gt.data();
    // Logits are scale × counts exactly, and the background baseline adds no unseen colour, so
    // occluding a window lowers the target logit by scale × (winning pixels in it).
    std::vector<float> w(static_cast<size_t>(3 * plane), 0.0f), xs(static_cast<size_t>(3 * plane), 0.0f),
        b(static_cast<size_t>(3 * plane), 0.0f);
    for (int64_t p = 0; p < plane; ++p) xs[static_cast<size_t>(p)] = gt[p] > 0 ? static_cast<float>(scale) : 0.0f;
    const int64_t dims[3] = {3, size, size};
    for (int64_t p = 0; p < plane; ++p) w[static_cast<size_t>(p)] = 1.0f;
    const std::vector<double> expected = occlusion_closed_form(w, xs, b, dims, {3, 5, 5}, {3, 3, 3});
    for (int64_t i = 0; i < 3 * plane; ++i)
      REQUIRE(r.attr.sample(s)[i] == doctest::Approx(expected[static_cast<size_t>(i)]).epsilon(1e-6).scale(1.0));
  }
}

TEST_CASE("occlusion: the same map for any chunk size and thread count") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {2, 3});
  ptest::check_invariance([] { return ptest::make("occlusion", {{"output", "probability"}}); }, e.context, e.batch,
                          {256, 1, 7}, 0.0);
}

namespace {

/// Occlusion maps on the incremental engine and with a full forward pass per window.
std::pair<attributions::Result, attributions::Result> both_ways(
    const attributions::Context& context, const attributions::Batch& batch,
    const std::vector<std::pair<std::string, std::string>>& params) {
  const auto incremental = ptest::make("occlusion", params);
  const auto full = ptest::make("occlusion", params);
  auto* occlusion = dynamic_cast<attributions::Occlusion*>(full.get());
  REQUIRE(occlusion != nullptr);
  occlusion->set_incremental(false);
  return {incremental->attribute(context, batch), full->attribute(context, batch)};
}

}  // namespace

TEST_CASE("incremental occlusion is bit-identical to full-forward occlusion on the designed networks") {
  // Sizes and windows where the stride does not divide (D − w)/s: the last window of each axis is
  // clipped at the border and must still be evaluated; RGB, a window over one channel of RGB, gray.
  struct Case {
    const char* env;
    int64_t size;
    std::vector<std::pair<std::string, std::string>> params;
  };
  for (const Case& c : {Case{"multi-color-sum", 64, {}},
                        Case{"multi-color-sum", 32, {{"window", "1,4,4"}, {"strides", "1,3,3"}, {"output", "probability"}}},
                        Case{"multi-color-sum", 32, {{"window", "3,6,7"}, {"strides", "2,5,4"}, {"baseline", "background"}}},
                        Case{"single-color-modulo", 64, {{"window", "1,7,7"}, {"strides", "1,4,4"}}}}) {
    CAPTURE(c.env);
    CAPTURE(c.size);
    ptest::EnvBatch e = ptest::env_batch(c.env, c.size, {0, 1});
    e.context.batch = 50;
    const auto [inc, full] = both_ways(e.context, e.batch, c.params);
    CHECK(inc.evaluations == full.evaluations);
    REQUIRE(inc.attr.shape() == full.attr.shape());
    CHECK(inc.attr.values() == full.attr.values());
    // The windows change the output: the map is not trivially zero.
    CHECK(std::any_of(inc.attr.values().begin(), inc.attr.values().end(), [](float v) { return v != 0.0f; }));
  }
}

TEST_CASE("incremental occlusion agrees with full-forward occlusion on a random convnet, and a graph network falls back") {
  // Random float weights: a window's convolution may sum in another order than the full map's
  // (oneDNN blocks a crop differently), so f agrees to float rounding (a few ulp of f) and the
  // drops f(x) − f(x^P) to that absolute error; relative to the map's scale well below 1e-5.
  for (const bool softmax : {false, true}) {
    CAPTURE(softmax);
    const lab::Network net = ptest::random_convnet({3, 17, 19}, 4, 3, softmax);
    attributions::Context context;
    context.net = &net;
    context.batch = 16;
    std::mt19937 rng(4);
    lab::Tensor x({2, 3, 17, 19}, ptest::random_values(2 * 3 * 17 * 19, rng, 0.0f, 1.0f));
    const auto [inc, full] = both_ways(context, {x, {1, 3}, {}, {}}, {{"window", "2,5,4"}, {"strides", "1,3,3"}});
    CHECK(inc.evaluations == full.evaluations);
    float scale = 0, worst = 0;
    for (int64_t i = 0; i < full.attr.numel(); ++i) {
      scale = std::max(scale, std::abs(full.attr[i]));
      worst = std::max(worst, std::abs(inc.attr[i] - full.attr[i]));
    }
    CHECK(scale > 0);
    CHECK(worst <= 1e-5f * scale);
  }
  // residual: a graph network, evaluated with full forward passes either way.
  ptest::EnvBatch e = ptest::env_batch("residual", 32, {0, 1});
  const auto [inc, full] = both_ways(e.context, e.batch, {});
  CHECK(inc.evaluations == full.evaluations);
  CHECK(inc.attr.values() == full.attr.values());
}
