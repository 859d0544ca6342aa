// Perturbation, surrogate and optimisation methods on 224×224 multi-color-sum images: time per
// image, network evaluations per image, and the evaluation rate (evaluations per second) of each
// method as a ratio to the model's own batched rate measured in the same run, just before and
// just after the method (their mean, so that a machine whose speed drifts during a long method
// biases neither side): the forward rate on batches of Context::batch for the perturbation
// methods, the forward+backward rate on batches of the images (2 evaluations per pass) for the
// optimisation methods, which send one such batch per iteration. A ratio near 1 means the method spends its
// time in the network. IBA's evaluations run only the layers after its bottleneck, so its ratio
// exceeds 1.
//
// Then Occlusion on the incremental engine (lab/nn/incremental.h) against the full-forward
// implementation (Occlusion::set_incremental(false)), both measured in the same run, one after
// the other, on the same images at 64×64 and 224×224 (default window 5 and stride 3, the paper's
// setting): evaluations per image, seconds per image of each, their ratio, and the largest
// difference between the two maps (absolute, and relative to the map's largest |value|). With
// --quick the 224×224 row uses windows and strides of 16 (196 windows) so the full-forward side
// stays short.
//
// Then the gradient methods with one switch of their passes off and on: trace + gradient of one
// logit per image on the batch of images (10 × `--repeats` runs each way), ExPerturb (one call on
// the batch) and IG (50 steps), each run in turn off and on, `--repeats` times (off, on, off,
// on, ...), in the same process; median wall and CPU seconds per image of each, their ratios,
// whether the maps are the same bytes, and the process's peak resident memory so far (MB,
// Linux's VmHWM; with --side, of one path alone). Switches: backprop-tiles, the tiled trace and
// backward (lab::ForwardPath::backprop_tiles, full traces) against the layer-by-layer passes;
// gradient-trace, the gradient's trace (lab::trace_for_gradient: the pointwise runs' inner
// activations left out, the ReLUs' sign bits kept) against the full trace, both tiled, with the
// megabytes each trace of the images holds. With --quick ExPerturb runs 20 iterations instead
// of 800.
//
// Usage: bench_perturbation [--images N] [--quick] [--method NAME] [--repeats R] [--side off|on]
//   --images N     images per batch (default 2)
//   --quick        fewer samples/iterations per method (rates are unchanged; times shrink)
//   --method NAME  only the rows of this method (repeatable); occlusion-engine names the
//                  engine-against-full-forward rows, backprop-tiles the tiled-backprop rows,
//                  gradient-trace the gradient's-trace rows, pointwise-kernel the tiles'
//                  products by dnnl_sgemm against lab::pointwise_gemm's kernel (lab/nn/pointwise_gemm.h)
//   --repeats R    runs of each path in the backprop-tiles, gradient-trace and pointwise-kernel
//                  rows (default 3)
//   --side off|on  only that path in those rows (one process per path: its peak memory alone)
//   --help         these options and their defaults
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "attributions/common.h"
#include "bench/bench_cli.h"
#include "bench/bench_model.h"
#include "attributions/method.h"
#include "attributions/occlusion.h"
#include "datasets/environment.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/core/storage.h"
#include "lab/nn/gradient_trace.h"
#include "lab/nn/incremental.h"
#include "lab/nn/network.h"
#include "lab/nn/pointwise_gemm.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// A field of /proc/self/status in MB ("VmRSS", "VmHWM"); 0 if it cannot be read.
double status_mb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;  // kB
  return 0.0;
}

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
  lab::prepare_process(argv);
  int64_t images = 2;
  bool quick = false;
  int repeats = 3;
  int side = -1;  // --side off|on: only that path of the switch rows
  std::vector<std::string> only;
  std::string side_text = "both";
  bench::App app{
      "Perturbation, surrogate and optimisation methods on 224x224 multi-color-sum images: time and network "
      "evaluations per image and the evaluation rate against the model's own; then Occlusion on the incremental "
      "engine against full forward passes, and the gradient methods with one switch of their passes off and on "
      "(see the top of bench/bench_perturbation.cpp)",
      "bench_perturbation"};
  app.add_option("--images", images, "Images per batch")->check(bench::integer(1));
  app.add_flag("--quick", quick, "Fewer samples/iterations per method (rates are unchanged; times shrink)");
  app.add_option("--method", only,
                 "Only the rows of this method (repeatable); occlusion-engine names the engine-against-full-forward "
                 "rows, backprop-tiles the tiled-backprop rows, gradient-trace the gradient's-trace rows, "
                 "pointwise-kernel the tiles' products by dnnl_sgemm against lab::pointwise_gemm's kernel")
      ->allow_extra_args(false)
      ->default_str("all");
  app.add_option("--repeats", repeats,
                 "Runs of each path in the backprop-tiles, gradient-trace and pointwise-kernel rows")
      ->check(bench::integer(1));
  app.add_option("--side", side_text,
                 "Only that path in those rows, off or on (one process per path: its peak memory alone)")
      ->check(CLI::IsMember({"off", "on"}));
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  if (side_text != "both") side = side_text == "on" ? 1 : 0;
  bench::Model model(8);  // 8 inputs of 224×224: ~15 MB per activation of the detector's widest layer
  const lab::Network& net = model.net;
  const auto& env = model.env;
  attributions::Context& context = model.context;
  std::vector<lab::Tensor> xs, refs;
  const attributions::Batch batch = model.batch(images, xs);
  for (int64_t i = 0; i < 64; ++i) refs.push_back(env->to_input(env->generate(2, i).image));
  context.reference_inputs = lab::Tensor::stack(refs);

  // The model's batched rates: forward on batches of the chunk size (what the perturbation
  // methods send), forward+backward on batches of the images (what the optimisation methods send
  // per iteration). Measured again right before and right after each method, so that both sides
  // of a ratio see the same machine load.
  auto batch_of = [&](int64_t n) {
    std::vector<lab::Tensor> parts;
    for (int64_t i = 0; i < n; ++i) parts.push_back(xs[static_cast<size_t>(i % images)]);
    return lab::Tensor::stack(parts);
  };
  const lab::Tensor max_batch = batch_of(context.batch);
  const lab::Tensor whole = batch_of(images);
  auto forward_rate = [&] {
    return static_cast<double>(context.batch) / median_seconds([&] { (void)net.forward(max_batch); }, 3, 1.0);
  };
  auto backprop_rate = [&] {
    const double t = median_seconds(
        [&] {
          const lab::Trace trace = lab::trace_for_gradient(net, whole);
          lab::Tensor seed(trace.output().shape(), 0.0f);
          for (int64_t n = 0; n < images; ++n) seed[n * seed.sample_numel()] = 1.0f;
          (void)net.gradient(trace, seed);
        },
        3, 1.0);
    return 2.0 * static_cast<double>(images) / t;
  };
  fmt::print("multi-color-sum 224x224, {} image(s) per batch, batch {}, {} thread(s){}\n", images, context.batch,
             lab::Runtime::get().threads(), quick ? ", quick settings" : "");
  fmt::print("reference rates, the mean of one measured before and one after each method: forward on\n"
             "batches of {} (perturbation methods),\n"
             "forward+backward on batches of {} counted as 2 evaluations (optimisation methods)\n\n",
             context.batch, images);
  std::fflush(stdout);

  const std::vector<Entry> entries = {
      {"occlusion", {}, {{"window", "3,12,12"}, {"strides", "3,12,12"}}, false},
      {"lime", {}, {{"samples", "100"}}, false},
      {"lime", {{"segmentation", "oracle"}}, {{"segmentation", "oracle"}, {"samples", "100"}}, false},
      {"kernelshap", {}, {{"samples", "100"}}, false},
      {"rise", {}, {{"masks", "200"}}, false},
      {"extremal-perturbation", {}, {{"iterations", "20"}}, true},
      {"iba", {}, {{"iterations", "4"}}, true},
  };
  fmt::print("{:<36} {:>10} {:>12} {:>10} {:>12} {:>8}\n", "method", "s/image", "evals/image", "evals/s",
             "reference/s", "ratio");
  for (const Entry& e : entries) {
    if (!only.empty() && std::find(only.begin(), only.end(), e.name) == only.end()) continue;
    lab::Options p("-p");
    for (const auto& [k, v] : quick ? e.quick : e.params) p.set(k, v);
    std::string label = e.name;
    for (const auto& [k, v] : quick ? e.quick : e.params) label += " " + k + "=" + v;
    const auto method = attributions::make_method(e.name, p);
    const double before = e.backward ? backprop_rate() : forward_rate();
    const auto t0 = Clock::now();
    const attributions::Result r = method->attribute(context, batch);
    const double t = seconds_since(t0);
    const double reference = 0.5 * (before + (e.backward ? backprop_rate() : forward_rate()));
    const double rate = static_cast<double>(r.evaluations) / t;
    fmt::print("{:<36} {:>10.3f} {:>12} {:>10.2f} {:>12.2f} {:>8.2f}\n", label, t / static_cast<double>(images),
               r.evaluations / images, rate, reference, rate / reference);
    std::fflush(stdout);
  }

  // The gradient methods with one switch of their passes off and on, in turn in one process.
  struct Switch {
    std::string name, title;
    std::function<void(bool)> set;
  };
  const lab::ForwardPath saved = lab::forward_path();
  const bool saved_lean = lab::gradient_traces_lean();
  const std::vector<Switch> switches = {
      {"backprop-tiles", "layer-by-layer trace and backward (off) vs backprop tiles (on), full traces",
       [&](bool on) {
         lab::ForwardPath path = saved;
         path.backprop_tiles = on;
         lab::set_forward_path(path);
         lab::set_gradient_traces_lean(false);
         lab::set_pointwise_kernel(true);
       }},
      {"gradient-trace", "backprop tiles with the full trace (off) vs the gradient's trace (lab::trace_for_gradient, on)",
       [&](bool on) {
         lab::set_forward_path(saved);
         lab::set_gradient_traces_lean(on);
         lab::set_pointwise_kernel(true);
       }},
      {"pointwise-kernel", "backprop tiles with the tiles' products by dnnl_sgemm (off) vs lab::pointwise_gemm's kernel (on)",
       [&](bool on) {
         lab::set_forward_path(saved);
         lab::set_gradient_traces_lean(saved_lean);
         lab::set_pointwise_kernel(on);
       }},
  };
  for (const Switch& sw : switches) {
    if (!only.empty() && std::find(only.begin(), only.end(), sw.name) == only.end()) continue;
    fmt::print("\ngradient methods: {}, same run,\n{} image(s) in one call, {} run(s) of each in turn; medians per image\n",
               sw.title, images, repeats);
    if (sw.name == "gradient-trace") {
      // What a trace of the images holds, full and lean (the backward's largest memory).
      const auto bytes = [](const lab::Trace& t) {
        int64_t n = 0;
        for (const lab::Tensor& a : t.acts) n += a.numel();
        for (const std::vector<float>& w : t.workspaces) n += static_cast<int64_t>(w.size());
        return static_cast<double>(n) * sizeof(float) / 1048576.0;
      };
      double full = 0, lean = 0;  // (with --side, only that side's, so as not to raise the other's peak)
      if (side != 1) {
        sw.set(false);
        full = bytes(lab::trace_for_gradient(net, whole));
      }
      if (side != 0) {
        sw.set(true);
        lean = bytes(lab::trace_for_gradient(net, whole));
      }
      fmt::print("trace of {} image(s), activations and workspaces: {:.1f} MB off, {:.1f} MB on ({:.1f} and {:.1f} MB "
                 "per image)\n",
                 images, full, lean,
                 full / static_cast<double>(images), lean / static_cast<double>(images));
    }
    fmt::print("{:<36} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7} {:>6} {:>8}\n", "method", "off wall", "on wall",
               "off CPU", "on CPU", "wall", "CPU", "same", "peak MB");
    // Each row: a label, the work (returning the map or gradient compared across runs), and
    // its runs per path (the pass alone is short: 10 times the repeats).
    struct Row {
      std::string label;
      std::function<lab::Tensor()> work;
      int runs;
    };
    std::vector<Row> rows;
    rows.push_back({"trace + gradient (one logit)",
                    [&] {
                      lab::Trace trace = lab::trace_for_gradient(net, whole);
                      lab::Tensor seed(trace.output().shape(), 0.0f);
                      for (int64_t n = 0; n < images; ++n) seed[n * seed.sample_numel()] = 1.0f;
                      lab::Tensor grad = net.gradient(trace, seed);
                      lab::recycle(trace.acts);  // the next run takes the blocks, as in run_backprop
                      return grad;
                    },
                    10 * repeats});
    const std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> methods = {
        {"extremal-perturbation", quick ? std::vector<std::pair<std::string, std::string>>{{"iterations", "20"}}
                                        : std::vector<std::pair<std::string, std::string>>{}},
        {"integrated-gradients", {}},
    };
    for (const auto& [name, params] : methods) {
      lab::Options p("-p");
      std::string label = name;
      for (const auto& [k, v] : params) {
        p.set(k, v);
        label += " " + k + "=" + v;
      }
      std::shared_ptr<const attributions::Method> method = attributions::make_method(name, p);
      rows.push_back({label, [&context, &batch, method] { return method->attribute(context, batch).attr; }, repeats});
    }
    for (const Row& row : rows) {
      const std::string& label = row.label;
      std::vector<double> wall[2], cpu[2];
      lab::Tensor maps[2];
      bool same = true;
      for (int rep = 0; rep < row.runs; ++rep)
        for (const int on : {0, 1}) {
          if (side >= 0 && on != side) continue;
          sw.set(on == 1);
          const double c0 = bench::cpu_seconds();
          const auto t0 = Clock::now();
          const lab::Tensor attr = row.work();
          wall[on].push_back(seconds_since(t0) / static_cast<double>(images));
          cpu[on].push_back((bench::cpu_seconds() - c0) / static_cast<double>(images));
          if (maps[on].numel() == 0) maps[on] = attr;
          const lab::Tensor& first = maps[0].numel() > 0 ? maps[0] : maps[1];
          same = same && attr.shape() == first.shape() &&
                 std::memcmp(attr.data(), first.data(), sizeof(float) * attr.numel()) == 0;
        }
      lab::set_forward_path(saved);
      lab::set_pointwise_kernel(true);
      lab::set_gradient_traces_lean(saved_lean);
      const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      const auto median_of = [&](const std::vector<double>& v) { return v.empty() ? 0.0 : median(v); };
      const double w0 = median_of(wall[0]), w1 = median_of(wall[1]), c0 = median_of(cpu[0]), c1 = median_of(cpu[1]);
      fmt::print("{:<36} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>7.3f} {:>7.3f} {:>6} {:>8.0f}\n", label, w0, w1, c0,
                 c1, w1 / w0, c1 / c0, same ? "yes" : "NO", status_mb("VmHWM"));
      for (int on : {0, 1}) {
        std::string runs;
        for (size_t k = 0; k < wall[on].size(); ++k) runs += fmt::format(" {:.3f}/{:.3f}", wall[on][k], cpu[on][k]);
        fmt::print("  {} wall/CPU s per image, in run order:{}\n", on ? "on " : "off", runs);
      }
      std::fflush(stdout);
    }
  }

  if (only.empty() || std::find(only.begin(), only.end(), "occlusion-engine") != only.end()) {
    fmt::print("\nocclusion: incremental engine vs full forward, same run, {} image(s), batch {}\n", images,
               context.batch);
    fmt::print("{:<9} {:<14} {:>11} {:>11} {:>11} {:>11} {:>7} {:>10} {:>10}\n", "size", "strides", "evals/image",
               "windowed", "full s/img", "incr s/img", "ratio", "max |d|", "max |d|/|m|");
    for (const int64_t size : {int64_t{64}, int64_t{224}}) {
      bench::Model small(context.batch, size);
      std::vector<lab::Tensor> inputs;
      const attributions::Batch b = small.batch(images, inputs);
      const bool coarse = quick && size == 224;
      const std::string strides = coarse ? "3,16,16" : "3,3,3";
      lab::Options p("-p");
      p.set("strides", strides);
      if (coarse) p.set("window", strides);
      const auto made = attributions::make_method("occlusion", p);
      auto& occlusion = dynamic_cast<attributions::Occlusion&>(*made);
      occlusion.set_incremental(true);
      (void)occlusion.attribute(small.context, b);  // warm-up (primitive caches)
      auto t0 = Clock::now();
      const attributions::Result inc = occlusion.attribute(small.context, b);
      const double t_inc = seconds_since(t0);
      occlusion.set_incremental(false);
      t0 = Clock::now();
      const attributions::Result full = occlusion.attribute(small.context, b);
      const double t_full = seconds_since(t0);
      double worst = 0, scale = 0;
      for (int64_t i = 0; i < full.attr.numel(); ++i) {
        worst = std::max(worst, static_cast<double>(std::abs(inc.attr[i] - full.attr[i])));
        scale = std::max(scale, static_cast<double>(std::abs(full.attr[i])));
      }
      // Windows the engine evaluated on their receptive field (the rest ran as full passes).
      const lab::Network explained = attributions::explained_network(small.net, attributions::Output::kLogit);
      const lab::PathEvaluator engine(explained, explained.size());
      lab::LocalChanges changes;
      changes.reference = inputs.front();
      changes.source = lab::Tensor(inputs.front().shape(), 0.0f);
      const std::vector<int64_t> window = occlusion.window_for(3), step = occlusion.strides_for(3);
      const std::vector<int64_t> counts = attributions::Occlusion::window_counts(window, step, {3, size, size});
      for (int64_t y = 0; y < counts[1]; ++y)
        for (int64_t x = 0; x < counts[2]; ++x)
          changes.boxes.push_back({0, 3, y * step[1], std::min(y * step[1] + window[1], size), x * step[2],
                                   std::min(x * step[2] + window[2], size)});
      lab::PathEvaluator::Stats stats;
      (void)engine.run(changes, &stats);
      fmt::print("{:<9} {:<14} {:>11} {:>11} {:>11.3f} {:>11.3f} {:>7.1f} {:>10.2e} {:>10.2e}\n",
                 fmt::format("{}x{}", size, size), strides, inc.evaluations / images, stats.sub_steps,
                 t_full / static_cast<double>(images), t_inc / static_cast<double>(images), t_full / t_inc, worst,
                 scale > 0 ? worst / scale : 0.0);
      std::fflush(stdout);
    }
  }
  return 0;
} catch (const lab::Error& e) {
  fmt::print(stderr, "bench_perturbation: error: {}\n", e.what());
  return 2;
}
