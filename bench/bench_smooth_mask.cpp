// Extremal Perturbation's smooth-mask generator (attributions::SmoothMask) per call: generate and
// backward of one mask at the default scale (64×64, step 2, mask-sigma 6) and the paper's
// (224×224, step 7, mask-sigma 21), against the generator of ca0ecf8 (the reference of
// tests/attributions/smooth_mask_reference.h), in one process: rounds of old generate, new
// generate, old backward, new backward (`--calls` calls each), interleaved, `--rounds` rounds;
// median CPU (every thread) and wall milliseconds per call of each, their ratio new/old, and
// whether the masks and gradients are the same bytes. The parameters are as an optimisation
// leaves them (most at 0 or 1, the rest in between); 1 and 2 threads.
//
// Usage: bench_smooth_mask [--rounds R] [--calls N] [--threads T]
//   --rounds R   interleaved rounds (default 7)
//   --calls N    calls per path and round at 64×64; at 224×224 N/8 (default 200)
//   --threads T  only this thread count (default: 1, then 2)
//   --size S     only this scale: 64 or 224 (default: both)
//   --help       these options and their defaults
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attributions/extremal_perturbation.h"
#include "bench/bench_cli.h"
#include "bench/bench_model.h"
#include "lab/core/runtime.h"
#include "tests/attributions/smooth_mask_reference.h"

namespace {

struct Clock {
  double cpu = 0, wall = 0;
};

template <typename F>
Clock time_calls(int calls, F&& f) {
  const double c0 = bench::cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) f();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {(bench::cpu_seconds() - c0) * 1e3 / calls, wall * 1e3 / calls};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename V>
bool same_bytes(const std::vector<V>& a, const std::vector<V>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(V)) == 0;
}

void run(const char* name, int64_t size, int64_t step, double sigma, int rounds, int calls, int threads) {
  lab::Runtime::get().set_threads(threads);
  const attributions::SmoothMask gen(size, size, step, sigma);
  const smooth_mask_reference::Reference<float> ref(size, size, step, sigma);
  const size_t np = static_cast<size_t>(gen.grid_h() * gen.grid_w()), pixels = static_cast<size_t>(ref.out_h * ref.out_w);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::vector<double> p(np);
  for (double& v : p) {
    const double u = uni(rng);
    v = u < 0.4 ? 0.0 : u < 0.8 ? 1.0 : uni(rng);
  }
  std::vector<float> grad_mask(pixels);
  for (float& v : grad_mask) v = uni(rng) < 0.2 ? 0.0f : static_cast<float>(2.0 * uni(rng) - 1.0);

  std::vector<float> unclamped, den, table, old_mask, new_mask;
  std::vector<double> old_grad, new_grad;
  attributions::SmoothMask::State state;
  old_mask = ref.generate(p, unclamped, den, table);
  gen.generate(p, state, new_mask);
  old_grad = ref.backward(p, unclamped, den, table, grad_mask);
  gen.backward(state, grad_mask, new_grad);
  const bool same = same_bytes(old_mask, new_mask) && same_bytes(old_grad, new_grad) && same_bytes(den, state.den);

  std::vector<double> cpu[4], wall[4];
  for (int r = 0; r < rounds; ++r) {
    const Clock c[4] = {
        time_calls(calls, [&] { old_mask = ref.generate(p, unclamped, den, table); }),
        time_calls(calls, [&] { gen.generate(p, state, new_mask); }),
        time_calls(calls, [&] { old_grad = ref.backward(p, unclamped, den, table, grad_mask); }),
        time_calls(calls, [&] { gen.backward(state, grad_mask, new_grad); }),
    };
    for (int i = 0; i < 4; ++i) {
      cpu[i].push_back(c[i].cpu);
      wall[i].push_back(c[i].wall);
    }
  }
  auto row = [&](const char* pass, int o) {
    const double co = median(cpu[o]), cn = median(cpu[o + 1]), wo = median(wall[o]), wn = median(wall[o + 1]);
    fmt::print("{:<28} {:>2} {:<9} cpu {:7.3f} -> {:7.3f} ms ({:.2f})   wall {:7.3f} -> {:7.3f} ms ({:.2f})\n", name,
               threads, pass, co, cn, cn / co, wo, wn, wn / wo);
  };
  row("generate", 0);
  row("backward", 2);
  fmt::print("{:<28} {:>2} same bytes: {}\n", name, threads, same ? "yes" : "NO");
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7, calls = 200, only = 0, size = 0;
  bench::App app{
      "Extremal Perturbation's smooth-mask generator (attributions::SmoothMask) against the generator of ca0ecf8: "
      "median CPU and wall milliseconds per call of generate and backward, their ratio new/old, and whether the "
      "masks and gradients are the same bytes",
      "bench_smooth_mask"};
  app.add_option("--rounds", rounds, "Interleaved rounds")->check(bench::integer(1));
  app.add_option("--calls", calls, "Calls per path and round at 64x64; at 224x224 N/8 (at least 1)")
      ->check(bench::integer(1));
  app.add_option("--threads", only, "Only this thread count, 1 or 2 (0: 1, then 2)")->check(bench::integer(0, 2));
  app.add_option("--size", size, "Only this scale, 64 or 224 (0: both)")->check(CLI::IsMember({0, 64, 224}));
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  fmt::print("per call, median of {} interleaved rounds; old = ca0ecf8's generator, new = SmoothMask\n", rounds);
  for (int threads : {1, 2}) {
    if (only != 0 && threads != only) continue;
    if (size != 224) run("64x64 step 2 sigma 6", 64, 2, 6.0, rounds, calls, threads);
    if (size != 64) run("224x224 step 7 sigma 21", 224, 7, 21.0, rounds, std::max(1, calls / 8), threads);
  }
  return 0;
}
