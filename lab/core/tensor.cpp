#include "lab/core/tensor.h"

#include <algorithm>
#include <cmath>

#include "lab/core/error.h"

namespace lab {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Tensor::Tensor(Shape shape, float fill) : shape_(std::move(shape)) {
  for (int64_t d : shape_) LAB_CHECK(d >= 0, "negative dimension in {}", to_string(shape_));
  values_.assign(static_cast<size_t>(lab::numel(shape_)), fill);
}

Tensor::Tensor(Shape shape, std::vector<float> values) : shape_(std::move(shape)), values_(std::move(values)) {
  LAB_CHECK(lab::numel(shape_) == static_cast<int64_t>(values_.size()), "shape {} holds {} values, got {}",
            to_string(shape_), lab::numel(shape_), values_.size());
}

int64_t Tensor::sample_numel() const {
  LAB_CHECK(!shape_.empty() && shape_[0] > 0, "sample_numel of a tensor without batch: {}", to_string(shape_));
  return numel() / shape_[0];
}

void Tensor::reshape(Shape shape) {
  LAB_CHECK(lab::numel(shape) == numel(), "cannot reshape {} to {}", to_string(shape_), to_string(shape));
  shape_ = std::move(shape);
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  t.reshape(std::move(shape));
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  LAB_CHECK(0 <= begin && begin <= end && end <= batch(), "slice [{}, {}) of batch {}", begin, end, batch());
  Shape s = shape_;
  s[0] = end - begin;
  const int64_t k = shape_[0] ? sample_numel() : 0;
  return Tensor(std::move(s), std::vector<float>(values_.begin() + begin * k, values_.begin() + end * k));
}

Tensor Tensor::concat(const std::vector<Tensor>& parts) {
  LAB_CHECK(!parts.empty(), "concat of nothing");
  Shape s = parts[0].shape();
  int64_t n = 0;
  for (const Tensor& p : parts) {
    LAB_CHECK(p.sample_shape() == parts[0].sample_shape(), "concat of {} and {}", to_string(p.shape()),
              to_string(parts[0].shape()));
    n += p.batch();
  }
  s[0] = n;
  std::vector<float> v;
  v.reserve(static_cast<size_t>(lab::numel(s)));
  for (const Tensor& p : parts) v.insert(v.end(), p.values().begin(), p.values().end());
  return Tensor(std::move(s), std::move(v));
}

Tensor Tensor::stack(const std::vector<Tensor>& samples) {
  LAB_CHECK(!samples.empty(), "stack of nothing");
  Shape s = samples[0].shape();
  s.insert(s.begin(), static_cast<int64_t>(samples.size()));
  std::vector<float> v;
  v.reserve(static_cast<size_t>(lab::numel(s)));
  for (const Tensor& t : samples) {
    LAB_CHECK(t.shape() == samples[0].shape(), "stack of {} and {}", to_string(t.shape()),
              to_string(samples[0].shape()));
    v.insert(v.end(), t.values().begin(), t.values().end());
  }
  return Tensor(std::move(s), std::move(v));
}

void Tensor::fill(float value) { std::fill(values_.begin(), values_.end(), value); }

bool Tensor::all_finite() const {
  return std::all_of(values_.begin(), values_.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace lab
