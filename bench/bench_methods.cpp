// Gradient and propagation methods on 224×224 multi-color-sum images: time per image of each
// method (batched), next to the time of one forward+backward per image of the same model measured
// in the same run, i.e. how many forward+backward passes each method costs in practice, and that
// cost as a ratio to the method's theoretical count of passes (its network evaluations / 2: a
// forward+backward is 2 evaluations, a forward alone 1). Target: ratio ≤ 1.2 for every method.
//
// Usage: bench_methods [--images N] [--chunk C] [--quick]
//   --images N  images per batch (default 4)
//   --chunk C   inputs per network call (default 20; images × steps should be a multiple of it,
//               so that every timed network call has a shape prepared by the warm-up)
//   --quick     IG with 10 steps and SmoothGrad with 10 samples (ratios are unchanged)
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

/// Median seconds of `work` over `runs` runs (no warm-up here).
double median_seconds(const std::function<void()>& work, int runs) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    work();
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Entry {
  std::string name;
  std::vector<std::string> params;  ///< the measured settings
  std::vector<std::string> warmup;  ///< cheaper settings with the same network-call shapes
};

lab::Options options_of(const std::vector<std::string>& items) { return lab::Options::parse(items, "-p"); }

}  // namespace

int main(int argc, char** argv) try {
  int64_t images = 4, chunk = 20;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--images") == 0 && i + 1 < argc) {
      images = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--chunk") == 0 && i + 1 < argc) {
      chunk = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      fmt::print(stderr, "usage: bench_methods [--images N] [--chunk C] [--quick]\n");
      return 1;
    }
  }
  if (images < 1 || chunk < 1) lab::fail_parameter("--images and --chunk must be at least 1");
  lab::Options env_options("-o");
  env_options.set("size", "224");
  const auto env = datasets::make_environment("multi-color-sum", env_options);
  const lab::Network net = env->build_network();
  attributions::Context context;
  context.net = &net;
  context.background = env->background();
  context.layers = env->default_layers();
  context.chunk = chunk;
  attributions::Batch batch;
  std::vector<lab::Tensor> xs;
  for (int64_t i = 0; i < images; ++i) {
    const datasets::Sample s = env->generate(1, i);
    xs.push_back(env->to_input(s.image));
    batch.target.push_back(env->target_output(s.label));
    batch.seeds.push_back(static_cast<uint64_t>(i));
  }
  batch.x = lab::Tensor::stack(xs);

  // One forward+backward of output[target] per image, batched at the chunk size.
  std::vector<lab::Tensor> chunk_inputs;
  for (int64_t i = 0; i < chunk; ++i) chunk_inputs.push_back(xs[static_cast<size_t>(i % images)]);
  const lab::Tensor chunk_x = lab::Tensor::stack(chunk_inputs);
  auto pass = [&] {
    const lab::Trace t = net.trace(chunk_x);
    lab::Tensor seed(t.output().shape(), 0.0f);
    for (int64_t n = 0; n < chunk; ++n) seed[n * seed.sample_numel()] = 1.0f;
    (void)net.gradient(t, seed);
  };
  pass();
  const double t_pass = median_seconds(pass, 5) / static_cast<double>(chunk);

  const std::string steps = quick ? "10" : "50";
  const std::string samples = quick ? "10" : "50";
  const std::vector<Entry> entries = {
      {"saliency", {}, {}},
      {"input-x-gradient", {}, {}},
      {"integrated-gradients", {"steps=" + steps}, {"steps=5"}},
      {"integrated-gradients", {"steps=" + steps, "baseline=background"}, {"steps=5", "baseline=background"}},
      {"smoothgrad", {"samples=" + samples}, {"samples=5"}},
      {"guided-backprop", {}, {}},
      {"deconvnet", {}, {}},
      {"lrp", {}, {}},
      {"lrp", {"composite=lrp-epsilon-plus"}, {"composite=lrp-epsilon-plus"}},
      {"deeplift", {}, {}},
      {"deepshap", {}, {}},
      {"gradcam", {}, {}},
      {"gradcam++", {}, {}},
      {"random", {}, {}},
      {"constant", {}, {}},
  };

  fmt::print("multi-color-sum 224x224, {} image(s) per batch, chunk {}, {} thread(s){}\n", images, chunk,
             lab::Runtime::get().threads(), quick ? ", quick settings" : "");
  fmt::print("one forward+backward: {:.4f} s per image (batched, median of 5)\n\n", t_pass);
  fmt::print("{:<44} {:>10} {:>12} {:>12} {:>8}\n", "method", "s/image", "passes", "theoretical", "ratio");
  double worst = 0;
  for (const Entry& e : entries) {
    lab::Options warm = options_of(e.warmup);
    (void)attributions::make_method(e.name, warm)->attribute(context, batch);
    lab::Options p = options_of(e.params);
    const auto method = attributions::make_method(e.name, p);
    attributions::Result r;
    const bool long_run = e.name == "integrated-gradients" || e.name == "smoothgrad";
    const double t = median_seconds([&] { r = method->attribute(context, batch); }, long_run ? 1 : 3) /
                     static_cast<double>(images);
    const double passes = t / t_pass;
    const double theoretical = static_cast<double>(r.evaluations) / 2.0 / static_cast<double>(images);
    std::string label = e.name;
    for (const auto& item : e.params) label += " " + item;
    std::string ratio = "-";
    if (theoretical > 0) {
      worst = std::max(worst, passes / theoretical);
      ratio = fmt::format("{:.2f}", passes / theoretical);
    }
    fmt::print("{:<44} {:>10.4f} {:>12.2f} {:>12.2f} {:>8}\n", label, t, passes, theoretical, ratio);
    std::fflush(stdout);
  }
  fmt::print("\nlargest ratio of measured to theoretical passes: {:.2f} (target ≤ 1.2)\n", worst);
  return 0;
} catch (const lab::Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
