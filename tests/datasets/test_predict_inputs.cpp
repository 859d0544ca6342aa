// predict on any images (datasets/predict.h): the batch layouts N×C×H×W, N×H×W×C and N×H×W (gray)
// are told apart by the network's input shape; a shape that fits both or neither is refused with
// one line naming the file, its shape and the expected ones; float32 and uint8 batches in either
// layout give the logits of the data directory's own inputs, bit for bit.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "datasets/data_dir.h"
#include "datasets/predict.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/io/npy.h"

namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("attrlab-test-predict-inputs-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string error_of(const lab::Shape& file_shape, const lab::Shape& input_shape) {
  try {
    datasets::batch_layout(file_shape, input_shape, "batch.npy");
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("batch_layout: NCHW, NHWC and gray NHW by the input shape; ambiguous and unfitting shapes refused") {
  using datasets::BatchLayout;
  CHECK(datasets::batch_layout({5, 3, 32, 32}, {3, 32, 32}, "f") == BatchLayout::kNCHW);
  CHECK(datasets::batch_layout({5, 32, 32, 3}, {3, 32, 32}, "f") == BatchLayout::kNHWC);
  CHECK(datasets::batch_layout({5, 1, 32, 32}, {1, 32, 32}, "f") == BatchLayout::kNCHW);
  CHECK(datasets::batch_layout({5, 32, 32, 1}, {1, 32, 32}, "f") == BatchLayout::kNHWC);
  CHECK(datasets::batch_layout({5, 32, 32}, {1, 32, 32}, "f") == BatchLayout::kNHW);

  const std::string ambiguous = error_of({2, 3, 3, 3}, {3, 3, 3});
  CHECK(ambiguous.find("batch.npy") == 0);
  CHECK(ambiguous.find("[2, 3, 3, 3]") != std::string::npos);
  CHECK(ambiguous.find("ambiguous") != std::string::npos);
  CHECK(ambiguous.find('\n') == std::string::npos);

  const std::string wrong = error_of({2, 3, 64, 64}, {3, 32, 32});
  CHECK(wrong.find("batch.npy: shape [2, 3, 64, 64] does not fit") == 0);
  CHECK(wrong.find("[N, 3, 32, 32]") != std::string::npos);
  CHECK(wrong.find("[N, 32, 32, 3]") != std::string::npos);
  CHECK(!error_of({32, 32}, {3, 32, 32}).empty());
  CHECK(!error_of({5, 32, 32}, {3, 32, 32}).empty());  // N×H×W only for one channel
  CHECK(!error_of({0, 3, 32, 32}, {3, 32, 32}).empty());
}

TEST_CASE("predict_inputs: uint8 images and float32 inputs in both layouts give the data directory's logits") {
  for (const std::string name : {"multi-color-sum", "single-color-modulo"}) {
    CAPTURE(name);
    lab::Options o = lab::Options::parse({"size=32"}, "-o");
    const auto env = datasets::make_environment(name, o);
    const fs::path dir = scratch() / name;
    datasets::write_data_dir(*env, 5, 3, dir);
    const datasets::DataDir data = datasets::DataDir::open(dir);
    const datasets::Predictions want = datasets::predict(data, 2);

    const lab::Tensor x = data.inputs(0, data.size());
    const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    lab::Tensor nhwc({n, h, w, c});
    std::vector<uint8_t> images_nhwc, images_nchw(static_cast<size_t>(x.numel()));
    for (int64_t i = 0; i < n; ++i) {
      const cv::Mat image = data.image(i);
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx)
          for (int64_t k = 0; k < c; ++k) {
            const uint8_t v = image.ptr<uint8_t>(static_cast<int>(y))[xx * c + k];
            images_nhwc.push_back(v);
            images_nchw[static_cast<size_t>(((i * c + k) * h + y) * w + xx)] = v;
            nhwc[((i * h + y) * w + xx) * c + k] = x[((i * c + k) * h + y) * w + xx];
          }
    }
    lab::write_npy(dir / "nchw.npy", x);
    lab::write_npy(dir / "nhwc.npy", nhwc);
    lab::write_npy_u8(dir / "u8_nhwc.npy", images_nhwc, {n, h, w, c});
    lab::write_npy_u8(dir / "u8_nchw.npy", images_nchw, {n, c, h, w});
    for (const char* file : {"nchw.npy", "nhwc.npy", "u8_nhwc.npy", "u8_nchw.npy"}) {
      CAPTURE(file);
      const lab::Tensor read = datasets::read_inputs_npy(*env, dir / file);
      CHECK(read.values() == x.values());
      const datasets::Predictions got = datasets::predict_inputs(*env, read, 3);
      CHECK(got.labels.empty());
      CHECK(got.predicted == want.predicted);
      CHECK(got.logits.values() == want.logits.values());
      CHECK(got.probabilities.values() == want.probabilities.values());
    }
    lab::Tensor bad = x;
    bad[7] = std::numeric_limits<float>::quiet_NaN();
    lab::write_npy(dir / "nan.npy", bad);
    CHECK_THROWS_WITH_AS(datasets::read_inputs_npy(*env, dir / "nan.npy"),
                         doctest::Contains("nan.npy: image 0 has a non-finite value"), lab::Error);
  }
}
