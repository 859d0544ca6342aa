// Patch shapes and layouts (datasets/patches.h): exact extents, the shapes' definitions, no
// overlap, uniform sizes and shapes, and refused options.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include <opencv2/imgproc.hpp>

#include "datasets/patches.h"
#include "lab/chi_square.h"
#include "lab/core/error.h"

using datasets::LayoutParams;
using datasets::ShapeKind;

namespace {

const ShapeKind kAllShapes[] = {ShapeKind::kTriangle, ShapeKind::kSquare, ShapeKind::kCircle, ShapeKind::kBezier};

using stats::chi_square;

LayoutParams params(int64_t min, int64_t max, std::vector<ShapeKind> shapes) {
  LayoutParams p;
  p.patches = 4;
  p.patch_min = min;
  p.patch_max = max;
  p.shapes = std::move(shapes);
  return p;
}

std::string refusal(const LayoutParams& p, int64_t size) {
  try {
    p.validate(size);
  } catch (const lab::Error& e) {
    CHECK(e.kind() == lab::ErrorKind::kParameter);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every shape's tight box has larger side exactly `size`") {
  lab::Rng rng(3, 0);
  for (ShapeKind kind : kAllShapes)
    for (int size = 4; size <= 40; ++size) {
      CAPTURE(datasets::shape_name(kind));
      CAPTURE(size);
      const cv::Mat m = datasets::draw_shape(kind, size, 5, rng);
      REQUIRE(m.type() == CV_8UC1);
      CHECK(std::max(m.rows, m.cols) == size);
      CHECK(cv::boundingRect(m) == cv::Rect(0, 0, m.cols, m.rows));
      double lo = 0, hi = 0;
      cv::minMaxLoc(m, &lo, &hi);
      CHECK(lo == 0.0 + (kind == ShapeKind::kSquare));
      CHECK(hi == 1.0);
      // One filled piece (8-connected).
      cv::Mat labels;
      CHECK(cv::connectedComponents(m, labels, 8) == 2);
    }
}

TEST_CASE("square, circle and triangle follow their definitions") {
  lab::Rng rng(0, 0);
  SUBCASE("square: the full box") {
    CHECK(cv::countNonZero(datasets::draw_shape(ShapeKind::kSquare, 9, 5, rng)) == 81);
  }
  SUBCASE("circle: pixel centres within radius size/2, hand-counted at 4 and 5") {
    // size 4: the four corners lie at distance sqrt(4.5) > 2 from the centre: 16 - 4 pixels.
    CHECK(cv::countNonZero(datasets::draw_shape(ShapeKind::kCircle, 4, 5, rng)) == 12);
    // size 5: centres at offsets -2..2 from the centre; only the corners (2, 2) lie beyond 2.5.
    CHECK(cv::countNonZero(datasets::draw_shape(ShapeKind::kCircle, 5, 5, rng)) == 21);
    const cv::Mat c = datasets::draw_shape(ShapeKind::kCircle, 24, 5, rng);
    cv::Mat flipped;
    cv::flip(c, flipped, -1);
    CHECK(cv::countNonZero(c != flipped) == 0);
    cv::Mat transposed = c.t();
    CHECK(cv::countNonZero(c != transposed) == 0);
    // Area close to pi r^2.
    CHECK(cv::countNonZero(c) == doctest::Approx(3.14159265 * 144).epsilon(0.03));
  }
  SUBCASE("triangle: full base row, narrow apex, mirror-symmetric, about half the box") {
    const int size = 21;
    const cv::Mat t = datasets::draw_shape(ShapeKind::kTriangle, size, 5, rng);
    CHECK(cv::countNonZero(t.row(size - 1)) == size);
    CHECK(cv::countNonZero(t.row(0)) == 1);
    CHECK(t.at<uint8_t>(0, 10) == 1);
    CHECK(cv::countNonZero(datasets::draw_shape(ShapeKind::kTriangle, 8, 5, rng).row(0)) == 2);
    // Hand-computed at size 4: |2x - 3| * 3 <= 3 + 2y, |2x - 3| in {3, 1, 1, 3}: the outer
    // pixels need 9 <= 3 + 2y, so only the bottom row is full: rows of 2, 2, 2, 4 pixels.
    const cv::Mat t4 = datasets::draw_shape(ShapeKind::kTriangle, 4, 5, rng);
    CHECK(cv::countNonZero(t4.row(0)) == 2);
    CHECK(cv::countNonZero(t4.row(1)) == 2);
    CHECK(cv::countNonZero(t4.row(2)) == 2);
    CHECK(cv::countNonZero(t4.row(3)) == 4);
    cv::Mat mirrored;
    cv::flip(t, mirrored, 1);
    CHECK(cv::countNonZero(t != mirrored) == 0);
    CHECK(cv::countNonZero(t) == doctest::Approx(size * size / 2.0).epsilon(0.15));
    // Rows widen downwards.
    for (int y = 1; y < size; ++y) CHECK(cv::countNonZero(t.row(y)) >= cv::countNonZero(t.row(y - 1)));
  }
}

TEST_CASE("bezier shapes are random blobs: different draws differ, the same stream repeats") {
  lab::Rng a(9, 1), b(9, 1), c(9, 2);
  const cv::Mat ma = datasets::draw_shape(ShapeKind::kBezier, 30, 5, a);
  const cv::Mat mb = datasets::draw_shape(ShapeKind::kBezier, 30, 5, b);
  const cv::Mat mc = datasets::draw_shape(ShapeKind::kBezier, 30, 5, c);
  CHECK(ma.size() == mb.size());
  CHECK(cv::countNonZero(ma != mb) == 0);
  CHECK((ma.size() != mc.size() || cv::countNonZero(ma != mc) > 0));
  // Radii of at least 0.35 of the half-size: a blob, not a sliver.
  CHECK(cv::countNonZero(ma) > 0.2 * 30 * 30);
}

TEST_CASE("layouts: patches never overlap and keep the gap; the region map is exactly the shapes") {
  for (int64_t gap : {0, 2, 5}) {
    LayoutParams p = params(4, 10, {ShapeKind::kTriangle, ShapeKind::kSquare, ShapeKind::kCircle, ShapeKind::kBezier});
    p.gap = gap;
    p.validate(40);
    for (int64_t i = 0; i < 200; ++i) {
      CAPTURE(gap);
      CAPTURE(i);
      lab::Rng rng(11, i);
      const datasets::Layout layout = datasets::sample_layout(p, 40, rng);
      REQUIRE(layout.patches.size() == 4);
      REQUIRE(layout.region.type() == CV_8UC1);
      for (size_t k = 0; k < 4; ++k) {
        const datasets::Patch& patch = layout.patches[k];
        CHECK(patch.size >= 4);
        CHECK(patch.size <= 10);
        CHECK(std::max(patch.box.width, patch.box.height) == patch.size);
        CHECK((patch.box & cv::Rect(0, 0, 40, 40)) == patch.box);
        // The region of patch k has exactly this tight box.
        const cv::Mat mine = layout.region == static_cast<int>(k + 1);
        CHECK(cv::boundingRect(mine) == patch.box);
        for (size_t j = k + 1; j < 4; ++j) {
          const cv::Rect grown(patch.box.x - static_cast<int>(gap), patch.box.y - static_cast<int>(gap),
                               patch.box.width + 2 * static_cast<int>(gap), patch.box.height + 2 * static_cast<int>(gap));
          CHECK((grown & layout.patches[j].box).area() == 0);
        }
      }
      double hi = 0;
      cv::minMaxLoc(layout.region, nullptr, &hi);
      CHECK(hi == 4.0);
    }
  }
}

TEST_CASE("sizes and shapes are uniform over what the options allow") {
  const LayoutParams p = params(5, 12, {ShapeKind::kTriangle, ShapeKind::kSquare, ShapeKind::kCircle});
  std::vector<int64_t> sizes(8, 0), shapes(3, 0);
  std::vector<int64_t> corner_x(4, 0);
  for (int64_t i = 0; i < 1000; ++i) {
    lab::Rng rng(5, i);
    const datasets::Layout layout = datasets::sample_layout(p, 64, rng);
    for (const datasets::Patch& patch : layout.patches) {
      REQUIRE(patch.size >= 5);
      REQUIRE(patch.size <= 12);
      ++sizes[static_cast<size_t>(patch.size - 5)];
      REQUIRE(patch.shape != ShapeKind::kBezier);
      ++shapes[static_cast<size_t>(patch.shape)];
      ++corner_x[static_cast<size_t>(std::min(3, (patch.box.x + patch.box.width / 2) * 4 / 64))];
    }
  }
  // 4000 patches. 7 degrees of freedom: P(chi² > 24.32) = 0.001; 2: 13.82; 3: 16.27.
  CHECK(chi_square(sizes) < 24.32);
  CHECK(chi_square(shapes) < 13.82);
  // Centres spread over the whole width (each quarter holds a fair share).
  for (int64_t c : corner_x) CHECK(c > 600);
}

TEST_CASE("impossible layout options are refused, naming the option") {
  const std::vector<ShapeKind> all{ShapeKind::kSquare};
  CHECK(refusal(params(4, 8, all), 32).empty());
  CHECK(refusal(params(3, 8, all), 32).find("-o patch-min=3: must be an integer ≥ 4") != std::string::npos);
  CHECK(refusal(params(9, 8, all), 32).find("-o patch-max=8: must be at least patch-min=9") != std::string::npos);
  CHECK(refusal(params(4, 33, all), 32).find("-o patch-max=33: must be at most the image size 32") != std::string::npos);
  // 32 + 2 = 34 holds 2 cells of 15 + 2 = 17 per row: 4 patches fit; of 16 + 2 only 1 per row.
  CHECK(refusal(params(4, 15, all), 32).empty());
  CHECK(refusal(params(4, 16, all), 32).find("cannot always fit in a 32x32 image") != std::string::npos);
  CHECK(refusal(params(4, 8, {}), 32).find("-o shapes") != std::string::npos);
  CHECK(refusal(params(4, 8, {ShapeKind::kCircle, ShapeKind::kCircle}), 32)
            .find("-o shapes=circle,circle: must be a list without repeats") != std::string::npos);
  LayoutParams few = params(4, 8, all);
  few.anchors = 2;
  CHECK(refusal(few, 32).find("-o anchors=2: must be an integer in [3, 64]") != std::string::npos);
  few.anchors = 5;
  few.gap = -1;
  CHECK(refusal(few, 32).find("-o gap=-1: must be an integer ≥ 0") != std::string::npos);
  CHECK(!datasets::shapes_codec().parse("circle,hexagon"));
  CHECK(datasets::shapes_codec().parse("bezier,square") ==
        std::optional<std::vector<ShapeKind>>({ShapeKind::kBezier, ShapeKind::kSquare}));
}

TEST_CASE("tightly packed layouts still succeed: the grid bound guarantees a layout exists") {
  // 4 boxes of 15 with gap 2 in 32: only the 2x2 grid arrangement fits, which uniform sequential
  // placement rarely finds; the grid fallback must.
  LayoutParams p = params(15, 15, {ShapeKind::kSquare});
  p.validate(32);
  for (int64_t i = 0; i < 20; ++i) {
    lab::Rng rng(1, i);
    const datasets::Layout layout = datasets::sample_layout(p, 32, rng);
    CHECK(cv::countNonZero(layout.region) == 4 * 225);
  }
}
