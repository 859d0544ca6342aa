// Perturbation, surrogate and optimisation methods on 224×224 multi-color-sum images: time per
// image, network evaluations per image, and the evaluation rate (evaluations per second) of each
// method as a ratio to the model's batched forward rate measured in the same run (and, for the
// methods that run forward+backward, to the forward+backward rate, where a forward+backward
// counts as 2 evaluations). A ratio near 1 means the method spends its time in the network.
// IBA's evaluations run only the layers after its bottleneck, so its ratio can exceed 1.
//
// Usage: bench_perturbation [--images N] [--quick]
//   --images N  images per batch (default 2)
//   --quick     fewer samples/iterations per method (rates are unchanged; times shrink)
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "attributions/common.h"
#include "attributions/method.h"
#include "datasets/environment.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Median seconds of `work` over at least `runs` runs and `min_seconds`, after one warm-up.
double median_seconds(const std::function<void()>& work, int runs, double min_seconds) {
  work();
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < runs || seconds_since(start) < min_seconds) {
    const auto t0 = Clock::now();
    work();
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Entry {
  std::string name;
  std::vector<std::pair<std::string, std::string>> params, quick;
  bool backward = false;
};

}  // namespace

int main(int argc, char** argv) try {
  int64_t images = 2;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--images") == 0 && i + 1 < argc) {
      images = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      fmt::print(stderr, "usage: bench_perturbation [--images N] [--quick]\n");
      return 1;
    }
  }
  lab::Options env_options("-o");
  env_options.set("size", "224");
  const auto env = datasets::make_environment("multi-color-sum", env_options);
  const lab::Network net = env->build_network();
  attributions::Context context;
  context.net = &net;
  context.background = env->background();
  context.layers = env->default_layers();
  context.chunk = 32;
  attributions::Batch batch;
  std::vector<lab::Tensor> xs, refs;
  for (int64_t i = 0; i < images; ++i) {
    const datasets::Sample s = env->generate(1, i);
    xs.push_back(env->to_input(s.image));
    batch.target.push_back(env->target_output(s.label));
    batch.seeds.push_back(static_cast<uint64_t>(i));
    cv::Mat seg;
    s.patches.convertTo(seg, CV_32S);
    batch.segments.push_back(seg);
  }
  batch.x = lab::Tensor::stack(xs);
  for (int64_t i = 0; i < 64; ++i) refs.push_back(env->to_input(env->generate(2, i).image));
  context.reference_inputs = lab::Tensor::stack(refs);

  // The model's batched rates, with inputs of the chunk size.
  std::vector<lab::Tensor> chunk_inputs;
  for (int64_t i = 0; i < context.chunk; ++i) chunk_inputs.push_back(xs[static_cast<size_t>(i % images)]);
  const lab::Tensor chunk = lab::Tensor::stack(chunk_inputs);
  const double t_forward = median_seconds([&] { (void)net.forward(chunk); }, 3, 2.0);
  const double forward_rate = static_cast<double>(context.chunk) / t_forward;
  const double t_backprop = median_seconds(
      [&] {
        const lab::Trace t = net.trace(chunk);
        lab::Tensor seed(t.output().shape(), 0.0f);
        for (int64_t n = 0; n < context.chunk; ++n) seed[n * seed.sample_numel()] = 1.0f;
        (void)net.gradient(t, seed);
      },
      3, 2.0);
  const double backprop_rate = 2.0 * static_cast<double>(context.chunk) / t_backprop;
  fmt::print("multi-color-sum 224x224, {} image(s) per batch, chunk {}, {} thread(s){}\n", images, context.chunk,
             lab::Runtime::get().threads(), quick ? ", quick settings" : "");
  fmt::print("model: batched forward {:.1f} evaluations/s; forward+backward {:.1f} evaluations/s (2 per pass)\n\n",
             forward_rate, backprop_rate);
  std::fflush(stdout);

  const std::vector<Entry> entries = {
      {"occlusion", {}, {{"strides", "3,12,12"}}, false},
      {"lime", {}, {{"samples", "100"}}, false},
      {"lime", {{"segmentation", "oracle"}}, {{"segmentation", "oracle"}, {"samples", "100"}}, false},
      {"kernelshap", {}, {{"samples", "100"}}, false},
      {"rise", {}, {{"masks", "200"}}, false},
      {"extremal-perturbation", {}, {{"iterations", "20"}}, true},
      {"iba", {}, {{"iterations", "4"}}, true},
  };
  fmt::print("{:<34} {:>12} {:>12} {:>12} {:>10} {:>10}\n", "method", "s/image", "evals/image", "evals/s",
             "÷forward", "÷fwd+bwd");
  for (const Entry& e : entries) {
    lab::Options p("-p");
    for (const auto& [k, v] : quick ? e.quick : e.params) p.set(k, v);
    std::string label = e.name;
    for (const auto& [k, v] : quick ? e.quick : e.params) label += " " + k + "=" + v;
    const auto method = attributions::make_method(e.name, p);
    const auto t0 = Clock::now();
    const attributions::Result r = method->attribute(context, batch);
    const double t = seconds_since(t0);
    const double rate = static_cast<double>(r.evaluations) / t;
    fmt::print("{:<34} {:>12.3f} {:>12} {:>12.1f} {:>10.2f} {:>10}\n", label, t / static_cast<double>(images),
               r.evaluations / images, rate, rate / forward_rate,
               e.backward ? fmt::format("{:.2f}", rate / backprop_rate) : std::string("-"));
    std::fflush(stdout);
  }
  return 0;
} catch (const lab::Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
