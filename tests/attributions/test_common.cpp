// The helpers every method shares (attributions/common.h).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "attributions/common.h"
#include "gradient_fixtures.h"
#include "lab/core/error.h"
#include "lab/io/image.h"
#include "lab/io/npy.h"

using attributions::Baseline;
using attributions::Context;

TEST_CASE("explained_network drops only a final softmax and outlives its source") {
  lab::Network logit_net({1, 2, 2});
  {
    lab::Network net({1, 2, 2});
    net.add("flatten", std::make_shared<lab::Flatten>());
    net.add("fc", std::make_shared<lab::Linear>(lab::Tensor({3, 4}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1}), lab::Tensor({3}, 0.0f)));
    net.add("softmax", std::make_shared<lab::Softmax>());
    CHECK(attributions::ends_with_softmax(net));
    CHECK(attributions::explained_network(net, attributions::Output::kProbability).size() == 3);
    logit_net = attributions::explained_network(net, attributions::Output::kLogit);
  }
  REQUIRE(logit_net.size() == 2);
  CHECK(logit_net.name(1) == "fc");
  CHECK(!attributions::ends_with_softmax(logit_net));
  const lab::Tensor y = logit_net.forward(lab::Tensor({1, 1, 2, 2}, {1, 2, 3, 4}));
  CHECK(y.values() == std::vector<float>{1, 2, 7});
  // Without a final softmax both outputs are the network itself.
  CHECK(attributions::explained_network(logit_net, attributions::Output::kLogit).size() == 2);
}

TEST_CASE("baselines: zero, background, values and files") {
  Context context;
  context.background = {20, 30, 40};
  const lab::Shape shape{3, 2, 2};
  CHECK(Baseline::parse("zero").resolve(context, shape).values() == std::vector<float>(12, 0.0f));
  const lab::Tensor bg = Baseline::parse("background").resolve(context, shape);
  CHECK(bg.shape() == lab::Shape{1, 3, 2, 2});
  CHECK(bg.at(0, 0, 1, 1) == 20.0f);
  CHECK(bg.at(0, 2, 0, 1) == 40.0f);
  CHECK(Baseline::parse("1,2,3").resolve(context, shape).at(0, 1, 0, 0) == 2.0f);
  CHECK(Baseline::parse("7").resolve(context, shape).at(0, 2, 1, 0) == 7.0f);
  CHECK(Baseline::parse("1,2.5,3").to_string() == "1,2.5,3");
  CHECK_THROWS_WITH_AS(Baseline::parse("1,2").resolve(context, shape), doctest::Contains("has 2 values, the input has 3 channels"),
                       lab::Error);
  CHECK_THROWS_WITH_AS(Baseline::parse("background").resolve(Context{}, shape),
                       doctest::Contains("background is not known"), lab::Error);
  CHECK_THROWS_WITH_AS(Baseline::parse("grey"), doctest::Contains("-p baseline=grey: expected zero, background"), lab::Error);
  CHECK_THROWS_WITH_AS(Baseline::parse("missing.npy", "baselines"),
                       doctest::Contains("-p baselines=missing.npy: no such baseline file"), lab::Error);

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "attrlab_test_baselines";
  std::filesystem::create_directories(dir);
  const lab::Tensor chw = fixtures::uniform_inputs({3, 2, 2}, 3);
  lab::write_npy(dir / "b.npy", chw);
  CHECK(Baseline::parse((dir / "b.npy").string()).resolve(context, shape).values() == chw.values());
  lab::write_npy(dir / "wrong.npy", lab::Tensor({3, 4, 4}));
  CHECK_THROWS_WITH_AS(Baseline::parse((dir / "wrong.npy").string()).resolve(context, shape),
                       doctest::Contains("has shape [3, 4, 4], expected [3, 2, 2]"), lab::Error);
  cv::Mat png(2, 2, CV_8UC3, cv::Scalar(10, 20, 30));
  lab::write_png(dir / "b.png", png);
  CHECK_THROWS_WITH_AS(Baseline::parse((dir / "b.png").string()).resolve(context, shape),
                       doctest::Contains("PNG baselines need"), lab::Error);
  context.to_input = [](const cv::Mat& image) { return lab::image_to_tensor(image, 0.5f); };
  const lab::Tensor from_png = Baseline::parse((dir / "b.png").string()).resolve(context, shape);
  CHECK(from_png.at(0, 0, 0, 0) == 5.0f);
  CHECK(from_png.at(0, 2, 1, 1) == 15.0f);
  std::filesystem::remove_all(dir);
}

TEST_CASE("run_backprop gives the same signal for every chunk size") {
  const lab::Network net = fixtures::linear_model(2, 3, 4);
  // Multiples of 1/8 and dyadic weights: every product and sum is exact, whatever the order in
  // which a network call adds them up.
  lab::Tensor x = fixtures::uniform_inputs({7, 2, 3, 3}, 9, -8.0f, 8.0f);
  for (float& v : x.values()) v = std::round(v) / 8.0f;
  const std::vector<int64_t> target{0, 1, 2, 3, 3, 2, 1};
  attributions::Backprop bp{.net = &net, .seed_with_output = true};
  const attributions::Signal whole = attributions::backprop_batch(bp, x, target, 64);
  const lab::Tensor y = net.forward(x);
  for (int64_t max_batch : {1, 2, 3, 7}) {
    CAPTURE(max_batch);
    const attributions::Signal s = attributions::backprop_batch(bp, x, target, max_batch);
    CHECK(s.signal.values() == whole.signal.values());
    CHECK(s.output == whole.output);
    CHECK(s.evaluations == 14);
  }
  // Seed = one-hot × output: the signal is f_t · w_t.
  const auto& w = static_cast<const lab::Linear&>(net.layer(1)).weights().weight;
  for (int64_t n = 0; n < 7; ++n) {
    const float f = y.sample(n)[target[static_cast<size_t>(n)]];
    CHECK(whole.output[static_cast<size_t>(n)] == f);
    CHECK(whole.signal.sample(n)[5] == doctest::Approx(f * w[target[static_cast<size_t>(n)] * 18 + 5]));
  }
}

TEST_CASE("upsampling is OpenCV's bilinear resize; spreading over channels sums back to the map") {
  const lab::Tensor maps = fixtures::uniform_inputs({2, 3, 5}, 11);
  const lab::Tensor up = attributions::upsample_bilinear(maps, 12, 10);
  CHECK(up.shape() == lab::Shape{2, 12, 10});
  for (int64_t s = 0; s < 2; ++s) {
    const cv::Mat src(3, 5, CV_32F, const_cast<float*>(maps.sample(s)));
    cv::Mat expected;
    cv::resize(src, expected, cv::Size(10, 12), 0, 0, cv::INTER_LINEAR);
    for (int64_t j = 0; j < 120; ++j) CHECK(up.sample(s)[j] == expected.at<float>(static_cast<int>(j)));
  }
  const lab::Tensor spread = attributions::spread_over_channels(up, 3);
  CHECK(spread.shape() == lab::Shape{2, 3, 12, 10});
  const lab::Tensor back = attributions::reduce_channels(spread);
  for (int64_t j = 0; j < back.numel(); ++j) CHECK(back[j] == doctest::Approx(up[j]).epsilon(1e-6));
}

TEST_CASE("reduce_channels sums the channels") {
  const lab::Tensor attr({1, 2, 1, 2}, {1, 2, 10, 20});
  CHECK(attributions::reduce_channels(attr).values() == std::vector<float>{11, 22});
  CHECK_THROWS_AS(attributions::reduce_channels(lab::Tensor({2, 2})), lab::Error);
}

namespace {

/// A method's Params with the shared parameters only.
struct SharedParams {
  attributions::Baseline baseline;
  attributions::Output output = attributions::Output::kLogit;
  std::string layer;
  static const lab::Schema<SharedParams>& schema() {
    static const auto s = lab::Schema<SharedParams>()
                              .with(attributions::baseline_param(&SharedParams::baseline, "reference input"))
                              .with(attributions::output_param(&SharedParams::output, "test"))
                              .with(attributions::layer_param(&SharedParams::layer, "hook", "gradcam", "l.5"));
    return s;
  }
};

}  // namespace

TEST_CASE("the shared parameters: output, baseline and layer, read, refused and recorded as -p takes them") {
  const auto& schema = SharedParams::schema();
  CHECK(schema.names() == std::vector<std::string>{"baseline", "output", "layer"});
  const std::vector<lab::ParamDoc> docs = schema.docs();
  CHECK(docs[0].default_text() == "zero");
  CHECK(docs[1].default_text() == "logit");
  CHECK(docs[1].info.choices == std::vector<std::string>{"probability", "logit"});
  CHECK(docs[2].default_text().empty());
  CHECK(docs[2].info.help.find("gradcam layer") != std::string::npos);
  lab::Options o = fixtures::params({"output=softmax"});
  CHECK_THROWS_WITH_AS(schema.read(o), doctest::Contains("-p output=softmax: must be one of probability|logit"),
                       lab::Error);
  lab::Options b = fixtures::params({"baseline=grey"});
  CHECK_THROWS_WITH_AS(schema.read(b), doctest::Contains("-p baseline=grey: must be zero, background"), lab::Error);
  lab::Options good = fixtures::params({"baseline=1,2.5,3", "output=probability", "layer=fc"});
  const SharedParams p = schema.read(good);
  CHECK(p.output == attributions::Output::kProbability);
  CHECK(schema.to_json(p) == nlohmann::json{{"baseline", "1,2.5,3"}, {"output", "probability"}, {"layer", "fc"}});
}
