// attrlab's side of bench/bench_torch.py: forward and forward+gradient of an environment's network
// (the network `attrlab export` writes) on batches of 1, 16 and 64 images, median seconds, printed
// as one JSON object. bench_torch.py times the same exported network in PyTorch and prints ratios.
//
//   bench_export [--env NAME] [-o key=value ...] [--threads T]   (--help lists the options)
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_cli.h"
#include "datasets/environment.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"

namespace {

double seconds_of(const std::function<void()>& work) {
  using clock = std::chrono::steady_clock;
  work();  // warm-up: primitive creation, first-touch
  std::vector<double> times;
  const auto start = clock::now();
  while (times.size() < 5 || std::chrono::duration<double>(clock::now() - start).count() < 1.0) {
    const auto t0 = clock::now();
    work();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  lab::prepare_process(argv);
  std::string env_name = "multi-color-sum";
  std::vector<std::string> items;
  int threads = 0;
  bench::App app{
      "attrlab's side of bench/bench_torch.py: median seconds of forward and forward+gradient of an environment's "
      "network (the one `attrlab export` writes) on batches of 1, 16 and 64 images, printed as one JSON object",
      "bench_export"};
  app.add_option("--env", env_name, "Environment (attrlab envs lists them)");
  app.add_option("-o", items, "Environment option key=value (repeatable), e.g. -o size=64")
      ->allow_extra_args(false)
      ->default_str("none");
  app.add_option("--threads", threads, "oneDNN/TBB threads")
      ->check(bench::threads())
      ->default_str("ATTRLAB_THREADS or all cores");
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  try {
    if (threads > 0) lab::Runtime::get().set_threads(threads);
    lab::Options options = lab::Options::parse(items, "-o");
    const auto env = datasets::make_environment(env_name, options);
    const lab::Network net = env->build_network();
    const lab::Shape in = env->input_shape();
    nlohmann::json out = {{"env", env->name()}, {"options", env->options()}, {"threads", lab::Runtime::get().threads()}};
    for (int64_t batch : {1, 16, 64}) {
      lab::Tensor x({batch, in[0], in[1], in[2]}, env->background()[0]);
      for (int64_t i = 0; i < x.numel(); i += 7) x[i] = in[0] == 3 ? 255.0f : 1.0f;
      const double forward = seconds_of([&] { (void)net.forward(x); });
      const double gradient = seconds_of([&] {
        const lab::Trace t = net.trace(x);
        lab::Tensor seed(t.output().shape(), 0.0f);
        for (int64_t n = 0; n < batch; ++n) seed[n * seed.dim(1)] = 1.0f;
        (void)net.gradient(t, seed);
      });
      out["forward"][std::to_string(batch)] = forward;
      out["gradient"][std::to_string(batch)] = gradient;
    }
    fmt::print("{}\n", out.dump());
  } catch (const lab::Error& e) {
    fmt::print(stderr, "bench_export: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
