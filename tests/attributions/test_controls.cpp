// The control methods of attributions/controls.h beyond random and constant: fake-cam,
// ground-truth, and the blurred / binarised wrappers of any method.
#include <doctest/doctest.h>

#include <opencv2/imgproc.hpp>

#include "attributions/controls.h"
#include "attributions/method.h"
#include "gradient_fixtures.h"
#include "lab/core/error.h"

using namespace attributions;

namespace {

Result run(const std::string& name, const std::vector<std::string>& p, const Context& context, const Batch& batch) {
  lab::Options options = lab::Options::parse(p, "-p");
  return make_method(name, options)->attribute(context, batch);
}

}  // namespace

TEST_CASE("fake-cam: the constant with the top-left pixel 0 in every channel; ground-truth: the GT in channel 0") {
  const lab::Network net = fixtures::linear_model(3, 4, 2);
  const Context context{.net = &net};
  Batch batch;
  batch.x = fixtures::uniform_inputs({2, 3, 4, 4}, 1);
  batch.target = {0, 1};
  const Result fake = run("fake-cam", {}, context, batch);
  for (int64_t s = 0; s < 2; ++s)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 16; ++p) CHECK(fake.attr.sample(s)[c * 16 + p] == (p == 0 ? 0.0f : 1.0f));
  CHECK(run("fake-cam", {"value=3"}, context, batch).attr.sample(1)[5] == 3.0f);

  CHECK_THROWS_WITH_AS(run("ground-truth", {}, context, batch), doctest::Contains("needs the 2×4×4 pixel ground truth"),
                       lab::Error);
  batch.gt = lab::Tensor({2, 4, 4}, 0.0f);
  batch.gt[3] = 1.0f;
  batch.gt[16 + 7] = -1.0f;
  const Result gt = run("ground-truth", {}, context, batch);
  const lab::Tensor summed = reduce_channels(gt.attr);
  CHECK(summed.values() == batch.gt.values());
  CHECK(gt.evaluations == 0);
}

TEST_CASE("blurred and binarised wrap any method through the registry") {
  const lab::Network net = fixtures::linear_model(3, 8, 2);
  const Context context{.net = &net};
  Batch batch;
  batch.x = fixtures::uniform_inputs({1, 3, 8, 8}, 2);
  batch.target = {1};
  batch.seeds = {5};
  // blurred of saliency = each channel of saliency's map blurred.
  const Result plain = run("saliency", {}, context, batch);
  const Result blurred = run("blurred", {"blur-sigma=1.5"}, context, batch);
  for (int64_t c = 0; c < 3; ++c) {
    cv::Mat src(8, 8, CV_32F, const_cast<float*>(plain.attr.data() + c * 64));
    cv::Mat dst;
    cv::GaussianBlur(src, dst, cv::Size(0, 0), 1.5, 1.5, cv::BORDER_REFLECT_101);
    for (int64_t p = 0; p < 64; ++p) CHECK(blurred.attr[c * 64 + p] == dst.at<float>(static_cast<int>(p)));
  }
  CHECK(blurred.evaluations == plain.evaluations);
  // The base's own keys pass through; the record nests them as SmoothGrad does.
  lab::Options options = lab::Options::parse({"base=random", "binarise-percentile=75"}, "-p");
  const auto wrapper = make_method("binarised", options);
  CHECK(wrapper->params()["base"] == "random");
  CHECK(wrapper->params()["base-params"].is_object());
  const Result bin = wrapper->attribute(context, batch);
  // 1 on the top quarter of the random map's channel sum (16 of 64 pixels), in channel 0.
  const lab::Tensor summed = reduce_channels(bin.attr);
  int64_t ones = 0;
  for (float v : summed.values()) {
    CHECK((v == 0.0f || v == 1.0f));
    ones += v == 1.0f;
  }
  CHECK(ones == 16);
  for (int64_t p = 64; p < 192; ++p) CHECK(bin.attr[p] == 0.0f);
  // Refusals: wrapping itself, unknown base, keys nobody reads.
  auto refuse = [&](const std::string& name, const std::vector<std::string>& p, const char* message) {
    lab::Options o = lab::Options::parse(p, "-p");
    CHECK_THROWS_WITH_AS(make_method(name, o), doctest::Contains(message), lab::Error);
  };
  refuse("blurred", {"base=blurred"}, "-p base=blurred: must be another method");
  refuse("binarised", {"base=nothing"}, "unknown method 'nothing'");
  refuse("blurred", {"steps=3"}, "unknown option -p steps=3");
  refuse("blurred", {"blur-sigma=0"}, "-p blur-sigma=0: must be");
}
