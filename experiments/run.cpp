#include "experiments/run.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "datasets/environment.h"
#include "experiments/config.h"
#include "experiments/maps.h"
#include "experiments/metrics/metric.h"
#include "experiments/pipeline.h"
#include "experiments/progress.h"
#include "experiments/report/report.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"
#include "lab/io/outputs.h"

namespace experiments {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Everything a unit needs about one model, built once per run.
struct ModelState {
  const ModelSpec* spec = nullptr;
  std::unique_ptr<datasets::DataDir> data;
  lab::Network net;
  std::unique_ptr<ScoreStage> scores;
};

struct Unit {
  size_t model = 0;
  size_t method = 0;
  int64_t begin = 0;
  int64_t end = 0;
  fs::path stem;  ///< units/<model>/<method>/<unit>
  std::string label;
};

/// What a unit produced: its rows, curve points, maps.json entries and network evaluations.
struct UnitResult {
  std::vector<ResultRow> rows;
  std::vector<CurveRow> curves;
  json samples = json::array();
  int64_t evaluations = 0;
  std::vector<lab::Tensor> grid_maps;  ///< C×H×W maps of the unit's images the report shows
};

std::string first_difference(const json& a, const json& b, const std::string& path) {
  if (a.is_number() && b.is_number()) return a == b ? "" : path;  // 3 read from a file equals 3 computed
  if (a.type() != b.type()) return path.empty() ? "(top level)" : path;
  if (a.is_object()) {
    for (const auto& [key, value] : a.items()) {
      const std::string p = path.empty() ? key : path + "." + key;
      if (!b.contains(key)) return p;
      const std::string d = first_difference(value, b.at(key), p);
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : b.items())
      if (!a.contains(key)) return path.empty() ? key : path + "." + key;
    return "";
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return path;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string d = first_difference(a[i], b[i], path + "." + std::to_string(i));
      if (!d.empty()) return d;
    }
    return "";
  }
  return a == b ? "" : path;
}

/// The data directory of a model: generated, or (resume) reopened after checking it is the
/// one this config asks for.
std::unique_ptr<datasets::DataDir> prepare_data(const Experiment& e, const ModelSpec& model, const fs::path& dir,
                                                bool resume, bool quiet) {
  const std::unique_ptr<datasets::Environment> env = make_model_environment(model);
  if (resume && fs::exists(dir / "manifest.json")) {
    auto data = std::make_unique<datasets::DataDir>(datasets::DataDir::open(dir));
    if (data->env().name() != env->name() || data->env().options() != env->options() ||
        data->seed() != data_seed(e) || data->size() != e.count)
      lab::fail("{}: the data directory does not match the config (environment, options, seed or count); "
                "remove it or use a new --out", dir.string());
    return data;
  }
  if (!quiet) fmt::print(stderr, "attrlab run: generating {} images of {} for model '{}'\n", e.count, model.env, model.label);
  datasets::write_data_dir(*env, e.count, data_seed(e), dir, false);
  return std::make_unique<datasets::DataDir>(datasets::DataDir::open(dir));
}

/// An outside method's maps directory for a model: DIR/<model label>, or DIR itself in a
/// one-model experiment without that subdirectory.
fs::path outside_maps_dir(const Experiment& e, const MethodSpec& spec, const ModelSpec& model) {
  const fs::path dir = spec.maps;
  std::error_code ec;
  if (fs::is_directory(dir / model.label, ec) || e.models.size() > 1) return dir / model.label;
  return dir;
}

/// Computes one unit through the attribute and score stages, and writes its files (.done last).
UnitResult run_unit(const Experiment& e, const ModelState& state, const MethodSpec& spec, const AttributeStage& stage,
                    const Unit& unit, const fs::path& out, int64_t grid_rows) {
  const auto started = std::chrono::steady_clock::now();
  const AttributedUnit maps = stage.run(unit.begin, unit.end);
  const auto attributed = std::chrono::steady_clock::now();
  if (e.save_maps) stage.save_maps(maps, out / "maps" / state.spec->label / spec.slug);
  const std::string& model = state.spec->label;
  // Maps read from files cannot be re-made for perturbed inputs: no explainer for them.
  Scores scores = state.scores->score(model, spec.label, unit.begin, unit.end, maps.result.attr, maps.batch.target,
                                      spec.maps.empty() ? stage.explainer() : Explainer());

  UnitResult r;
  r.rows = stage.gap_rows(model, maps);
  r.rows.insert(r.rows.end(), scores.rows.begin(), scores.rows.end());
  r.curves = std::move(scores.curves);
  r.samples = maps.samples;
  r.evaluations = maps.result.evaluations;
  for (int64_t i = unit.begin; i < std::min(unit.end, grid_rows); ++i)
    r.grid_maps.push_back(maps.result.attr.slice(i - unit.begin, i - unit.begin + 1).reshaped(maps.batch.x.sample_shape()));
  std::string rows_text = result_csv_header(), curves_text = curve_csv_header();
  for (const ResultRow& row : r.rows) rows_text += to_csv_line(row);
  for (const CurveRow& c : r.curves) curves_text += to_csv_line(c);
  lab::write_text_atomic(out / (unit.stem.string() + ".rows.csv"), rows_text);
  lab::write_text_atomic(out / (unit.stem.string() + ".curves.csv"), curves_text);
  lab::write_json(out / (unit.stem.string() + ".done"),
                  {{"model", model}, {"method", spec.label}, {"begin", unit.begin}, {"end", unit.end},
                   {"samples", r.samples},
                   {"evaluations", r.evaluations},
                   {"method-seconds", std::chrono::duration<double>(attributed - started).count()},
                   {"metric-seconds", scores.metric_seconds}});
  return r;
}

/// A unit finished by an earlier run (--resume), read back from its files.
UnitResult read_unit(const Unit& unit, const fs::path& out) {
  UnitResult r;
  const fs::path rows_path = out / (unit.stem.string() + ".rows.csv");
  const fs::path curves_path = out / (unit.stem.string() + ".curves.csv");
  r.rows = parse_result_csv(lab::read_text(rows_path), rows_path.string());
  r.curves = parse_curve_csv(lab::read_text(curves_path), curves_path.string());
  const json done = lab::read_json(out / (unit.stem.string() + ".done"));
  r.samples = done.value("samples", json::array());
  r.evaluations = done.value("evaluations", int64_t{0});
  return r;
}

}  // namespace

RunSummary run_experiment(const json& resolved, const RunOptions& options) {
  const Experiment e = Experiment::from_json(resolved);
  const fs::path out = options.out;
  if (out.empty()) lab::fail_parameter("--out: the run directory is required");
  // Every environment, method, metric and report study is checked before anything is written.
  check_experiment(e);
  std::error_code ec;
  const fs::path config_path = out / "config.json";
  json record = {{"attrlab-version", ATTRLAB_VERSION},
                 {"source", options.source},
                 {"overrides", options.overrides},
                 {"seeds", seeds_record(e)},
                 {"config", resolved}};
  // The lock comes first, so that a second run into RUN_DIR is refused for that reason alone.
  std::optional<lab::DirLock> lock;
  const fs::file_status out_status = fs::status(out, ec);
  if (fs::exists(out_status) && !fs::is_directory(out_status))
    lab::fail_usage("--out {}: is {}; expected a run directory", out.string(), lab::describe_file_type(out));
  if (fs::exists(out_status)) {
    lock.emplace(out, "--out");
    lab::sweep_stale_temps(out, true);  // temporaries of an earlier run that was killed
  }
  if (options.resume && options.force) lab::fail_usage("run: --resume and --force exclude each other");
  if (fs::exists(config_path) && options.force) {
    // attrlab's own run directory (it has config.json): start again, keeping only the lock.
    std::vector<fs::path> earlier;
    for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->path().filename() != lab::DirLock::kFileName) earlier.push_back(it->path());
    for (const fs::path& p : earlier)
      if (!ec) fs::remove_all(p, ec);
    if (ec) lab::fail("--out {}: cannot remove the earlier run: {}", out.string(), ec.message());
  }
  const auto holds_files = [&] {
    for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->path().filename() != lab::DirLock::kFileName) return true;
    return false;
  };
  if (fs::exists(config_path)) {
    if (!options.resume)
      lab::fail_usage("--out {}: already holds a run; pass --resume to continue it, --force to start it again, or "
                      "choose another --out",
                      out.string());
    const json old = lab::read_json(config_path);
    if (!old.contains("config") || old.at("config") != resolved)
      lab::fail("{}: --resume with a different configuration (first difference at '{}'); use a new --out",
                config_path.string(), old.contains("config") ? first_difference(old.at("config"), resolved, "") : "config");
  } else if (fs::exists(out_status) && holds_files()) {
    lab::fail_usage("--out {}: the directory exists, holds files and no run of attrlab (no config.json); choose "
                    "a new one",
                    out.string());
  }
  // A run directory this call creates is removed again if the run fails before its first unit
  // (outside maps of other data, say): a refused run leaves nothing behind.
  struct RemoveIfRefused {
    fs::path dir;
    bool armed = false;
    ~RemoveIfRefused() {
      std::error_code ignored;
      if (armed) fs::remove_all(dir, ignored);
    }
  } created{out, !fs::exists(out_status)};
  fs::create_directories(out, ec);
  if (ec) lab::fail("--out {}: cannot create the directory: {}", out.string(), ec.message());
  if (!lock) lock.emplace(out, "--out");
  lab::write_json(config_path, record);

  // Models: data, network and the score stage of their metrics.
  std::vector<ModelState> states(e.models.size());
  for (size_t m = 0; m < e.models.size(); ++m) {
    ModelState& s = states[m];
    s.spec = &e.models[m];
    s.data = prepare_data(e, e.models[m], out / "data" / e.models[m].label, options.resume, options.quiet);
    s.net = s.data->env().build_network();
    s.scores = std::make_unique<ScoreStage>(*s.data, s.net, make_model_metrics(e, e.models[m]),
                                              static_cast<uint64_t>(e.seed), e.unit, e.batch);
  }
  RunSummary summary;
  for (const ModelState& s : states) summary.data.push_back(s.data->path());
  if (options.stage == "data") {
    created.armed = false;
    return summary;
  }

  // Methods, and their attribute stage on every model they run on. An outside method reads its
  // maps from files, checked against each model's data here, before any unit runs.
  std::vector<std::unique_ptr<attributions::Method>> methods;
  std::map<std::pair<size_t, size_t>, std::unique_ptr<attributions::Method>> outside;
  std::map<std::pair<size_t, size_t>, std::unique_ptr<AttributeStage>> stages;
  for (const MethodSpec& spec : e.methods) methods.push_back(spec.maps.empty() ? make_spec_method(spec) : nullptr);
  for (size_t m = 0; m < e.models.size(); ++m)
    for (size_t k = 0; k < e.methods.size(); ++k) {
      if (!e.methods[k].runs_on(e.models[m].label)) continue;
      const attributions::Method* method = methods[k].get();
      if (!method) {
        auto maps = std::make_unique<MapsFromFiles>(outside_maps_dir(e, e.methods[k], e.models[m]), *states[m].data);
        // Said once per directory, whatever --quiet: what the check could and could not establish.
        if (!maps->fingerprinted())
          fmt::print(stderr, "attrlab run: {}: no data fingerprint (no maps.json, or one without it); matched to the "
                     "data by sample ids, count and shapes only\n", maps->dir().string());
        for (const auto& [dtype, files] : maps->conversions())
          fmt::print(stderr, "attrlab run: {}: {} map file(s) of dtype {} converted to float32\n", maps->dir().string(),
                     files, dtype);
        outside[{m, k}] = std::move(maps);
        method = outside[{m, k}].get();
      }
      const AttributeSetup setup{e.methods[k].label, TargetMode{e.target, -1}, static_cast<uint64_t>(e.seed),
                                 e.reference, e.batch};
      stages[{m, k}] = std::make_unique<AttributeStage>(*states[m].data, states[m].net, *method, setup);
    }

  created.armed = false;

  // Units, in the order their rows appear in results.csv.
  std::vector<Unit> units;
  for (size_t m = 0; m < e.models.size(); ++m)
    for (size_t k = 0; k < e.methods.size(); ++k) {
      if (!e.methods[k].runs_on(e.models[m].label)) continue;
      for (int64_t b = 0; b < e.count; b += e.unit) {
        Unit u{m, k, b, std::min(e.count, b + e.unit), {}, {}};
        u.stem = fs::path("units") / e.models[m].label / e.methods[k].slug / fmt::format("{:05}", b / e.unit);
        u.label = fmt::format("{} / {}: images {}-{}", e.models[m].label, e.methods[k].label, u.begin, u.end - 1);
        units.push_back(std::move(u));
      }
    }
  summary.units = static_cast<int64_t>(units.size());
  std::vector<bool> done(units.size(), false);
  for (size_t i = 0; i < units.size(); ++i) done[i] = options.resume && fs::exists(out / (units[i].stem.string() + ".done"));
  summary.skipped = std::count(done.begin(), done.end(), true);

  // Rows of the units computed here stay in memory; those of an earlier run are read back.
  std::vector<UnitResult> results(units.size());
  Progress progress(summary.units, !options.quiet);
  if (summary.skipped > 0) progress.skip(summary.skipped);
  for (size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    if (done[i]) {
      results[i] = read_unit(u, out);
      continue;
    }
    progress.start(u.label);
    results[i] = run_unit(e, states[u.model], e.methods[u.method], *stages.at({u.model, u.method}), u, out,
                          e.save_maps ? grid_rows(e.report) : 0);
    progress.advance();
  }
  progress.finish();

  // results.csv and curves.csv in unit order, then the metrics' own aggregates per (model,
  // method, metric). Within each (model, method), rows are ordered by sample (stable, so each
  // sample keeps the metrics' order): the files do not depend on how the images were cut into units.
  ReportInputs inputs{e, out, {}, {}, {}, {}, record, {}};
  std::vector<ResultRow>& all_rows = inputs.rows;
  std::vector<CurveRow>& all_curves = inputs.curves;
  std::map<std::pair<size_t, size_t>, std::pair<json, int64_t>> maps_samples;  // samples, evaluations
  std::map<std::tuple<std::string, std::string, int64_t>, lab::Tensor> grid_maps;  // (model, method, index) → map
  for (size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    UnitResult& r = results[i];
    all_rows.insert(all_rows.end(), r.rows.begin(), r.rows.end());
    all_curves.insert(all_curves.end(), r.curves.begin(), r.curves.end());
    inputs.costs.push_back({e.models[u.model].label, e.methods[u.method].label, u.begin, u.end - 1, r.evaluations});
    for (size_t k = 0; k < r.grid_maps.size(); ++k)
      grid_maps[{e.models[u.model].label, e.methods[u.method].label, u.begin + static_cast<int64_t>(k)}] =
          std::move(r.grid_maps[k]);
    auto& [samples, evaluations] = maps_samples[{u.model, u.method}];
    if (samples.is_null()) samples = json::array();
    for (json& sample : r.samples) samples.push_back(std::move(sample));
    evaluations += r.evaluations;
  }
  results.clear();
  // maps.json: the attribute stage's record, as `attrlab attribute` writes it.
  if (e.save_maps)
    for (const auto& [key, entry] : maps_samples) {
      const fs::path dir = out / "maps" / e.models[key.first].label / e.methods[key.second].slug;
      lab::write_json(dir / "maps.json", stages.at(key)->record(dir, entry.first, entry.second));
    }
  std::map<std::string, size_t> model_index, method_index;
  for (size_t m = 0; m < e.models.size(); ++m) model_index[e.models[m].label] = m;
  for (size_t k = 0; k < e.methods.size(); ++k) method_index[e.methods[k].label] = k;
  auto by_sample = [&](const auto& a, const auto& b) {
    return std::make_tuple(model_index.at(a.model), method_index.at(a.method), std::cref(a.sample)) <
           std::make_tuple(model_index.at(b.model), method_index.at(b.method), std::cref(b.sample));
  };
  std::stable_sort(all_rows.begin(), all_rows.end(), by_sample);
  std::stable_sort(all_curves.begin(), all_curves.end(), by_sample);
  std::vector<ResultRow> aggregates;
  for (size_t m = 0; m < e.models.size(); ++m)
    for (const MethodSpec& spec : e.methods) {
      if (!spec.runs_on(e.models[m].label)) continue;
      const std::vector<ResultRow> a = states[m].scores->aggregate(e.models[m].label, spec.label, all_rows);
      aggregates.insert(aggregates.end(), a.begin(), a.end());
    }
  all_rows.insert(all_rows.end(), aggregates.begin(), aggregates.end());

  // The map grids: maps of this process from memory, those of resumed units from their files.
  inputs.map = [&](const std::string& model, const std::string& method, int64_t index) {
    const auto it = grid_maps.find({model, method, index});
    if (it != grid_maps.end()) return it->second;
    const auto spec = std::find_if(e.methods.begin(), e.methods.end(), [&](const MethodSpec& m) { return m.label == method; });
    const auto state = std::find_if(states.begin(), states.end(), [&](const ModelState& s) { return s.spec->label == model; });
    LAB_CHECK(spec != e.methods.end() && state != states.end(), "no map of {} / {}", model, method);
    return lab::read_npy(out / "maps" / model / spec->slug / (state->data->id(index) + ".npy"));
  };
  for (size_t m = 0; m < e.models.size(); ++m) {
    for (const auto& metric : states[m].scores->metrics())
      for (const Variant& v : metric->variants()) inputs.directions[metric->name() + "/" + v.name] = v.direction;
  }
  const ReportFiles files = write_report(inputs);
  summary.results = files.results;
  summary.report_md = files.markdown;
  summary.report_html = files.html;
  return summary;
}

}  // namespace experiments
