// Gradient and propagation methods on 224×224 multi-color-sum images: time per image of each
// method (batched), next to the time of one forward+backward per image of the same model measured
// in the same run, i.e. how many forward+backward passes each method costs in practice, and that
// cost as a ratio to the method's theoretical count of passes (its network evaluations / 2: a
// forward+backward is 2 evaluations, a forward alone 1). Target: ratio ≤ 1.2 for every method.
//
// Times are CPU seconds of the process (CLOCK_PROCESS_CPUTIME_ID), by default on one thread: on
// a shared machine wall-clock time measures the other processes as much as ours, CPU time of a
// single-threaded run does not. The wall-clock times are printed beside them. The reference pass
// is measured again right before each method (median of 3), and each ratio uses that local
// measurement, so that a change of machine load during the run does not skew the ratios. Freed
// memory is kept by the allocator (mallopt) instead of being returned to the system after every
// network call: otherwise the page faults of re-mapping large activations (tens of MB at 224×224)
// dominate and scatter the timings of every method alike.
//
// Usage: bench_methods [--images N] [--batch B] [--threads T] [--quick] [--filter TEXT]
//   --images N   images per batch (default 4)
//   --batch B    inputs per network call (default 4; images × steps should be a multiple of it, so
//                that every timed network call has a shape prepared by the warm-up)
//   --threads T  oneDNN/TBB threads (default 1)
//   --quick      IG with 10 steps and SmoothGrad with 10 samples (ratios are unchanged)
//   --filter T   only the methods whose row label contains T
//   --help       these options and their defaults
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "attributions/common.h"
#include "bench/bench_cli.h"
#include "bench/bench_model.h"
#include "attributions/method.h"
#include "datasets/environment.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"

namespace {

using bench::median_time;
using bench::Timing;

struct Entry {
  std::string name;
  std::vector<std::string> params;  ///< the measured settings
  std::vector<std::string> warmup;  ///< cheaper settings with the same network-call shapes
};

lab::Options options_of(const std::vector<std::string>& items) { return lab::Options::parse(items, "-p"); }

}  // namespace

int main(int argc, char** argv) try {
  int64_t images = 4, per_call = 4;
  int threads = 1;
  bool quick = false;
  std::string filter;
  lab::prepare_process(argv);
  bench::App app{
      "Gradient and propagation methods on 224x224 multi-color-sum images: CPU seconds per image of each method "
      "against one forward+backward per image measured in the same run, and the ratio of measured to theoretical "
      "passes (target <= 1.2)",
      "bench_methods"};
  app.add_option("--images", images, "Images per batch")->check(bench::integer(1));
  app.add_option("--batch", per_call,
                 "Inputs per network call (images x steps should be a multiple of it, so that every timed network "
                 "call has a shape prepared by the warm-up)")
      ->check(bench::integer(1));
  app.add_option("--threads", threads, "oneDNN/TBB threads")->check(bench::threads());
  app.add_flag("--quick", quick, "IG with 10 steps and SmoothGrad with 10 samples (ratios are unchanged)");
  app.add_option("--filter", filter, "Only the methods whose row label contains this text");
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  lab::Runtime::get().set_threads(threads);
  const bench::Model model(per_call);
  const lab::Network& net = model.net;
  const attributions::Context& context = model.context;
  std::vector<lab::Tensor> xs;
  const attributions::Batch batch = model.batch(images, xs);

  // One forward+backward of output[target] per image, batched at the batch size.
  std::vector<lab::Tensor> call_inputs;
  for (int64_t i = 0; i < per_call; ++i) call_inputs.push_back(xs[static_cast<size_t>(i % images)]);
  const lab::Tensor call_x = lab::Tensor::stack(call_inputs);
  auto pass = [&] {
    const lab::Trace t = net.trace(call_x);
    lab::Tensor seed(t.output().shape(), 0.0f);
    for (int64_t n = 0; n < per_call; ++n) seed[n * seed.sample_numel()] = 1.0f;
    (void)net.gradient(t, seed);
  };
  for (int i = 0; i < 3; ++i) pass();

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
      {"gradcam-plus-plus", {}, {}},
      {"random", {}, {}},
      {"constant", {}, {}},
  };

  fmt::print("multi-color-sum 224x224, {} image(s) per batch, batch {}, {} thread(s){}\n", images, per_call,
             lab::Runtime::get().threads(), quick ? ", quick settings" : "");
  struct Row {
    std::string label;
    Timing t;
    double pass = 0;  ///< CPU seconds of one forward+backward per image, measured just before
    double theoretical = 0;
  };
  std::vector<Row> rows;
  for (const Entry& e : entries) {
    std::string label = e.name;
    for (const auto& item : e.params) label += " " + item;
    if (label.find(filter) == std::string::npos) continue;
    lab::Options warm = options_of(e.warmup);
    (void)attributions::make_method(e.name, warm)->attribute(context, batch);
    lab::Options p = options_of(e.params);
    const auto method = attributions::make_method(e.name, p);
    attributions::Result r;
    const bool long_run = e.name == "integrated-gradients" || e.name == "smoothgrad";
    Row row{label, {}, median_time(pass, 3).cpu / static_cast<double>(per_call)};
    row.t = median_time([&] { r = method->attribute(context, batch); }, long_run ? 1 : 3);
    row.t.cpu /= static_cast<double>(images);
    row.t.wall /= static_cast<double>(images);
    row.theoretical = static_cast<double>(r.evaluations) / 2.0 / static_cast<double>(images);
    rows.push_back(row);
    fmt::print(stderr, "  {} done\n", row.label);
  }
  fmt::print("{:<48} {:>10} {:>10} {:>10} {:>8} {:>12} {:>7}\n", "method", "CPU s/img", "wall s/img", "pass s/img",
             "passes", "theoretical", "ratio");
  double worst = 0;
  for (const Row& row : rows) {
    const double passes = row.t.cpu / row.pass;
    std::string ratio = "-";
    if (row.theoretical > 0) {
      worst = std::max(worst, passes / row.theoretical);
      ratio = fmt::format("{:.2f}", passes / row.theoretical);
    }
    fmt::print("{:<48} {:>10.4f} {:>10.4f} {:>10.4f} {:>8.2f} {:>12.2f} {:>7}\n", row.label, row.t.cpu, row.t.wall,
               row.pass, passes, row.theoretical, ratio);
  }
  fmt::print("\nlargest ratio of measured to theoretical passes: {:.2f} (target ≤ 1.2)\n", worst);
  return 0;
} catch (const lab::Error& e) {
  fmt::print(stderr, "bench_methods: error: {}\n", e.what());
  return 2;
}
