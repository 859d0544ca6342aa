// Projected wall time of the paper-scale studies on this machine, run as the README tells users
// to run them. For each study (default: both studies the paper-scale run is about,
// unseen-data-effect and faithfulness-test, in that order) the shipped config is loaded and its
// "paper-scale" block applied as `attrlab run NAME --paper-scale` does (224×224, 100 images, the
// full optimisation budgets and Sensitivity-N subsets); then the run's first work unit (the
// experiment's `unit` images, 4 at paper scale: the same images, one method call and one score
// call, as run.cpp forms them) runs for every method and model through the pipeline `attrlab run`
// uses (experiments/pipeline.h: the attribute stage, the maps saved, the score stage with every
// metric), timing the method and each metric apart. Work a run does once is timed too: the data
// directory (the reference images generated, scaled to the study's image count), the network and
// its first calls, the score stage and each attribute stage.
//
// Two kinds of cost live in a process rather than in a unit, and are measured apart:
//  - a method's first call (IBA's reference statistics, kept while network and reference inputs
//    stay the same): a method whose unit took under kRepeatSeconds runs its unit a second time;
//    the second run is the unit's cost, the excess of the first is charged to the first unit of
//    that method and model on each process;
//  - a metric's first score of an image (Sensitivity-N keeps the subsets' network outputs of an
//    image for every further map of it): the first method of a model is scored twice; the second
//    score is what every unit pays, the excess of the first is charged to the first unit of those
//    images on each process.
//
// Execution model. Default (--ranks R, R = the cores): `mpirun -n R -x ATTRLAB_THREADS=1 attrlab
// run NAME --paper-scale --mpi`, the faithfulness test with `--reuse` of unseen-data-effect's run.
// Units are measured with one thread and counted in CPU seconds (one thread: the unit's wall time
// on a free core, and insensitive to other load); unit i of the run's order (model, method, images)
// goes to rank i mod R (run.cpp), each rank pays the first-call and first-score excesses of what it
// sees, every rank does the once-per-run work at the same time. Per study:
//   wall = once-per-run + the busiest rank's units, which is at least max(Σ units ÷ R, longest unit).
// The studies run one after the other. A method whose maps an earlier study of this projection
// already made (same data, registry name, label, parameters, target, seed, reference: reuse.h)
// costs nothing but its scoring: the run takes those maps with --reuse.
// --threads T: one process of T threads (`attrlab run NAME --paper-scale` with ATTRLAB_THREADS=T):
// units timed in wall seconds at T threads, wall = once-per-run + Σ units.
//
// Usage: bench_study [--ranks R | --threads T] [--study NAME]... [--quick] [--first-model]
//                    [--compare RUN_DIR]...
//   --ranks R         R MPI ranks of one thread (default: the cores)
//   --threads T       one process of T threads instead
//   --study NAME      a study to project (repeatable; default unseen-data-effect and faithfulness-test)
//   --quick           only the one-pass methods (GradCAM, GuidedBP, LRP, controls) with every metric,
//                     on each study's first model: a smoke run whose projection covers those only
//   --first-model     measure a study's first model only and count it for the others (faster)
//   --all-models      measure every model (the default unless --quick)
//   --compare RUN_DIR a paper-scale run directory of a projected study (read only): per model and
//                     method, its units' mean CPU seconds (.done) beside this projection's
//   --help            these options and their defaults
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "bench/bench_cli.h"
#include "datasets/data_dir.h"
#include "datasets/environment.h"
#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "experiments/pipeline.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/io/files.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

/// A method unit shorter than this runs twice, to tell its first-call set-up from its unit cost.
constexpr double kRepeatSeconds = 5.0;

/// Seconds of one piece of work: wall clock and CPU of the process (every thread).
struct Cost {
  double wall = 0;
  double cpu = 0;
  Cost& operator+=(const Cost& o) {
    wall += o.wall;
    cpu += o.cpu;
    return *this;
  }
  /// What is left of this over `o` (never negative): the excess of a first call over a second.
  Cost excess_over(const Cost& o) const { return {std::max(0.0, wall - o.wall), std::max(0.0, cpu - o.cpu)}; }
};

template <typename F>
Cost timed(F&& work) {
  const auto t0 = Clock::now();
  const double c0 = experiments::process_cpu_seconds();
  work();
  return {std::chrono::duration<double>(Clock::now() - t0).count(), experiments::process_cpu_seconds() - c0};
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

/// One method on one model: what its unit of `unit` images costs.
struct MethodCost {
  std::string label;
  bool measured = false;    ///< false: skipped (--quick) or not run on this model
  std::string reused_from;  ///< the earlier study whose run's maps --reuse takes; empty: computed
  Cost method;              ///< the attribute stage's call (second call when repeated)
  Cost first;               ///< excess of the first call over the second: once per process and model
  Cost save;                ///< writing the maps
  std::vector<std::pair<std::string, Cost>> metrics;  ///< each metric, in config order
  Cost scoring;             ///< the score stage beyond its metrics
  Cost setup;               ///< the attribute stage's construction (once per run)
};

/// One model of a study.
struct ModelCost {
  std::string label;
  std::string measured_on;  ///< the model whose units were measured (--first-model: the first)
  Cost data;                ///< scaled to the study's image count
  Cost network;             ///< building it and its first calls
  Cost scores;              ///< the score stage's construction
  std::vector<MethodCost> methods;                 ///< per method of the experiment, config order
  std::vector<std::pair<std::string, Cost>> cold;  ///< per metric: excess of an image's first score
};

struct StudyCost {
  std::string name;
  int64_t count = 0;
  int64_t unit = 0;
  std::vector<ModelCost> models;
};

/// Where the projection charges a cost.
struct UnitShare {
  double method = 0;   ///< the method (and its first-call excess)
  double metrics = 0;  ///< the metrics (and their first-score excess)
  double other = 0;    ///< saving the maps, the score stage beyond its metrics
  int64_t units = 0;
};

struct Projection {
  std::vector<double> ranks;   ///< seconds of units per rank
  double once = 0;             ///< once-per-run work (every rank at the same time)
  double longest = 0;          ///< the longest unit
  double units = 0;            ///< Σ units
  std::map<std::string, double> parts;              ///< "method X", "metric Y", "saving maps, score stage"
  std::map<std::pair<std::string, std::string>, UnitShare> cells;  ///< (model, method) → its units
  double wall() const { return once + *std::max_element(ranks.begin(), ranks.end()); }
};

/// The seconds a mode counts: CPU at one thread per rank, wall in one process.
double seconds(const Cost& c, bool cpu) { return cpu ? c.cpu : c.wall; }

/// The run's units in run.cpp's order (model, method, images), unit i on rank i mod `ranks`.
Projection project(const StudyCost& s, int ranks, bool cpu) {
  Projection p;
  p.ranks.assign(static_cast<size_t>(ranks), 0.0);
  std::set<std::tuple<int, size_t, size_t>> first_call;       // (rank, model, method) seen
  std::set<std::tuple<int, size_t, int64_t>> first_score;     // (rank, model, first image) seen
  int64_t i = 0;
  for (size_t m = 0; m < s.models.size(); ++m) {
    const ModelCost& model = s.models[m];
    p.once += seconds(model.data, cpu) + seconds(model.network, cpu) + seconds(model.scores, cpu);
    for (size_t k = 0; k < model.methods.size(); ++k) {
      const MethodCost& method = model.methods[k];
      if (method.measured) p.once += seconds(method.setup, cpu);
      for (int64_t b = 0; b < s.count; b += s.unit, ++i) {
        if (!method.measured) continue;  // its units go round like the others' and cost nothing here
        const int rank = static_cast<int>(i % ranks);
        const double share = static_cast<double>(std::min(s.count, b + s.unit) - b) / static_cast<double>(s.unit);
        UnitShare u;
        if (method.reused_from.empty()) {
          u.method = share * seconds(method.method, cpu);
          if (first_call.insert({rank, m, k}).second) u.method += seconds(method.first, cpu);
        }
        const bool cold = first_score.insert({rank, m, b}).second;
        for (size_t q = 0; q < method.metrics.size(); ++q) {
          double t = share * seconds(method.metrics[q].second, cpu);
          if (cold) t += share * seconds(model.cold[q].second, cpu);
          u.metrics += t;
          p.parts["metric " + method.metrics[q].first] += t;
        }
        u.other = share * (seconds(method.save, cpu) + seconds(method.scoring, cpu));
        p.parts["method " + method.label] += u.method;
        p.parts["saving maps, score stage"] += u.other;
        const double total = u.method + u.metrics + u.other;
        p.ranks[static_cast<size_t>(rank)] += total;
        p.units += total;
        p.longest = std::max(p.longest, total);
        UnitShare& cell = p.cells[{model.label, method.label}];
        cell.method += u.method;
        cell.metrics += u.metrics;
        cell.other += u.other;
        ++cell.units;
      }
    }
  }
  return p;
}

/// What a method's maps depend on (reuse.h's rule): the data's manifest, registry name, label,
/// resolved parameters, target mode, run seed and reference inputs.
std::string map_key(const datasets::DataDir& data, const experiments::Experiment& e,
                    const experiments::MethodSpec& spec, const attributions::Method& method) {
  const json manifest = lab::read_json(data.path() / "manifest.json");
  return json{{"data", manifest},       {"name", spec.name},     {"label", spec.label},
              {"params", method.params()}, {"target", e.target}, {"seed", e.seed},
              {"reference", std::min(e.reference, e.count)}}
      .dump();
}

/// The maps of a unit an earlier study measured, for a later study that reuses them.
struct Measured {
  std::string study;
  experiments::AttributedUnit unit;
};

bool quick_method(const std::string& name) {
  static const std::set<std::string> names = {"gradcam", "guided-backprop", "lrp", "random", "constant"};
  return names.count(name) > 0;
}

void scale_cost(Cost& c, double f) {
  c.wall *= f;
  c.cpu *= f;
}

ModelCost measure_model(const experiments::Experiment& e, const std::string& study, const experiments::ModelSpec& model,
                        bool quick, const fs::path& scratch, std::map<std::string, Measured>& maps) {
  ModelCost cost;
  cost.label = cost.measured_on = model.label;
  const int64_t unit = std::min(e.unit, e.count);
  // The data a unit needs: its images and the methods' reference inputs.
  const int64_t generated = std::min(e.count, std::max(e.reference, unit));
  fmt::print(stderr, "{} / {}: generating {} of {} images\n", study, model.label, generated, e.count);
  const fs::path dir = scratch / study / model.label;
  std::unique_ptr<datasets::DataDir> data;
  cost.data = timed([&] {
    const auto env = experiments::make_model_environment(model);
    datasets::write_data_dir(*env, generated, experiments::data_seed(e), dir / "data", false);
    data = std::make_unique<datasets::DataDir>(datasets::DataDir::open(dir / "data"));
  });
  scale_cost(cost.data, static_cast<double>(e.count) / static_cast<double>(generated));
  lab::Network net;
  cost.network = timed([&] {
    net = data->env().build_network();
    // The first network calls of a process create primitives every method then shares.
    const lab::Tensor x = data->inputs(0, 1);
    const lab::Trace t = net.trace(x);
    (void)net.gradient(t, lab::Tensor(t.output().shape(), 1.0f));
  });
  std::unique_ptr<experiments::ScoreStage> scores;
  cost.scores = timed([&] {
    scores = std::make_unique<experiments::ScoreStage>(*data, net, experiments::make_model_metrics(e, model),
                                                       static_cast<uint64_t>(e.seed), e.unit, e.batch);
  });
  bool scored = false;  // a unit of these images has been scored: the metrics' first-score work is done
  for (const experiments::MethodSpec& spec : e.methods) {
    MethodCost& mc = cost.methods.emplace_back();
    mc.label = spec.label;
    if (!spec.runs_on(model.label) || !spec.maps.empty()) continue;
    if (quick && !quick_method(spec.name)) continue;
    mc.measured = true;
    std::unique_ptr<attributions::Method> method;
    std::unique_ptr<experiments::AttributeStage> stage;
    mc.setup = timed([&] {
      method = experiments::make_spec_method(spec);
      const experiments::AttributeSetup setup{spec.label, experiments::TargetMode{e.target, -1},
                                              static_cast<uint64_t>(e.seed), e.reference, e.batch};
      stage = std::make_unique<experiments::AttributeStage>(*data, net, *method, setup);
    });
    const std::string key = map_key(*data, e, spec, *method);
    experiments::AttributedUnit attributed;
    const auto hit = maps.find(key);
    if (hit != maps.end() && hit->second.study != study) {
      mc.reused_from = hit->second.study;
      attributed = hit->second.unit;
      fmt::print(stderr, "{} / {} / {}: the maps of {} (--reuse)\n", study, model.label, spec.label, mc.reused_from);
    } else {
      fmt::print(stderr, "{} / {} / {}: method on images 0-{}...\n", study, model.label, spec.label, unit - 1);
      mc.method = timed([&] { attributed = stage->run(0, unit); });
      if (mc.method.wall < kRepeatSeconds) {
        const Cost first = mc.method;
        mc.method = timed([&] { attributed = stage->run(0, unit); });
        mc.first = first.excess_over(mc.method);
      }
      maps[key] = {study, attributed};
    }
    if (e.save_maps) {
      const fs::path out = dir / "maps" / spec.slug;
      fs::create_directories(out);
      mc.save = timed([&] { stage->save_maps(attributed, out); });
    }
    const auto score = [&](Cost& total) {
      experiments::Scores s;
      total = timed([&] {
        s = scores->score(model.label, spec.label, 0, unit, attributed.result.attr, attributed.batch.target,
                          stage->explainer(), stage->scored_method());
      });
      return s;
    };
    fmt::print(stderr, "{} / {} / {}: metrics...\n", study, model.label, spec.label);
    Cost total;
    experiments::Scores s = score(total);
    if (!scored) {
      // The first score of these images: once more, warm; the excess is each image's first score.
      Cost warm_total;
      const experiments::Scores warm = score(warm_total);
      for (const auto& metric : scores->metrics()) {
        const std::string& name = metric->label();
        const Cost cold{s.metric_seconds.at(name).get<double>(), s.metric_cpu_seconds.at(name).get<double>()};
        const Cost again{warm.metric_seconds.at(name).get<double>(), warm.metric_cpu_seconds.at(name).get<double>()};
        cost.cold.push_back({name, cold.excess_over(again)});
      }
      s = warm;
      total = warm_total;
      scored = true;
    }
    Cost metric_sum;
    for (const auto& metric : scores->metrics()) {
      const std::string& name = metric->label();
      const Cost c{s.metric_seconds.at(name).get<double>(), s.metric_cpu_seconds.at(name).get<double>()};
      mc.metrics.push_back({name, c});
      metric_sum += c;
    }
    mc.scoring = total.excess_over(metric_sum);
    std::string parts;
    for (const auto& [name, c] : mc.metrics) parts += fmt::format(", {} {:.2f} s", name, c.wall);
    fmt::print(stderr, "{} / {} / {}: method {:.2f} s (CPU {:.2f} s){}{}\n", study, model.label, spec.label,
               mc.method.wall, mc.method.cpu, parts, mc.reused_from.empty() ? "" : " (maps reused)");
  }
  return cost;
}

StudyCost measure_study(const std::string& name, bool quick, bool all_models, const fs::path& scratch,
                        std::map<std::string, Measured>& maps) {
  const experiments::Experiment e = experiments::Experiment::from_json(paper_scale_config(name));
  experiments::check_experiment(e);
  StudyCost study;
  study.name = name;
  study.count = e.count;
  study.unit = std::min(e.unit, e.count);
  for (size_t m = 0; m < e.models.size(); ++m) {
    if (m == 0 || all_models) {
      study.models.push_back(measure_model(e, name, e.models[m], quick, scratch, maps));
    } else {
      // Same environment, architecture and size: the first model's costs.
      ModelCost copy = study.models.front();
      copy.label = e.models[m].label;
      for (size_t k = 0; k < e.methods.size(); ++k)
        if (!e.methods[k].runs_on(copy.label)) copy.methods[k].measured = false;
      study.models.push_back(std::move(copy));
    }
  }
  return study;
}

std::string minutes(double s) { return fmt::format("{:.1f}", s / 60.0); }

/// The units of a run directory: per (model, method label), mean CPU seconds of its computed units.
struct RunCell {
  double method = 0, metrics = 0;
  int64_t units = 0, reused = 0, ranked = 0;
};

/// The experiment a run directory ran; one error line when `run` is not a run directory or not
/// a run of one of `studies`.
std::string run_study(const fs::path& run, const std::vector<std::string>& studies) {
  std::error_code ec;
  std::string name;
  try {
    if (fs::is_regular_file(run / "config.json", ec) && fs::is_directory(run / "units", ec))
      name = lab::read_json(run / "config.json").at("config").value("name", "");
  } catch (const std::exception&) {
  }
  if (name.empty()) lab::fail_parameter("--compare {}: expected a run directory (config.json, units/)", run.string());
  if (std::find(studies.begin(), studies.end(), name) == studies.end())
    lab::fail_parameter("--compare {}: a run of '{}', which this projection does not cover", run.string(), name);
  return name;
}

void compare(const fs::path& run, const std::vector<StudyCost>& costs, const std::vector<Projection>& projections,
             bool cpu) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const StudyCost& c : costs) names.push_back(c.name);
  const std::string name = run_study(run, names);
  const size_t s = static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  std::map<std::pair<std::string, std::string>, RunCell> cells;
  std::vector<fs::path> done;
  for (const auto& entry : fs::recursive_directory_iterator(run / "units", ec))
    if (entry.path().extension() == ".done") done.push_back(entry.path());
  int ranks = 0;
  for (const fs::path& path : done) {
    const json d = lab::read_json(path);
    RunCell& cell = cells[{d.at("model").get<std::string>(), d.at("method").get<std::string>()}];
    if (d.contains("maps-from")) ++cell.reused;
    if (d.contains("rank")) {
      ++cell.ranked;
      ranks = std::max(ranks, d.at("rank").get<int>() + 1);
    }
    ++cell.units;
    cell.method += d.at("method-cpu-seconds").get<double>();
    for (const auto& [metric, t] : d.at("metric-cpu-seconds").items()) cell.metrics += t.get<double>();
  }
  fmt::print("\n{}: the units of {} ({} of them; MPI ranks: {}) beside this projection, mean seconds per unit "
             "(the run's: CPU; the projection's: {})\n",
             name, run.string(), done.size(), ranks, cpu ? "CPU" : "wall, one process");
  fmt::print("  {:<15} {:<22} {:>9} {:>8} {:>9} {:>8} {:>9} {:>9} {:>7}\n", "model", "method", "run units", "method",
             "proj.", "metrics", "proj.", "unit", "proj.");
  const StudyCost& study = costs[s];
  double run_total = 0, projected_total = 0;
  for (const ModelCost& model : study.models)
    for (const MethodCost& method : model.methods) {
      const auto found = cells.find({model.label, method.label});
      const RunCell cell = found == cells.end() ? RunCell{} : found->second;
      const auto p = projections[s].cells.find({model.label, method.label});
      const UnitShare share = p == projections[s].cells.end() ? UnitShare{} : p->second;
      const double n = static_cast<double>(std::max<int64_t>(cell.units, 1));
      const double pn = static_cast<double>(std::max<int64_t>(share.units, 1));
      std::string note;
      if (cell.reused) note += fmt::format(" {} reused", cell.reused);
      if (cell.ranked < cell.units) note += fmt::format(" {} in one process", cell.units - cell.ranked);
      if (!method.measured) note += " not measured";
      if (model.measured_on != model.label) note += " (as " + model.measured_on + ")";
      fmt::print("  {:<15} {:<22} {:>9} {:>8.1f} {:>9.1f} {:>8.1f} {:>9.1f} {:>9.1f} {:>7.1f}{}\n", model.label,
                 method.label, cell.units, cell.method / n, share.method / pn, cell.metrics / n, share.metrics / pn,
                 (cell.method + cell.metrics) / n, (share.method + share.metrics) / pn, note);
      run_total += cell.method + cell.metrics;
      projected_total += share.method + share.metrics;
    }
  fmt::print("  all units: run {} min, projection {} min of {}; method + metrics only (the run's .done "
             "records no save or score-stage time)\n",
             minutes(run_total), minutes(projected_total), cpu ? "CPU" : "wall time");
}

}  // namespace

int main(int argc, char** argv) try {
  lab::prepare_process(argv);
  std::vector<std::string> studies;
  std::vector<std::string> compare_dirs;
  bool quick = false, first_only = false, every = false;
  std::optional<bool> all_models;
  int threads = 0, ranks = 0;
  bench::App app{
      "Projected wall time of the paper-scale studies on this machine, run as the README tells users to run them: "
      "each study's first work unit timed for every method and model, plus the work a run does once (see the top "
      "of bench/bench_study.cpp)",
      "bench_study"};
  CLI::Option* ranks_option = app.add_option("--ranks", ranks, "MPI ranks of one thread (at most 4 x the cores)")
                                  ->check(bench::integer(1, lab::max_threads()))
                                  ->default_str("the cores");
  app.add_option("--threads", threads, "One process of this many threads instead of ranks")
      ->check(bench::threads())
      ->excludes(ranks_option)
      ->default_str("none");
  app.add_option("--study", studies, "A study to project (repeatable)")
      ->allow_extra_args(false)
      ->default_str("unseen-data-effect and faithfulness-test");
  app.add_flag("--quick", quick,
               "Only the one-pass methods (GradCAM, GuidedBP, LRP, controls) with every metric, on each study's "
               "first model: a smoke run whose projection covers those only");
  CLI::Option* first_model =
      app.add_flag("--first-model", first_only,
                   "Measure a study's first model only and count it for the others (faster)");
  CLI::Option* every_model = app.add_flag("--all-models", every, "Measure every model (the default unless --quick)");
  app.add_option("--compare", compare_dirs,
                 "A paper-scale run directory of a projected study (read only; repeatable): per model and method, "
                 "its units' mean CPU seconds (.done) beside this projection's")
      ->allow_extra_args(false)
      ->default_str("none");
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  for (const CLI::Option* option : app.parse_order())  // the last of --first-model and --all-models counts
    if (option == first_model || option == every_model) all_models = option == every_model;
  const std::vector<fs::path> runs(compare_dirs.begin(), compare_dirs.end());
  // The README's run: one rank of one thread per core.
  const bool cpu = threads == 0;
  if (cpu && ranks == 0) ranks = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  lab::Runtime::get().set_threads(cpu ? 1 : threads);
  if (studies.empty()) studies = {"unseen-data-effect", "faithfulness-test"};
  for (const fs::path& run : runs) (void)run_study(run, studies);  // refused before anything is measured
  const Scratch scratch;
  std::map<std::string, Measured> maps;
  std::vector<StudyCost> costs;
  for (const std::string& name : studies)
    costs.push_back(measure_study(name, quick, all_models.value_or(!quick), scratch.dir, maps));
  std::vector<Projection> projections;
  for (const StudyCost& s : costs) projections.push_back(project(s, cpu ? ranks : 1, cpu));

  const std::string clock = cpu ? "CPU s" : "s";
  if (cpu)
    fmt::print("paper-scale studies as {} MPI rank(s) of 1 thread (mpirun -n {} -x ATTRLAB_THREADS=1 attrlab run NAME "
               "--paper-scale --mpi, a later study with --reuse of the earlier's run); units of the run's size, "
               "measured at 1 thread in CPU seconds{}\n",
               ranks, ranks, quick ? "; --quick (one-pass methods only)" : "");
  else
    fmt::print("paper-scale studies as one process of {} thread(s) (attrlab run NAME --paper-scale); units of the "
               "run's size, measured in wall seconds{}\n",
               threads, quick ? "; --quick (one-pass methods only)" : "");
  double work = 0;  // every unit and the once-per-run work, all studies
  for (const Projection& p : projections) work += p.units + p.once;
  std::map<std::string, double> parts;
  std::vector<std::string> part_order;
  for (size_t s = 0; s < costs.size(); ++s) {
    const StudyCost& study = costs[s];
    const Projection& p = projections[s];
    for (const ModelCost& model : study.models) {
      fmt::print("\n{} / {}: units of {} images, {} images{}\n", study.name, model.label, study.unit, study.count,
                 model.measured_on == model.label ? "" : " (the costs of " + model.measured_on + ")");
      std::string header = fmt::format("  {:<22} {:>9} {:>8}", "method", "method " + clock, "first");
      const MethodCost* any = nullptr;
      for (const MethodCost& m : model.methods)
        if (m.measured) any = &m;
      if (any)
        for (const auto& [metric, t] : any->metrics) header += fmt::format(" {:>13}", metric);
      header += fmt::format(" {:>8} {:>9} {:>10} {:>7}", "other", "unit", "proj. min", "share");
      fmt::print("{}\n", header);
      for (const MethodCost& m : model.methods) {
        if (!m.measured) continue;
        std::string line = fmt::format("  {:<22} {:>9.2f} {:>8.2f}", m.label + (m.reused_from.empty() ? "" : " (r)"),
                                       seconds(m.method, cpu), seconds(m.first, cpu));
        for (const auto& [metric, t] : m.metrics) line += fmt::format(" {:>13.2f}", seconds(t, cpu));
        const UnitShare& cell = p.cells.at({model.label, m.label});
        const double unit = seconds(m.method, cpu) * (m.reused_from.empty() ? 1.0 : 0.0) + seconds(m.save, cpu) +
                            seconds(m.scoring, cpu);
        double metric_unit = 0;
        for (const auto& [metric, t] : m.metrics) metric_unit += seconds(t, cpu);
        const double projected = cell.method + cell.metrics + cell.other;
        line += fmt::format(" {:>8.2f} {:>9.2f} {:>10} {:>6.1f}%", seconds(m.save, cpu) + seconds(m.scoring, cpu),
                            unit + metric_unit, minutes(projected), 100.0 * projected / work);
        fmt::print("{}\n", line);
      }
      std::string cold;
      for (const auto& [metric, t] : model.cold)
        if (seconds(t, cpu) >= 0.005) cold += fmt::format(", {} {:.2f} s", metric, seconds(t, cpu));
      fmt::print("  first score of a unit's images in a process (charged once per {}):{}\n",
                 cpu ? "rank" : "run", cold.empty() ? " none" : cold.substr(1));
      fmt::print("  once per run: data {:.1f} s, network {:.2f} s, score stage {:.2f} s\n", seconds(model.data, cpu),
                 seconds(model.network, cpu), seconds(model.scores, cpu));
      for (const MethodCost& m : model.methods)
        if (!m.reused_from.empty())
          fmt::print("  (r) {}: its maps are {}'s (the run takes them with --reuse): only its scoring is counted\n",
                     m.label, m.reused_from);
    }
    for (const auto& [part, t] : p.parts) {
      if (!parts.count(part)) part_order.push_back(part);
      parts[part] += t;
    }
  }
  fmt::print("\nshares of the work (every unit and the once-per-run work, all studies; {}):\n",
             cpu ? "CPU minutes, about R times the wall time they take" : "wall minutes");
  fmt::print("  {:<32} {:>10} {:>7}\n", "part", "min", "share");
  std::sort(part_order.begin(), part_order.end(), [&](const std::string& a, const std::string& b) {
    return parts[a] > parts[b];
  });
  for (const std::string& part : part_order)
    fmt::print("  {:<32} {:>10} {:>6.1f}%\n", part, minutes(parts[part]), 100.0 * parts[part] / work);
  double once = 0;
  for (const Projection& p : projections) once += p.once;
  fmt::print("  {:<32} {:>10} {:>6.1f}%\n", "once per run (data, set-up)", minutes(once), 100.0 * once / work);

  fmt::print("\nprojected wall time per study{}:\n",
             cpu ? fmt::format(" ({} ranks: once-per-run + the busiest rank's units, unit i on rank i mod {})", ranks,
                               ranks)
                 : "");
  double total = 0;
  for (size_t s = 0; s < costs.size(); ++s) {
    const Projection& p = projections[s];
    total += p.wall();
    if (cpu)
      fmt::print("  {}: units {} CPU-min, ÷ {} = {} min, longest unit {:.0f} s, busiest rank {} min; once per run "
                 "{} min -> {} min\n",
                 costs[s].name, minutes(p.units), ranks, minutes(p.units / ranks), p.longest,
                 minutes(*std::max_element(p.ranks.begin(), p.ranks.end())), minutes(p.once), minutes(p.wall()));
    else
      fmt::print("  {}: units {} min, once per run {} min -> {} min\n", costs[s].name, minutes(p.units),
                 minutes(p.once), minutes(p.wall()));
  }
  for (const fs::path& run : runs) compare(run, costs, projections, cpu);
  fmt::print("\nprojected paper-scale wall time: {} min\n", static_cast<int64_t>(std::llround(total / 60.0)));
  return 0;
} catch (const lab::Error& e) {
  fmt::print(stderr, "bench_study: error: {}\n", e.what());
  return static_cast<int>(e.kind());
}
