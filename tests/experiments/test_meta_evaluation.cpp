// Meta-evaluation of metrics (experiments/meta_evaluation.h) on hand-computed cases: identical
// scores, negated scores with opposite directions, the point-biserial rule, averaging over
// methods with undefined pairs left out, and agreement with the truth with its bootstrap.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "experiments/meta_evaluation.h"
#include "experiments/report/figures.h"
#include "lab/core/error.h"

using namespace experiments;
namespace fs = std::filesystem;

namespace {

const Direction kUp = Direction::kHigherIsBetter;
const Direction kDown = Direction::kLowerIsBetter;

/// Per-image rows s0, s1, ... of (model "m", method, metric, variant "v"), then an "all" row that
/// must be ignored.
void add(std::vector<ResultRow>& rows, const std::string& method, const std::string& metric,
         const std::vector<double>& values) {
  double sum = 0.0;
  for (size_t i = 0; i < values.size(); ++i) {
    rows.push_back({"m", "s" + std::to_string(i), method, metric, "v", values[i]});
    sum += values[i];
  }
  rows.push_back({"m", "all", method, metric, "v", 1000.0 + sum});
}

MetricVariant measure(const std::string& metric, Direction direction) { return {"", metric, "v", direction}; }

}  // namespace

TEST_CASE("reliability: identical scores give 1, negated scores of opposite direction give +1") {
  std::vector<ResultRow> rows;
  const std::vector<double> a = {0.3, 0.9, 0.1, 0.5, 0.7};
  std::vector<double> negated;
  for (double v : a) negated.push_back(-2.0 * v + 4.0);  // a monotone decreasing transform of a
  add(rows, "IG", "a", a);
  add(rows, "IG", "same", a);
  add(rows, "IG", "neg-down", negated);  // lower is better: after orientation it orders like a
  add(rows, "IG", "neg-up", negated);    // higher is better: the opposite notion of goodness
  const auto m = reliability(rows, "m", {"IG"},
                             {measure("a", kUp), measure("same", kUp), measure("neg-down", kDown), measure("neg-up", kUp)});
  REQUIRE(m.measures == std::vector<std::string>{"a/v", "same/v", "neg-down/v", "neg-up/v"});
  CHECK(m.per_method[0][0][1].value == doctest::Approx(1.0));
  CHECK(m.per_method[0][0][1].coefficient == Coefficient::kSpearman);
  CHECK(m.per_method[0][0][1].images == 5);
  CHECK(m.per_method[0][0][2].value == doctest::Approx(1.0));
  CHECK(m.per_method[0][0][3].value == doctest::Approx(-1.0));
  CHECK(m.per_method[0][2][3].value == doctest::Approx(-1.0));
  CHECK(m.per_method[0][3][3].value == doctest::Approx(1.0));
  CHECK(m.mean[0][2] == doctest::Approx(1.0));
  CHECK(m.count[0][2] == 1);
  CHECK(m.per_method[0][1][0].value == m.per_method[0][0][1].value);  // symmetric
}

TEST_CASE("reliability: Spearman on ranks, not values") {
  // y = x³ is monotone: ρ = 1 while Pearson's r would be < 1. A swap of one pair:
  // ranks (1,2,3,4,5) vs (2,1,3,4,5): Σd² = 2, ρ = 1 − 6·2/(5·24) = 0.9.
  std::vector<ResultRow> rows;
  add(rows, "G", "x", {1, 2, 3, 4, 5});
  add(rows, "G", "cube", {1, 8, 27, 64, 125});
  add(rows, "G", "swap", {2, 1, 3, 4, 5});
  const auto m = reliability(rows, "m", {"G"}, {measure("x", kUp), measure("cube", kUp), measure("swap", kUp)});
  CHECK(m.per_method[0][0][1].value == doctest::Approx(1.0));
  CHECK(m.per_method[0][0][2].value == doctest::Approx(0.9));
}

TEST_CASE("reliability: a binary metric against a continuous one uses the point-biserial") {
  // groups (1,0,1,0), values (10,1,3,2): M₁ = 6.5, M₀ = 1.5, mean 4, population variance
  // (36+9+1+4)/4 = 12.5, √(n₁n₀/n²) = 1/2 → r_pb = 5/√12.5 · 1/2 = 1/√2. (Spearman would give
  // Pearson of ranks (1,0,1,0) vs (4,1,3,2) = 2/√5.)
  std::vector<ResultRow> rows;
  add(rows, "G", "pointing", {1, 0, 1, 0});
  add(rows, "G", "score", {10, 1, 3, 2});
  add(rows, "G", "score-down", {10, 1, 3, 2});
  add(rows, "G", "miss", {0, 1, 0, 1});  // binary, both binary: Spearman (the phi coefficient)
  const std::vector<MetricVariant> ms = {measure("pointing", kUp), measure("score", kUp), measure("score-down", kDown),
                                   measure("miss", kDown)};
  const auto m = reliability(rows, "m", {"G"}, ms);
  CHECK(m.per_method[0][0][1].coefficient == Coefficient::kPointBiserial);
  CHECK(m.per_method[0][0][1].value == doctest::Approx(1.0 / std::sqrt(2.0)));
  CHECK(m.per_method[0][0][2].value == doctest::Approx(-1.0 / std::sqrt(2.0)));
  // "miss" (lower is better) is the complement of "pointing": after orientation the same groups.
  CHECK(m.per_method[0][3][1].coefficient == Coefficient::kPointBiserial);
  CHECK(m.per_method[0][3][1].value == doctest::Approx(1.0 / std::sqrt(2.0)));
  CHECK(m.per_method[0][0][3].coefficient == Coefficient::kSpearman);
  CHECK(m.per_method[0][0][3].value == doctest::Approx(1.0));
  // Internal consistency is Spearman throughout.
  const auto ic = internal_consistency(rows, "m", {"G"}, ms);
  CHECK(ic.per_method[0][0][1].coefficient == Coefficient::kSpearman);
  CHECK(ic.per_method[0][0][1].value == doctest::Approx(2.0 / std::sqrt(5.0)));
  CHECK(is_binary({0, 1, 1}));
  CHECK(is_binary({100, 0, 0}));
  CHECK_FALSE(is_binary({1, 1, 1}));
  CHECK_FALSE(is_binary({0, 0.5, 1}));
  CHECK_FALSE(is_binary({}));
  // Any two values form the groups: 0/100 (Increase in Confidence) gives the same r_pb as 0/1.
  std::vector<ResultRow> scaled;
  add(scaled, "G", "ic", {100, 0, 100, 0});
  add(scaled, "G", "score", {10, 1, 3, 2});
  const auto r = reliability(scaled, "m", {"G"}, {measure("ic", kUp), measure("score", kUp)});
  CHECK(r.per_method[0][0][1].coefficient == Coefficient::kPointBiserial);
  CHECK(r.per_method[0][0][1].value == doctest::Approx(1.0 / std::sqrt(2.0)));
}

TEST_CASE("averages over methods leave out undefined pairs; images are matched by sample id") {
  std::vector<ResultRow> rows;
  add(rows, "A", "p", {1, 2, 3, 4});
  add(rows, "A", "q", {1, 2, 3, 4});  // ρ = 1
  add(rows, "B", "p", {1, 2, 3, 4});
  add(rows, "B", "q", {4, 3, 2, 1});  // ρ = −1
  add(rows, "C", "p", {1, 2, 3, 4});
  add(rows, "C", "q", {5, 5, 5, 5});  // constant: undefined
  const auto m = internal_consistency(rows, "m", {"A", "B", "C"}, {measure("p", kUp), measure("q", kUp)});
  CHECK(std::isnan(m.per_method[2][0][1].value));
  CHECK(m.mean[0][1] == doctest::Approx(0.0));
  CHECK(m.count[0][1] == 2);
  const Table square = correlation_square_table(m, "ic", "Internal consistency");
  CHECK(square.rows.at(0) == std::vector<std::string>{"p/v", "/", "0.00"});
  const Table lines = correlation_long_table(m, "ic-long", "per method");
  REQUIRE(lines.rows.size() == 4);
  CHECK(lines.rows[1] == std::vector<std::string>{"m", "B", "p/v", "q/v", "spearman", "-1", "4"});
  CHECK(lines.rows[2][5] == "nan");
  CHECK(lines.rows[3] == std::vector<std::string>{"m", "mean", "p/v", "q/v", "mean", "0", "2"});

  // A non-finite score leaves its image out of that pair only; samples pair by id, not position.
  std::vector<ResultRow> shifted;
  add(shifted, "A", "p", {1, 2, 3, NAN});
  shifted.push_back({"m", "s2", "A", "q", "v", 30});
  shifted.push_back({"m", "s0", "A", "q", "v", 10});
  shifted.push_back({"m", "s1", "A", "q", "v", 20});
  shifted.push_back({"m", "s3", "A", "q", "v", -99});
  const auto s = reliability(shifted, "m", {"A"}, {measure("p", kUp), measure("q", kUp)});
  CHECK(s.per_method[0][0][1].images == 3);
  CHECK(s.per_method[0][0][1].value == doctest::Approx(1.0));
  CHECK_THROWS_AS(reliability(rows, "m", {"A"}, {measure("p", kUp), measure("absent", kUp)}), lab::Error);
}

TEST_CASE("agreement with the truth: method rankings against the GT-F1 ranking, bootstrap over images") {
  // Three methods, four images. The truth (f1) ranks good > mid > bad on every image. "deletion"
  // (lower is better) gives the same order on every image: ρ = 1 on every resample, interval
  // [1, 1]. "inverted" (higher is better) prefers bad > mid > good on every image: ρ = −1.
  std::vector<ResultRow> rows;
  add(rows, "good", "f1", {0.9, 0.8, 0.95, 0.85});
  add(rows, "mid", "f1", {0.5, 0.6, 0.55, 0.4});
  add(rows, "bad", "f1", {0.1, 0.2, 0.05, 0.15});
  add(rows, "good", "deletion", {0.1, 0.2, 0.1, 0.3});
  add(rows, "mid", "deletion", {0.4, 0.5, 0.3, 0.6});
  add(rows, "bad", "deletion", {0.8, 0.9, 0.7, 0.9});
  add(rows, "good", "inverted", {0.1, 0.2, 0.1, 0.3});
  add(rows, "mid", "inverted", {0.4, 0.5, 0.3, 0.6});
  add(rows, "bad", "inverted", {0.8, 0.9, 0.7, 0.9});
  // "mixed": good and mid swap on average (means 0.5, 0.6, 0.0): ranks (2, 1, 3) vs (1, 2, 3),
  // Σd² = 2, ρ = 1 − 6·2/(3·8) = 0.5.
  add(rows, "good", "mixed", {0.2, 0.8, 0.2, 0.8});
  add(rows, "mid", "mixed", {0.6, 0.6, 0.6, 0.6});
  add(rows, "bad", "mixed", {0.0, 0.0, 0.0, 0.0});
  const auto t = agreement_with_truth(rows, "m", {"good", "mid", "bad"},
                                      {measure("deletion", kDown), measure("inverted", kUp), measure("mixed", kUp)},
                                      measure("f1", kUp), 200, 7);
  CHECK(t.reference_ranking == std::vector<double>{1, 2, 3});
  CHECK(t.reference_means[0] == doctest::Approx(0.875));
  REQUIRE(t.measures.size() == 3);
  CHECK(t.measures[0].ranking == std::vector<double>{1, 2, 3});
  CHECK(t.measures[0].rho.value == doctest::Approx(1.0));
  CHECK(t.measures[0].rho.lo == doctest::Approx(1.0));
  CHECK(t.measures[0].rho.hi == doctest::Approx(1.0));
  CHECK(t.measures[0].images == 4);
  CHECK(t.measures[1].rho.value == doctest::Approx(-1.0));
  CHECK(t.measures[1].rho.hi == doctest::Approx(-1.0));
  CHECK(t.measures[2].means == std::vector<double>{0.5, 0.6, 0.0});
  CHECK(t.measures[2].rho.value == doctest::Approx(0.5));
  // Resamples of only 0.2-images make good last of the two (ρ = 0.5), only 0.8-images first (ρ = 1).
  CHECK(t.measures[2].rho.lo == doctest::Approx(0.5));
  CHECK(t.measures[2].rho.hi == doctest::Approx(1.0));
  // Deterministic with the seed.
  const auto again = agreement_with_truth(rows, "m", {"good", "mid", "bad"},
                                          {measure("deletion", kDown), measure("inverted", kUp), measure("mixed", kUp)},
                                          measure("f1", kUp), 200, 7);
  CHECK(again.measures[2].rho.lo == t.measures[2].rho.lo);
  CHECK_THROWS_AS(agreement_with_truth(rows, "m", {"good"}, {measure("deletion", kDown)}, measure("f1", kUp), 10, 1),
                  lab::Error);
  CHECK_THROWS_AS(agreement_with_truth(rows, "m", {"good", "bad"}, {measure("absent", kUp)}, measure("f1", kUp), 10, 1),
                  lab::Error);
  // A method the metric never scores (complexity of an all-zero map) is left out of both rankings:
  // over good and bad only, "partial" ranks bad first, against the truth: ρ = −1.
  add(rows, "good", "partial", {0.1, 0.1, 0.2, 0.1});
  add(rows, "bad", "partial", {0.9, 0.8, 0.9, 0.7});
  rows.push_back({"m", "s0", "mid", "partial", "v", NAN});
  const auto p = agreement_with_truth(rows, "m", {"good", "mid", "bad"}, {measure("partial", kUp)}, measure("f1", kUp), 50, 3);
  CHECK(p.measures[0].methods == 2);
  CHECK(std::isnan(p.measures[0].ranking[1]));
  CHECK(p.measures[0].ranking[0] == 2.0);
  CHECK(p.measures[0].rho.value == doctest::Approx(-1.0));
  // With one method left, no ranking can be compared: ρ undefined.
  const auto one = agreement_with_truth(rows, "m", {"good", "mid"}, {measure("partial", kUp)}, measure("f1", kUp), 50, 3);
  CHECK(one.measures[0].methods == 1);
  CHECK(std::isnan(one.measures[0].rho.value));
}

TEST_CASE("the reliability heat map: PNG and SVG, cells in the diverging colours") {
  const fs::path dir = fs::temp_directory_path() / ("attrlab-test-heatmap-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  Heatmap h;
  h.title = "Reliability";
  h.labels = {"Insertion", "Deletion", "Pointing Game"};
  h.values = {{1.0, -0.8, 0.1}, {-0.8, 1.0, NAN}, {0.1, NAN, 1.0}};
  h.bar_label = "ρ";
  const auto written = draw_heatmap(h, dir / "heat");
  REQUIRE(written.size() == 2);
  CHECK(fs::exists(dir / "heat.svg"));
  const cv::Mat png = cv::imread((dir / "heat.png").string(), cv::IMREAD_COLOR);
  REQUIRE(!png.empty());
  // Find the cell colours: the +1 diagonal's dark red and the −0.8 cell's blue must both occur.
  auto occurs = [&](const std::array<int, 3>& rgb) {
    for (int r = 0; r < png.rows; ++r)
      for (int c = 0; c < png.cols; ++c) {
        const cv::Vec3b p = png.at<cv::Vec3b>(r, c);  // BGR
        if (std::abs(p[2] - rgb[0]) <= 2 && std::abs(p[1] - rgb[1]) <= 2 && std::abs(p[0] - rgb[2]) <= 2) return true;
      }
    return false;
  };
  CHECK(occurs(diverging_color(1.0)));
  CHECK(occurs(diverging_color(-0.8)));
  fs::remove_all(dir);
}
