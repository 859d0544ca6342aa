// What the benchmarks share: the multi-color-sum model at 224×224 with the context a method
// needs, and a batch of its generated images with their designed targets.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "attributions/method.h"
#include "datasets/environment.h"
#include "lab/core/options.h"
#include "lab/core/tensor.h"

namespace bench {

struct Model {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  attributions::Context context;  ///< points at `net`: a Model is built in place, never copied

  /// The model (`size`×`size` images), its background and default layers, `max_batch` inputs per
  /// network call.
  explicit Model(int64_t max_batch, int64_t size = 224) {
    lab::Options options("-o");
    options.set("size", std::to_string(size));
    env = datasets::make_environment("multi-color-sum", options);
    net = env->build_network();
    context.net = &net;
    context.background = env->background();
    context.layers = env->default_layers();
    context.batch = max_batch;
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// Images 0..count−1 of data seed 1 with their designed targets, seeds 0..count−1 and the
  /// designed patches as segments; `inputs` receives each image's network input.
  attributions::Batch batch(int64_t count, std::vector<lab::Tensor>& inputs) const {
    attributions::Batch b;
    for (int64_t i = 0; i < count; ++i) {
      const datasets::Sample s = env->generate(1, i);
      inputs.push_back(env->to_input(s.image));
      b.target.push_back(env->target_output(s.label));
      b.seeds.push_back(static_cast<uint64_t>(i));
      cv::Mat segments;
      s.patches.convertTo(segments, CV_32S);
      b.segments.push_back(segments);
    }
    b.x = lab::Tensor::stack(inputs);
    return b;
  }
};

}  // namespace bench
