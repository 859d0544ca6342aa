// Usage: bench_metrics [PROBE [BATCH [sensitivity-n|curves|unit [REPEATS]]]] (default 256 probed
// steps, the batch of Context; sensitivity-n: only the Sensitivity-N section; curves: only the
// full-resolution Insertion and Deletion curves; unit: only the unit section below, REPEATS
// rounds, default 3; --help lists them).
// Unit: a work unit of 4 images at 224×224 (the paper-scale run's unit), scored by Insertion,
// Deletion, Sensitivity-N (paper defaults) and pixel flipping with the samples one after the
// other (Context::concurrent_samples = false, the way before) and as the engine spreads them
// (concurrent on the TBB workers, one OpenMP thread each), interleaved in the same process,
// REPEATS rounds: wall and CPU seconds of each (medians), the on-CPU seconds of the busiest thread
// (the wall time with a free core per thread), outputs compared bit for bit.
// Full-resolution Insertion and Deletion curves (one pixel per step: 50,176 steps + the start
// each at 224×224) for one multi-color-sum image, evaluated incrementally (the metric as users
// run it), against the way without incremental evaluation: every step a full forward pass,
// batched. The slow side is measured on the first `probe` steps of each path and extrapolated to
// the whole path; those steps are also compared with the incremental result (they must be equal).
// Both are measured in the same run; the ratio is what the metrics issue asks for (≥ 100×).
// Then coarse Deletion curves (64 and 16 steps) against the one-pixel curve: split pixel by pixel
// (the engine), whole rectangles, and full forward passes.
// Then one row per metric of the soundness and ROAD papers at its defaults on the same image: soundness (99 LeRF
// steps) and completeness (9 thresholds, the unperturbed and the empty input) with background
// removal, evaluated incrementally against the same metric with a full forward pass per step
// (results compared); road (2 × 9 imputed inputs) against the full forward passes of its
// inputs alone (the imputation is the extra cost). Each ratio is measured in the same run.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "datasets/environment.h"
#include "experiments/engine/incremental.h"
#include "attributions/method.h"
#include "experiments/metrics/completeness.h"
#include "experiments/metrics/insertion_deletion.h"
#include "experiments/metrics/metric.h"
#include "experiments/metrics/road.h"
#include "experiments/metrics/sensitivity_n.h"
#include "experiments/metrics/soundness.h"
#include "lab/core/runtime.h"

namespace {

double seconds_of(const std::function<void()>& work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Sensitivity-N's first map of an image at the paper's parameters (16 log-spaced N on
/// [1, 224·224), 100 subsets each, the (0, 0, 0) replacement): the engine's subset evaluation
/// as the metric ran it before (N ≤ P/32 on one incremental path, the others full forward passes
/// of the whole input) against its current plan (the cost model's path limit, the others
/// assembled after the leading pixel-wise layers), on the same subsets in the same run, outputs
/// compared bit for bit; then each part alone and the current plan at other path limits.
void sensitivity_n_section(const lab::Network& net, const lab::Tensor& x, int64_t per_call) {
  const lab::Tensor image = x.reshaped(x.sample_shape());
  const int64_t hw = image.dim(1) * image.dim(2);
  const lab::Tensor zero(image.shape(), 0.0f);
  const std::vector<int64_t> ns = experiments::log_schedule(hw, 16);
  const int64_t per_n = 100;
  // The subsets, drawn as the metric draws them (partial Fisher–Yates from one stream).
  std::vector<std::vector<int64_t>> subsets;
  {
    lab::Rng rng(lab::derive_seed(0, 0), 1);
    std::vector<int64_t> pixels(static_cast<size_t>(hw));
    for (int64_t p = 0; p < hw; ++p) pixels[static_cast<size_t>(p)] = p;
    for (const int64_t n : ns)
      for (int64_t r = 0; r < per_n; ++r) {
        for (int64_t i = 0; i < n; ++i)
          std::swap(pixels[static_cast<size_t>(i)], pixels[static_cast<size_t>(rng.uniform_int(i, hw - 1))]);
        subsets.emplace_back(pixels.begin(), pixels.begin() + n);
      }
  }
  const size_t end = experiments::OutputReader(net, experiments::OutputKind::kProbability).end();
  experiments::Context context;
  context.net = &net;
  context.batch = per_call;
  const experiments::PathEvaluator evaluator = experiments::path_evaluator(context, end);
  experiments::PathEvaluator::Params knobs;
  knobs.max_batch = per_call;
  knobs.assemble_at_cut = false;
  const experiments::PathEvaluator evaluator_before(net, end, knobs);
  // Evaluates the subsets with indices in [from, to) under `plan` (paths from the input when the
  // plan does not assemble at the cut, as before).
  const auto run = [&](const experiments::SubsetPlan& plan, size_t from, size_t to, experiments::SubsetStats* stats,
                       lab::Tensor* y) {
    return seconds_of([&] {
      lab::Tensor out = experiments::evaluate_subsets(
          net, plan.assemble_at_cut ? evaluator : evaluator_before, end, image, zero, static_cast<int64_t>(to - from),
          [&](int64_t q, std::vector<int64_t>& pixels) { pixels = subsets[from + static_cast<size_t>(q)]; }, plan, stats);
      if (y) *y = std::move(out);
    });
  };
  experiments::SubsetPlan before = experiments::subset_plan(context);
  before.path_below = hw / 32;
  before.assemble_at_cut = false;
  const experiments::SubsetPlan now = experiments::subset_plan(context);
  fmt::print("sensitivity-n: N = {}; {} subsets of {} pixels in all\n", fmt::join(ns, ","), subsets.size(), [&] {
    int64_t total = 0;
    for (const auto& s : subsets) total += static_cast<int64_t>(s.size());
    return total;
  }());
  for (int repeat = 0; repeat < 2; ++repeat) {
    lab::Tensor y_before, y_now;
    experiments::SubsetStats s_before, s_now;
    const double t_before = run(before, 0, subsets.size(), &s_before, &y_before);
    const double t_now = run(now, 0, subsets.size(), &s_now, &y_now);
    int64_t unequal = 0;
    for (int64_t i = 0; i < y_now.numel(); ++i) unequal += y_now[i] != y_before[i];
    fmt::print("sensitivity-n first map: before {:.3f} s ({} on the path (N <= {}), {} full passes from the input); "
               "now {:.3f} s ({} on the path (N <= {}), {} full passes from activation {}); {:.1f}x; outputs unequal: {}\n",
               t_before, s_before.on_path, s_before.path_below, s_before.full, t_now, s_now.on_path, s_now.path_below,
               s_now.full, s_now.cut, t_before / t_now, unequal);
  }
  // The parts: subsets in the order of N, so each N's 100 subsets are a range.
  for (size_t i = 0; i < ns.size(); ++i) {
    const size_t from = i * per_n, to = from + per_n;
    experiments::SubsetPlan path = now, path_before = before, full = now, plain = before;
    path.path_below = hw;
    path_before.path_below = hw;
    full.path_below = 0;
    plain.path_below = 0;
    // Paths of the large N (2N steps per subset) take minutes: timed up to the old limit only.
    const bool small = ns[i] <= hw / 32;
    const double t_path_before = small ? run(path_before, from, to, nullptr, nullptr) : NAN;
    const double t_path = small ? run(path, from, to, nullptr, nullptr) : NAN;
    const double t_full = run(full, from, to, nullptr, nullptr);
    const double t_plain = run(plain, from, to, nullptr, nullptr);
    fmt::print("  N = {:5d}, 100 subsets: on a path from the input {:.4f} s, from the cut {:.4f} s; full passes from "
               "the input {:.4f} s, from the cut {:.4f} s\n",
               ns[i], t_path_before, t_path, t_plain, t_full);
  }
}

}  // namespace

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// On-CPU seconds of each thread of the process so far, by thread id (/proc/self/task/*/schedstat).
std::map<std::string, double> thread_seconds() {
  std::map<std::string, double> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "schedstat");
    double ns = 0.0;
    if (in >> ns) out[task.path().filename().string()] = ns * 1e-9;
  }
  return out;
}

/// The largest growth of one thread's on-CPU seconds between two snapshots: the busiest thread,
/// what the wall time would be with a free core per thread (a figure the machine's load hardly moves).
double busiest_thread(const std::map<std::string, double>& before, const std::map<std::string, double>& after) {
  double top = 0.0;
  for (const auto& [id, t] : after) {
    const auto it = before.find(id);
    top = std::max(top, t - (it == before.end() ? 0.0 : it->second));
  }
  return top;
}

/// Whether two outputs agree bit for bit (rows and curves, in order).
bool identical(const experiments::MetricOutput& a, const experiments::MetricOutput& b) {
  if (a.rows.size() != b.rows.size() || a.curves.size() != b.curves.size()) return false;
  for (size_t i = 0; i < a.rows.size(); ++i)
    if (a.rows[i].sample != b.rows[i].sample || std::memcmp(&a.rows[i].value, &b.rows[i].value, sizeof(double)) != 0)
      return false;
  for (size_t i = 0; i < a.curves.size(); ++i)
    if (a.curves[i].sample != b.curves[i].sample || std::memcmp(&a.curves[i].x, &b.curves[i].x, sizeof(double)) != 0 ||
        std::memcmp(&a.curves[i].y, &b.curves[i].y, sizeof(double)) != 0)
      return false;
  return true;
}

/// The unit section (see the file comment): 4 multi-color-sum images at 224×224.
void unit_section(const datasets::Environment& env, const lab::Network& net, int64_t per_call, int repeats) {
  const int64_t n = 4, hw = 224 * 224;
  experiments::Batch batch;
  batch.x = lab::Tensor({n, 3, 224, 224});
  batch.attr = lab::Tensor({n, 224, 224});
  batch.gt = lab::Tensor({n, 224, 224});
  for (int64_t i = 0; i < n; ++i) {
    const datasets::Sample sample = env.generate(0, i);
    const lab::Tensor x = env.to_input(sample.image);
    std::memcpy(batch.x.sample(i), x.data(), static_cast<size_t>(x.numel()) * sizeof(float));
    std::memcpy(batch.gt.sample(i), sample.gt.data(), static_cast<size_t>(hw) * sizeof(float));
    // The ground truth plus a ripple of its own per image (not trivially ordered).
    for (int64_t p = 0; p < hw; ++p)
      batch.attr.sample(i)[p] = sample.gt[p] + 0.001f * static_cast<float>((p * 7919 + i * 104729) % 1000) / 1000.0f;
    batch.ids.push_back(sample.id);
    batch.target.push_back(env.target_output(sample.label));
    batch.seeds.push_back(static_cast<uint64_t>(i));
  }
  experiments::Context context;
  context.net = &net;
  context.env = env.name();
  context.background = env.background();
  context.predicted_label = [&](const float* row) { return env.predicted_label(row); };
  context.batch = per_call;
  context.unit = n;
  fmt::print("unit of {} images at 224x224, {} threads, {} rounds (serial and concurrent interleaved)\n", n,
             lab::Runtime::get().threads(), repeats);
  for (const std::string name : {"insertion", "deletion", "sensitivity-n", "pixel-flipping"}) {
    std::vector<double> wall[2], cpu[2], busiest[2];
    bool same = true;
    experiments::MetricOutput first;
    for (int r = 0; r < repeats; ++r)
      for (const bool concurrent : {false, true}) {
        // A fresh metric each time: Sensitivity-N's score cache would answer the later rounds.
        lab::Options none("-p");
        const auto metric = experiments::make_metric(name, none, experiments::MetricSetup::of(env));
        context.concurrent_samples = concurrent;
        experiments::MetricOutput out;
        const auto threads0 = thread_seconds();
        const double c0 = cpu_seconds();
        const double w = seconds_of([&] { out = metric->evaluate(context, batch); });
        cpu[concurrent].push_back(cpu_seconds() - c0);
        busiest[concurrent].push_back(busiest_thread(threads0, thread_seconds()));
        wall[concurrent].push_back(w);
        if (r == 0 && !concurrent) first = std::move(out);
        else same = same && identical(out, first);
      }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2.0;
    };
    fmt::print("{:15s} serial: wall {:.2f} s ({:.2f}), CPU {:.2f} s, busiest thread {:.2f} s; concurrent: wall {:.2f} s "
               "({:.2f}), CPU {:.2f} s, busiest thread {:.2f} s; wall ratio {:.2f}x, busiest-thread ratio {:.2f}x; "
               "outputs bit-identical: {}\n",
               name, median(wall[0]), fmt::join(wall[0], "/"), median(cpu[0]), median(busiest[0]), median(wall[1]),
               fmt::join(wall[1], "/"), median(cpu[1]), median(busiest[1]), median(wall[0]) / median(wall[1]),
               median(busiest[0]) / median(busiest[1]), same ? "yes" : "NO");
    std::fflush(stdout);
  }
}

int main(int argc, char** argv) {
  lab::prepare_process(argv);
  int64_t probe = 256, per_call = experiments::Context{}.batch;
  std::string only;
  int repeats = 3;
  bench::App app{
      "Metrics on one 224x224 multi-color-sum image against the same metric without incremental evaluation, "
      "measured in the same run: Sensitivity-N; full-resolution Insertion and Deletion curves (the slow side on "
      "the first PROBE steps, extrapolated); coarse Deletion curves; the soundness, completeness and ROAD metrics. "
      "Or the unit section: a work unit of 4 images with its samples scored one after the other and concurrently "
      "(see the top of bench/bench_metrics.cpp)",
      "bench_metrics"};
  app.add_option("PROBE", probe, "Steps of each full-resolution curve timed with a full forward pass per step")
      ->check(bench::integer(1, 224 * 224));
  app.add_option("BATCH", per_call, "Inputs per network call")->check(bench::integer(1));
  app.add_option("SECTION", only, "Only this section: sensitivity-n, curves or unit")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text.empty() || text == "sensitivity-n" || text == "curves" || text == "unit") return {};
            return "expected sensitivity-n, curves or unit, got '" + text + "'";
          },
          ""))
      ->default_str("every section but unit");
  app.add_option("REPEATS", repeats, "Rounds of the unit section")->check(bench::integer(1));
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  lab::Options options = lab::Options::parse({"size=224"}, "-o");
  const auto env = datasets::make_environment("multi-color-sum", options);
  const lab::Network net = env->build_network();
  const datasets::Sample sample = env->generate(0, 0);
  const lab::Tensor x = env->to_input(sample.image).reshaped({1, 3, 224, 224});
  const int64_t hw = 224 * 224;

  // A map that is not trivially ordered: the ground truth plus a deterministic ripple.
  lab::Tensor attr({1, 224, 224});
  for (int64_t p = 0; p < hw; ++p) attr[p] = sample.gt[p] + 0.001f * static_cast<float>((p * 7919) % 1000) / 1000.0f;

  experiments::Context context;
  context.net = &net;
  context.env = env->name();
  context.background = env->background();
  context.predicted_label = [&](const float* row) { return env->predicted_label(row); };
  context.batch = per_call;
  experiments::Batch batch;
  batch.ids = {sample.id};
  batch.x = x;
  batch.attr = attr;
  batch.target = {env->target_output(sample.label)};
  batch.gt = sample.gt.reshaped({1, 224, 224});
  batch.seeds = {0};

  if (only == "unit") {
    unit_section(*env, net, per_call, repeats);
    return 0;
  }
  fmt::print("threads {}, image 224x224, {} steps per curve, batch {}\n", lab::Runtime::get().threads(), hw, per_call);
  if (only.empty() || only == "sensitivity-n") sensitivity_n_section(net, x, per_call);
  if (only == "sensitivity-n") return 0;
  double fast_total = 0.0, slow_total = 0.0;
  for (const auto kind : {experiments::InsertionDeletion::Kind::kInsertion, experiments::InsertionDeletion::Kind::kDeletion}) {
    const experiments::InsertionDeletion metric(kind, {});
    experiments::MetricOutput out;
    const double fast = seconds_of([&] { out = metric.evaluate(context, batch); });

    // The slow side: the same path, every step a full forward pass, on the first `probe` steps.
    const experiments::PathEvaluator full = metric.evaluator(context, false);
    experiments::PerturbationPath path;
    const lab::Tensor canvas(x.sample_shape(), 0.0f);
    const lab::Tensor image = x.reshaped(x.sample_shape());
    const bool insertion = kind == experiments::InsertionDeletion::Kind::kInsertion;
    path.start = insertion ? canvas : image;
    path.source = insertion ? image : canvas;
    path.order = experiments::attribution_order(attr.data(), hw);
    path.step_ends = experiments::uniform_steps(probe, 1);
    lab::Tensor slow_out;
    const double slow_probe = seconds_of([&] { slow_out = full.run(path); });
    const double slow = slow_probe * static_cast<double>(hw + 1) / static_cast<double>(probe + 1);

    // Exactness on the probed steps: the curve's y against the full forward passes.
    const experiments::OutputReader reader(net, experiments::OutputKind::kProbability);
    int64_t mismatches = 0;
    for (int64_t s = 0; s <= probe; ++s) {
      const double y = reader.score(slow_out.sample(s), slow_out.dim(1), batch.target[0]);
      mismatches += y != out.curves[static_cast<size_t>(s)].y;
    }
    fmt::print("{:9s}: incremental {:8.3f} s ({} points, AUC {:.6f}); full forward {:9.1f} s (extrapolated from {} steps); "
               "ratio {:7.1f}x; mismatches on probed steps: {}\n",
               metric.name(), fast, out.curves.size(), out.rows.front().value, slow, probe, slow / fast, mismatches);

    // Before paths started after the pixel-wise layers: the same whole path from the input.
    experiments::PathEvaluator::Params knobs;
    knobs.max_batch = per_call;
    knobs.assemble_at_cut = false;
    const experiments::PathEvaluator from_input(net, reader.end(), knobs);
    path.step_ends = experiments::uniform_steps(hw, 1);
    const experiments::PathEvaluator at_cut = metric.evaluator(context);
    lab::Tensor before_out, now_out;
    const double before = seconds_of([&] { before_out = from_input.run(path); });
    const double now = seconds_of([&] { now_out = at_cut.run(path); });
    int64_t unequal = 0;
    for (int64_t i = 0; i < now_out.numel(); ++i) unequal += now_out[i] != before_out[i];
    fmt::print("{:9s}: the path from the input (before) {:.3f} s, from activation {} (now) {:.3f} s: {:.2f}x; "
               "outputs unequal: {}\n",
               metric.name(), before, at_cut.path_cut(), now, before / now, unequal);
    fast_total += fast;
    slow_total += slow;
  }
  fmt::print("both curves: incremental {:.3f} s, full forward {:.1f} s, ratio {:.1f}x (target >= 100x)\n", fast_total,
             slow_total, slow_total / fast_total);
  if (only == "curves") return 0;

  // Coarse curves (several pixels per step, e.g. the 64-step curve) must never cost more than
  // the one-pixel curve: the engine writes a step of far-apart pixels pixel by pixel. Deletion path,
  // same order; "whole" evaluates each step as one rectangle (the engine without splitting),
  // "full" a full forward pass per step.
  {
    const experiments::InsertionDeletion metric(experiments::InsertionDeletion::Kind::kDeletion, {});
    const experiments::PathEvaluator split = metric.evaluator(context, true);
    const experiments::PathEvaluator full = metric.evaluator(context, false);
    experiments::PathEvaluator::Params knobs;
    knobs.max_batch = per_call;
    knobs.split_steps = false;
    const size_t end = experiments::OutputReader(net, experiments::OutputKind::kProbability).end();
    const experiments::PathEvaluator whole(net, end, knobs);
    experiments::PerturbationPath path;
    path.start = x.reshaped(x.sample_shape());
    path.source = lab::Tensor(x.sample_shape(), 0.0f);
    path.order = experiments::attribution_order(attr.data(), hw);
    path.step_ends = experiments::uniform_steps(hw, 1);
    lab::Tensor fine;
    const double one_pixel = seconds_of([&] { fine = split.run(path); });
    fmt::print("deletion, 1 pixel per step ({} steps): {:.3f} s\n", hw, one_pixel);
    for (const int64_t steps : {64, 16}) {
      path.step_ends = experiments::uniform_steps(hw, (hw + steps - 1) / steps);
      experiments::PathEvaluator::Stats stats;
      lab::Tensor a, b, c;
      const double t_split = seconds_of([&] { a = split.run(path, &stats); });
      const double t_whole = seconds_of([&] { b = whole.run(path); });
      const double t_full = seconds_of([&] { c = full.run(path); });
      // The split curve's rows against the 1-pixel curve's rows at the same states (the same
      // window evaluations: equal), and against full forward passes (equal up to the last bit
      // where the window convolutions sum in another order; the largest difference is printed).
      int64_t unequal_fine = 0;
      double max_diff = 0.0;
      for (int64_t r = 0; r < a.dim(0); ++r)
        for (int64_t j = 0; j < a.dim(1); ++j) {
          const int64_t fr = r == 0 ? 0 : path.step_ends[static_cast<size_t>(r - 1)];
          unequal_fine += a[r * a.dim(1) + j] != fine[fr * a.dim(1) + j];
          max_diff = std::max(max_diff, static_cast<double>(std::abs(a[r * a.dim(1) + j] - c[r * a.dim(1) + j])));
        }
      fmt::print("deletion, {:2d} steps: split {:.3f} s ({} sub-steps) = {:.2f}x the 1-pixel curve; whole steps {:.3f} s "
                 "({:.2f}x); full forward {:.3f} s ({:.2f}x); split vs whole {:.1f}x faster; rows unequal to the 1-pixel "
                 "curve: {}; largest difference to full forward {:.1e}\n",
                 path.steps(), t_split, stats.sub_steps, t_split / one_pixel, t_whole, t_whole / one_pixel, t_full,
                 t_full / one_pixel, t_whole / t_split, unequal_fine, max_diff);
    }
  }

  // The metrics of the unified, coherency and false-sense papers, each at its defaults, against
  // one full forward pass per network input it evaluates (a forward measured here, batched
  // `per_call` at a time on copies of the image, times the inputs the metric evaluates).
  const int64_t copies = std::min<int64_t>(per_call, 64);
  const lab::Tensor stacked = lab::Tensor::stack(std::vector<lab::Tensor>(static_cast<size_t>(copies), x.reshaped(x.sample_shape())));
  const double forward = seconds_of([&] { (void)net.forward(stacked); }) / static_cast<double>(copies);
  fmt::print("one full forward pass: {:.4f} s (batched {} at a time)\n", forward, copies);
  const std::unique_ptr<attributions::Method> saliency = [] {
    lab::Options none("-p");
    return attributions::make_method("saliency", none);
  }();
  const attributions::Context method_context{.net = &net};
  context.explain = [&](const lab::Tensor& xs, const std::string&, int64_t target, const std::vector<uint64_t>& seeds) {
    attributions::Batch b;
    b.x = xs;
    b.target.assign(static_cast<size_t>(xs.batch()), target);
    b.seeds = seeds;
    return saliency->attribute(method_context, b).attr;
  };
  struct Row {
    const char* metric;
    int64_t inputs;  ///< network inputs a full forward per step evaluates (re-explanations: forward + backward)
  };
  const Row rows[] = {{"pixel-flipping", hw + 1},        {"reference-pixel-flipping", hw / 2 + 1},
                      {"monotonicity", hw},              {"average-drop", 2},
                      {"increase-in-confidence", 2},     {"average-gain", 2},
                      {"max-sensitivity", 2 * 200},      {"avg-sensitivity", 2 * 200}};
  for (const Row& r : rows) {
    lab::Options none("-p");
    const std::unique_ptr<experiments::Metric> metric = experiments::make_metric(r.metric, none, experiments::MetricSetup::of(*env));
    experiments::MetricOutput out;
    const double took = seconds_of([&] { out = metric->evaluate(context, batch); });
    const double full = forward * static_cast<double>(r.inputs);
    fmt::print("{:24s}: {:8.3f} s per image; full forward per step {:9.2f} s ({} inputs); ratio {:7.1f}x; value {:.6g}\n",
               r.metric, took, full, r.inputs, full / took, out.rows.front().value);
  }

  // Soundness and completeness: incremental against a full forward pass per step, same results.
  const experiments::MetricSetup setup = experiments::MetricSetup::of(*env);
  for (const char* name : {"soundness", "completeness"}) {
    lab::Options none = lab::Options::parse({}, "-p");
    const auto metric = experiments::make_metric(name, none, setup);
    experiments::MetricOutput fast_out, slow_out;
    context.incremental = true;
    const double fast = seconds_of([&] { fast_out = metric->evaluate(context, batch); });
    context.incremental = false;
    const double slow = seconds_of([&] { slow_out = metric->evaluate(context, batch); });
    context.incremental = true;
    int64_t mismatches = 0;
    for (size_t i = 0; i < fast_out.curves.size(); ++i) mismatches += fast_out.curves[i].y != slow_out.curves[i].y;
    fmt::print("{:12s}: incremental {:7.3f} s per image; full forward per step {:7.3f} s; cost ratio {:5.3f} "
               "(speed-up {:.1f}x); {} = {:.6f}; mismatches {}\n",
               name, fast, slow, fast / slow, slow / fast, fast_out.rows.front().variant, fast_out.rows.front().value,
               mismatches);
  }

  // ROAD: imputation and forward passes, against the forward passes of the same 18 inputs alone.
  {
    lab::Options none = lab::Options::parse({}, "-p");
    const auto metric = experiments::make_metric("road", none, setup);
    experiments::MetricOutput out;
    const double total = seconds_of([&] { out = metric->evaluate(context, batch); });
    const int64_t inputs = static_cast<int64_t>(out.curves.size());
    lab::Tensor road_inputs({inputs, 3, 224, 224});
    for (int64_t q = 0; q < inputs; ++q) std::copy(x.data(), x.data() + 3 * hw, road_inputs.sample(q));
    const double road_forward = seconds_of([&] {
      for (int64_t begin = 0; begin < inputs; begin += per_call)
        (void)net.forward(road_inputs.slice(begin, std::min(inputs, begin + per_call)));
    });
    fmt::print("{:12s}: {:7.3f} s per image ({} imputed inputs); their full forward passes alone {:7.3f} s; "
               "cost ratio {:5.2f}; combined = {:.6f}\n",
               "road", total, inputs, road_forward, total / road_forward, out.rows[2].value);
  }
  return 0;
}
