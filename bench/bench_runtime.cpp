// Runtime throughput: forward and forward+backward of the multi-color-sum model (colour detector
// + accumulator + head) at 224×224 for batches 1, 16 and 64, each printed as a ratio to a bare
// oneDNN matmul measured in the same run (GFLOP/s of the network ÷ GFLOP/s of the matmul).
// Absolute times depend on the machine; the ratios say how close the runtime gets to the
// library's peak on this machine.
#include <fmt/core.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "lab/core/runtime.h"
#include "networks/multi_color_sum.h"

namespace {

double seconds_of(const std::function<void()>& work, int min_runs, double min_seconds) {
  using clock = std::chrono::steady_clock;
  work();  // warm-up: primitive creation, first-touch
  std::vector<double> times;
  const auto start = clock::now();
  while (static_cast<int>(times.size()) < min_runs ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    work();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];  // median
}

// Multiply-adds ×2 of every affine layer for one input.
double network_flops(const lab::Network& net) {
  double flops = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::Layer& l = net.layer(i);
    if (l.kind() != lab::LayerKind::kConv2d && l.kind() != lab::LayerKind::kLinear) continue;
    const auto& w = static_cast<const lab::AffineLayer&>(l).weights().weight;
    const double macs_per_output = static_cast<double>(w.numel() / w.dim(0));
    flops += 2.0 * macs_per_output * static_cast<double>(lab::numel(net.shape_after(i, 1)));
  }
  return flops;
}

double matmul_gflops(int64_t n) {
  using namespace dnnl;
  auto& rt = lab::Runtime::get();
  memory::desc md({n, n}, memory::data_type::f32, memory::format_tag::ab);
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a.size());
  memory ma(md, rt.engine(), a.data()), mb(md, rt.engine(), b.data()), mc(md, rt.engine(), c.data());
  matmul mm(matmul::primitive_desc(matmul::desc(md, md, md), rt.engine()));
  const double s = seconds_of([&] { mm.execute(rt.stream(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}}); rt.stream().wait(); }, 5, 1.0);
  return 2.0 * n * n * n / s / 1e9;
}

}  // namespace

int main(int, char** argv) {
  lab::prepare_process(argv);
  const lab::Network net = networks::build_multi_color_sum(networks::MultiColorSumParams{});
  const double flops = network_flops(net);
  const double peak = matmul_gflops(1024);
  fmt::print("threads: {}\n", lab::Runtime::get().threads());
  fmt::print("bare oneDNN matmul 1024³: {:.1f} GFLOP/s (reference)\n", peak);
  fmt::print("multi-color-sum 224×224: {} layers, {:.1f} MFLOP per image forward\n\n", net.size(), flops / 1e6);
  fmt::print("{:>6}  {:>14}  {:>10}  {:>16}  {:>10}\n", "batch", "fwd img/s", "fwd ratio", "fwd+bwd img/s", "f+b ratio");
  for (int64_t batch : {1, 16, 64}) {
    lab::Tensor x({batch, 3, 224, 224}, 20.0f);
    for (int64_t i = 0; i < x.numel(); i += 7) x[i] = 255.0f;
    const double fwd = seconds_of([&] { (void)net.forward(x); }, 3, 1.0);
    const double fwd_bwd = seconds_of([&] {
      const lab::Trace t = net.trace(x);
      lab::Tensor seed(t.output().shape(), 0.0f);
      for (int64_t n = 0; n < batch; ++n) seed[n * seed.dim(1)] = 1.0f;
      (void)net.gradient(t, seed);
    }, 3, 1.0);
    // A backward-data pass costs about as much as the forward: count 2× the forward FLOPs.
    const double fwd_gflops = flops * batch / fwd / 1e9;
    const double fb_gflops = 2 * flops * batch / fwd_bwd / 1e9;
    fmt::print("{:>6}  {:>14.1f}  {:>10.3f}  {:>16.1f}  {:>10.3f}\n", batch, batch / fwd, fwd_gflops / peak,
               batch / fwd_bwd, fb_gflops / peak);
  }
  fmt::print("\nratio = achieved GFLOP/s ÷ bare matmul GFLOP/s in this run (1.0 = matmul speed).\n");
  return 0;
}
