// Rankings and correlations (experiments/rank.h) against textbook examples, with ties,
// and the paper's Table 3 correlations recomputed from its rankings.
#include <doctest/doctest.h>

#include <cmath>

#include "experiments/rank.h"
#include "lab/core/error.h"

using namespace experiments;

TEST_CASE("Pearson's r on a textbook example") {
  // x̄ = 3, ȳ = 4: Σdxdy = 6, Σdx² = 10, Σdy² = 6 → r = 6 / √60.
  CHECK(pearson({1, 2, 3, 4, 5}, {2, 4, 5, 4, 5}) == doctest::Approx(6.0 / std::sqrt(60.0)).epsilon(1e-12));
  CHECK(pearson({1, 2, 3}, {-2, -4, -6}) == doctest::Approx(-1.0).epsilon(1e-12));
  CHECK(pearson({1, 1, 1}, {1, 2, 3}) == 0.0);  // a constant vector: undefined, reported as 0
  CHECK_THROWS_AS(pearson({1, 2}, {1, 2, 3}), lab::Error);
  CHECK_THROWS_AS(pearson({1}, {1}), lab::Error);
}

TEST_CASE("average ranks share the mean position among ties") {
  CHECK(average_ranks({10, 20, 20, 30, 20}) == std::vector<double>{1, 3, 3, 5, 3});
  CHECK(average_ranks({3, 1, 2}) == std::vector<double>{3, 1, 2});
  CHECK(ranking({0.9, 0.5, 0.9}, Direction::kHigherIsBetter) == std::vector<double>{1.5, 3, 1.5});
  CHECK(ranking({0.9, 0.5, 0.9}, Direction::kLowerIsBetter) == std::vector<double>{2.5, 1, 2.5});
}

TEST_CASE("Spearman's rho: the IQ / TV-hours example and an example with ties") {
  // Without ties ρ = 1 − 6Σd²/(n(n²−1)) = 1 − 6·194/990 = −29/165.
  const std::vector<double> iq = {106, 100, 86, 101, 99, 103, 97, 113, 112, 110};
  const std::vector<double> tv = {7, 27, 2, 50, 28, 29, 20, 12, 6, 17};
  CHECK(spearman(iq, tv) == doctest::Approx(-29.0 / 165.0).epsilon(1e-12));
  // Ties: ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 → 3/√10.
  CHECK(spearman({1, 2, 2, 3}, {1, 3, 2, 4}) == doctest::Approx(3.0 / std::sqrt(10.0)).epsilon(1e-12));
  // Monotone transformations do not change ρ.
  CHECK(spearman({1, 2, 3, 4}, {1, 8, 27, 64}) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("point-biserial equals Pearson with the groups coded 0/1") {
  const std::vector<bool> g = {true, true, false, false, false};
  const std::vector<double> v = {5, 4, 1, 2, 3};
  // M₁ = 4.5, M₀ = 2, s = √2, √(n₁n₀/n²) = √(6/25) → √3 / 2.
  CHECK(point_biserial(g, v) == doctest::Approx(std::sqrt(3.0) / 2.0).epsilon(1e-12));
  CHECK(point_biserial(g, v) == doctest::Approx(pearson({1, 1, 0, 0, 0}, v)).epsilon(1e-12));
  CHECK_THROWS_AS(point_biserial({true, true}, {1, 2}), lab::Error);
}

TEST_CASE("rank correlations reproduce the paper's Table 3 (single-color-modulo)") {
  // Rankings as printed (0 = best) for GradCAM, GuidedBP, LRP, ExPerturb, Occlusion, DeepSHAP,
  // IG, IG*, IBA, Random, Constant; a rank is lower-is-better.
  const MethodScores f1{"gt", "f1-overall", Direction::kLowerIsBetter, {6, 4, 0, 7, 5, 1, 2, 3, 8, 10, 9}};
  const std::vector<MethodScores> metrics = {
      {"insertion", "auc", Direction::kLowerIsBetter, {6, 5, 3, 7, 4, 0, 1, 2, 8, 10, 9}},
      {"deletion", "auc", Direction::kLowerIsBetter, {6, 5, 0, 7, 4, 1, 2, 3, 8, 9, 10}},
      {"sensitivity-n", "mean", Direction::kLowerIsBetter, {6, 4, 0, 7, 5, 1, 2, 3, 8, 10, 9}},
  };
  const std::vector<RankCorrelation> r = rank_correlations(metrics, f1);
  REQUIRE(r.size() == 3);
  CHECK(r[0].spearman == doctest::Approx(1.0 - 6.0 * 14.0 / 1320.0).epsilon(1e-12));  // 0.94
  CHECK(r[1].spearman == doctest::Approx(1.0 - 6.0 * 4.0 / 1320.0).epsilon(1e-12));   // 0.98
  CHECK(r[2].spearman == doctest::Approx(1.0).epsilon(1e-12));                         // 1.00
  CHECK(r[0].ranking[5] == 1.0);  // DeepSHAP is Insertion's best
}

TEST_CASE("directions: a lower-is-better metric agreeing with the ground truth correlates positively") {
  const MethodScores f1{"gt", "f1-positive", Direction::kHigherIsBetter, {0.9, 0.5, 0.1}};
  const MethodScores deletion{"deletion", "auc", Direction::kLowerIsBetter, {0.1, 0.3, 0.8}};
  CHECK(rank_correlations({deletion}, f1)[0].spearman == doctest::Approx(1.0).epsilon(1e-12));
  const std::vector<SummaryRow> rows = {{"a", "deletion", "auc", 0.1}, {"b", "deletion", "auc", 0.3}};
  CHECK(collect_scores(rows, {"b", "a"}, "deletion", "auc", Direction::kLowerIsBetter).values ==
        std::vector<double>{0.3, 0.1});
  CHECK_THROWS_AS(collect_scores(rows, {"c"}, "deletion", "auc", Direction::kLowerIsBetter), lab::Error);
}

TEST_CASE("bootstrap over images: identical rankings on every image give rho = 1 with interval [1, 1]") {
  // Three methods, five images; every image orders them A > B > C, as the paper's ranking does.
  const std::vector<std::vector<double>> per_image = {{0.9, 0.8, 0.7, 0.95, 0.6}, {0.5, 0.4, 0.3, 0.6, 0.2}, {0.1, 0.0, 0.05, 0.2, 0.1}};
  const std::vector<double> paper = {1, 2, 3};
  const BootstrapInterval b = bootstrap(
      5, [&](const std::vector<int64_t>& images) { return spearman(ranking(resampled_means(per_image, images), Direction::kHigherIsBetter), paper); },
      1000, 7);
  CHECK(b.value == 1.0);
  CHECK(b.lo == 1.0);
  CHECK(b.hi == 1.0);
  CHECK(b.resamples == 1000);
}

TEST_CASE("bootstrap over images: a two-image case enumerated by hand") {
  // Image 0 orders A > B > C, image 1 the reverse. On both images the means tie (ρ = 0); a
  // resample of image 0 twice gives ρ = +1 (probability 1/4), of image 1 twice ρ = −1 (1/4), one
  // of each ρ = 0 (1/2). So the 95% interval is [−1, 1] and the central 40% one [0, 0].
  const std::vector<std::vector<double>> per_image = {{3, 1}, {2, 2}, {1, 3}};
  const std::vector<double> paper = {1, 2, 3};
  int plus = 0, minus = 0, zero = 0;
  auto rho = [&](const std::vector<int64_t>& images) {
    const double r = spearman(ranking(resampled_means(per_image, images), Direction::kHigherIsBetter), paper);
    if (r > 0.5) ++plus;
    else if (r < -0.5) ++minus;
    else ++zero;
    return r;
  };
  const BootstrapInterval b = bootstrap(2, rho, 4000, 11);
  CHECK(b.value == 0.0);
  CHECK(b.lo == -1.0);
  CHECK(b.hi == 1.0);
  // The draws are uniform: 1/4, 1/2, 1/4 of the 4000 resamples (plus the full-sample call).
  CHECK(plus == doctest::Approx(1000).epsilon(0.1));
  CHECK(minus == doctest::Approx(1000).epsilon(0.1));
  CHECK(zero - 1 == doctest::Approx(2000).epsilon(0.1));
  const BootstrapInterval central = bootstrap(2, rho, 4000, 11, 0.4);
  CHECK(central.lo == 0.0);
  CHECK(central.hi == 0.0);
  // Deterministic: the same seed gives the same interval; the percentile rule interpolates.
  const BootstrapInterval again = bootstrap(2, rho, 4000, 11);
  CHECK(again.lo == b.lo);
  CHECK(again.hi == b.hi);
  const BootstrapInterval mean = bootstrap(
      4, [](const std::vector<int64_t>& images) {
        double s = 0.0;
        for (int64_t i : images) s += static_cast<double>(i);
        return s / static_cast<double>(images.size());
      },
      3, 5, 0.5);
  CHECK(mean.value == 1.5);
  CHECK(mean.lo <= mean.hi);
  CHECK_THROWS_AS(bootstrap(0, rho, 10, 1), lab::Error);
  CHECK_THROWS_AS(bootstrap(2, rho, 0, 1), lab::Error);
}
