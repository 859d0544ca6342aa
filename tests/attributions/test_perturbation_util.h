// Shared fixtures of the perturbation-method tests: small linear and random networks, easy
// multi-color-sum samples from the datasets generator, the ground-truth recall of the paper
// (Section 4, eq. 17), and the chunk-size / thread-count invariance check.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attributions/common.h"
#include "attributions/method.h"
#include "datasets/environment.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"
#include "lab/nn/layers.h"
#include "lab/nn/network.h"
#include "networks/palette.h"

namespace ptest {

inline std::vector<float> random_values(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

/// f(x) = W·flatten(x) + bias on C×H×W inputs: `outputs` rows of weights.
inline lab::Network linear_network(const lab::Shape& sample_shape, const std::vector<float>& weights,
                                   const std::vector<float>& bias) {
  const int64_t in = lab::numel(sample_shape);
  const int64_t out = static_cast<int64_t>(bias.size());
  REQUIRE(static_cast<int64_t>(weights.size()) == in * out);
  lab::Network net(sample_shape);
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("linear", std::make_shared<lab::Linear>(lab::Tensor({out, in}, weights), lab::Tensor({out}, bias)));
  return net;
}

/// A small nonlinear network (conv, ReLU, flatten, linear, ReLU, linear, softmax optional).
inline lab::Network random_convnet(const lab::Shape& sample_shape, int64_t classes, uint32_t seed, bool softmax) {
  std::mt19937 rng(seed);
  const int64_t c = sample_shape[0], h = sample_shape[1], w = sample_shape[2];
  lab::Network net(sample_shape);
  lab::Conv2dParams cp{.in_channels = c, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1};
  net.add("features.0", std::make_shared<lab::Conv2d>(cp, lab::Tensor({4, c, 3, 3}, random_values(36 * c, rng, -0.5f, 0.5f)),
                                                      lab::Tensor({4}, random_values(4, rng, -0.1f, 0.1f))));
  net.add("features.1", std::make_shared<lab::ReLU>());
  net.add("flatten", std::make_shared<lab::Flatten>());
  const int64_t in = 4 * h * w;
  net.add("head.0", std::make_shared<lab::Linear>(lab::Tensor({16, in}, random_values(16 * in, rng, -0.2f, 0.2f)),
                                                  lab::Tensor({16}, random_values(16, rng, -0.1f, 0.3f))));
  net.add("head.1", std::make_shared<lab::ReLU>());
  net.add("head.2", std::make_shared<lab::Linear>(lab::Tensor({classes, 16}, random_values(16 * classes, rng, -0.5f, 0.5f)),
                                                  lab::Tensor({classes}, random_values(classes, rng, -0.1f, 0.1f))));
  if (softmax) net.add("softmax", std::make_shared<lab::Softmax>());
  return net;
}

/// A multi-color-sum environment of side `size` and a batch of its samples, with targets = the
/// labels, seeds = the indices, designed patches as CV_32S segments.
struct EnvBatch {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  attributions::Context context;
  attributions::Batch batch;
  std::vector<datasets::Sample> samples;
};

/// With `solid`, every patch region of a multi-color-sum sample is painted in its colour (no
/// Bernoulli holes): the "easy images" of the optimisation tests, whose label is the largest
/// region (samples with tied regions are skipped by the caller's choice of indices).
inline EnvBatch env_batch(const std::string& name, int64_t size, const std::vector<int64_t>& indices,
                          uint64_t seed = 1, const std::vector<std::pair<std::string, std::string>>& options = {},
                          bool solid = false) {
  EnvBatch e;
  lab::Options o("-o");
  o.set("size", std::to_string(size));
  for (const auto& [k, v] : options) o.set(k, v);
  e.env = datasets::make_environment(name, o);
  e.net = e.env->build_network();
  e.context.net = &e.net;
  e.context.background = e.env->background();
  e.context.layers = e.env->default_layers();
  std::vector<lab::Tensor> xs;
  for (int64_t i : indices) {
    datasets::Sample s = e.env->generate(seed, i);
    if (solid) {
      std::vector<int64_t> area(static_cast<size_t>(e.env->num_patches()), 0);
      for (int y = 0; y < s.image.rows; ++y)
        for (int x = 0; x < s.image.cols; ++x) {
          const int k = s.patches.at<uint8_t>(y, x);
          if (k == 0) continue;
          const networks::Rgb c = networks::palette()[static_cast<size_t>(e.env->patch_class(k))];
          s.image.at<cv::Vec3b>(y, x) = cv::Vec3b(c.r, c.g, c.b);
          ++area[static_cast<size_t>(e.env->patch_class(k))];
        }
      s.label = std::max_element(area.begin(), area.end()) - area.begin();
      REQUIRE(std::count(area.begin(), area.end(), area[static_cast<size_t>(s.label)]) == 1);
      s.gt = e.env->ground_truth(s.image, s.label);
      s.gt_smooth = e.env->smooth_ground_truth(s.patches, s.label);
    }
    xs.push_back(e.env->to_input(s.image));
    e.batch.target.push_back(e.env->target_output(s.label));
    e.batch.seeds.push_back(static_cast<uint64_t>(i));
    cv::Mat seg;
    s.patches.convertTo(seg, CV_32S);
    e.batch.segments.push_back(seg);
    e.samples.push_back(std::move(s));
  }
  e.batch.x = lab::Tensor::stack(xs);
  return e;
}

/// Reference inputs: `count` samples of the environment drawn with another seed.
inline lab::Tensor reference_inputs(const datasets::Environment& env, int64_t count, uint64_t seed = 99) {
  std::vector<lab::Tensor> xs;
  for (int64_t i = 0; i < count; ++i) xs.push_back(env.to_input(env.generate(seed, i).image));
  return lab::Tensor::stack(xs);
}

/// Soft recall of the paper (Section 4) of a map (H×W) on positive ground truth g ∈ {0, 1}:
/// the positive part normalised by its maximum (eq. 17), Σ a·g / Σ g.
inline double positive_recall(const float* map, const float* gt, int64_t pixels) {
  const float top = *std::max_element(map, map + pixels);
  double hit = 0, total = 0;
  for (int64_t i = 0; i < pixels; ++i) {
    const double g = gt[i] > 0 ? 1.0 : 0.0;
    const double a = top > 0 ? std::max(map[i], 0.0f) / top : 0.0;
    hit += a * g;
    total += g;
  }
  return total > 0 ? hit / total : 0.0;
}

inline std::unique_ptr<attributions::Method> make(const std::string& name,
                                                   const std::vector<std::pair<std::string, std::string>>& params) {
  lab::Options p("-p");
  for (const auto& [k, v] : params) p.set(k, v);
  return attributions::make_method(name, p);
}

/// Runs a method made by `make` with 1 thread and chunk = chunks[0], then with 2 threads and the
/// other chunks (a fresh method each time): the maps must be byte-identical across threads and
/// equal within `tolerance` (absolute, relative to the largest |value|) across chunk sizes.
inline void check_invariance(const std::function<std::unique_ptr<attributions::Method>()>& make,
                             attributions::Context context, const attributions::Batch& batch,
                             const std::vector<int64_t>& chunks, double tolerance = 0.0) {
  lab::Runtime& rt = lab::Runtime::get();
  const int before = rt.threads();
  rt.set_threads(1);
  context.batch = chunks.front();
  const attributions::Result one = make()->attribute(context, batch);
  rt.set_threads(2);
  const attributions::Result two = make()->attribute(context, batch);
  CHECK(one.evaluations == two.evaluations);
  REQUIRE(one.attr.shape() == two.attr.shape());
  CHECK(std::memcmp(one.attr.data(), two.attr.data(), sizeof(float) * static_cast<size_t>(one.attr.numel())) == 0);
  float scale = 0;
  for (float v : one.attr.values()) scale = std::max(scale, std::abs(v));
  for (size_t k = 1; k < chunks.size(); ++k) {
    CAPTURE(chunks[k]);
    context.batch = chunks[k];
    const attributions::Result other = make()->attribute(context, batch);
    CHECK(other.evaluations == one.evaluations);
    REQUIRE(other.attr.shape() == one.attr.shape());
    double worst = 0;
    for (int64_t i = 0; i < one.attr.numel(); ++i) worst = std::max(worst, double(std::abs(other.attr[i] - one.attr[i])));
    CHECK(worst <= tolerance * scale);
  }
  rt.set_threads(before);
}

}  // namespace ptest
