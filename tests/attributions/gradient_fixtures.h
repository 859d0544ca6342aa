// Models, images and scores shared by the gradient-method tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attributions/method.h"
#include "lab/core/options.h"
#include "lab/nn/network.h"
#include "networks/multi_color_sum.h"
#include "networks/palette.h"

namespace fixtures {

/// Flatten → Linear(C·H·W → K) with dyadic weights w[k][j] = ((3k + 5j) mod 17 − 8) / 8 and bias
/// b[k] = k/4, no softmax: ∂f_k/∂x = w[k] exactly.
inline lab::Network linear_model(int64_t channels, int64_t size, int64_t outputs) {
  const int64_t in = channels * size * size;
  lab::Tensor w({outputs, in}), b({outputs});
  for (int64_t k = 0; k < outputs; ++k) {
    for (int64_t j = 0; j < in; ++j) w[k * in + j] = static_cast<float>((3 * k + 5 * j) % 17 - 8) / 8.0f;
    b[k] = static_cast<float>(k) / 4.0f;
  }
  lab::Network net({channels, size, size});
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("linear", std::make_shared<lab::Linear>(w, b));
  return net;
}

/// Inputs with values uniform in [lo, hi), seeded.
inline lab::Tensor uniform_inputs(lab::Shape shape, unsigned seed, float lo = 0.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  lab::Tensor t(std::move(shape));
  for (float& v : t.values()) v = u(rng);
  return t;
}

/// N in-distribution multi-color-sum images (network units): every pixel is the background
/// (20, 20, 20) or one of the first `colors` palette colours, drawn with the given weights
/// (background weight 2, each colour weight 1), seeded.
inline lab::Tensor colour_images(int64_t n, int64_t size, int64_t colors, unsigned seed) {
  const auto palette = networks::palette();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, colors + 1);
  lab::Tensor x({n, 3, size, size});
  for (int64_t s = 0; s < n; ++s)
    for (int64_t h = 0; h < size; ++h)
      for (int64_t w = 0; w < size; ++w) {
        const int64_t c = pick(rng) - 2;
        const float rgb[3] = {c < 0 ? 20.0f : static_cast<float>(palette[static_cast<size_t>(c)].r),
                              c < 0 ? 20.0f : static_cast<float>(palette[static_cast<size_t>(c)].g),
                              c < 0 ? 20.0f : static_cast<float>(palette[static_cast<size_t>(c)].b)};
        for (int64_t k = 0; k < 3; ++k) x.at(s, k, h, w) = rgb[k];
      }
  return x;
}

/// The class of a colour image (first `colors` palette colours): the colour with most pixels.
inline int64_t dominant_colour(const lab::Tensor& x, int64_t s, int64_t colors) {
  const auto palette = networks::palette();
  std::vector<int64_t> counts(static_cast<size_t>(colors), 0);
  for (int64_t h = 0; h < x.dim(2); ++h)
    for (int64_t w = 0; w < x.dim(3); ++w)
      for (int64_t c = 0; c < colors; ++c) {
        const auto& p = palette[static_cast<size_t>(c)];
        if (x.at(s, 0, h, w) == p.r && x.at(s, 1, h, w) == p.g && x.at(s, 2, h, w) == p.b) ++counts[static_cast<size_t>(c)];
      }
  return std::max_element(counts.begin(), counts.end()) - counts.begin();
}

/// The same network with every bias set to zero (layers otherwise shared or copied).
inline lab::Network zero_biases(const lab::Network& net) {
  lab::Network out(net.input_shape());
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::Layer& layer = net.layer(i);
    if (layer.kind() == lab::LayerKind::kConv2d) {
      const auto& conv = static_cast<const lab::Conv2d&>(layer);
      const lab::Tensor& w = conv.weights().weight;
      out.add(net.name(i), std::make_shared<lab::Conv2d>(conv.params(), w, lab::Tensor({w.dim(0)}, 0.0f)));
    } else if (layer.kind() == lab::LayerKind::kLinear) {
      const auto& lin = static_cast<const lab::Linear&>(layer);
      const lab::Tensor& w = lin.weights().weight;
      out.add(net.name(i), std::make_shared<lab::Linear>(w, lab::Tensor({w.dim(0)}, 0.0f)));
    } else if (layer.kind() == lab::LayerKind::kReLU) {
      out.add(net.name(i), std::make_shared<lab::ReLU>());
    } else if (layer.kind() == lab::LayerKind::kSoftmax) {
      out.add(net.name(i), std::make_shared<lab::Softmax>());
    } else {
      out.add(net.name(i), std::make_shared<lab::Flatten>());
    }
  }
  return out;
}

/// Layers [begin, end) of `net` as a network of their own (layers shared; `net` may go away).
inline lab::Network layer_range(const lab::Network& net, size_t begin, size_t end) {
  auto owner = std::make_shared<const lab::Network>(net);
  lab::Shape in = begin == 0 ? lab::Shape{} : net.shape_after(begin - 1, 1);
  if (begin == 0) {
    in = {1};
    in.insert(in.end(), net.input_shape().begin(), net.input_shape().end());
  }
  lab::Network out(lab::Shape(in.begin() + 1, in.end()));
  for (size_t i = begin; i < end; ++i) out.add(owner->name(i), std::shared_ptr<const lab::Layer>(owner, &owner->layer(i)));
  return out;
}

/// The paper's eq. 17 normalisation (positive part by its max, negative part by |min|), then the
/// overall precision Σ|t(a)·g| / Σ|t(a)| against the unsigned ground truth |g| (Section 4).
inline double overall_precision(const float* attr, const float* gt, int64_t n) {
  double a_max = 0, a_min = 0;
  for (int64_t i = 0; i < n; ++i) {
    a_max = std::max<double>(a_max, attr[i]);
    a_min = std::min<double>(a_min, attr[i]);
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = attr[i];
    const double t = a >= 0 ? (a_max > 0 ? a / a_max : 0.0) : a / -a_min;
    num += std::abs(t * std::abs(static_cast<double>(gt[i])));
    den += std::abs(t);
  }
  return den > 0 ? num / den : 0.0;
}

/// `-p` options from "key=value" items.
inline lab::Options params(const std::vector<std::string>& items) { return lab::Options::parse(items, "-p"); }

/// Σ of one sample of a tensor, in double.
inline double sample_sum(const lab::Tensor& t, int64_t s) {
  double sum = 0;
  for (int64_t j = 0; j < t.sample_numel(); ++j) sum += t.sample(s)[j];
  return sum;
}

}  // namespace fixtures
