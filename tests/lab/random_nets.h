// Small random networks and reference implementations shared by the runtime tests.
#pragma once

#include <memory>
#include <random>

#include "lab/nn/network.h"

namespace testnets {

inline lab::Tensor random_tensor(lab::Shape shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  lab::Tensor t(std::move(shape));
  std::uniform_real_distribution<float> u(lo, hi);
  for (float& v : t.values()) v = u(rng);
  return t;
}

inline std::shared_ptr<lab::Conv2d> random_conv(lab::Conv2dParams p, std::mt19937& rng, bool bias = true) {
  lab::Tensor w = random_tensor({p.out_channels, p.in_channels / p.groups, p.kernel_h, p.kernel_w}, rng);
  lab::Tensor b = bias ? random_tensor({p.out_channels}, rng, -0.1f, 0.1f) : lab::Tensor();
  return std::make_shared<lab::Conv2d>(p, std::move(w), std::move(b));
}

inline std::shared_ptr<lab::Linear> random_linear(int64_t in, int64_t out, std::mt19937& rng, bool bias = true) {
  return std::make_shared<lab::Linear>(random_tensor({out, in}, rng),
                                       bias ? random_tensor({out}, rng, -0.1f, 0.1f) : lab::Tensor());
}

/// conv(2→4, k3 s1 p1) → relu → conv(4→4, k2 s2, groups 2) → relu → flatten → linear(4·4·4→16) → relu → linear(16→3)
/// [→ softmax], input 2×8×8.
inline lab::Network random_convnet(unsigned seed, bool bias = true, bool softmax = false) {
  std::mt19937 rng(seed);
  lab::Network net({2, 8, 8});
  net.add("features.0", random_conv({.in_channels = 2, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng, bias));
  net.add("features.1", std::make_shared<lab::ReLU>());
  net.add("features.2", random_conv({.in_channels = 4, .out_channels = 4, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .groups = 2}, rng, bias));
  net.add("features.3", std::make_shared<lab::ReLU>());
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("head.0", random_linear(64, 16, rng, bias));
  net.add("head.1", std::make_shared<lab::ReLU>());
  net.add("head.2", random_linear(16, 3, rng, bias));
  if (softmax) net.add("softmax", std::make_shared<lab::Softmax>());
  return net;
}

/// Dense matrix (out × in, row-major, double) of an affine layer's linear part for one sample of `in_shape`.
inline std::vector<double> dense_matrix(const lab::AffineLayer& layer, const lab::Weights& w, const lab::Shape& in_shape,
                                        int64_t& rows, int64_t& cols) {
  cols = lab::numel(in_shape) / in_shape[0];
  lab::Shape one = in_shape;
  one[0] = cols;  // a batch of unit vectors
  lab::Tensor basis(one, 0.0f);
  for (int64_t j = 0; j < cols; ++j) basis[j * cols + j] = 1.0f;
  lab::Tensor out = layer.apply(w, basis, false);
  rows = out.sample_numel();
  std::vector<double> m(static_cast<size_t>(rows * cols));
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) m[static_cast<size_t>(i * cols + j)] = out[j * rows + i];
  return m;
}

}  // namespace testnets
