/// @file image.h
/// @brief 8-bit PNG images (read and written with libpng, held as cv::Mat) and their conversion
/// to network input tensors.
///
/// Images are cv::Mat of CV_8UC1 (gray) or CV_8UC3 in **RGB** order (as in the file, not OpenCV's
/// usual BGR). A missing or undecodable file, or one with the wrong number of
/// channels, throws lab::Error naming the file.
#pragma once

#include <filesystem>

#include <opencv2/core.hpp>

#include "lab/core/tensor.h"

namespace lab {

/// Reads a PNG as `channels` (1 = gray, 3 = RGB); any other stored channel count is an error.
cv::Mat read_png(const std::filesystem::path& path, int channels);
/// Writes CV_8UC1 or CV_8UC3 (RGB) atomically.
void write_png(const std::filesystem::path& path, const cv::Mat& image);

/// C×H×W float tensor (no batch) from an 8-bit image, each value multiplied by `scale`
/// (1 keeps 0..255; 1/255 maps white to 1).
Tensor image_to_tensor(const cv::Mat& image, float scale = 1.0f);
/// 8-bit image from a C×H×W tensor (values divided by `scale`, rounded, clamped to 0..255).
cv::Mat tensor_to_image(const Tensor& chw, float scale = 1.0f);

}  // namespace lab
