#include "datasets/single_color_modulo.h"

#include <cmath>

#include "datasets/gray.h"
#include "lab/core/error.h"

namespace datasets {

namespace {

// ⌊√v⌋ for v >= 0, exact.
int64_t isqrt(int64_t v) {
  auto r = static_cast<int64_t>(std::sqrt(static_cast<double>(v)));
  while (r * r > v) --r;
  while ((r + 1) * (r + 1) <= v) ++r;
  return r;
}

}  // namespace

const lab::Schema<SingleColorModuloEnvParams>& SingleColorModuloEnvParams::schema() {
  using P = SingleColorModuloEnvParams;
  static const auto s =
      lab::Schema<P>()
          .nested(&P::model, networks::SingleColorModuloParams::schema())
          .nested(&P::layout, LayoutParams::schema(true, "min(size/4, ⌊√(U/patches)⌋), U = max-count capped at size²"))
          .check([](const P& p, const std::string& flag) {
            const P r = p.resolved();
            r.layout.validate(r.model.size);
            const int64_t most = r.layout.patches * *r.layout.patch_max * *r.layout.patch_max;
            if (most > r.model.max_input())
              lab::fail_parameter(
                  "{} patch-max={}: {} patches of up to {}x{} pixels can hold {} white pixels, more than the {} "
                  "the modulo network counts (-o max-count={}); lower patch-max or patches, or raise max-count",
                  flag, *r.layout.patch_max, r.layout.patches, *r.layout.patch_max, *r.layout.patch_max, most,
                  r.model.max_input(), r.model.max_count);
          });
  return s;
}

SingleColorModuloEnvParams SingleColorModuloEnvParams::resolved() const {
  SingleColorModuloEnvParams r = *this;
  r.layout.resolve(std::min(model.size / 4, isqrt(model.max_input() / layout.patches)));
  return r;
}

SingleColorModuloEnvironment::SingleColorModuloEnvironment(SingleColorModuloEnvParams params)
    : params_(params.resolved()) {
  Params::schema().validate(params_, "-o");
}

Sample SingleColorModuloEnvironment::generate(uint64_t seed, int64_t index) const {
  LAB_CHECK(index >= 0, "sample index must be >= 0, got {}", index);
  lab::Rng rng(seed, static_cast<uint64_t>(index));
  const int side = static_cast<int>(params_.model.size);
  Layout layout = sample_layout(params_.layout, params_.model.size, rng);
  cv::Mat image(side, side, CV_8UC1, cv::Scalar(0));
  int64_t white = 0;
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      if (layout.region.at<uint8_t>(y, x) == 0 || !rng.bit()) continue;
      image.at<uint8_t>(y, x) = 255;
      ++white;
    }
  Sample s;
  s.id = sample_id(index);
  s.counts = {white};
  s.label = label_from_counts(s.counts);
  s.gt = ground_truth(image, s.label);
  s.gt_smooth = smooth_ground_truth(layout.region, s.label);
  s.image = std::move(image);
  s.patches = std::move(layout.region);
  s.layout = std::move(layout.patches);
  return s;
}

lab::Network SingleColorModuloEnvironment::build_network() const {
  return networks::build_single_color_modulo(params_.model);
}

lab::Shape SingleColorModuloEnvironment::input_shape() const { return {1, params_.model.size, params_.model.size}; }

lab::Tensor SingleColorModuloEnvironment::to_input(const cv::Mat& image) const {
  return gray_input(image, params_.model.size);
}

int64_t SingleColorModuloEnvironment::predicted_label(const float* output_row) const {
  return rounded_label(output_row);
}

std::map<std::string, std::string> SingleColorModuloEnvironment::default_layers() const {
  return networks::single_color_modulo_paper_layers();
}

cv::Mat SingleColorModuloEnvironment::pixel_classes(const cv::Mat& image) const {
  check_gray_image(image, params_.model.size);
  cv::Mat classes(image.rows, image.cols, CV_32SC1, cv::Scalar(-1));
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) {
      const int v = image.at<uint8_t>(y, x);
      if (v != 0 && v != 255) lab::fail("pixel (x={}, y={}) has value {}; expected 0 (black) or 255 (white)", x, y, v);
      if (v == 255) classes.at<int>(y, x) = 0;
    }
  return classes;
}

int64_t SingleColorModuloEnvironment::label_from_counts(const std::vector<int64_t>& counts) const {
  if (counts.size() != 1) lab::fail("{} counts given; expected 1 (the white pixels)", counts.size());
  if (counts[0] < 0 || counts[0] > params_.model.max_input())
    lab::fail("{} white pixels; the modulo network counts 0..{} (-o max-count)", counts[0], params_.model.max_input());
  return counts[0] % params_.model.modulus;
}

lab::Tensor SingleColorModuloEnvironment::ground_truth(const cv::Mat& image, int64_t) const {
  const cv::Mat classes = pixel_classes(image);
  lab::Tensor gt({params_.model.size, params_.model.size});
  for (int y = 0; y < classes.rows; ++y)
    for (int x = 0; x < classes.cols; ++x)
      gt[static_cast<int64_t>(y) * classes.cols + x] = classes.at<int>(y, x) == 0 ? 1.0f : 0.0f;
  return gt;
}

lab::Tensor SingleColorModuloEnvironment::smooth_ground_truth(const cv::Mat& patches, int64_t) const {
  LAB_CHECK(patches.type() == CV_8UC1 && patches.rows == params_.model.size && patches.cols == params_.model.size,
            "patch map of the wrong shape");
  lab::Tensor gt({params_.model.size, params_.model.size});
  for (int y = 0; y < patches.rows; ++y)
    for (int x = 0; x < patches.cols; ++x)
      gt[static_cast<int64_t>(y) * patches.cols + x] = patches.at<uint8_t>(y, x) != 0 ? 1.0f : 0.0f;
  return gt;
}

}  // namespace datasets
