/// @file patches.h
/// @brief Patch shapes and their non-overlapping placement, shared by both generators.
///
/// A patch is a filled shape drawn into a `size`×`size` box (App. G.1: triangle, square,
/// circle; App. F.1: a closed curve of cubic Bézier segments). Its *region* is every pixel inside
/// the shape; the generators then colour each region pixel independently with Bernoulli(0.5).
/// Shapes are defined so that their tight bounding box has larger side exactly `size`:
/// - square: the full size×size box;
/// - circle: pixels whose centre lies within the disc of diameter `size` centred in the box;
/// - triangle: upright isosceles, base = bottom row of the box, apex = the top-centre pixel (two
///   for even sizes): row y holds the pixels with |2x - (size-1)| <= 1 + y (size-2)/(size-1);
/// - bezier: a closed Catmull-Rom curve through `anchors` random points around a centre
///   (angles evenly spread with jitter, radii uniform in [0.35, 1] of the half-size), written as
///   cubic Bézier segments, sampled into a polygon and scaled so that its larger extent spans the box.
/// Placement draws each box's top-left corner uniformly among all positions where the box stays
/// `gap` pixels (rows or columns) away from the boxes already placed (in random order), so regions
/// never overlap. If a box finds no free position, shapes, sizes and positions are drawn again; after
/// 100 such failures (only with tightly packed options) the last shapes go into distinct random
/// cells of the grid that validate() guarantees, uniformly within each cell. A layout thus always
/// exists for valid options and generation never fails.
/// Tested in test_patches.cpp (exact extents, non-overlap, uniform sizes and shapes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lab/core/random.h"
#include "lab/core/schema.h"

namespace datasets {

enum class ShapeKind { kTriangle, kSquare, kCircle, kBezier };
inline constexpr ShapeKind kAllShapes[] = {ShapeKind::kTriangle, ShapeKind::kSquare, ShapeKind::kCircle,
                                           ShapeKind::kBezier};

/// "triangle", "square", "circle", "bezier".
std::string shape_name(ShapeKind kind);
/// The filled shape as CV_8UC1 (1 inside, 0 outside), cropped to its tight bounding box, whose
/// larger side is `size` (>= 4, the smallest size at which a circle and a triangle differ from a square). `rng` is used by bezier only (`anchors` >= 3 points).
cv::Mat draw_shape(ShapeKind kind, int size, int anchors, lab::Rng& rng);

/// Whether `count` boxes of side up to `patch_max`, `gap` apart, always fit in an image of side
/// `image_size`: true when a grid of (patch_max + gap)-cells holds them (a sufficient condition,
/// so a layout exists for every draw of sizes).
bool patches_always_fit(int64_t count, int64_t patch_max, int64_t gap, int64_t image_size);

/// `-o shapes=a,b`: shape names, recorded as a JSON array of names.
lab::Codec<std::vector<ShapeKind>> shapes_codec();

/// Settings of a layout. Every value is checked by validate(image_size).
struct LayoutParams {
  int64_t patches = 4;                      ///< number of patches, 1..255
  std::optional<int64_t> patch_min;         ///< smallest patch size, >= 4; derived: max(4, patch_max/2)
  std::optional<int64_t> patch_max;         ///< largest patch size, patch_min..image side; derived by the environment
  int64_t gap = 2;                          ///< background rows/columns kept between patch boxes, >= 0
  std::vector<ShapeKind> shapes = {ShapeKind::kTriangle, ShapeKind::kSquare, ShapeKind::kCircle};  ///< drawn uniformly, no repeats
  int64_t anchors = 5;                      ///< points of a bezier patch, 3..64

  /// The `-o` keys patch-max (derived as `patch_max_rule` says), patch-min, gap, shapes, anchors,
  /// and patches when `patches_key` (an environment that fixes the number of patches omits it).
  static lab::Schema<LayoutParams> schema(bool patches_key, const std::string& patch_max_rule);
  /// Sets the sizes left to derive: patch_max = `default_patch_max`, patch_min = max(4, patch_max/2).
  void resolve(int64_t default_patch_max);
  /// Throws lab::Error(kParameter) naming the key (as written after -o) for any impossible
  /// value, including patches that cannot always fit in an image of side `image_size`. The sizes
  /// must be resolved.
  void validate(int64_t image_size) const;
};

/// One placed patch.
struct Patch {
  ShapeKind shape = ShapeKind::kSquare;
  int64_t size = 0;  ///< the drawn size: larger side of `box`
  cv::Rect box;      ///< tight bounding box in the image
  nlohmann::json to_json() const;  ///< {"shape", "size", "box": [x, y, width, height]}
};

/// Patches and the region map: CV_8UC1, 0 = background, k = inside patch k (1-based, in the
/// order of `patches`).
struct Layout {
  std::vector<Patch> patches;
  cv::Mat region;
};

/// Draws the shapes (sizes uniform in [patch_min, patch_max], shapes uniform in `shapes`) and
/// places them as described above, all from `rng`. `params` must be valid for `image_size`.
Layout sample_layout(const LayoutParams& params, int64_t image_size, lab::Rng& rng);

}  // namespace datasets
