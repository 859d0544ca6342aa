#include "datasets/multi_color_sum.h"

#include "lab/core/error.h"

namespace datasets {

namespace {

// Redraws of a whole sample whose largest count is shared; a unique maximum has positive
// probability for every valid option set, so reaching this bound means a bug.
constexpr int kMaxTieRedraws = 1000;

bool same(const cv::Vec3b& pixel, const networks::Rgb& c) { return pixel[0] == c.r && pixel[1] == c.g && pixel[2] == c.b; }

void check_image(const cv::Mat& image, int64_t size) {
  if (image.type() != CV_8UC3 || image.rows != size || image.cols != size)
    lab::fail("image is {}x{} with {} channel(s) of {} bits; expected {}x{} RGB (3 channels of 8 bits)", image.cols,
              image.rows, image.channels(), image.elemSize1() * 8, size, size);
}

}  // namespace

const lab::Schema<MultiColorSumEnvParams>& MultiColorSumEnvParams::schema() {
  using P = MultiColorSumEnvParams;
  static const auto s = lab::Schema<P>()
                            .nested(&P::model, networks::MultiColorSumParams::schema())
                            .nested(&P::layout, LayoutParams::schema(false, "size/4"))
                            .check([](const P& p, const std::string&) {
                              const P r = p.resolved();
                              r.layout.validate(r.model.size);
                            });
  return s;
}

MultiColorSumEnvParams MultiColorSumEnvParams::resolved() const {
  MultiColorSumEnvParams r = *this;
  r.layout.patches = model.colors;
  r.layout.resolve(model.size / 4);
  return r;
}

MultiColorSumEnvironment::MultiColorSumEnvironment(MultiColorSumEnvParams params)
    : params_(params.resolved()), colors_(params_.model.target_colors()) {
  Params::schema().validate(params_, "-o");
}

Sample MultiColorSumEnvironment::generate(uint64_t seed, int64_t index) const {
  LAB_CHECK(index >= 0, "sample index must be >= 0, got {}", index);
  lab::Rng rng(seed, static_cast<uint64_t>(index));
  const int side = static_cast<int>(params_.model.size);
  const networks::Rgb bg = params_.model.background;
  for (int attempt = 0; attempt < kMaxTieRedraws; ++attempt) {
    Layout layout = sample_layout(params_.layout, params_.model.size, rng);
    cv::Mat image(side, side, CV_8UC3, cv::Scalar(bg.r, bg.g, bg.b));
    std::vector<int64_t> counts(static_cast<size_t>(params_.model.colors), 0);
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) {
        const int k = layout.region.at<uint8_t>(y, x);
        // App. G.1: a draw of 1 keeps the background, 0 sets the patch's colour.
        if (k == 0 || rng.bit()) continue;
        const networks::Rgb& c = colors_[static_cast<size_t>(k - 1)];
        image.at<cv::Vec3b>(y, x) = cv::Vec3b(c.r, c.g, c.b);
        ++counts[static_cast<size_t>(k - 1)];
      }
    int64_t best = 0;
    int winners = 0;
    for (int64_t c : counts) best = std::max(best, c);
    for (int64_t c : counts) winners += c == best;
    if (winners != 1) continue;
    Sample s;
    s.id = sample_id(index);
    s.label = label_from_counts(counts);
    s.gt = ground_truth(image, s.label);
    s.gt_smooth = smooth_ground_truth(layout.region, s.label);
    s.image = std::move(image);
    s.patches = std::move(layout.region);
    s.layout = std::move(layout.patches);
    s.counts = std::move(counts);
    return s;
  }
  LAB_CHECK(false, "sample {} of seed {}: every one of {} draws had a tie", index, seed, kMaxTieRedraws);
  return {};
}

lab::Network MultiColorSumEnvironment::build_network() const { return networks::build_multi_color_sum(params_.model); }

lab::Shape MultiColorSumEnvironment::input_shape() const { return {3, params_.model.size, params_.model.size}; }

lab::Tensor MultiColorSumEnvironment::to_input(const cv::Mat& image) const {
  check_image(image, params_.model.size);
  const int64_t side = params_.model.size;
  lab::Tensor x({3, side, side});
  for (int64_t y = 0; y < side; ++y)
    for (int64_t xx = 0; xx < side; ++xx) {
      const cv::Vec3b& p = image.at<cv::Vec3b>(static_cast<int>(y), static_cast<int>(xx));
      for (int64_t c = 0; c < 3; ++c) x[(c * side + y) * side + xx] = static_cast<float>(p[static_cast<int>(c)]);
    }
  return x;
}

std::vector<float> MultiColorSumEnvironment::background() const {
  const networks::Rgb bg = params_.model.background;
  return {static_cast<float>(bg.r), static_cast<float>(bg.g), static_cast<float>(bg.b)};
}

int64_t MultiColorSumEnvironment::predicted_label(const float* output_row) const {
  int64_t best = 0;
  for (int64_t c = 1; c < params_.model.colors; ++c)
    if (output_row[c] > output_row[best]) best = c;
  return best;
}

std::map<std::string, std::string> MultiColorSumEnvironment::default_layers() const {
  return networks::multi_color_sum_paper_layers();
}

cv::Mat MultiColorSumEnvironment::pixel_classes(const cv::Mat& image) const {
  check_image(image, params_.model.size);
  const networks::Rgb bg = params_.model.background;
  cv::Mat classes(image.rows, image.cols, CV_32SC1, cv::Scalar(-1));
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) {
      const cv::Vec3b& p = image.at<cv::Vec3b>(y, x);
      if (same(p, bg)) continue;
      size_t c = 0;
      while (c < colors_.size() && !same(p, colors_[c])) ++c;
      if (c == colors_.size())
        lab::fail("pixel (x={}, y={}) has colour ({}, {}, {}), neither the background {} nor one of the {} target colours",
                  x, y, p[0], p[1], p[2], networks::to_string(bg), colors_.size());
      classes.at<int>(y, x) = static_cast<int>(c);
    }
  return classes;
}

int64_t MultiColorSumEnvironment::label_from_counts(const std::vector<int64_t>& counts) const {
  if (static_cast<int64_t>(counts.size()) != params_.model.colors)
    lab::fail("{} counts given; expected one per colour ({})", counts.size(), params_.model.colors);
  size_t best = 0;
  for (size_t c = 1; c < counts.size(); ++c)
    if (counts[c] > counts[best]) best = c;
  for (size_t c = 0; c < counts.size(); ++c)
    if (c != best && counts[c] == counts[best])
      lab::fail("classes {} and {} tie with {} pixels each; the label must be unique", best, c, counts[best]);
  return static_cast<int64_t>(best);
}

lab::Tensor MultiColorSumEnvironment::ground_truth(const cv::Mat& image, int64_t label) const {
  LAB_CHECK(label >= 0 && label < params_.model.colors, "label {} out of range", label);
  const cv::Mat classes = pixel_classes(image);
  lab::Tensor gt({params_.model.size, params_.model.size});
  for (int y = 0; y < classes.rows; ++y)
    for (int x = 0; x < classes.cols; ++x) {
      const int c = classes.at<int>(y, x);
      gt[static_cast<int64_t>(y) * classes.cols + x] = c < 0 ? 0.0f : (c == label ? 1.0f : -1.0f);
    }
  return gt;
}

lab::Tensor MultiColorSumEnvironment::smooth_ground_truth(const cv::Mat& patches, int64_t label) const {
  LAB_CHECK(patches.type() == CV_8UC1 && patches.rows == params_.model.size && patches.cols == params_.model.size,
            "patch map of the wrong shape");
  lab::Tensor gt({params_.model.size, params_.model.size});
  for (int y = 0; y < patches.rows; ++y)
    for (int x = 0; x < patches.cols; ++x) {
      const int k = patches.at<uint8_t>(y, x);
      LAB_CHECK(k <= params_.model.colors, "patch index {} > {}", k, params_.model.colors);
      gt[static_cast<int64_t>(y) * patches.cols + x] = k == 0 ? 0.0f : (patch_class(k) == label ? 1.0f : -1.0f);
    }
  return gt;
}

}  // namespace datasets
