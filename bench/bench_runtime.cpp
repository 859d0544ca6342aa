// Runtime throughput against the machine's rooflines: the batched forward (Network::forward) and
// forward+backward (Network::trace, then Network::gradient of one logit per image) of each
// environment's model at 224×224, each as a fraction of its roofline, both rooflines measured on
// this machine in the same run.
//
// Rooflines (measured first, each the median of repeated runs at the runtime's thread count; with
// --rounds R > 1 measured again before each round of a row's modes, each row's fraction taken
// against the rooflines measured right before it, since this VM's speed drifts by ±20% within an
// hour; a last table gives per row the medians over the rounds):
// - FLOP peak: a 2048×2048×2048 f32 oneDNN matmul, 2·n³ FLOP per run; with AVX-512, the larger of
//   that (oneDNN held to AVX2 by the runtime) and the same in a child process at the full ISA.
// - Memory bandwidth: STREAM-like kernels over buffers of 512 MiB each (several times every cache
//   level of this machine, whose L3 is 260 MiB), one contiguous slice per thread, threads =
//   the runtime's threads: copy a = b (8 bytes per element) and triad a = b + s·c (12 bytes per
//   element, the write-allocate read not counted, as in STREAM). The larger of the two is the peak.
//
// Roofline time of a pass = max(FLOP / FLOP peak, bytes / bandwidth peak), fraction = roofline
// time ÷ measured time (1.0 = at the roofline). Counted per image:
// - FLOP: 2 × the multiply-adds of every convolution and linear layer (bias, ReLU, softmax and
//   copies not counted); forward+backward counts twice the forward (backward-data of each
//   affine layer has the forward's multiply-adds; no weight gradients are computed).
// - bytes, the minimal traffic: what any implementation has to move between memory and the
//   cores, i.e. the network input read once and the output written once (forward), plus the
//   seed read and the input gradient written (forward+backward), plus the parameters read once
//   per call (divided over the batch). Activations are not counted: a fused pass can keep them in
//   cache. The "act GB/s" column shows, for comparison, the traffic of running layer by layer
//   through memory: every activation written once and read once by each node that reads it
//   (forward+backward: the trace writes them all, the backward reads each layer's input and
//   output and writes its gradient).
//
// Each row is measured in several modes, in the same run (the "mode" column):
// - fwd: "tiles", the default forward path (lab::ForwardPath in lab/nn/network.h: runs of 1×1
//   convolutions and ReLUs pixel tile by pixel tile, their products by lab::pointwise_gemm's
//   kernel; the accumulators' k×k stride-k convolutions with the pointwise layers after them as
//   patch runs, lab/nn/patch_run.h); "tiles-sgemm", tiles with every product a dnnl_sgemm, the
//   tiles before the kernel (lab::set_pointwise_kernel(false)); "tiles-onednn", tiles with the
//   patch convolutions as oneDNN's gemm convolution and no patch runs, the default path before
//   patch convolutions were computed one way, also with the small ReLUs and copies as oneDNN
//   primitives and every tile loop on all threads (lab::set_onednn_forward(true): other bytes at
//   odd batches, see lab/nn/patch_run.h); "tiles-runs", tiles with one parallel region per tiled
//   run (and per sub-batch) instead of one per sequence of runs (lab::set_tiled_sequences(false))
//   and dnnl_sgemm for the products' one- and two-row edges (lab::set_pointwise_edges(false)), the
//   default before both (same bytes; also tiles-unfused and tiles-edges12 below off: the default
//   path before any of these kernels);
//   "tiles-unfused", tiles with the patch runs' fused kernel off (lab::set_patch_kernels(false),
//   lab/nn/patch_kernel.h: the patch convolution stored to a tile buffer, then its 1×1
//   convolution; same bytes); "tiles-edges12", tiles with dnnl_sgemm for the 3 to 5 rows left
//   below the products' 6-row blocks (lab::set_pointwise_remainders(false)), the default before
//   those edges were the kernel's (same bytes); "tiles-ip", tiles with the Linear layers' forward
//   by oneDNN's inner product on the whole batch (lab::set_linear_chains(false), the default before
//   lab::linear_chain; other bytes, see lab/nn/linear_product.h), for fwd and f+b; "tiles-dense", tiles
//   with sparse weights on the dense chains (lab::set_sparse_weights(false); same bytes), for fwd and
//   f+b; "tiles-steps" (fwd), tiles with each sparse 1×1 step by lab::pointwise_gemm and no
//   lab::SparseProgram (lab::set_sparse_programs(false), the default before programs; same
//   bytes); "tiles-avx2" (fwd), tiles with the AVX2 kernels of the programs and of the fused patch
//   kernel on a processor with AVX-512 (lab::set_avx512_kernels(false); same bytes);
//   "tiles-unfolded" (fwd), tiles with no pointwise run folded into the patch run after it
//   (lab::set_tiled_folds(false), the default before session 24; same bytes); "tiles-interpreted" (fwd), tiles with
//   the sparse programs run by their interpreter instead of their machine code (lab::set_program_code(false), lab/nn/
//   program_code.h, the default before session 25; same bytes); "tiles-whole", tiles with every step on the whole batch
//   (lab::set_sub_batch_budget(0)); "tiles+post-op",
//   tiles and the other ReLUs as post-ops (below); "layers", every layer its own primitive
//   over the (sub-)batch, the path before tiles; "relu-post-op", layers with each ReLU after a
//   convolution or linear layer fused as its eltwise post-op; "inference", layers with
//   prop_kind::forward_inference primitives. All with the runtime's sub-batches.
// - f+b: the gradient methods' pass (attributions::run_backprop): lab::trace_for_gradient, then
//   the gradient, the trace's and the gradient's storage recycled for the next call
//   (lab/core/storage.h; without it every call of a large batch faults in fresh pages). "tiles",
//   the default path: trace and backward run the pointwise runs tile by tile
//   (ForwardPath::backprop_tiles) and the trace keeps only the ReLUs' signs inside them
//   (lab/nn/gradient_trace.h); "tiles-full", the same with the full trace
//   (lab::set_gradient_traces_lean(false)); "tiles-sgemm", tiles with dnnl_sgemm; "layers", every
//   layer its own primitive in the trace and the backward, the path before backprop tiles;
//   "tiles-onednn" as for fwd.
// - both: "--no-sub-batch", layers with every layer on the whole batch
//   (lab::set_sub_batch_budget(0)), the runtime before sub-batches.
// Only this benchmark sets these. Every mode but tiles-onednn gives the same bytes
// (tests/lab/test_network.cpp, tests/networks/test_forward_path.cpp). Timings on a loaded
// machine measure the other processes too: run it on a quiet one.
//
// --envs a,b,... keeps only those environments (the env column's names); an empty --batches or
// --fb-batches ("") skips that pass. --modes a,b,... keeps only those modes; --rounds R measures
// the kept modes R times in turn (a row per mode per round, interleaved, so that old and new
// paths see the same load).
// "cpu ms" is the process CPU time (all threads, std::clock: spinning OpenMP threads included)
// of a row's timed runs together, ÷ runs ÷ batch: the mean, where ms/image is the median run.
// ms/image and cpu ms are printed to 3 significant digits.
//
// Usage: bench_runtime [--batches 1,32,64] [--fb-batches 1,32] [--size 224] [--seconds S]
//                      [--modes tiles,tiles-sgemm] [--rounds 1] [--envs single-color-modulo]
#include <fmt/core.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench/bench_cli.h"
#include "lab/core/runtime.h"
#include "lab/core/storage.h"
#include "lab/nn/gradient_trace.h"
#include "lab/nn/linear_product.h"
#include "lab/nn/patch_kernel.h"
#include "lab/nn/patch_run.h"
#include "lab/nn/pointwise_gemm.h"
#include "lab/nn/program_code.h"
#include "lab/nn/sparse_program.h"
#include "networks/multi_color_sum.h"
#include "networks/single_color_modulo.h"

namespace {

double min_seconds = 1.0;
double last_cpu_seconds = 0.0;  // the mean CPU seconds (all threads) of seconds_of's timed runs

// The median wall seconds of `work` over at least min_runs runs and min_seconds, after one
// warm-up run; last_cpu_seconds = the process CPU time (all threads) of the timed runs together ÷
// their number. Not a per-run median: the kernel brings the CPU time of the threads other than
// the caller up to date only at its scheduler ticks (a few ms), so a run of 2 ms read 2 ms or 2 ms
// plus a tick of the other thread, and the median of such readings could exceed threads × wall.
double seconds_of(const std::function<void()>& work, int min_runs) {
  using clock = std::chrono::steady_clock;
  work();  // warm-up: primitive creation, first touch
  std::vector<double> times;
  const std::clock_t cpu0 = std::clock();
  const auto start = clock::now();
  while (static_cast<int>(times.size()) < min_runs ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    work();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  last_cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC / static_cast<double>(times.size());
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];  // median
}

double matmul_gflops(int64_t n) {
  using namespace dnnl;
  auto& rt = lab::Runtime::get();
  memory::desc md({n, n}, memory::data_type::f32, memory::format_tag::ab);
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a.size());
  memory ma(md, rt.engine(), a.data()), mb(md, rt.engine(), b.data()), mc(md, rt.engine(), c.data());
  matmul mm(matmul::primitive_desc(matmul::desc(md, md, md), rt.engine()));
  const double s = seconds_of([&] {
    mm.execute(rt.stream(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    rt.stream().wait();
  }, 5);
  return 2.0 * static_cast<double>(n) * n * n / s / 1e9;
}

// STREAM-like copy and triad over `n` floats per buffer, `threads` threads each on its own slice
// (first touched by that thread). Returns {copy GB/s, triad GB/s}.
std::pair<double, double> stream_gbps(size_t n, int threads) {
  // Allocated and first touched once: later calls (a round's roofline) measure the same pages.
  static std::unique_ptr<float[]> a, b, c;
  static size_t allocated = 0;
  if (allocated != n) {
    a.reset(new float[n]);
    b.reset(new float[n]);
    c.reset(new float[n]);
    allocated = n;
  }
  const auto parallel = [&](const std::function<void(size_t, size_t)>& body) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { body(n * t / threads, n * (t + 1) / threads); });
    for (auto& th : pool) th.join();
  };
  parallel([&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
  });
  const double copy = seconds_of([&] {
    parallel([&](size_t lo, size_t hi) { std::memcpy(a.get() + lo, b.get() + lo, (hi - lo) * sizeof(float)); });
  }, 5);
  const double triad = seconds_of([&] {
    parallel([&](size_t lo, size_t hi) {
      float* __restrict pa = a.get();
      const float* __restrict pb = b.get();
      const float* __restrict pc = c.get();
      for (size_t i = lo; i < hi; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    });
  }, 5);
  volatile float sink = a[n / 2];  // keeps the stores
  (void)sink;
  return {8.0 * static_cast<double>(n) / copy / 1e9, 12.0 * static_cast<double>(n) / triad / 1e9};
}

// Both rooflines, measured now.
struct Rooflines {
  double gflops = 0, copy = 0, triad = 0;
  double held = 0, full = 0;  // the matmul with oneDNN held to AVX2, and free (0: not measured)
  double gbps() const { return std::max(copy, triad); }
};

// The matmul's GFLOP/s with oneDNN free to use every instruction set of the machine: the runtime
// holds it to AVX2 in this process (lab/core/runtime.h), so on a machine with AVX-512 this
// program runs again in a child process with ONEDNN_MAX_CPU_ISA=ALL (`--matmul-peak`); 0 where
// oneDNN is not held (no AVX-512, or a MAX_CPU_ISA variable set).
double full_isa_gflops() {
  if (!__builtin_cpu_supports("avx512f") || std::getenv("ONEDNN_MAX_CPU_ISA") != nullptr ||
      std::getenv("DNNL_MAX_CPU_ISA") != nullptr)
    return 0.0;
  const std::string command =
      fmt::format("ONEDNN_MAX_CPU_ISA=ALL /proc/{}/exe --matmul-peak --seconds {}", getpid(), min_seconds);
  FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) return 0.0;
  double gflops = 0.0;
  if (std::fscanf(child, "%lf", &gflops) != 1) gflops = 0.0;
  pclose(child);
  return gflops;
}

Rooflines measure_rooflines(int threads) {
  Rooflines r;
  r.held = matmul_gflops(2048);
  r.full = full_isa_gflops();
  r.gflops = std::max(r.held, r.full);
  std::tie(r.copy, r.triad) = stream_gbps(size_t{128} << 20, threads);
  return r;
}

struct Counts {
  double flops = 0;        // forward, per image
  double params = 0;       // bytes of parameters
  double nz_flops = 0;     // forward, per image, of the nonzero weights only
  double nz_params = 0;    // bytes of the nonzero parameters
  double in = 0, out = 0;  // bytes per image of the network input and output
  double acts_fwd = 0;     // bytes per image moved layer by layer (forward)
  double acts_fb = 0;      // the same for trace + backward
};

Counts count(const lab::Network& net) {
  Counts c;
  std::vector<double> size;  // bytes per image of each activation (acts order)
  lab::Shape in{1};
  in.insert(in.end(), net.input_shape().begin(), net.input_shape().end());
  size.push_back(4.0 * static_cast<double>(lab::numel(in)));  // acts[0]
  for (size_t i = 0; i < net.size(); ++i) size.push_back(4.0 * static_cast<double>(lab::numel(net.shape_after(i, 1))));
  c.in = size.front();
  c.out = size.back();
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::Layer& l = net.layer(i);
    c.params += 4.0 * static_cast<double>(l.parameter_count());
    if (l.kind() == lab::LayerKind::kConv2d || l.kind() == lab::LayerKind::kLinear) {
      const auto& lw = static_cast<const lab::AffineLayer&>(l).weights();
      for (const float v : lw.weight.values()) c.nz_params += v != 0.0f ? 4.0 : 0.0;
      for (const float v : lw.bias.values()) c.nz_params += v != 0.0f ? 4.0 : 0.0;
    } else {
      c.nz_params += 4.0 * static_cast<double>(l.parameter_count());
    }
    double reads = 0;
    for (size_t a : net.inputs(i)) reads += size[a];
    c.acts_fwd += reads + size[i + 1];
    // trace: the same; backward: reads dy, x and y, writes dx.
    c.acts_fb += reads + size[i + 1] + 2 * size[i + 1] + 2 * reads;
    if (l.kind() != lab::LayerKind::kConv2d && l.kind() != lab::LayerKind::kLinear) continue;
    const auto& w = static_cast<const lab::AffineLayer&>(l).weights().weight;
    const double macs_per_output = static_cast<double>(w.numel() / w.dim(0));
    const double outputs = static_cast<double>(lab::numel(net.shape_after(i, 1)));
    c.flops += 2.0 * macs_per_output * outputs;
    // Each weight of output channel o is used at each of o's outputs (numel ÷ channels of them).
    double nonzero = 0;
    for (const float v : w.values()) nonzero += v != 0.0f ? 1.0 : 0.0;
    c.nz_flops += 2.0 * nonzero * outputs / static_cast<double>(w.dim(0));
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  lab::prepare_process(argv);
  std::vector<int64_t> batches{1, 32, 64}, fb_batches{1, 32};
  std::vector<std::string> only_modes, only_envs;
  int rounds = 1;
  int64_t size = 224;
  bench::App app{
      "Throughput of the batched forward and forward+backward of each environment's model against this "
      "machine's rooflines (FLOP and memory bandwidth, measured in the same run), in several modes; see the "
      "top of bench/bench_runtime.cpp and README.md, \"bench_runtime\"",
      "bench_runtime"};
  bench::add_integer_list(app, "--batches", batches, "Forward batch sizes, comma-separated (\"\": no forward rows)");
  bench::add_integer_list(app, "--fb-batches", fb_batches,
                          "Forward+backward batch sizes, comma-separated (\"\": no forward+backward rows)");
  app.add_option("--size", size, "Image side of the environments' models")->check(bench::integer(1));
  app.add_option("--seconds", min_seconds,
                 "Least seconds each row and roofline is timed (after a warm-up run; the median run counts)")
      ->check(bench::positive_seconds());
  bench::add_name_list(app, "--modes", only_modes, "Only these modes, comma-separated (repeatable)", "all");
  app.add_option("--rounds", rounds,
                 "Rounds of the kept modes, in turn; with R > 1 the rooflines are measured again before each "
                 "round and a last table gives the medians")
      ->check(bench::integer(1));
  bench::add_name_list(app, "--envs", only_envs,
                       "Only these environments (the env column's names, e.g. \"multi-color-sum ude=false\"), "
                       "comma-separated (repeatable)",
                       "all");
  bool matmul_peak = false;
  app.add_flag("--matmul-peak", matmul_peak, "Print the matmul's GFLOP/s and stop (full_isa_gflops's child)")
      ->group("");
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  if (matmul_peak) {
    fmt::print("{:.3f}\n", matmul_gflops(2048));
    return 0;
  }
  const int threads = lab::Runtime::get().threads();
  Rooflines roof = measure_rooflines(threads);
  fmt::print("threads: {}; sub-batch cache budget: {} KiB\n", threads, lab::sub_batch_budget() / 1024);
  fmt::print("FLOP roofline: oneDNN f32 matmul 2048³: {:.1f} GFLOP/s", roof.gflops);
  if (roof.full > 0)
    fmt::print(" (the larger of {:.1f} held to AVX2, as the runtime holds it, and {:.1f} at the machine's full "
               "instruction set, in a child process)",
               roof.held, roof.full);
  fmt::print("\n");
  fmt::print("memory roofline: copy {:.1f} GB/s, triad {:.1f} GB/s (3 × 512 MiB buffers): {:.1f} GB/s\n", roof.copy,
             roof.triad, roof.gbps());
  if (rounds > 1) fmt::print("(measured again before each round: the \"roofline\" lines)\n");
  fmt::print("\n");

  struct Env {
    std::string name;
    lab::Network net;
  };
  std::vector<Env> envs;
  for (bool ude : {true, false}) {
    networks::MultiColorSumParams p;
    p.size = size;
    p.ude = ude;
    envs.push_back({ude ? "multi-color-sum" : "multi-color-sum ude=false", networks::build_multi_color_sum(p)});
  }
  {
    networks::SingleColorModuloParams p;
    p.size = size;
    envs.push_back({"single-color-modulo", networks::build_single_color_modulo(p)});
  }

  // Per row (env, batch, mode, pass) over the rounds: ms per image, fraction, cpu ms per image.
  struct Summary {
    std::string env, mode;
    int64_t batch;
    bool fb;
    std::vector<double> ms, fraction, cpu, nz_fraction;
  };
  std::vector<Summary> summary;
  fmt::print("{:<26} {:>5} {:<14} {:<4} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}\n", "env", "batch", "mode", "pass",
             "ms/image", "GFLOP/s", "GB/s", "act GB/s", "fraction", "nz frac", "cpu ms");
  for (const Env& env : envs) {
    if (!only_envs.empty() && std::find(only_envs.begin(), only_envs.end(), env.name) == only_envs.end()) continue;
    const Counts c = count(env.net);
    const auto row = [&](int64_t batch, bool fb, const char* mode, double seconds) {
      const double b = static_cast<double>(batch);
      const double flops = (fb ? 2 : 1) * c.flops * b;
      const double bytes = (fb ? 2 : 1) * (c.in + c.out) * b + c.params;
      const double acts = (fb ? c.acts_fb : c.acts_fwd) * b;
      const double time = std::max(flops / (roof.gflops * 1e9), bytes / (roof.gbps() * 1e9));
      const double nz_time = std::max((fb ? 2 : 1) * c.nz_flops * b / (roof.gflops * 1e9),
                                      ((fb ? 2 : 1) * (c.in + c.out) * b + c.nz_params) / (roof.gbps() * 1e9));
      fmt::print("{:<26} {:>5} {:<14} {:<4} {:>8.3g} {:>8.1f} {:>7.2f} {:>8.1f} {:>8.2f} {:>8.2f} {:>8.3g}\n", env.name,
                 batch, mode, fb ? "f+b" : "fwd", seconds * 1e3 / b, flops / seconds / 1e9, bytes / seconds / 1e9,
                 acts / seconds / 1e9, time / seconds, nz_time / seconds, last_cpu_seconds * 1e3 / b);
      std::fflush(stdout);
      auto it = std::find_if(summary.begin(), summary.end(), [&](const Summary& r) {
        return r.env == env.name && r.mode == mode && r.batch == batch && r.fb == fb;
      });
      if (it == summary.end()) it = summary.insert(summary.end(), Summary{env.name, mode, batch, fb, {}, {}, {}, {}});
      it->ms.push_back(seconds * 1e3 / b);
      it->fraction.push_back(time / seconds);
      it->nz_fraction.push_back(nz_time / seconds);
      it->cpu.push_back(last_cpu_seconds * 1e3 / b);
    };
    for (bool fb : {false, true}) {
      for (int64_t batch : fb ? fb_batches : batches) {
        lab::Shape shape{batch};
        shape.insert(shape.end(), env.net.input_shape().begin(), env.net.input_shape().end());
        lab::Tensor x(shape, 20.0f);
        for (int64_t i = 0; i < x.numel(); i += 7) x[i] = env.net.input_shape()[0] == 1 ? 1.0f : 255.0f;
        const auto work = [&] {
          if (!fb) {
            (void)env.net.forward(x);
            return;
          }
          // The gradient methods' pass (attributions::run_backprop): the gradient's trace, and
          // its blocks and the gradient's handed back for the next call (lab/core/storage.h).
          lab::Trace t = lab::trace_for_gradient(env.net, x);
          lab::Tensor seed(t.output().shape(), 0.0f);
          for (int64_t n = 0; n < batch; ++n) seed[n * seed.dim(1)] = 1.0f;
          lab::Tensor grad = env.net.gradient(t, seed);
          lab::recycle(t.acts);
          lab::recycle(grad);
        };
        // tiles: the forward's pointwise tiles for fwd, backprop_tiles for f+b; layers: neither.
        struct Mode {
          const char* name;
          bool sub;
          lab::ForwardPath path;
          bool kernel = true;  // lab::pointwise_gemm's kernel; false: dnnl_sgemm
          bool lean = true;    // f+b: the gradient's trace (lab::trace_for_gradient); false: the full trace
          bool patch = true;   // false: lab::set_onednn_forward(true), the forward before (tiles-onednn)
          bool fused = true;  // false (tiles-runs): one region per tiled run, dnnl_sgemm on all edges, no fused kernel
          bool patch_kernel = true;  // false: the patch runs' fused kernel off (tiles-unfused)
          bool remainders = true;  // false: dnnl_sgemm on the 3 to 5 rows left below the 6-row blocks (tiles-edges12)
          bool chains = true;  // false: the Linear layers' forward by oneDNN's inner product (tiles-ip)
          bool sparse = true;  // false: sparse weights by the dense chains (tiles-dense)
          bool programs = true;  // false: every sparse step by pointwise_gemm, no SparseProgram (tiles-steps)
          bool wide = true;      // false: the AVX2 kernels where the processor has AVX-512 (tiles-avx2)
          bool folds = true;     // false: no pointwise run folded into a patch run (tiles-unfolded)
          bool code = true;      // false: the programs by their interpreter, not their machine code (tiles-interpreted)
        };
        // The default path ("tiles") with one of its parts off.
        const auto tiles_without = [](const char* name, bool Mode::*part) {
          Mode m{name, true, {.tiles = true}};
          m.*part = false;
          return m;
        };
        const lab::ForwardPath layers{.tiles = false, .relu_post_op = false, .inference = false, .backprop_tiles = false};
        std::vector<Mode> modes{{"tiles", true, {.tiles = true}}, tiles_without("tiles-sgemm", &Mode::kernel),
                                {"layers", true, layers}};
        modes.insert(modes.begin() + 1, tiles_without("tiles-onednn", &Mode::patch));
        if (!fb) modes.insert(modes.begin() + 2, tiles_without("tiles-runs", &Mode::fused));
        if (!fb) modes.insert(modes.begin() + 1, tiles_without("tiles-steps", &Mode::programs));
        if (!fb) modes.insert(modes.begin() + 2, tiles_without("tiles-avx2", &Mode::wide));
        if (!fb) modes.insert(modes.begin() + 3, tiles_without("tiles-unfolded", &Mode::folds));
        if (!fb) modes.insert(modes.begin() + 2, tiles_without("tiles-interpreted", &Mode::code));
        if (!fb) {
          modes.insert(modes.begin() + 3, tiles_without("tiles-unfused", &Mode::patch_kernel));
          modes.insert(modes.begin() + 4, tiles_without("tiles-edges12", &Mode::remainders));
        }
        modes.insert(modes.begin() + 1, tiles_without("tiles-ip", &Mode::chains));
        modes.insert(modes.begin() + 1, tiles_without("tiles-dense", &Mode::sparse));
        if (fb) modes.insert(modes.begin() + 2, tiles_without("tiles-full", &Mode::lean));
        if (!fb) {
          modes.insert(modes.begin() + 2, Mode{"tiles-whole", false, {.tiles = true}});
          modes.push_back({"tiles+post-op", true, {.tiles = true, .relu_post_op = true}});
          modes.push_back({"relu-post-op", true, {.tiles = false, .relu_post_op = true}});
          modes.push_back({"inference", true, {.tiles = false, .inference = true}});
        }
        modes.push_back({"--no-sub-batch", false, layers});
        for (int round = 0; round < rounds; ++round) {
          // The machine's speed drifts (a VM's neighbours): each round's rows against the
          // rooflines measured right before them.
          if (rounds > 1) {
            roof = measure_rooflines(threads);
            fmt::print("{:<26} roofline before round {}: matmul {:.1f} GFLOP/s, copy {:.1f} GB/s, triad {:.1f} GB/s\n",
                       env.name, round + 1, roof.gflops, roof.copy, roof.triad);
          }
          for (const Mode& mode : modes) {
            if (!mode.sub && batch == 1) continue;  // one image: nothing to split
            if (!only_modes.empty() && std::find(only_modes.begin(), only_modes.end(), mode.name) == only_modes.end())
              continue;
            lab::set_sub_batch_budget(mode.sub ? -1 : 0);
            lab::set_forward_path(mode.path);
            lab::set_pointwise_kernel(mode.kernel);
            lab::set_gradient_traces_lean(mode.lean);
            lab::set_onednn_forward(!mode.patch);
            lab::set_tiled_sequences(mode.fused);
            lab::set_pointwise_edges(mode.fused);
            lab::set_patch_kernels(mode.fused && mode.patch_kernel);
            lab::set_pointwise_remainders(mode.fused && mode.remainders);
            lab::set_linear_chains(mode.chains);
            lab::set_sparse_weights(mode.sparse);
            lab::set_sparse_programs(mode.programs);
            lab::set_avx512_kernels(mode.wide);
            lab::set_tiled_folds(mode.folds);
            lab::set_program_code(mode.code);
            row(batch, fb, mode.name, seconds_of(work, 3));
          }
        }
        lab::set_sub_batch_budget(-1);
        lab::set_forward_path({});
        lab::set_pointwise_kernel(true);
        lab::set_gradient_traces_lean(true);
        lab::set_onednn_forward(false);
        lab::set_tiled_sequences(true);
        lab::set_pointwise_edges(true);
        lab::set_patch_kernels(true);
        lab::set_pointwise_remainders(true);
        lab::set_linear_chains(true);
        lab::set_sparse_weights(true);
        lab::set_sparse_programs(true);
        lab::set_avx512_kernels(true);
        lab::set_tiled_folds(true);
      }
    }
  }
  if (rounds > 1) {
    const auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    fmt::print("\nmedians of {} rounds (fraction: each round's against its own rooflines; min–max)\n", rounds);
    fmt::print("{:<26} {:>5} {:<14} {:<4} {:>8} {:>8} {:>11} {:>8} {:>8}\n", "env", "batch", "mode", "pass",
               "ms/image", "fraction", "min–max", "nz frac", "cpu ms");
    for (const Summary& r : summary)
      fmt::print("{:<26} {:>5} {:<14} {:<4} {:>8.3g} {:>8.2f} {:>5.2f}–{:<5.2f} {:>8.2f} {:>8.3g}\n", r.env, r.batch,
                 r.mode, r.fb ? "f+b" : "fwd", median(r.ms), median(r.fraction),
                 *std::min_element(r.fraction.begin(), r.fraction.end()),
                 *std::max_element(r.fraction.begin(), r.fraction.end()), median(r.nz_fraction), median(r.cpu));
  }
  fmt::print("\nfraction = roofline time ÷ measured time, roofline time = max(FLOP ÷ FLOP peak, bytes ÷ bandwidth);\n"
             "nz frac: the same with the FLOP and parameter bytes of the nonzero weights only (the work left where\n"
             "the products skip their zero weights);\n"
             "GB/s: the minimal traffic (input, output, parameters; f+b also seed and input gradient) per second;\n"
             "act GB/s: the traffic of streaming every activation through memory layer by layer.\n");
  return 0;
}
