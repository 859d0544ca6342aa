// attrlab's side of bench/bench_torch.py: forward and forward+gradient of an environment's network
// (the network `attrlab export` writes) on batches of 1, 16 and 64 images, median seconds, printed
// as one JSON object. bench_torch.py times the same exported network in PyTorch and prints ratios.
//
//   bench_export [--env NAME] [-o key=value ...] [--threads T]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  try {
    std::string env_name = "multi-color-sum";
    std::vector<std::string> items;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (i + 1 >= argc) lab::fail_parameter("{} needs a value", a);
      if (a == "--env") env_name = argv[++i];
      else if (a == "-o") items.emplace_back(argv[++i]);
      else if (a == "--threads") lab::Runtime::get().set_threads(std::stoi(argv[++i]));
      else lab::fail_parameter("unknown argument {}; expected --env NAME, -o key=value, --threads T", a);
    }
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
