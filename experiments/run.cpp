#include "experiments/run.h"

#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <tuple>
#include <opencv2/core.hpp>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "datasets/environment.h"
#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "experiments/progress.h"
#include "experiments/report/report.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace experiments {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Everything a unit needs about one model, built once per run.
struct ModelState {
  const ModelSpec* spec = nullptr;
  std::unique_ptr<datasets::DataDir> data;
  lab::Network net;
  attributions::Context method_context;
  Context metric_context;
  std::vector<std::unique_ptr<Metric>> metrics;
};

struct Unit {
  size_t model = 0;
  size_t method = 0;
  int64_t begin = 0;
  int64_t end = 0;
  fs::path stem;  ///< units/<model>/<method>/<chunk>
  std::string label;
};

std::string first_difference(const json& a, const json& b, const std::string& path) {
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
  lab::Options options = lab::Options::from_json(model.options, "-o models." + model.label + ".options");
  const std::unique_ptr<datasets::Environment> env = datasets::make_environment(model.env, options);
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

/// The patch map as the CV_32S segment labels attribution methods take (0 = background).
cv::Mat segments_of(const datasets::DataDir& data, int64_t i) {
  cv::Mat s;
  data.patches(i).convertTo(s, CV_32S);
  return s;
}

/// Computes one unit and writes its files (.done last).
void run_unit(const Experiment& e, ModelState& state, const MethodSpec& spec, const attributions::Method& method,
              const Unit& unit, const fs::path& out) {
  const auto started = std::chrono::steady_clock::now();
  const datasets::DataDir& data = *state.data;
  const int64_t n = unit.end - unit.begin;
  attributions::Batch batch;
  batch.x = data.inputs(unit.begin, unit.end);
  std::vector<std::string> ids;
  std::vector<int64_t> labels;
  for (int64_t i = unit.begin; i < unit.end; ++i) {
    ids.push_back(data.id(i));
    labels.push_back(data.label(i));
    batch.seeds.push_back(sample_seed(e.seed, spec.label, i));
    batch.segments.push_back(segments_of(data, i));
  }
  if (e.target == "label") {
    for (int64_t l : labels) batch.target.push_back(data.env().target_output(l));
  } else {
    const lab::Tensor y = state.net.forward(batch.x);
    for (int64_t k = 0; k < n; ++k)
      batch.target.push_back(data.env().target_output(data.env().predicted_label(y.sample(k))));
  }
  const attributions::Result result = method.attribute(state.method_context, batch);
  const auto attributed = std::chrono::steady_clock::now();
  if (result.attr.shape() != batch.x.shape())
    lab::fail("method '{}' returned maps of shape {} for inputs {}", spec.label, lab::to_string(result.attr.shape()),
              lab::to_string(batch.x.shape()));

  const fs::path maps_dir = out / "maps" / state.spec->label / spec.slug;
  if (e.save_maps) {
    tbb::parallel_for(int64_t{0}, n, [&](int64_t k) {
      lab::write_npy(maps_dir / (ids[static_cast<size_t>(k)] + ".npy"), result.attr.slice(k, k + 1).reshaped(batch.x.sample_shape()));
    });
  }

  Batch scored;
  scored.ids = ids;
  scored.x = batch.x;
  scored.attr = result.attr;
  scored.target = batch.target;
  std::vector<lab::Tensor> gts, smooth;
  for (int64_t i = unit.begin; i < unit.end; ++i) {
    gts.push_back(data.gt(i, false));
    smooth.push_back(data.gt(i, true));
    scored.seeds.push_back(sample_seed(e.seed, "metrics", i));
  }
  scored.gt = lab::Tensor::stack(gts);
  scored.gt_smooth = lab::Tensor::stack(smooth);

  std::string rows_text = result_csv_header(), curves_text = curve_csv_header();
  const std::string& model = state.spec->label;
  for (int64_t k = 0; k < n; ++k) {
    if (!result.convergence_delta.empty())
      rows_text += to_csv_line(ResultRow{model, ids[static_cast<size_t>(k)], spec.label, "method", "completeness-gap",
                                         result.convergence_delta[static_cast<size_t>(k)]});
  }
  json metric_seconds = json::object();
  for (const auto& metric : state.metrics) {
    const auto metric_started = std::chrono::steady_clock::now();
    MetricOutput output = metric->evaluate(state.metric_context, scored);
    metric_seconds[metric->name()] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - metric_started).count();
    for (const MetricRow& r : output.rows) {
      if (r.sample == kAllSamples) continue;
      rows_text += to_csv_line(ResultRow{model, r.sample, spec.label, metric->name(), r.variant, r.value});
    }
    // Group the points into curves (sample, variant), keeping their order, then resample.
    std::vector<std::pair<std::string, std::string>> keys;
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<double>, std::vector<double>>> curves;
    for (const CurvePoint& p : output.curves) {
      const auto key = std::make_pair(p.sample, p.variant);
      auto [it, fresh] = curves.try_emplace(key);
      if (fresh) keys.push_back(key);
      it->second.first.push_back(p.x);
      it->second.second.push_back(p.y);
    }
    tbb::parallel_for(size_t{0}, keys.size(), [&](size_t i) {
      auto& [x, y] = curves.at(keys[i]);
      resample_curve(x, y);
    });
    for (const auto& key : keys) {
      const auto& [x, y] = curves.at(key);
      for (size_t i = 0; i < x.size(); ++i)
        curves_text += to_csv_line(CurveRow{model, key.first, spec.label, metric->name(), key.second, x[i], y[i]});
    }
  }
  lab::write_text_atomic(out / (unit.stem.string() + ".rows.csv"), rows_text);
  lab::write_text_atomic(out / (unit.stem.string() + ".curves.csv"), curves_text);
  json samples = json::array();
  for (int64_t k = 0; k < n; ++k) {
    json sample = {{"id", ids[static_cast<size_t>(k)]},
                   {"map", ids[static_cast<size_t>(k)] + ".npy"},
                   {"label", labels[static_cast<size_t>(k)]},
                   {"target", batch.target[static_cast<size_t>(k)]}};
    if (!result.convergence_delta.empty()) sample["convergence_delta"] = result.convergence_delta[static_cast<size_t>(k)];
    samples.push_back(std::move(sample));
  }
  lab::write_json(out / (unit.stem.string() + ".done"),
                  {{"model", model}, {"method", spec.label}, {"begin", unit.begin}, {"end", unit.end},
                   {"params", method.params()},
                   {"samples", samples},
                   {"evaluations", result.evaluations},
                   {"method_seconds", std::chrono::duration<double>(attributed - started).count()},
                   {"metric_seconds", metric_seconds}});
}

}  // namespace

void resample_curve(std::vector<double>& x, std::vector<double>& y, size_t points) {
  LAB_CHECK(x.size() == y.size(), "curve with {} x and {} y", x.size(), y.size());
  if (x.size() <= points || points < 2) return;
  std::vector<double> nx(points), ny(points);
  const double lo = x.front(), hi = x.back();
  size_t j = 0;
  for (size_t i = 0; i < points; ++i) {
    const double t = i + 1 == points ? hi : lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(points - 1);
    while (j + 2 < x.size() && x[j + 1] < t) ++j;
    const double x0 = x[j], x1 = x[j + 1];
    const double w = x1 > x0 ? std::clamp((t - x0) / (x1 - x0), 0.0, 1.0) : 0.0;
    nx[i] = t;
    ny[i] = y[j] + w * (y[j + 1] - y[j]);
  }
  x = std::move(nx);
  y = std::move(ny);
}

RunSummary run_experiment(const json& resolved, const RunOptions& options) {
  const Experiment e = Experiment::from_json(resolved);
  const fs::path out = options.out;
  if (out.empty()) lab::fail_parameter("--out: the run directory is required");
  std::error_code ec;
  const fs::path config_path = out / "config.json";
  json record = {{"attrlab_version", ATTRLAB_VERSION},
                 {"source", options.source},
                 {"overrides", options.overrides},
                 {"seeds", seeds_record(e)},
                 {"config", resolved}};
  if (fs::exists(config_path)) {
    if (!options.resume)
      lab::fail("{}: already holds a run; pass --resume to continue it, or choose another --out", out.string());
    const json old = lab::read_json(config_path);
    if (!old.contains("config") || old.at("config") != resolved)
      lab::fail("{}: --resume with a different configuration (first difference at '{}'); use a new --out",
                config_path.string(), old.contains("config") ? first_difference(old.at("config"), resolved, "") : "config");
  } else if (fs::exists(out) && !fs::is_directory(out)) {
    lab::fail("--out {}: exists and is not a directory", out.string());
  } else if (fs::exists(out) && !fs::is_empty(out, ec) && !options.resume) {
    lab::fail("--out {}: the directory exists and is not empty; choose a new one", out.string());
  }
  fs::create_directories(out, ec);
  if (ec) lab::fail("--out {}: cannot create the directory: {}", out.string(), ec.message());
  lab::write_json(config_path, record);

  // Models: data, network, contexts, metrics.
  std::vector<ModelState> states(e.models.size());
  for (size_t m = 0; m < e.models.size(); ++m) {
    ModelState& s = states[m];
    s.spec = &e.models[m];
    s.data = prepare_data(e, e.models[m], out / "data" / e.models[m].label, options.resume, options.quiet);
    const datasets::Environment& env = s.data->env();
    s.net = env.build_network();
    s.method_context.net = &s.net;
    s.method_context.background = env.background();
    s.method_context.layers = env.default_layers();
    s.method_context.chunk = e.batch;
    const int64_t refs = std::min(e.count, e.reference);
    s.method_context.reference_inputs = s.data->inputs(0, refs);
    s.metric_context.net = &s.net;
    s.metric_context.env = env.name();
    s.metric_context.background = env.background();
    s.metric_context.input_max = env.image_channels() == 3 ? 255.0f : 1.0f;
    s.metric_context.predicted_label = [&env](const float* row) { return env.predicted_label(row); };
    s.metric_context.batch = e.chunk;
    s.metric_context.max_chunk = e.batch;
    const MetricSetup setup = MetricSetup::of(env);
    for (const MetricSpec& ms : e.metrics) {
      if (!ms.runs_on(s.spec->label)) continue;
      lab::Options params = lab::Options::from_json(ms.params, "-p metrics." + ms.name + ".params");
      s.metrics.push_back(make_metric(ms.name, params, setup));
      params.finish();
    }
  }

  // Units, in the order their rows appear in results.csv.
  std::vector<Unit> units;
  for (size_t m = 0; m < e.models.size(); ++m)
    for (size_t k = 0; k < e.methods.size(); ++k) {
      if (!e.methods[k].runs_on(e.models[m].label)) continue;
      for (int64_t b = 0; b < e.count; b += e.chunk) {
        Unit u{m, k, b, std::min(e.count, b + e.chunk), {}, {}};
        u.stem = fs::path("units") / e.models[m].label / e.methods[k].slug / fmt::format("{:05}", b / e.chunk);
        u.label = fmt::format("{} / {}: images {}-{}", e.models[m].label, e.methods[k].label, u.begin, u.end - 1);
        units.push_back(std::move(u));
      }
    }
  RunSummary summary;
  summary.units = static_cast<int64_t>(units.size());
  std::vector<bool> done(units.size(), false);
  for (size_t i = 0; i < units.size(); ++i) done[i] = options.resume && fs::exists(out / (units[i].stem.string() + ".done"));
  summary.skipped = std::count(done.begin(), done.end(), true);

  Progress progress(summary.units, !options.quiet);
  if (summary.skipped > 0) progress.skip(summary.skipped);
  std::map<std::pair<size_t, size_t>, std::unique_ptr<attributions::Method>> methods;
  for (size_t i = 0; i < units.size(); ++i) {
    if (done[i]) continue;
    const Unit& u = units[i];
    auto& method = methods[{u.model, u.method}];
    if (!method) {
      lab::Options params = lab::Options::from_json(e.methods[u.method].params, "-p methods." + e.methods[u.method].label + ".params");
      method = attributions::make_method(e.methods[u.method].name, params);
    }
    progress.start(u.label);
    run_unit(e, states[u.model], e.methods[u.method], *method, u, out);
    progress.advance();
  }
  progress.finish();

  // Assemble results.csv and curves.csv from the unit files, in unit order, then the metrics'
  // own aggregates per (model, method, metric).
  // Within each (model, method), rows are ordered by sample (stable, so each sample keeps the
  // metrics' order): the files do not depend on how the images were cut into units.
  std::vector<ResultRow> all_rows;
  std::vector<CurveRow> all_curves;
  std::string costs = "\"model\",\"method\",\"first\",\"last\",\"evaluations\"\n";
  std::map<std::pair<size_t, size_t>, json> maps_records;  // maps.json of each (model, method)
  for (size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    const fs::path rows_path = out / (u.stem.string() + ".rows.csv");
    const fs::path curves_path = out / (u.stem.string() + ".curves.csv");
    auto parsed = parse_result_csv(lab::read_text(rows_path), rows_path.string());
    all_rows.insert(all_rows.end(), parsed.begin(), parsed.end());
    auto parsed_curves = parse_curve_csv(lab::read_text(curves_path), curves_path.string());
    all_curves.insert(all_curves.end(), parsed_curves.begin(), parsed_curves.end());
    const json done_record = lab::read_json(out / (u.stem.string() + ".done"));
    costs += fmt::format("{},{},{},{},{}\n", csv_quote(e.models[u.model].label), csv_quote(e.methods[u.method].label),
                         u.begin, u.end - 1, done_record.value("evaluations", int64_t{0}));
    json& maps_record = maps_records[{u.model, u.method}];
    if (maps_record.is_null()) {
      const datasets::DataDir& data = *states[u.model].data;
      const fs::path maps_dir = fs::absolute(out / "maps" / e.models[u.model].label / e.methods[u.method].slug);
      const fs::path data_dir = fs::absolute(data.path());
      maps_record = {{"format", 1},
                {"method", e.methods[u.method].name},
                {"label", e.methods[u.method].label},
                {"params", done_record.value("params", json::object())},
                {"version", ATTRLAB_VERSION},
                {"data", fs::relative(data_dir, maps_dir).string()},
                {"data_manifest", {{"env", data.env().name()}, {"seed", data.seed()}, {"count", data.size()}}},
                {"target", e.target},
                {"seed", e.seed},
                {"shape", data.env().input_shape()},
                {"evaluations", 0},
                {"samples", json::array()}};
    }
    maps_record["evaluations"] = maps_record["evaluations"].get<int64_t>() + done_record.value("evaluations", int64_t{0});
    for (const json& sample : done_record.value("samples", json::array())) maps_record["samples"].push_back(sample);
  }
  // maps.json in the `attribute` command's layout, so `attrlab evaluate --maps` reads the maps.
  if (e.save_maps)
    for (const auto& [key, maps_json] : maps_records)
      lab::write_json(out / "maps" / e.models[key.first].label / e.methods[key.second].slug / "maps.json", maps_json);
  std::map<std::string, size_t> model_index, method_index;
  for (size_t m = 0; m < e.models.size(); ++m) model_index[e.models[m].label] = m;
  for (size_t k = 0; k < e.methods.size(); ++k) method_index[e.methods[k].label] = k;
  auto by_sample = [&](const auto& a, const auto& b) {
    return std::make_tuple(model_index.at(a.model), method_index.at(a.method), std::cref(a.sample)) <
           std::make_tuple(model_index.at(b.model), method_index.at(b.method), std::cref(b.sample));
  };
  std::stable_sort(all_rows.begin(), all_rows.end(), by_sample);
  std::stable_sort(all_curves.begin(), all_curves.end(), by_sample);
  std::string results = result_csv_header(), curves = curve_csv_header();
  for (const ResultRow& r : all_rows) results += to_csv_line(r);
  for (const CurveRow& c : all_curves) curves += to_csv_line(c);
  lab::write_text_atomic(out / "costs.csv", costs);
  std::vector<ResultRow> aggregates;
  for (size_t m = 0; m < e.models.size(); ++m)
    for (const MethodSpec& spec : e.methods) {
      if (!spec.runs_on(e.models[m].label)) continue;
      double sum = 0.0;
      int64_t count = 0;
      for (const ResultRow& r : all_rows)
        if (r.model == e.models[m].label && r.method == spec.label && r.metric == "method" && r.variant == "completeness-gap") {
          sum += r.value;
          ++count;
        }
      if (count > 0) aggregates.push_back({e.models[m].label, kAllSamples, spec.label, "method", "completeness-gap", sum / count});
      for (const auto& metric : states[m].metrics) {
        std::vector<MetricRow> rows;
        for (const ResultRow& r : all_rows)
          if (r.model == e.models[m].label && r.method == spec.label && r.metric == metric->name())
            rows.push_back({r.sample, r.variant, r.value});
        for (const MetricRow& a : metric->aggregate(rows))
          aggregates.push_back({e.models[m].label, kAllSamples, spec.label, metric->name(), a.variant, a.value});
      }
    }
  for (const ResultRow& r : aggregates) results += to_csv_line(r);
  all_rows.insert(all_rows.end(), aggregates.begin(), aggregates.end());
  summary.results = out / "results.csv";
  lab::write_text_atomic(summary.results, results);
  lab::write_text_atomic(out / "curves.csv", curves);

  ReportInputs inputs{e, out, all_rows, std::move(all_curves), {}};
  for (size_t m = 0; m < e.models.size(); ++m) {
    for (const auto& metric : states[m].metrics)
      for (const Variant& v : metric->variants()) inputs.directions[metric->name() + "/" + v.name] = v.direction;
  }
  const ReportFiles files = write_report(inputs);
  summary.report_md = files.markdown;
  summary.report_html = files.html;
  return summary;
}

}  // namespace experiments
