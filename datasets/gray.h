/// @file gray.h
/// @brief What the gray environments (single-color-modulo, the trap zoo) share: the image check,
/// the network input (pixel value / 255) and the label (the one output, rounded).
/// Tested through both environments in test_environments.cpp and test_traps.cpp.
#pragma once

#include <cmath>
#include <cstdint>

#include <opencv2/core.hpp>

#include "lab/core/tensor.h"

namespace datasets {

/// Throws lab::Error unless `image` is size×size with one 8-bit channel.
void check_gray_image(const cv::Mat& image, int64_t size);
/// The network input of a gray image: 1×size×size, pixel value / 255 (checked as above).
lab::Tensor gray_input(const cv::Mat& image, int64_t size);
/// A gray environment's label: its one output rounded to the nearest integer.
inline int64_t rounded_label(const float* output_row) { return static_cast<int64_t>(std::lround(output_row[0])); }

}  // namespace datasets
