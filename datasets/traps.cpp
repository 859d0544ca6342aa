#include "datasets/traps.h"

#include <cmath>

#include "datasets/gray.h"
#include "lab/core/error.h"

namespace datasets {

namespace {

// 1 on white pixels, 0 on black ones; another value throws naming the pixel.
cv::Mat white_map(const cv::Mat& image) {
  cv::Mat w(image.rows, image.cols, CV_32SC1, cv::Scalar(0));
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) {
      const int v = image.at<uint8_t>(y, x);
      if (v != 0 && v != 255) lab::fail("pixel (x={}, y={}) has value {}; expected 0 (black) or 255 (white)", x, y, v);
      w.at<int>(y, x) = v == 255 ? 1 : 0;
    }
  return w;
}

const char* summary_of(const std::string& trap) {
  if (trap == "residual") return "trap: white pixels counted through two residual blocks y = f(h) + h";
  if (trap == "reused-relu") return "trap: white pixels counted through one ReLU module applied twice";
  if (trap == "max-pool") return "trap: 2x2 cells with a white pixel, by max-pooling over tied detectors";
  if (trap == "batch-norm") return "trap: white pixels counted through two batch-norm layers";
  if (trap == "saturation") return "trap: white pixels counted through min(2x, 1), whose gradient vanishes";
  if (trap == "interaction") return "trap: pixel pairs that are both white (an AND of two pixels)";
  return "trap: white pixels of the left half (a feature that counts in one region only)";
}

}  // namespace

const lab::Schema<TrapEnvParams>& TrapEnvParams::schema() {
  using P = TrapEnvParams;
  static const auto s = lab::Schema<P>()
                            .nested(&P::model, networks::TrapParams::schema())
                            .nested(&P::layout, LayoutParams::schema(true, "size/4"))
                            .check([](const P& p, const std::string&) { p.resolved().layout.validate(p.model.size); });
  return s;
}

TrapEnvParams TrapEnvParams::resolved() const {
  TrapEnvParams r = *this;
  r.layout.resolve(model.size / 4);
  return r;
}

TrapEnvironment::TrapEnvironment(std::string trap, TrapEnvParams params)
    : trap_(std::move(trap)), params_(params.resolved()) {
  Params::schema().validate(params_, "-o");
  networks::make_trap(trap_, params_.model);  // refuses an unknown trap
}

Sample TrapEnvironment::generate(uint64_t seed, int64_t index) const {
  LAB_CHECK(index >= 0, "sample index must be >= 0, got {}", index);
  lab::Rng rng(seed, static_cast<uint64_t>(index));
  const int side = static_cast<int>(params_.model.size);
  Layout layout = sample_layout(params_.layout, params_.model.size, rng);
  cv::Mat image(side, side, CV_8UC1, cv::Scalar(0));
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x)
      if (layout.region.at<uint8_t>(y, x) != 0 && rng.bit()) image.at<uint8_t>(y, x) = 255;
  Sample s;
  s.id = sample_id(index);
  s.counts = count_pixels(image);
  s.label = label_from_counts(s.counts);
  s.gt = ground_truth(image, s.label);
  s.gt_smooth = smooth_ground_truth(layout.region, s.label);
  s.image = std::move(image);
  s.patches = std::move(layout.region);
  s.layout = std::move(layout.patches);
  return s;
}

lab::Network TrapEnvironment::build_network() const { return networks::make_trap(trap_, params_.model).network; }

lab::Tensor TrapEnvironment::to_input(const cv::Mat& image) const {
  return gray_input(image, params_.model.size);
}

int64_t TrapEnvironment::predicted_label(const float* output_row) const {
  return rounded_label(output_row);
}

std::map<std::string, std::string> TrapEnvironment::default_layers() const {
  return networks::trap_paper_layers(trap_);
}

cv::Mat TrapEnvironment::pixel_classes(const cv::Mat& image) const {
  check_gray_image(image, params_.model.size);
  const cv::Mat w = white_map(image);
  cv::Mat classes(image.rows, image.cols, CV_32SC1, cv::Scalar(-1));
  classes.setTo(0, w == 1);
  return classes;
}

std::vector<int64_t> TrapEnvironment::count_pixels(const cv::Mat& image) const { return {score(image)}; }

int64_t TrapEnvironment::label_from_counts(const std::vector<int64_t>& counts) const {
  if (counts.size() != 1) lab::fail("{} counts given; expected 1 (the score)", counts.size());
  if (counts[0] < 0 || counts[0] >= num_classes())
    lab::fail("score {} is outside 0..{}", counts[0], num_classes() - 1);
  return counts[0];
}

int64_t TrapEnvironment::score(const cv::Mat& image) const {
  check_gray_image(image, params_.model.size);
  const lab::Tensor gt = ground_truth(image, 0);
  double total = 0.0;  // the ground truth sums to the score (up to the rounding of thirds)
  for (int64_t i = 0; i < gt.numel(); ++i) total += gt[i];
  return std::llround(total);
}

lab::Tensor TrapEnvironment::ground_truth(const cv::Mat& image, int64_t) const {
  check_gray_image(image, params_.model.size);
  const cv::Mat w = white_map(image);
  const int side = image.rows;
  lab::Tensor gt({params_.model.size, params_.model.size});
  auto at = [&](int y, int x) -> float& { return gt[static_cast<int64_t>(y) * side + x]; };
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      const int white = w.at<int>(y, x);
      if (trap_ == "max-pool") {
        const int y0 = y & ~1, x0 = x & ~1;
        const int k = w.at<int>(y0, x0) + w.at<int>(y0, x0 + 1) + w.at<int>(y0 + 1, x0) + w.at<int>(y0 + 1, x0 + 1);
        at(y, x) = white ? 1.0f / static_cast<float>(k) : 0.0f;
      } else if (trap_ == "interaction") {
        at(y, x) = white && w.at<int>(y, x ^ 1) ? 0.5f : 0.0f;
      } else if (trap_ == "position") {
        at(y, x) = white && x < side / 2 ? 1.0f : 0.0f;
      } else {
        at(y, x) = static_cast<float>(white);
      }
    }
  return gt;
}

lab::Tensor TrapEnvironment::smooth_ground_truth(const cv::Mat& patches, int64_t) const {
  LAB_CHECK(patches.type() == CV_8UC1 && patches.rows == params_.model.size && patches.cols == params_.model.size,
            "patch map of the wrong shape");
  const int side = patches.cols;
  lab::Tensor gt({params_.model.size, params_.model.size});
  for (int y = 0; y < patches.rows; ++y)
    for (int x = 0; x < side; ++x) {
      const bool in = patches.at<uint8_t>(y, x) != 0 && (trap_ != "position" || x < side / 2);
      gt[static_cast<int64_t>(y) * side + x] = in ? 1.0f : 0.0f;
    }
  return gt;
}

std::vector<EnvironmentInfo> trap_environment_infos() {
  std::vector<EnvironmentInfo> infos;
  for (const std::string& trap : networks::trap_names()) {
    EnvironmentInfo info;
    info.name = trap;
    info.summary = summary_of(trap);
    info.source = "the trap zoo (README \"The trap zoo\")";
    info.params = TrapEnvParams::schema().docs();
    info.make = [trap](lab::Options& options) -> std::unique_ptr<Environment> {
      return std::make_unique<TrapEnvironment>(trap, TrapEnvParams::schema().read(options));
    };
    infos.push_back(std::move(info));
  }
  return infos;
}

}  // namespace datasets
