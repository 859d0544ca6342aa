#include "lab/io/image.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <png.h>
#include <zlib.h>


#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/outputs.h"

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

/// libpng reports through these: an error ends the decode with its message kept (never printed,
/// so that attrlab's one-line error is the only output); warnings are dropped.
struct PngSource {
  const unsigned char* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::string error;
};

void png_on_error(png_structp png, png_const_charp message) {
  static_cast<PngSource*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_on_read(png_structp png, png_bytep out, size_t n) {
  PngSource* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > source->size - source->pos) png_error(png, "unexpected end of file");
  std::memcpy(out, source->data + source->pos, n);
  source->pos += n;
}

/// The decoded image as a file holds it: 8-bit, 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)
/// channels, palette expanded to RGB(A), gray below 8 bits expanded, no gamma applied.
struct PngPixels {
  int width = 0, height = 0, channels = 0, bit_depth = 0;
  std::vector<unsigned char> bytes;
};

/// Decodes with libpng's own error handlers (OpenCV's decoder lets libpng print "libpng error:"
/// lines). Returns false with `source.error` set when libpng refuses the file. Every object
/// whose state changes after setjmp lives outside this frame.
bool decode_png(PngSource& source, PngPixels& pixels, std::vector<png_bytep>& rows, const std::string& file) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_on_error, png_on_warning);
  if (png == nullptr) fail("{}: cannot decode PNG: out of memory", file);
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    fail("{}: cannot decode PNG: out of memory", file);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &source, png_on_read);
  png_read_info(png, info);
  pixels.width = static_cast<int>(png_get_image_width(png, info));
  pixels.height = static_cast<int>(png_get_image_height(png, info));
  pixels.bit_depth = png_get_bit_depth(png, info);
  const int color_type = png_get_color_type(png, info);
  if (pixels.bit_depth == 16) {
    png_destroy_read_struct(&png, &info, nullptr);
    return true;  // refused by the caller, naming the depth
  }
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && pixels.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  pixels.channels = png_get_channels(png, info);
  pixels.bit_depth = png_get_bit_depth(png, info);
  const size_t stride = png_get_rowbytes(png, info);
  try {
    check_memory(static_cast<uint64_t>(stride) * static_cast<uint64_t>(pixels.height),
                 fmt::format("{}: a {}×{} PNG", file, pixels.width, pixels.height));
    pixels.bytes.resize(stride * static_cast<size_t>(pixels.height));
    rows.resize(static_cast<size_t>(pixels.height));
  } catch (...) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw;
  }
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = pixels.bytes.data() + y * stride;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

/// The encoded file, filled by libpng through png_on_write.
struct PngSink {
  std::vector<unsigned char> bytes;
  std::string error;
};

void png_on_write(png_structp png, png_bytep data, size_t n) {
  std::vector<unsigned char>& bytes = static_cast<PngSink*>(png_get_io_ptr(png))->bytes;
  bytes.insert(bytes.end(), data, data + n);
}

void png_on_flush(png_structp) {}

void png_on_write_error(png_structp png, png_const_charp message) {
  static_cast<PngSink*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

/// Encodes an 8-bit gray or RGB image with the settings OpenCV's PNG writer (cv::imencode) uses
/// by default, so that files are byte-identical to those attrlab wrote through OpenCV: the SUB
/// filter on every row, zlib level 1 (Z_BEST_SPEED) with the Z_RLE strategy, no ancillary
/// chunks. Returns false with `sink.error` set when libpng fails.
bool encode_png(const cv::Mat& image, PngSink& sink) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_write_error, png_on_warning);
  if (png == nullptr) {
    sink.error = "out of memory";
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    sink.error = "out of memory";
    return false;
  }
  // Filled before setjmp: nothing that changes after it lives in this frame.
  std::vector<png_bytep> rows(static_cast<size_t>(image.rows));
  for (int y = 0; y < image.rows; ++y) rows[static_cast<size_t>(y)] = const_cast<png_bytep>(image.ptr<uchar>(y));
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &sink, png_on_write, png_on_flush);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_set_compression_level(png, Z_BEST_SPEED);
  png_set_compression_strategy(png, Z_RLE);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.cols), static_cast<png_uint_32>(image.rows), 8,
               image.channels() == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
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
  PngSource source;
  source.data = reinterpret_cast<const unsigned char*>(bytes.data());
  source.size = bytes.size();
  PngPixels pixels;
  std::vector<png_bytep> rows;
  if (!decode_png(source, pixels, rows, file)) fail("{}: cannot decode PNG: {}", file, source.error);
  if (pixels.bit_depth != 8) fail("{}: {}-bit PNG; expected 8-bit", file, pixels.bit_depth);
  if (pixels.channels != channels)
    fail("{}: PNG has {} channels; expected {}", file, describe_channels(pixels.channels), describe_channels(channels));
  cv::Mat image(pixels.height, pixels.width, channels == 3 ? CV_8UC3 : CV_8UC1);
  const size_t stride = static_cast<size_t>(pixels.width) * static_cast<size_t>(channels);
  for (int y = 0; y < pixels.height; ++y)
    std::memcpy(image.ptr<uchar>(y), pixels.bytes.data() + static_cast<size_t>(y) * stride, stride);
  return image;  // RGB order, as in the file
}

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  const std::string file = path.string();
  check_8bit(image, file.c_str());
  PngSink sink;
  if (!encode_png(image, sink)) fail("{}: PNG encoding failed: {}", file, sink.error);
  write_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(sink.bytes.data()), static_cast<std::streamsize>(sink.bytes.size()));
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
