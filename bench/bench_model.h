// What the benchmarks share: the multi-color-sum model at 224×224 with the context a method
// needs, a batch of its generated images with their designed targets, and the median CPU and
// wall seconds of repeated work.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "attributions/method.h"
#include "datasets/environment.h"
#include "lab/core/options.h"
#include "lab/core/tensor.h"

namespace bench {

/// CPU seconds of the process, every thread (CLOCK_PROCESS_CPUTIME_ID).
inline double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double cpu = 0;   ///< CPU seconds of the process (every thread)
  double wall = 0;  ///< wall-clock seconds
};

/// Median CPU and wall seconds of `work`, run once and then again while `more(runs so far,
/// wall seconds since the first run started)` holds (no warm-up here).
inline Timing median_time(const std::function<void()>& work, const std::function<bool(size_t, double)>& more) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> cpu, wall;
  const auto start = Clock::now();
  do {
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    work();
    wall.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    cpu.push_back(cpu_seconds() - c0);
  } while (more(wall.size(), std::chrono::duration<double>(Clock::now() - start).count()));
  std::sort(cpu.begin(), cpu.end());
  std::sort(wall.begin(), wall.end());
  return {cpu[cpu.size() / 2], wall[wall.size() / 2]};
}

/// Median CPU and wall seconds of `work` over `runs` runs (no warm-up here).
inline Timing median_time(const std::function<void()>& work, int runs) {
  return median_time(work, [runs](size_t n, double) { return n < static_cast<size_t>(runs); });
}

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
