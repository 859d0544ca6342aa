// LIME: weighted ridge against its normal equations, the oracle segmentation on the
// multi-color-sum network, seeds, and chunk/thread invariance.
#include <Eigen/Dense>

#include "attributions/lime.h"
#include "attributions/segmentation.h"
#include "test_perturbation_util.h"

namespace {

/// The segment id (after renumbering) of designed patch k of sample s.
int64_t segment_of_patch(const ptest::EnvBatch& e, size_t s, int k) {
  const attributions::Segments seg = attributions::relabel(e.batch.segments[s]);
  for (int y = 0; y < seg.labels.rows; ++y)
    for (int x = 0; x < seg.labels.cols; ++x)
      if (e.samples[s].patches.at<uint8_t>(y, x) == k) return seg.labels.at<int32_t>(y, x);
  return -1;
}

/// β per segment, read back from the map (every pixel of a segment holds β_k spread over channels).
std::vector<double> segment_values(const ptest::EnvBatch& e, size_t s, const lab::Tensor& attr) {
  const attributions::Segments seg = attributions::relabel(e.batch.segments[s]);
  const lab::Tensor map = attributions::reduce_channels(attr);
  std::vector<double> out(static_cast<size_t>(seg.count), 0.0);
  const int64_t plane = int64_t{seg.labels.rows} * seg.labels.cols;
  for (int64_t p = 0; p < plane; ++p) out[static_cast<size_t>(seg.labels.ptr<int32_t>(0)[p])] = map.sample(static_cast<int64_t>(s))[p];
  return out;
}

}  // namespace

TEST_CASE("weighted ridge: exact on additive data without penalty, equal to the normal equations with it") {
  std::vector<uint8_t> z;
  std::vector<double> y, w;
  std::mt19937 rng(2);
  for (int bits = 0; bits < 8; ++bits) {
    for (int k = 0; k < 3; ++k) z.push_back((bits >> k) & 1);
    y.push_back(2.0 + 3.0 * (bits & 1) - 1.0 * ((bits >> 1) & 1) + 0.5 * ((bits >> 2) & 1));
    w.push_back(std::uniform_real_distribution<double>(0.1, 2.0)(rng));
  }
  double intercept = 0;
  const std::vector<double> beta = attributions::weighted_ridge(z, 3, y, w, 0.0, &intercept);
  CHECK(beta[0] == doctest::Approx(3.0).epsilon(1e-12));
  CHECK(beta[1] == doctest::Approx(-1.0).epsilon(1e-12));
  CHECK(beta[2] == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(intercept == doctest::Approx(2.0).epsilon(1e-12));

  // With α > 0 and noisy targets: [β₀; β] solves (Aᵀ W A + diag(0, α, α, α)) θ = Aᵀ W y, A = [1 z].
  for (double& v : y) v += std::normal_distribution<double>(0.0, 0.3)(rng);
  const double alpha = 0.7;
  const std::vector<double> ridge = attributions::weighted_ridge(z, 3, y, w, alpha, &intercept);
  Eigen::MatrixXd a(8, 4);
  for (int i = 0; i < 8; ++i) {
    a(i, 0) = 1;
    for (int k = 0; k < 3; ++k) a(i, k + 1) = z[static_cast<size_t>(i * 3 + k)];
  }
  const Eigen::VectorXd wv = Eigen::Map<const Eigen::VectorXd>(w.data(), 8);
  Eigen::MatrixXd normal = a.transpose() * wv.asDiagonal() * a;
  for (int k = 1; k < 4; ++k) normal(k, k) += alpha;
  const Eigen::VectorXd theta =
      normal.ldlt().solve(a.transpose() * (wv.asDiagonal() * Eigen::Map<const Eigen::VectorXd>(y.data(), 8)));
  CHECK(intercept == doctest::Approx(theta[0]).epsilon(1e-10));
  for (int k = 0; k < 3; ++k) CHECK(ridge[static_cast<size_t>(k)] == doctest::Approx(theta[k + 1]).epsilon(1e-10));
}

TEST_CASE("LIME with the oracle segmentation on multi-color-sum: the winning patch leads, the background gets none") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0, 1});
  const double scale = e.env->options().at("logit-scale").get<double>();
  SUBCASE("logit output, no penalty: the surrogate is the designed count of the winning colour") {
    // The target logit is scale × (pixels of the winning colour): additive over the patches, so
    // the unpenalised surrogate recovers it exactly, and nothing else matters to it.
    const auto method = ptest::make("lime", {{"segmentation", "oracle"}, {"output", "logit"}, {"alpha", "0"},
                                             {"baseline", "background"}, {"samples", "200"}});
    const attributions::Result r = method->attribute(e.context, e.batch);
    // 200 coalitions drawn per sample over 5 segments (4 patches and the background): at most
    // 2^5 distinct ones, each evaluated once.
    CHECK(r.evaluations <= 2 * 32);
    for (size_t s = 0; s < 2; ++s) {
      CAPTURE(s);
      const std::vector<double> beta = segment_values(e, s, r.attr);
      const int64_t label = e.samples[s].label;
      const int64_t win = segment_of_patch(e, s, static_cast<int>(label + 1));
      const double expected = scale * static_cast<double>(e.samples[s].counts[static_cast<size_t>(label)]);
      CHECK(beta[static_cast<size_t>(win)] == doctest::Approx(expected).epsilon(1e-5));
      for (size_t k = 0; k < beta.size(); ++k)
        if (static_cast<int64_t>(k) != win) CHECK(std::abs(beta[k]) <= 1e-5 * expected);
    }
  }
  SUBCASE("default probability output with ridge: winner largest, other colours negative, background none") {
    const auto method = ptest::make("lime", {{"segmentation", "oracle"}, {"baseline", "background"}});
    const attributions::Result r = method->attribute(e.context, e.batch);
    for (size_t s = 0; s < 2; ++s) {
      CAPTURE(s);
      const std::vector<double> beta = segment_values(e, s, r.attr);
      const int64_t win = segment_of_patch(e, s, static_cast<int>(e.samples[s].label + 1));
      const int64_t background = segment_of_patch(e, s, 0);
      CHECK(std::max_element(beta.begin(), beta.end()) - beta.begin() == win);
      CHECK(beta[static_cast<size_t>(win)] > 0);
      for (int k = 1; k <= 4; ++k)
        if (k != e.samples[s].label + 1) CHECK(beta[static_cast<size_t>(segment_of_patch(e, s, k))] < 0);
      // The background never changes the output; what the ridge gives it is sampling noise.
      CHECK(std::abs(beta[static_cast<size_t>(background)]) <= 0.05 * beta[static_cast<size_t>(win)]);
    }
  }
}

TEST_CASE("LIME: reproducible by seed, chunk size and thread count") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0, 1});
  const auto method = ptest::make("lime", {{"samples", "150"}});
  const attributions::Result a = method->attribute(e.context, e.batch);
  const attributions::Result b = method->attribute(e.context, e.batch);
  CHECK(a.attr.values() == b.attr.values());
  attributions::Batch other = e.batch;
  other.seeds = {100, 101};
  CHECK(method->attribute(e.context, other).attr.values() != a.attr.values());
  // Each sample's map depends on its own seed only: sample 1 alone gives the same map.
  attributions::Batch single{e.batch.x.slice(1, 2), {e.batch.target[1]}, {e.batch.seeds[1]}, {}};
  const attributions::Result alone = method->attribute(e.context, single);
  CHECK(std::vector<float>(a.attr.sample(1), a.attr.sample(1) + a.attr.sample_numel()) == alone.attr.values());
  ptest::check_invariance([] { return ptest::make("lime", {{"samples", "150"}}); }, e.context, e.batch, {300, 1, 16},
                          1e-6);
  CHECK_THROWS_AS(method->attribute(e.context, {e.batch.x, e.batch.target, {}, {}}), lab::Error);
}

TEST_CASE("LIME: parameters of every segmentation are listed; those of another algorithm are refused") {
  const auto& table = attributions::registry();
  const auto it = std::find_if(table.begin(), table.end(), [](const auto& m) { return m.name == "lime"; });
  REQUIRE(it != table.end());
  std::vector<std::string> names;
  for (const auto& p : it->params) names.push_back(p.name);
  for (const char* key : {"segmentation", "kernel-size", "max-dist", "ratio", "scale", "sigma", "min-size",
                          "region-size", "compactness", "iterations", "min-size-percent", "samples", "kernel-width",
                          "alpha", "baseline", "output"})
    CHECK(std::find(names.begin(), names.end(), key) != names.end());
  CHECK_NOTHROW(ptest::make("lime", {{"segmentation", "felzenszwalb"}, {"scale", "2"}}));
  CHECK_THROWS_WITH_AS(ptest::make("lime", {{"segmentation", "quickshift"}, {"scale", "2"}}),
                       doctest::Contains("scale"), lab::Error);
  CHECK_THROWS_WITH_AS(ptest::make("lime", {{"segmentation", "sam"}}),
                       doctest::Contains("-p segmentation=sam: must be one of quickshift|felzenszwalb|slic|oracle"),
                       lab::Error);
  CHECK_THROWS_AS(ptest::make("lime", {{"kernel-width", "0"}}), lab::Error);
  const auto m = ptest::make("lime", {{"segmentation", "slic"}, {"region-size", "6"}});
  CHECK(m->params().at("region-size") == 6);
  CHECK(m->params().at("kernel-size") == 4.0);  // every key is recorded, another algorithm's at its default
  CHECK_THROWS_WITH_AS(ptest::make("lime", {{"segmentation", "slic"}, {"kernel-size", "3"}}),
                       doctest::Contains("-p kernel-size=3: a quickshift parameter, but the segmentation is slic"),
                       lab::Error);
}
