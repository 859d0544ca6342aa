// Figures: each writes a PNG and an SVG; the PNG decodes, has a white background, and shows the
// colours it should (the diverging map's ends on a ±1 map, the input's own colour, the first
// Okabe–Ito colour for the first series). Also the kernel density and curve resampling.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <opencv2/imgcodecs.hpp>

#include "experiments/report/figures.h"
#include "experiments/pipeline.h"

namespace fs = std::filesystem;
using namespace experiments;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("attrlab-test-figures-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// Pixels of a BGR image equal to RGB `rgb`.
int count_rgb(const cv::Mat& bgr, std::array<int, 3> rgb) {
  int n = 0;
  for (int r = 0; r < bgr.rows; ++r)
    for (int c = 0; c < bgr.cols; ++c) {
      const cv::Vec3b p = bgr.at<cv::Vec3b>(r, c);
      n += p[2] == rgb[0] && p[1] == rgb[1] && p[0] == rgb[2];
    }
  return n;
}

/// Pixels within `tolerance` of RGB `rgb` in every channel (antialiased or blended drawing).
int count_near(const cv::Mat& bgr, std::array<int, 3> rgb, int tolerance) {
  int n = 0;
  for (int r = 0; r < bgr.rows; ++r)
    for (int c = 0; c < bgr.cols; ++c) {
      const cv::Vec3b p = bgr.at<cv::Vec3b>(r, c);
      n += std::abs(p[2] - rgb[0]) <= tolerance && std::abs(p[1] - rgb[1]) <= tolerance &&
           std::abs(p[0] - rgb[2]) <= tolerance;
    }
  return n;
}

cv::Mat check_files(const std::vector<fs::path>& written) {
  REQUIRE(written.size() == 2);
  CHECK(written[0].extension() == ".png");
  CHECK(written[1].extension() == ".svg");
  for (const fs::path& p : written) {
    CHECK(fs::exists(p));
    CHECK(fs::file_size(p) > 1000);
  }
  const cv::Mat png = cv::imread(written[0].string(), cv::IMREAD_COLOR);
  REQUIRE_FALSE(png.empty());
  const cv::Vec3b corner = png.at<cv::Vec3b>(0, 0);
  CHECK(corner == cv::Vec3b(255, 255, 255));  // white background
  return png;
}

}  // namespace

TEST_CASE("diverging colour map: blue at −1, white at 0, red at +1, symmetric control points") {
  CHECK(diverging_color(-1.0) == std::array<int, 3>{5, 48, 97});
  CHECK(diverging_color(0.0) == std::array<int, 3>{255, 255, 255});
  CHECK(diverging_color(1.0) == std::array<int, 3>{103, 0, 31});
  CHECK(diverging_color(0.5) == std::array<int, 3>{214, 96, 77});
  CHECK(diverging_color(-0.5) == std::array<int, 3>{67, 147, 195});
  CHECK(diverging_color(7.0) == diverging_color(1.0));  // clamped
}

TEST_CASE("eq. 17 for display: positive part over its max, negative part over |min|") {
  const lab::Tensor m({2, 2}, std::vector<float>{4.0f, 2.0f, -0.5f, 0.0f});
  const lab::Tensor n = normalise_for_display(m);
  CHECK(n[0] == 1.0f);
  CHECK(n[1] == 0.5f);
  CHECK(n[2] == -1.0f);
  CHECK(n[3] == 0.0f);
}

TEST_CASE("map grid: the input's colours and the colour map's ends appear where drawn") {
  TempDir dir("grid");
  MapGrid grid;
  grid.title = "grid";
  grid.methods = {"Plus", "Minus"};
  MapGridRow row;
  row.label = "000000 (label 1)";
  row.input = cv::Mat(16, 16, CV_8UC3, cv::Scalar(20, 200, 40));  // RGB (20, 200, 40)
  row.gt = lab::Tensor({16, 16}, 0.0f);
  row.maps = {lab::Tensor({16, 16}, 3.0f), lab::Tensor({16, 16}, -2.0f)};
  grid.rows = {row};
  const cv::Mat png = check_files(draw_map_grid(grid, dir.path / "grid"));
  const int cell_area = 100 * 100;  // cells are 112 px wide; most of their interior is image
  CHECK(count_rgb(png, {20, 200, 40}) > cell_area);
  CHECK(count_rgb(png, diverging_color(1.0)) > cell_area);   // the +3 map, scaled to +1
  CHECK(count_rgb(png, diverging_color(-1.0)) > cell_area);  // the −2 map, scaled to −1
}

TEST_CASE("violins and curves: files, white background, the first series in the first Okabe–Ito colour") {
  TempDir dir("plots");
  ViolinFigure v;
  v.title = "violins";
  ViolinPanel panel;
  panel.title = "F1";
  panel.y_label = "F1 (fraction)";
  panel.reference = 0.5;
  panel.groups = {{"A", {0.1, 0.2, 0.25, 0.3, 0.5}}, {"B", {0.7, 0.75, 0.8, 0.9, 0.95}}, {"C", {0.4, 0.4}}};
  v.panels = {panel};
  const cv::Mat violins = check_files(draw_violins(v, dir.path / "violins"));
  // Group A's violin: its Okabe–Ito blue at 45% opacity over white.
  CHECK(count_near(violins, {140, 191, 220}, 3) > 200);
  // Group C (a constant sample) has no violin: its colour (bluish green, blended) is absent.
  CHECK(count_near(violins, {140, 211, 192}, 3) == 0);

  CurveFigure c;
  c.title = "curves";
  CurvePanel p;
  p.title = "Insertion";
  p.x_label = "fraction of pixels inserted";
  p.y_label = "target probability";
  for (int s = 0; s < 3; ++s) {
    Series series;
    series.label = "method " + std::to_string(s);
    for (int i = 0; i <= 50; ++i) {
      series.x.push_back(i / 50.0);
      series.y.push_back(std::pow(i / 50.0, 1.0 + s));
    }
    p.series.push_back(series);
  }
  c.panels = {p, p};
  c.panels[1].log_x = true;
  c.panels[1].series[0].x[0] = 1e-3;  // log axis: positive x
  const cv::Mat curves = check_files(draw_curves(c, dir.path / "curves"));
  CHECK(count_near(curves, {0, 114, 178}, 40) > 100);
}

TEST_CASE("kernel density integrates to one and peaks at the centre of a symmetric sample") {
  const std::vector<double> values = {-1.0, -0.5, 0.0, 0.0, 0.5, 1.0};
  std::vector<double> at;
  for (int i = 0; i <= 4000; ++i) at.push_back(-10.0 + 20.0 * i / 4000.0);
  const std::vector<double> d = kernel_density(values, at);
  double area = 0.0;
  for (size_t i = 1; i < at.size(); ++i) area += (at[i] - at[i - 1]) * (d[i] + d[i - 1]) / 2.0;
  CHECK(area == doctest::Approx(1.0).epsilon(1e-6));
  const size_t peak = static_cast<size_t>(std::max_element(d.begin(), d.end()) - d.begin());
  CHECK(at[peak] == doctest::Approx(0.0).epsilon(0.01));
  // A constant sample still has a finite density, centred on the value.
  const std::vector<double> flat = kernel_density({2.0, 2.0}, {2.0, 3.0});
  CHECK(std::isfinite(flat[0]));
  CHECK(flat[0] > flat[1]);
}

TEST_CASE("curve resampling: exact on a piecewise-linear curve, short curves unchanged") {
  std::vector<double> x, y;
  for (int i = 0; i <= 1000; ++i) {
    x.push_back(i / 1000.0);
    y.push_back(i <= 500 ? 2.0 * i / 1000.0 : 1.0);
  }
  resample_curve(x, y, 101);
  REQUIRE(x.size() == 101);
  for (size_t i = 0; i < x.size(); ++i) {
    CAPTURE(i);
    CHECK(x[i] == doctest::Approx(i / 100.0).epsilon(1e-12));
    CHECK(y[i] == doctest::Approx(std::min(1.0, 2.0 * x[i])).epsilon(1e-9));
  }
  std::vector<double> sx = {1, 2, 4}, sy = {0.1, 0.2, 0.3};
  resample_curve(sx, sy, 101);
  CHECK(sx == std::vector<double>{1, 2, 4});
  CHECK(sy == std::vector<double>{0.1, 0.2, 0.3});
}

TEST_CASE("map grid on a common row scale: the row's largest map saturates, the others keep their ratio") {
  // Two maps of 3 and −2 everywhere: s = 3 (the 99th percentile of |values|), so the first shows
  // +1 and the second −2/3 of the scale, not −1 as eq. 17 would.
  CHECK(row_scale({lab::Tensor({4, 4}, 3.0f), lab::Tensor({4, 4}, -2.0f)}) == 3.0);
  CHECK(row_scale({lab::Tensor({4, 4}, 0.0f)}) == 1.0);  // nothing to scale
  std::vector<float> ramp(100);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i + 1);  // 1..100
  CHECK(row_scale({lab::Tensor({10, 10}, ramp)}) == 99.0);                       // nearest rank 99 of 100

  TempDir dir("grid-row");
  MapGrid grid;
  grid.title = "grid";
  grid.scale = MapGrid::Scale::kRow;
  grid.methods = {"Plus", "Minus"};
  MapGridRow row;
  row.label = "000000 (label 1)";
  row.input = cv::Mat(16, 16, CV_8UC3, cv::Scalar(20, 200, 40));
  row.gt = lab::Tensor({16, 16}, 0.0f);
  row.maps = {lab::Tensor({16, 16}, 3.0f), lab::Tensor({16, 16}, -2.0f)};
  grid.rows = {row};
  const cv::Mat png = check_files(draw_map_grid(grid, dir.path / "grid"));
  const int cell_area = 100 * 100;
  CHECK(count_rgb(png, diverging_color(1.0)) > cell_area);
  CHECK(count_near(png, diverging_color(-2.0 / 3.0), 4) > cell_area);
  CHECK(count_rgb(png, diverging_color(-1.0)) < cell_area / 10);  // only the colour bar's end
}

TEST_CASE("series styles: 17 distinct colours, 12 markers, every (colour, marker) pair of 19 methods distinct") {
  const auto& palette = series_palette();
  REQUIRE(palette.size() == 17);
  CHECK(palette.front() == okabe_ito().front());
  for (size_t i = 0; i < palette.size(); ++i)
    for (size_t j = i + 1; j < palette.size(); ++j) CHECK(palette[i] != palette[j]);
  REQUIRE(series_markers().size() == 12);
  std::set<std::pair<size_t, size_t>> pairs;
  for (size_t i = 0; i < 19; ++i) pairs.insert({i % palette.size(), i % series_markers().size()});
  CHECK(pairs.size() == 19);
  // The 8 styles of a full panel are far apart in CIELAB (ΔE*76 ≥ 25; Okabe–Ito's reddish purple
  // and Tol's rose, 21 apart, once sat in one panel).
  auto lab = [](const std::array<int, 3>& rgb) {
    auto linear = [](int c) {
      const double u = c / 255.0;
      return u > 0.04045 ? std::pow((u + 0.055) / 1.055, 2.4) : u / 12.92;
    };
    const double r = linear(rgb[0]), g = linear(rgb[1]), b = linear(rgb[2]);
    const double x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, y = 0.2126 * r + 0.7152 * g + 0.0722 * b,
                 z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    auto f = [](double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; };
    return std::array<double, 3>{116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z))};
  };
  double closest = 1e9;
  for (size_t i = 0; i < 8; ++i)
    for (size_t j = i + 1; j < 8; ++j) {
      const auto a = lab(palette[i]), b = lab(palette[j]);
      closest = std::min(closest, std::hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]));
    }
  CHECK(closest >= 25.0);
}
