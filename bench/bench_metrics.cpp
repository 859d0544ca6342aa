// Usage: bench_metrics [PROBE [BATCH]] (default 256 probed steps, the batch of Context).
// Full-resolution Insertion and Deletion curves (one pixel per step: 50,176 steps + the start
// each at 224×224) for one multi-color-sum image, evaluated incrementally (the metric as users
// run it), against the way without incremental evaluation: every step a full forward pass,
// batched. The slow side is measured on the first `probe` steps of each path and extrapolated to
// the whole path; those steps are also compared with the incremental result (they must be equal).
// Both are measured in the same run; the ratio is what the metrics issue asks for (≥ 100×).
// Then one row per metric of issue 17 at its defaults on the same image: soundness (99 LeRF
// steps) and completeness (9 thresholds, the unperturbed and the empty input) with background
// removal, evaluated incrementally against the same metric with a full forward pass per step
// (results compared); road (2 × 9 imputed inputs) against the full forward passes of its
// inputs alone (the imputation is the extra cost). Each ratio is measured in the same run.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>

#include "datasets/environment.h"
#include "experiments/engine/incremental.h"
#include "experiments/metrics/completeness.h"
#include "experiments/metrics/insertion_deletion.h"
#include "experiments/metrics/road.h"
#include "experiments/metrics/soundness.h"
#include "lab/core/runtime.h"

namespace {

double seconds_of(const std::function<void()>& work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  lab::prepare_process(argv);
  const int64_t probe = argc > 1 ? std::atoll(argv[1]) : 256;
  const int64_t per_call = argc > 2 ? std::atoll(argv[2]) : experiments::Context{}.batch;
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

  fmt::print("threads {}, image 224x224, {} steps per curve, batch {}\n", lab::Runtime::get().threads(), hw, per_call);
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
    fast_total += fast;
    slow_total += slow;
  }
  fmt::print("both curves: incremental {:.3f} s, full forward {:.1f} s, ratio {:.1f}x (target >= 100x)\n", fast_total,
             slow_total, slow_total / fast_total);

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
    lab::Tensor copies({inputs, 3, 224, 224});
    for (int64_t q = 0; q < inputs; ++q) std::copy(x.data(), x.data() + 3 * hw, copies.sample(q));
    const double forward = seconds_of([&] {
      for (int64_t begin = 0; begin < inputs; begin += per_call)
        (void)net.forward(copies.slice(begin, std::min(inputs, begin + per_call)));
    });
    fmt::print("{:12s}: {:7.3f} s per image ({} imputed inputs); their full forward passes alone {:7.3f} s; "
               "cost ratio {:5.2f}; combined = {:.6f}\n",
               "road", total, inputs, forward, total / forward, out.rows[2].value);
  }
  return 0;
}
