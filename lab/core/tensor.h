/// @file tensor.h
/// @brief A dense float32 tensor in row-major (C) order; images and activations are NCHW.
///
/// Plain data: a shape and a contiguous vector of floats. Dimension 0 is the batch for
/// activations (N×C×H×W or N×K). No views, no strides: slicing copies. Tested in test_tensor.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lab {

using Shape = std::vector<int64_t>;

/// Number of elements of a shape (1 for the empty shape).
int64_t numel(const Shape& shape);
/// "[2, 3, 32, 32]".
std::string to_string(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  /// A tensor of `shape` filled with `fill`.
  explicit Tensor(Shape shape, float fill = 0.0f);
  /// A tensor of `shape` holding `values` (size must match).
  Tensor(Shape shape, std::vector<float> values);

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i < 0 ? i + rank() : i)); }
  int64_t numel() const { return static_cast<int64_t>(values_.size()); }
  bool empty() const { return values_.empty(); }

  /// Dimension 0 (the batch of an activation).
  int64_t batch() const { return dim(0); }
  /// Elements per batch entry: numel() / batch().
  int64_t sample_numel() const;
  /// Shape without dimension 0.
  Shape sample_shape() const { return Shape(shape_.begin() + 1, shape_.end()); }

  float* data() { return values_.data(); }
  const float* data() const { return values_.data(); }
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }
  float& operator[](int64_t i) { return values_[static_cast<size_t>(i)]; }
  float operator[](int64_t i) const { return values_[static_cast<size_t>(i)]; }

  /// Element (n, c, h, w) of a rank-4 tensor.
  float& at(int64_t n, int64_t c, int64_t h, int64_t w) {
    return values_[static_cast<size_t>(((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w)];
  }
  float at(int64_t n, int64_t c, int64_t h, int64_t w) const {
    return values_[static_cast<size_t>(((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w)];
  }

  /// Same values, new shape of equal numel.
  void reshape(Shape shape);
  Tensor reshaped(Shape shape) const;

  /// Copy of batch entries [begin, end).
  Tensor slice(int64_t begin, int64_t end) const;
  /// Pointer to batch entry n.
  float* sample(int64_t n) { return data() + n * sample_numel(); }
  const float* sample(int64_t n) const { return data() + n * sample_numel(); }

  /// Concatenation along dimension 0; all parts must share the sample shape.
  static Tensor concat(const std::vector<Tensor>& parts);
  /// Stack of equally shaped samples into a new leading dimension.
  static Tensor stack(const std::vector<Tensor>& samples);

  void fill(float value);
  bool all_finite() const;

 private:
  Shape shape_;
  std::vector<float> values_;
};

}  // namespace lab
