#include "datasets/gray.h"

#include "lab/core/error.h"

namespace datasets {

void check_gray_image(const cv::Mat& image, int64_t size) {
  if (image.type() != CV_8UC1 || image.rows != size || image.cols != size)
    lab::fail("image is {}x{} with {} channel(s) of {} bits; expected {}x{} gray (1 channel of 8 bits)", image.cols,
              image.rows, image.channels(), image.elemSize1() * 8, size, size);
}

lab::Tensor gray_input(const cv::Mat& image, int64_t size) {
  check_gray_image(image, size);
  lab::Tensor x({1, size, size});
  for (int y = 0; y < image.rows; ++y)
    for (int xx = 0; xx < image.cols; ++xx)
      x[static_cast<int64_t>(y) * image.cols + xx] = static_cast<float>(image.at<uint8_t>(y, xx)) / 255.0f;
  return x;
}

}  // namespace datasets
