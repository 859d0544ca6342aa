#include "lab/io/image.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "lab/core/error.h"
#include "lab/io/files.h"

namespace lab {

namespace {

constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

std::string describe_channels(int channels) {
  switch (channels) {
    case 1:
      return "1 (gray)";
    case 2:
      return "2 (gray + alpha)";
    case 3:
      return "3 (RGB)";
    case 4:
      return "4 (RGBA)";
    default:
      return std::to_string(channels);
  }
}

void check_8bit(const cv::Mat& image, const char* where) {
  if (image.empty()) fail("{}: empty image", where);
  if (image.type() != CV_8UC1 && image.type() != CV_8UC3)
    fail("{}: image of type {}; expected 8-bit gray (CV_8UC1) or RGB (CV_8UC3)", where,
         cv::typeToString(image.type()));
}

}  // namespace

cv::Mat read_png(const std::filesystem::path& path, int channels) {
  LAB_CHECK(channels == 1 || channels == 3, "read_png channels must be 1 or 3, got {}", channels);
  const std::string file = path.string();
  const std::string bytes = read_text(path);
  if (bytes.size() < sizeof kPngSignature || std::memcmp(bytes.data(), kPngSignature, sizeof kPngSignature) != 0)
    fail("{}: not a PNG file (bad signature)", file);
  // A cut-off file lacks the final chunk; saying so beats libpng's generic complaint.
  if (bytes.rfind("IEND") == std::string::npos) fail("{}: truncated PNG (no IEND chunk)", file);
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1,
                       const_cast<char*>(bytes.data()));  // imdecode only reads the buffer
  cv::Mat image;
  try {
    image = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail("{}: cannot decode PNG: {}", file, e.msg);
  }
  if (image.empty()) fail("{}: cannot decode PNG (corrupt or truncated)", file);
  if (image.depth() != CV_8U) fail("{}: {}-bit PNG; expected 8-bit", file, image.elemSize1() * 8);
  if (image.channels() != channels)
    fail("{}: PNG has {} channels; expected {}", file, describe_channels(image.channels()),
         describe_channels(channels));
  if (channels == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  return image;
}

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  check_8bit(image, path.string().c_str());
  cv::Mat bgr;
  if (image.channels() == 3)
    cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
  else
    bgr = image;
  std::vector<uchar> encoded;
  if (!cv::imencode(".png", bgr, encoded)) fail("{}: PNG encoding failed", path.string());
  write_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(encoded.data()), static_cast<std::streamsize>(encoded.size()));
  });
}

Tensor image_to_tensor(const cv::Mat& image, float scale) {
  check_8bit(image, "image_to_tensor");
  const int c = image.channels();
  const int h = image.rows;
  const int w = image.cols;
  Tensor chw({c, h, w});
  float* out = chw.data();
  // HWC (interleaved) in, CHW (planar) out; rows may be padded (a ROI of a larger Mat), so
  // each row is addressed through ptr().
  for (int y = 0; y < h; ++y) {
    const uchar* row = image.ptr<uchar>(y);
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        out[(static_cast<int64_t>(k) * h + y) * w + x] = static_cast<float>(row[x * c + k]) * scale;
  }
  return chw;
}

cv::Mat tensor_to_image(const Tensor& chw, float scale) {
  LAB_CHECK(std::isfinite(scale) && scale > 0.0f, "tensor_to_image scale must be positive, got {}", scale);
  if (chw.rank() != 3 || (chw.dim(0) != 1 && chw.dim(0) != 3))
    fail("tensor_to_image: shape {}; expected C×H×W with C = 1 or 3", to_string(chw.shape()));
  if (chw.dim(1) < 1 || chw.dim(2) < 1) fail("tensor_to_image: empty shape {}", to_string(chw.shape()));
  if (!chw.all_finite()) fail("tensor_to_image: tensor of shape {} holds NaN or Inf", to_string(chw.shape()));
  const int c = static_cast<int>(chw.dim(0));
  const int h = static_cast<int>(chw.dim(1));
  const int w = static_cast<int>(chw.dim(2));
  cv::Mat image(h, w, c == 1 ? CV_8UC1 : CV_8UC3);
  const float* in = chw.data();
  for (int y = 0; y < h; ++y) {
    uchar* row = image.ptr<uchar>(y);
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) {
        const float v = std::round(in[(static_cast<int64_t>(k) * h + y) * w + x] / scale);
        row[x * c + k] = static_cast<uchar>(v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v));
      }
  }
  return image;
}

}  // namespace lab
