#include "datasets/patches.h"

#include <cmath>
#include <numbers>
#include <set>

#include <fmt/format.h>

#include <opencv2/imgproc.hpp>

#include "lab/core/error.h"

namespace datasets {

namespace {

// Layouts drawn with uniform placement before falling back to the grid (tightly packed options).
constexpr int kUniformAttempts = 100;
constexpr int kMaxAnchors = 64;
// Fixed-point bits for OpenCV's polygon drawing: vertices keep 1/256-pixel precision.
constexpr int kShift = 8;

cv::Point fixed_point(double x, double y) {
  return {static_cast<int>(std::lround(x * (1 << kShift))), static_cast<int>(std::lround(y * (1 << kShift)))};
}

// Fills the polygon and also draws its outline, so that every vertex's pixel is set: a vertex at
// integer coordinate 0 or size-1 then guarantees the extent of the drawn mask.
void fill_polygon(cv::Mat& mask, const std::vector<cv::Point>& polygon) {
  const std::vector<std::vector<cv::Point>> polygons{polygon};
  cv::fillPoly(mask, polygons, cv::Scalar(1), cv::LINE_8, kShift);
  cv::polylines(mask, polygons, true, cv::Scalar(1), 1, cv::LINE_8, kShift);
}

cv::Mat draw_circle(int size) {
  cv::Mat mask(size, size, CV_8UC1, cv::Scalar(0));
  // Pixel centre (x + 1/2, y + 1/2) within radius size/2 of the box centre, doubled to integers.
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const int dx = 2 * x + 1 - size;
      const int dy = 2 * y + 1 - size;
      if (dx * dx + dy * dy <= size * size) mask.at<uint8_t>(y, x) = 1;
    }
  return mask;
}

cv::Mat draw_triangle(int size) {
  cv::Mat mask(size, size, CV_8UC1, cv::Scalar(0));
  // Row y keeps the pixels with |2x - (size-1)| <= 1 + y (size-2) / (size-1): one or two apex
  // pixels in row 0, widening linearly to the full bottom row; symmetric about the centre column.
  const int last = size - 1;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      if (std::abs(2 * x - last) * last <= last + y * (size - 2)) mask.at<uint8_t>(y, x) = 1;
  return mask;
}

cv::Mat draw_bezier(int size, int anchors, lab::Rng& rng) {
  struct P {
    double x, y;
  };
  const double step = 2 * std::numbers::pi / anchors;
  std::vector<P> a(static_cast<size_t>(anchors));
  for (int i = 0; i < anchors; ++i) {
    const double theta = step * (i + rng.uniform(-0.35, 0.35));
    const double r = rng.uniform(0.35, 1.0);
    a[static_cast<size_t>(i)] = {r * std::cos(theta), r * std::sin(theta)};
  }
  auto at = [&](int i) { return a[static_cast<size_t>((i + anchors) % anchors)]; };
  // Closed Catmull-Rom spline through the anchors; segment i as a cubic Bézier with control
  // points P_i + (P_{i+1} - P_{i-1}) / 6 and P_{i+1} - (P_{i+2} - P_i) / 6.
  const int per_segment = std::max(8, size);
  std::vector<P> curve;
  curve.reserve(static_cast<size_t>(anchors * per_segment));
  for (int i = 0; i < anchors; ++i) {
    const P p0 = at(i), p3 = at(i + 1);
    const P c1{p0.x + (p3.x - at(i - 1).x) / 6, p0.y + (p3.y - at(i - 1).y) / 6};
    const P c2{p3.x - (at(i + 2).x - p0.x) / 6, p3.y - (at(i + 2).y - p0.y) / 6};
    for (int j = 0; j < per_segment; ++j) {
      const double t = static_cast<double>(j) / per_segment, u = 1 - t;
      const double b0 = u * u * u, b1 = 3 * u * u * t, b2 = 3 * u * t * t, b3 = t * t * t;
      curve.push_back({b0 * p0.x + b1 * c1.x + b2 * c2.x + b3 * p3.x, b0 * p0.y + b1 * c1.y + b2 * c2.y + b3 * p3.y});
    }
  }
  double x0 = curve[0].x, x1 = x0, y0 = curve[0].y, y1 = y0;
  for (const P& p : curve) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  // Scale the larger extent onto [0, size-1] and centre the other one.
  const double last = size - 1;
  const double scale = last / std::max(x1 - x0, y1 - y0);
  const double ox = (last - (x1 - x0) * scale) / 2, oy = (last - (y1 - y0) * scale) / 2;
  std::vector<cv::Point> polygon;
  polygon.reserve(curve.size());
  for (const P& p : curve) polygon.push_back(fixed_point((p.x - x0) * scale + ox, (p.y - y0) * scale + oy));
  cv::Mat mask(size, size, CV_8UC1, cv::Scalar(0));
  fill_polygon(mask, polygon);
  return mask;
}

}  // namespace

std::string shape_name(ShapeKind kind) {
  switch (kind) {
    case ShapeKind::kTriangle:
      return "triangle";
    case ShapeKind::kSquare:
      return "square";
    case ShapeKind::kCircle:
      return "circle";
    case ShapeKind::kBezier:
      return "bezier";
  }
  LAB_CHECK(false, "unknown ShapeKind {}", static_cast<int>(kind));
  return {};
}

cv::Mat draw_shape(ShapeKind kind, int size, int anchors, lab::Rng& rng) {
  LAB_CHECK(size >= 4, "shape size must be >= 4, got {}", size);
  cv::Mat mask;
  switch (kind) {
    case ShapeKind::kSquare:
      mask = cv::Mat(size, size, CV_8UC1, cv::Scalar(1));
      break;
    case ShapeKind::kCircle:
      mask = draw_circle(size);
      break;
    case ShapeKind::kTriangle:
      mask = draw_triangle(size);
      break;
    case ShapeKind::kBezier:
      LAB_CHECK(anchors >= 3, "a bezier patch needs >= 3 anchors, got {}", anchors);
      mask = draw_bezier(size, anchors, rng);
      break;
  }
  const cv::Rect tight = cv::boundingRect(mask);
  LAB_CHECK(std::max(tight.width, tight.height) == size, "{} of size {} drawn with extent {}x{}",
            shape_name(kind), size, tight.width, tight.height);
  return mask(tight).clone();
}

bool patches_always_fit(int64_t count, int64_t patch_max, int64_t gap, int64_t image_size) {
  if (patch_max > image_size) return false;
  const int64_t per_row = (image_size + gap) / (patch_max + gap);
  return per_row * per_row >= count;
}

lab::Codec<std::vector<ShapeKind>> shapes_codec() {
  lab::Codec<std::vector<ShapeKind>> c;
  c.type = lab::ParamType::kStringList;
  c.parse = [](const std::string& text) -> std::optional<std::vector<ShapeKind>> {
    std::vector<ShapeKind> out;
    for (const std::string& item : lab::schema_detail::split_list(text)) {
      bool found = false;
      for (ShapeKind k : kAllShapes)
        if (shape_name(k) == item) {
          out.push_back(k);
          found = true;
        }
      if (!found) return std::nullopt;
    }
    return out;
  };
  c.show = [](const std::vector<ShapeKind>& shapes) {
    nlohmann::json names = nlohmann::json::array();
    for (ShapeKind k : shapes) names.push_back(shape_name(k));
    return names;
  };
  return c;
}

lab::Schema<LayoutParams> LayoutParams::schema(bool patches_key, const std::string& patch_max_rule) {
  using P = LayoutParams;
  lab::Schema<P> s;
  if (patches_key)
    s.field("patches", &P::patches, {.range = lab::between(1, 255), .help = "patches per image", .source = "App. F.1 (4)"});
  std::vector<std::string> names;
  for (ShapeKind k : kAllShapes) names.push_back(shape_name(k));
  s.field("patch-max", &P::patch_max,
          {.range = lab::at_least(4), .help = "largest patch size (larger side of its box)", .derived = patch_max_rule})
      .field("patch-min", &P::patch_min,
             {.range = lab::at_least(4), .help = "smallest patch size", .derived = "max(4, patch-max/2)"})
      .field("gap", &P::gap, {.range = lab::at_least(0), .help = "background rows/columns kept between patch boxes"})
      .custom("shapes", &P::shapes, shapes_codec(),
              {.choices = names, .help = "patch shapes, drawn uniformly", .source = "App. F.1, G.1"})
      .field("anchors", &P::anchors,
             {.range = lab::between(3, 64), .help = "points of a bezier patch's closed curve", .source = "App. F.1"});
  return s;
}

void LayoutParams::resolve(int64_t default_patch_max) {
  if (!patch_max) patch_max = default_patch_max;
  if (!patch_min) patch_min = std::max<int64_t>(4, *patch_max / 2);
}

void LayoutParams::validate(int64_t image_size) const {
  schema(true, "").validate(*this, "-o");
  LAB_CHECK(patch_min && patch_max, "layout sizes not resolved");
  const int64_t lo = *patch_min, hi = *patch_max;
  if (hi < lo) lab::fail_value("-o", "patch-max", std::to_string(hi), fmt::format("at least patch-min={}", lo));
  if (hi > image_size)
    lab::fail_value("-o", "patch-max", std::to_string(hi), fmt::format("at most the image size {}", image_size));
  const std::string names = lab::option_text(shapes_codec().show(shapes));
  if (shapes.empty()) lab::fail_value("-o", "shapes", names, "at least one shape");
  const std::set<ShapeKind> distinct(shapes.begin(), shapes.end());
  if (distinct.size() != shapes.size()) lab::fail_value("-o", "shapes", names, "a list without repeats");
  if (!patches_always_fit(patches, hi, gap, image_size))
    lab::fail_parameter(
        "-o patch-max={}: {} patches of up to {}x{} pixels, {} apart, cannot always fit in a {}x{} image; "
        "lower patch-max or gap, or raise size",
        hi, patches, hi, hi, gap, image_size, image_size);
}

nlohmann::json Patch::to_json() const {
  return {{"shape", shape_name(shape)}, {"size", size}, {"box", {box.x, box.y, box.width, box.height}}};
}

namespace {

// Places the boxes in distinct random cells of the k×k grid of patches_always_fit (k = ⌊(S + gap) /
// (patch_max + gap)⌋, cell side c = ⌊(S + gap) / k⌋), each uniformly within its cell minus the gap:
// boxes in different cells are then >= gap apart, and the last cell ends by S.
void place_in_grid(std::vector<Patch>& patches, const LayoutParams& params, int side, lab::Rng& rng) {
  const int gap = static_cast<int>(params.gap);
  const int per_row = (side + gap) / static_cast<int>(*params.patch_max + gap);
  const int cell = (side + gap) / per_row;
  std::vector<int> cells(static_cast<size_t>(per_row * per_row));
  for (size_t i = 0; i < cells.size(); ++i) cells[i] = static_cast<int>(i);
  for (size_t k = 0; k < patches.size(); ++k) {
    const size_t pick = k + static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(cells.size() - k) - 1));
    std::swap(cells[k], cells[pick]);
    const int cx = cells[k] % per_row * cell, cy = cells[k] / per_row * cell;
    cv::Rect& box = patches[k].box;
    box.x = static_cast<int>(rng.uniform_int(cx, cx + cell - gap - box.width));
    box.y = static_cast<int>(rng.uniform_int(cy, cy + cell - gap - box.height));
  }
}

// Places the boxes one by one in random order, each uniformly among the free positions; false
// if some box finds none.
bool place_uniformly(std::vector<Patch>& patches, int side, int gap, lab::Rng& rng) {
  const size_t n = patches.size();
  std::vector<size_t> order(n);
  for (size_t k = 0; k < n; ++k) order[k] = k;
  for (size_t k = n; k > 1; --k) std::swap(order[k - 1], order[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(k) - 1))]);
  cv::Mat blocked(side, side, CV_8UC1, cv::Scalar(0));
  for (size_t k : order) {
    const int w = patches[k].box.width, h = patches[k].box.height;
    cv::Mat sums;
    cv::integral(blocked, sums, CV_32S);
    // A top-left corner (x, y) is free when the box [x, x+w) x [y, y+h) holds no blocked pixel.
    std::vector<cv::Point> free;
    for (int y = 0; y + h <= side; ++y)
      for (int x = 0; x + w <= side; ++x) {
        const int covered = sums.at<int>(y + h, x + w) - sums.at<int>(y, x + w) - sums.at<int>(y + h, x) + sums.at<int>(y, x);
        if (covered == 0) free.emplace_back(x, y);
      }
    if (free.empty()) return false;
    const cv::Point corner = free[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(free.size()) - 1))];
    patches[k].box.x = corner.x;
    patches[k].box.y = corner.y;
    const cv::Rect keep_out = cv::Rect(corner.x - gap, corner.y - gap, w + 2 * gap, h + 2 * gap) & cv::Rect(0, 0, side, side);
    blocked(keep_out).setTo(1);
  }
  return true;
}

}  // namespace

Layout sample_layout(const LayoutParams& params, int64_t image_size, lab::Rng& rng) {
  LAB_CHECK(params.patch_min && params.patch_max, "sample_layout: the patch sizes are not resolved");
  const int side = static_cast<int>(image_size);
  const size_t n = static_cast<size_t>(params.patches);
  std::vector<Patch> patches(n);
  std::vector<cv::Mat> masks(n);
  bool placed = false;
  for (int attempt = 0; attempt < kUniformAttempts && !placed; ++attempt) {
    for (size_t k = 0; k < n; ++k) {
      const int64_t which = rng.uniform_int(0, static_cast<int64_t>(params.shapes.size()) - 1);
      patches[k].shape = params.shapes[static_cast<size_t>(which)];
      patches[k].size = rng.uniform_int(*params.patch_min, *params.patch_max);
      masks[k] = draw_shape(patches[k].shape, static_cast<int>(patches[k].size), static_cast<int>(params.anchors), rng);
      patches[k].box = cv::Rect(0, 0, masks[k].cols, masks[k].rows);
    }
    placed = place_uniformly(patches, side, static_cast<int>(params.gap), rng);
  }
  if (!placed) place_in_grid(patches, params, side, rng);
  Layout layout;
  layout.region = cv::Mat(side, side, CV_8UC1, cv::Scalar(0));
  for (size_t k = 0; k < n; ++k) {
    LAB_CHECK((patches[k].box & cv::Rect(0, 0, side, side)) == patches[k].box, "patch {} placed outside the image", k);
    cv::Mat target = layout.region(patches[k].box);
    target.setTo(static_cast<int>(k + 1), masks[k]);
  }
  layout.patches = std::move(patches);
  return layout;
}

}  // namespace datasets
