// PNG files and image tensors: RGB and gray round trips keep every byte, the channel order on
// disk is RGB for attrlab (pure red reads back as channel 0 = 255, and a PNG made by OpenCV from
// BGR data reads as RGB), wrong channel counts and broken files are named in the error, and
// image_to_tensor / tensor_to_image use the C×H×W layout and the given scale.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "tests/scratch.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/image.h"

namespace fs = std::filesystem;

namespace {

struct ImageScratch : testdir::Scratch {
  ImageScratch() : testdir::Scratch("image") {}
};

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

/// An image whose every byte differs from its neighbours, so that any reordering shows.
cv::Mat pattern(int rows, int cols, int type) {
  cv::Mat image(rows, cols, type);
  uint8_t* p = image.data;
  for (size_t i = 0; i < image.total() * image.elemSize(); ++i) p[i] = static_cast<uint8_t>((i * 73 + 5) % 256);
  return image;
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.type() == b.type() && a.size() == b.size() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

}  // namespace

TEST_CASE("write_png then read_png keeps every byte of RGB and gray images") {
  ImageScratch scratch;
  SUBCASE("RGB") {
    const cv::Mat image = pattern(7, 5, CV_8UC3);
    lab::write_png(scratch.dir / "rgb.png", image);
    CHECK(same_bytes(lab::read_png(scratch.dir / "rgb.png", 3), image));
  }
  SUBCASE("gray") {
    const cv::Mat image = pattern(4, 9, CV_8UC1);
    lab::write_png(scratch.dir / "gray.png", image);
    CHECK(same_bytes(lab::read_png(scratch.dir / "gray.png", 1), image));
  }
  SUBCASE("a region of a larger image (rows not contiguous)") {
    const cv::Mat big = pattern(10, 10, CV_8UC3);
    const cv::Mat roi = big(cv::Rect(2, 3, 4, 5));
    REQUIRE_FALSE(roi.isContinuous());
    lab::write_png(scratch.dir / "roi.png", roi);
    CHECK(same_bytes(lab::read_png(scratch.dir / "roi.png", 3), roi));
  }
}

TEST_CASE("write_png writes the bytes OpenCV's PNG encoder writes with its default settings") {
  // Files attrlab wrote before its writer moved from cv::imencode to libpng stay byte-identical
  // (golden files, figures and images of earlier runs compare equal).
  ImageScratch scratch;
  const auto opencv_bytes = [](const cv::Mat& rgb_or_gray) {
    cv::Mat bgr = rgb_or_gray.clone();
    if (bgr.channels() == 3) cv::cvtColor(rgb_or_gray, bgr, cv::COLOR_RGB2BGR);
    std::vector<uchar> encoded;
    REQUIRE(cv::imencode(".png", bgr, encoded));
    return std::string(encoded.begin(), encoded.end());
  };
  // Patterned (filters and RLE matter), flat and noisy images, gray and RGB, odd sizes.
  cv::Mat noisy(37, 53, CV_8UC3);
  cv::randu(noisy, 0, 256);
  cv::Mat noisy_gray(64, 33, CV_8UC1);
  cv::randu(noisy_gray, 0, 256);
  const std::vector<cv::Mat> images = {pattern(7, 5, CV_8UC3), pattern(31, 64, CV_8UC1),
                                       cv::Mat(16, 16, CV_8UC3, cv::Scalar(0, 255, 0)), noisy, noisy_gray,
                                       pattern(1, 1, CV_8UC1)};
  for (size_t i = 0; i < images.size(); ++i) {
    CAPTURE(i);
    const fs::path path = scratch.dir / ("image" + std::to_string(i) + ".png");
    lab::write_png(path, images[i]);
    CHECK(lab::read_text(path) == opencv_bytes(images[i]));
  }
}

TEST_CASE("RGB channel order is kept on disk") {
  ImageScratch scratch;
  const fs::path path = scratch.dir / "red.png";
  cv::Mat red(3, 4, CV_8UC3, cv::Scalar(255, 0, 0));  // attrlab images are RGB: channel 0 is red
  lab::write_png(path, red);
  const cv::Mat back = lab::read_png(path, 3);
  CHECK(back.at<cv::Vec3b>(1, 2) == cv::Vec3b(255, 0, 0));

  // OpenCV itself stores BGR: the file must hold red where any PNG viewer shows red.
  const cv::Mat raw_bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  CHECK(raw_bgr.at<cv::Vec3b>(0, 0) == cv::Vec3b(0, 0, 255));

  // And a PNG saved by OpenCV from BGR blue reads as RGB blue.
  cv::imwrite((scratch.dir / "blue.png").string(), cv::Mat(2, 2, CV_8UC3, cv::Scalar(255, 0, 0)));
  CHECK(lab::read_png(scratch.dir / "blue.png", 3).at<cv::Vec3b>(0, 0) == cv::Vec3b(0, 0, 255));
}

TEST_CASE("read_png names the file and what was found") {
  ImageScratch scratch;
  const fs::path gray = scratch.dir / "gray.png";
  const fs::path rgb = scratch.dir / "rgb.png";
  lab::write_png(gray, pattern(2, 2, CV_8UC1));
  lab::write_png(rgb, pattern(2, 2, CV_8UC3));

  CHECK(error_of([&] { lab::read_png(gray, 3); }) == gray.string() + ": PNG has 1 (gray) channels; expected 3 (RGB)");
  CHECK(error_of([&] { lab::read_png(rgb, 1); }) == rgb.string() + ": PNG has 3 (RGB) channels; expected 1 (gray)");

  const fs::path rgba = scratch.dir / "rgba.png";
  cv::imwrite(rgba.string(), cv::Mat(2, 2, CV_8UC4, cv::Scalar(1, 2, 3, 4)));
  CHECK(error_of([&] { lab::read_png(rgba, 3); }) == rgba.string() + ": PNG has 4 (RGBA) channels; expected 3 (RGB)");

  const fs::path deep = scratch.dir / "deep.png";
  cv::imwrite(deep.string(), cv::Mat(2, 2, CV_16UC1, cv::Scalar(1000)));
  CHECK(error_of([&] { lab::read_png(deep, 1); }) == deep.string() + ": 16-bit PNG; expected 8-bit");

  const fs::path missing = scratch.dir / "missing.png";
  CHECK(error_of([&] { lab::read_png(missing, 3); }) == missing.string() + ": no such file");

  const fs::path text = scratch.dir / "text.png";
  lab::write_text_atomic(text, "not an image at all");
  CHECK(error_of([&] { lab::read_png(text, 3); }) == text.string() + ": not a PNG file (bad signature)");

  const fs::path jpeg = scratch.dir / "photo.png";
  std::vector<uchar> jpeg_bytes;
  cv::imencode(".jpg", cv::Mat(8, 8, CV_8UC3, cv::Scalar(9, 9, 9)), jpeg_bytes);
  lab::write_text_atomic(jpeg, std::string(jpeg_bytes.begin(), jpeg_bytes.end()));
  CHECK(error_of([&] { lab::read_png(jpeg, 3); }) == jpeg.string() + ": not a PNG file (bad signature)");

  const fs::path cut = scratch.dir / "cut.png";
  const std::string whole = lab::read_text(rgb);
  lab::write_text_atomic(cut, whole.substr(0, whole.size() - 10));
  CHECK(error_of([&] { lab::read_png(cut, 3); }) == cut.string() + ": truncated PNG (no IEND chunk)");

  // The image header chunk (IHDR, bytes 12..28) damaged: libpng refuses it (and says so on stderr).
  const fs::path damaged = scratch.dir / "damaged.png";
  std::string bad = whole;
  bad[16] = '\x7f';
  lab::write_text_atomic(damaged, bad);
  const std::string message = error_of([&] { lab::read_png(damaged, 3); });
  CHECK(message.rfind(damaged.string() + ": cannot decode PNG", 0) == 0);
  CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("write_png refuses images that are not 8-bit gray or RGB, writing nothing") {
  ImageScratch scratch;
  const fs::path path = scratch.dir / "float.png";
  const std::string message = error_of([&] { lab::write_png(path, cv::Mat(2, 2, CV_32FC1, cv::Scalar(0.5))); });
  CHECK(message == path.string() + ": image of type CV_32FC1; expected 8-bit gray (CV_8UC1) or RGB (CV_8UC3)");
  CHECK(error_of([&] { lab::write_png(path, cv::Mat(2, 2, CV_8UC4)); }).find("CV_8UC4") != std::string::npos);
  CHECK(fs::is_empty(scratch.dir));
}

TEST_CASE("image_to_tensor gives C×H×W, each byte times the scale") {
  cv::Mat image(2, 3, CV_8UC3);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) image.at<cv::Vec3b>(y, x) = cv::Vec3b(10 * y + x, 100 + 10 * y + x, 200 + 10 * y + x);

  const lab::Tensor t = lab::image_to_tensor(image);
  CHECK(t.shape() == lab::Shape{3, 2, 3});
  // Plane c holds channel c: offset c*H*W + y*W + x.
  CHECK(t.values() == std::vector<float>{0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112, 200, 201, 202,
                                         210, 211, 212});

  const lab::Tensor scaled = lab::image_to_tensor(image, 1.0f / 255.0f);
  CHECK(scaled[2 * 6 + 1 * 3 + 2] == doctest::Approx(212.0 / 255.0).epsilon(1e-7));

  const lab::Tensor gray = lab::image_to_tensor(cv::Mat(2, 2, CV_8UC1, cv::Scalar(255)), 0.5f);
  CHECK(gray.shape() == lab::Shape{1, 2, 2});
  CHECK(gray.values() == std::vector<float>(4, 127.5f));

  CHECK(error_of([&] { lab::image_to_tensor(cv::Mat(2, 2, CV_16UC1)); })
            .find("image of type CV_16UC1") != std::string::npos);
}

TEST_CASE("tensor_to_image inverts image_to_tensor, rounding and clamping") {
  const cv::Mat image = pattern(3, 4, CV_8UC3);
  CHECK(same_bytes(lab::tensor_to_image(lab::image_to_tensor(image, 1.0f / 255.0f), 1.0f / 255.0f), image));

  const lab::Tensor t({1, 1, 5}, {-7.0f, 0.49f, 0.5f, 254.6f, 300.0f});
  const cv::Mat gray = lab::tensor_to_image(t);
  REQUIRE(gray.type() == CV_8UC1);
  CHECK(gray.at<uchar>(0, 0) == 0);
  CHECK(gray.at<uchar>(0, 1) == 0);
  CHECK(gray.at<uchar>(0, 2) == 1);
  CHECK(gray.at<uchar>(0, 3) == 255);
  CHECK(gray.at<uchar>(0, 4) == 255);

  CHECK(error_of([&] { lab::tensor_to_image(lab::Tensor({2, 3, 3})); }) ==
        "tensor_to_image: shape [2, 3, 3]; expected C×H×W with C = 1 or 3");
  CHECK(error_of([&] { lab::tensor_to_image(lab::Tensor({1, 2, 2}, std::nanf(""))); }).find("NaN") !=
        std::string::npos);
}
