// Projected wall time of the paper-scale studies on this machine. For each study (default: both
// studies the paper-scale run is about, unseen-data-effect and faithfulness-test) the shipped
// config is loaded and its "paper-scale" block applied as `attrlab run NAME --paper-scale` does
// (224×224 images, 100 of them, the full optimisation budgets and Sensitivity-N subsets); then
// ONE work unit of one image runs for every method of the study through the pipeline `attrlab run`
// uses (experiments/pipeline.h: the attribute stage, the maps saved, the score stage with every
// metric), timing the method and each metric separately (the score stage's own per-metric
// seconds). Work a run does once is timed too: the data directory (generating the reference
// images, scaled to the study's image count), the network, the score stage and each attribute
// stage. The projection is
//   Σ_models [data + network + stages] + Σ_models Σ_methods (method + save + metrics per image) × images,
// each image being one unit of the run's cost (units of several images cost the same per image,
// up to per-call set-up such as IBA's cached statistics, which the one-image unit charges in full).
// By default the unit runs on the first model of a study and is counted once per model (the models
// of a study share environment, architecture and image size; their costs differ by the maps'
// effect on the incremental curves only); --all-models measures every model. A method whose model,
// data and parameters are those of a method already measured (the same GradCAM in both studies) is
// not run again: its map and time are reused, and it is still counted in both studies.
// Times are wall-clock seconds: the projection is a wall time.
//
// Usage: bench_study [--threads T] [--study NAME]... [--quick] [--all-models]
//   --threads T    oneDNN/TBB threads (default: ATTRLAB_THREADS, else all cores)
//   --study NAME   a study to project (repeatable; default unseen-data-effect and faithfulness-test)
//   --quick        only the one-pass methods (GradCAM, GuidedBP, LRP, controls) with every metric:
//                  a smoke run whose projection covers those methods only
//   --all-models   run the unit on every model of a study instead of the first
#include <fmt/core.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "datasets/environment.h"
#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "experiments/pipeline.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

template <typename F>
double seconds_of(F&& work) {
  const auto t0 = Clock::now();
  work();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// CPU seconds of the process (every thread).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// A scratch directory removed at exit.
struct Scratch {
  fs::path dir;
  Scratch() {
    dir = fs::temp_directory_path() / fmt::format("attrlab-bench-study-{}", ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

/// The resolved config of `name` with its paper-scale block applied, as `run --paper-scale` does.
json paper_scale_config(const std::string& name) {
  json config = experiments::load_config(name);
  std::vector<std::string> items;
  const json scale = config.value("paper-scale", json::object());
  for (const auto& [key, value] : scale.items())
    items.push_back(key + "=" + (value.is_string() ? value.get<std::string>() : value.dump()));
  experiments::apply_overrides(config, items);
  return experiments::finalize(config);
}

/// One method of one study: seconds per image of its parts.
struct MethodCost {
  std::string label;
  double method = 0;                            ///< the attribute stage
  double save = 0;                              ///< writing the maps
  std::vector<std::pair<std::string, double>> metrics;  ///< each metric, in config order
  double scoring = 0;                           ///< the score stage beyond its metrics
  double setup = 0;                             ///< the attribute stage's construction (once per run)
  bool reused = false;                          ///< measured in an earlier study
  double cpu = 0;                               ///< CPU seconds of the unit (all threads)
  double per_image() const {
    double s = method + save + scoring;
    for (const auto& [name, t] : metrics) s += t;
    return s;
  }
};

struct StudyCost {
  std::string name;
  int64_t count = 0, models = 0, measured_models = 0;
  double data = 0;     ///< per model, scaled to `count` images
  double network = 0;  ///< per model
  double scores = 0;   ///< score stage construction per model
  std::vector<MethodCost> methods;  ///< summed over the measured models, divided by measured_models
  double fixed() const {
    double s = data + network + scores;
    for (const MethodCost& m : methods) s += m.setup;
    return s * static_cast<double>(models);
  }
  double per_method(const MethodCost& m) const { return m.per_image() * static_cast<double>(count * models); }
  double total() const {
    double s = fixed();
    for (const MethodCost& m : methods) s += per_method(m);
    return s;
  }
};

/// What identifies a method's map: the model's data, the network's options, the method and its parameters.
std::string map_key(const datasets::DataDir& data, const experiments::MethodSpec& spec) {
  return data.fingerprint() + "|" + data.env().name() + "|" + data.env().options().dump() + "|" + spec.name + "|" +
         spec.params.dump();
}

struct Measured {
  experiments::AttributedUnit unit;
  double method = 0;
  double cpu = 0;
};

bool quick_method(const std::string& name) {
  static const std::set<std::string> names = {"gradcam", "guided-backprop", "lrp", "random", "constant"};
  return names.count(name) > 0;
}

StudyCost measure_study(const std::string& name, bool quick, bool all_models, const fs::path& scratch,
                        std::map<std::string, Measured>& cache) {
  const json resolved = paper_scale_config(name);
  const experiments::Experiment e = experiments::Experiment::from_json(resolved);
  experiments::check_experiment(e);
  StudyCost study;
  study.name = name;
  study.count = e.count;
  study.models = static_cast<int64_t>(e.models.size());
  // The data a unit needs: the reference inputs of the methods (the first `reference` images).
  const int64_t generated = std::min(e.count, std::max<int64_t>(e.reference, 1));
  std::map<std::string, size_t> index;
  for (size_t m = 0; m < e.models.size(); ++m) {
    if (m > 0 && !all_models) break;
    const experiments::ModelSpec& model = e.models[m];
    ++study.measured_models;
    fmt::print(stderr, "{} / {}: generating {} of {} images\n", name, model.label, generated, e.count);
    const fs::path dir = scratch / name / model.label;
    std::unique_ptr<datasets::DataDir> data;
    study.data += seconds_of([&] {
                    const auto env = experiments::make_model_environment(model);
                    datasets::write_data_dir(*env, generated, experiments::data_seed(e), dir / "data", false);
                    data = std::make_unique<datasets::DataDir>(datasets::DataDir::open(dir / "data"));
                  }) *
                  static_cast<double>(e.count) / static_cast<double>(generated);
    lab::Network net;
    study.network += seconds_of([&] { net = data->env().build_network(); });
    std::unique_ptr<experiments::ScoreStage> scores;
    study.scores += seconds_of([&] {
      scores = std::make_unique<experiments::ScoreStage>(*data, net, experiments::make_model_metrics(e, model),
                                                         static_cast<uint64_t>(e.seed), e.unit, e.batch);
    });
    // Warm-up: the first network calls of the process create primitives every method would share.
    {
      const lab::Tensor x = data->inputs(0, 1);
      const lab::Trace t = net.trace(x);
      (void)net.gradient(t, lab::Tensor(t.output().shape(), 1.0f));
    }
    for (const experiments::MethodSpec& spec : e.methods) {
      if (!spec.runs_on(model.label) || !spec.maps.empty()) continue;
      if (quick && !quick_method(spec.name)) continue;
      if (!index.count(spec.label)) {
        index[spec.label] = study.methods.size();
        study.methods.push_back({spec.label, 0, 0, {}, 0, 0, false});
      }
      MethodCost& cost = study.methods[index.at(spec.label)];
      const double cpu0 = cpu_seconds();
      const auto method = experiments::make_spec_method(spec);
      const experiments::AttributeSetup setup{spec.label, experiments::TargetMode{e.target, -1},
                                              static_cast<uint64_t>(e.seed), e.reference, e.batch};
      std::unique_ptr<experiments::AttributeStage> stage;
      cost.setup += seconds_of([&] { stage = std::make_unique<experiments::AttributeStage>(*data, net, *method, setup); });
      // One unit of one image: the attribute stage (or the same map measured before).
      const std::string key = map_key(*data, spec);
      experiments::AttributedUnit unit;
      double method_seconds = 0;
      const auto hit = cache.find(key);
      if (hit != cache.end()) {
        fmt::print(stderr, "{} / {} / {}: the map of an earlier study ({:.1f} s)\n", name, model.label, spec.label,
                   hit->second.method);
        unit = hit->second.unit;
        method_seconds = hit->second.method;
        cost.cpu += hit->second.cpu;
        cost.reused = true;
      } else {
        fmt::print(stderr, "{} / {} / {}: method...\n", name, model.label, spec.label);
        method_seconds = seconds_of([&] { unit = stage->run(0, 1); });
        cache[key] = {unit, method_seconds, cpu_seconds() - cpu0};
      }
      cost.method += method_seconds;
      if (e.save_maps) {
        const fs::path maps = dir / "maps" / spec.slug;
        fs::create_directories(maps);
        cost.save += seconds_of([&] { stage->save_maps(unit, maps); });
      }
      fmt::print(stderr, "{} / {} / {}: metrics...\n", name, model.label, spec.label);
      experiments::Scores s;
      const double score_seconds = seconds_of([&] {
        s = scores->score(model.label, spec.label, 0, 1, unit.result.attr, unit.batch.target, stage->explainer());
      });
      double metric_sum = 0;
      for (size_t k = 0; k < scores->metrics().size(); ++k) {
        const std::string metric = scores->metrics()[k]->name();
        const double t = s.metric_seconds.at(metric).get<double>();
        metric_sum += t;
        if (cost.metrics.size() <= k) cost.metrics.push_back({metric, 0});
        cost.metrics[k].second += t;
      }
      cost.scoring += std::max(0.0, score_seconds - metric_sum);
      cost.cpu += cpu_seconds() - cpu0;
      std::string parts;
      for (const auto& metric : scores->metrics())
        parts += fmt::format(", {} {:.2f} s", metric->name(), s.metric_seconds.at(metric->name()).get<double>());
      fmt::print(stderr, "{} / {} / {}: method {:.2f} s{}\n", name, model.label, spec.label, method_seconds, parts);
    }
  }
  const double n = static_cast<double>(study.measured_models);
  study.data /= n;
  study.network /= n;
  study.scores /= n;
  for (MethodCost& m : study.methods) {
    m.method /= n;
    m.save /= n;
    m.scoring /= n;
    m.setup /= n;
    m.cpu /= n;
    for (auto& [metric, t] : m.metrics) t /= n;
  }
  return study;
}

std::string minutes(double seconds) { return fmt::format("{:.1f}", seconds / 60.0); }

}  // namespace

int main(int argc, char** argv) try {
  lab::prepare_process(argv);
  std::vector<std::string> studies;
  bool quick = false, all_models = false;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = lab::parse_threads(argv[++i], "--threads");
    } else if (std::strcmp(argv[i], "--study") == 0 && i + 1 < argc) {
      studies.emplace_back(argv[++i]);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--all-models") == 0) {
      all_models = true;
    } else {
      fmt::print(stderr, "usage: bench_study [--threads T] [--study NAME]... [--quick] [--all-models]\n");
      return 1;
    }
  }
  if (threads > 0) lab::Runtime::get().set_threads(threads);
  if (studies.empty()) studies = {"unseen-data-effect", "faithfulness-test"};
  const Scratch scratch;
  std::map<std::string, Measured> cache;
  std::vector<StudyCost> costs;
  for (const std::string& name : studies) costs.push_back(measure_study(name, quick, all_models, scratch.dir, cache));

  double total = 0;
  for (const StudyCost& s : costs) total += s.total();
  fmt::print("paper-scale studies, one unit of one image per method, {} thread(s){}\n", lab::Runtime::get().threads(),
             quick ? ", --quick (one-pass methods only)" : "");
  std::map<std::string, double> metric_totals;
  std::map<std::string, double> method_totals;  // by label over the studies
  std::vector<std::string> method_order;
  double method_part = 0;  // the methods' attribution itself, all studies
  double cpu_total = 0;    // CPU seconds of the units, all threads
  for (const StudyCost& s : costs) {
    fmt::print("\n{}: {} images x {} model(s) (measured on {}), projected {} min\n", s.name, s.count, s.models,
               s.measured_models, minutes(s.total()));
    std::string header = fmt::format("  {:<22} {:>9}", "method", "method s");
    if (!s.methods.empty())
      for (const auto& [metric, t] : s.methods.front().metrics) header += fmt::format(" {:>13}", metric + " s");
    header += fmt::format(" {:>8} {:>9} {:>10} {:>10} {:>7}", "other s", "unit s", "unit CPU s", "proj. min", "share");
    fmt::print("{}\n", header);
    for (const MethodCost& m : s.methods) {
      std::string line = fmt::format("  {:<22} {:>9.2f}", m.label + (m.reused ? " (r)" : ""), m.method);
      for (const auto& [metric, t] : m.metrics) {
        line += fmt::format(" {:>13.2f}", t);
        metric_totals[metric] += t * static_cast<double>(s.count * s.models);
      }
      const double projected = s.per_method(m);
      cpu_total += m.cpu * static_cast<double>(s.count * s.models);
      line += fmt::format(" {:>8.2f} {:>9.2f} {:>10.2f} {:>10} {:>6.1f}%", m.save + m.scoring, m.per_image(), m.cpu,
                          minutes(projected),
                          100.0 * projected / total);
      fmt::print("{}\n", line);
      if (!method_totals.count(m.label)) method_order.push_back(m.label);
      method_totals[m.label] += m.method * static_cast<double>(s.count * s.models);
      method_part += m.method * static_cast<double>(s.count * s.models);
    }
    fmt::print("  once per run: data {:.1f} s, network {:.2f} s, score stage {:.2f} s per model; attribute stages {:.2f} s "
               "-> {} min ({:.1f}%)\n",
               s.data, s.network, s.scores, s.fixed() / static_cast<double>(s.models) - s.data - s.network - s.scores,
               minutes(s.fixed()), 100.0 * s.fixed() / total);
  }
  fmt::print("\nshares of the projected wall time (both studies):\n");
  fmt::print("  {:<28} {:>10} {:>7}\n", "part", "proj. min", "share");
  for (const std::string& label : method_order)
    fmt::print("  {:<28} {:>10} {:>6.1f}%\n", "method " + label, minutes(method_totals[label]),
               100.0 * method_totals[label] / total);
  for (const auto& [metric, t] : metric_totals)
    fmt::print("  {:<28} {:>10} {:>6.1f}%\n", "metric " + metric, minutes(t), 100.0 * t / total);
  double fixed = 0;
  for (const StudyCost& s : costs) fixed += s.fixed();
  double metric_part = 0;
  for (const auto& [metric, t] : metric_totals) metric_part += t;
  const double other = total - fixed - method_part - metric_part;
  fmt::print("  {:<28} {:>10} {:>6.1f}%\n", "saving maps, score stage", minutes(other), 100.0 * other / total);
  fmt::print("  {:<28} {:>10} {:>6.1f}%\n", "once per run (data, setup)", minutes(fixed), 100.0 * fixed / total);
  fmt::print("\nCPU time of the units (all threads): {} min; over {} thread(s): {} min (load-insensitive check of the wall time)\n",
             minutes(cpu_total), lab::Runtime::get().threads(), minutes(cpu_total / lab::Runtime::get().threads()));
  fmt::print("\nprojected paper-scale wall time: {} min\n", static_cast<int64_t>(std::llround(total / 60.0)));
  return 0;
} catch (const lab::Error& e) {
  fmt::print(stderr, "bench_study: error: {}\n", e.what());
  return static_cast<int>(e.kind());
}
