#include "experiments/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "attributions/common.h"
#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "experiments/maps.h"
#include "experiments/pipeline.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"
#include "lab/io/outputs.h"

namespace experiments {

namespace fs = std::filesystem;

namespace {

/// One MAPS directory resolved against the data.
struct MapSet {
  std::string method;
  fs::path dir;
  nlohmann::json record;                  ///< maps.json, or null
  std::vector<int64_t> samples;           ///< data indices whose maps are accepted, in data order
  std::map<std::string, int64_t> target;  ///< id → target from maps.json
  std::vector<std::pair<fs::path, std::string>> rejected;  ///< file, reason
  bool fingerprint = false;  ///< maps.json named the data's fingerprint (checked equal)
  std::map<std::string, int64_t> converted;  ///< dtype → accepted files converted from it
};

/// The last component of a directory path, also when written with a trailing slash.
std::string dir_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

/// Resolves every MAPS directory: method names, accepted samples, rejected files (also appended
/// to `rejected` with the final method names).
std::vector<MapSet> scan_maps(const datasets::DataDir& data, const std::vector<fs::path>& dirs,
                              std::vector<RejectedMap>& rejected) {
  std::map<std::string, int64_t> index_of;
  for (int64_t i = 0; i < data.size(); ++i) index_of[data.id(i)] = i;
  const lab::Shape input = data.env().input_shape();

  std::vector<MapSet> sets;
  for (const fs::path& dir : dirs) {
    if (!fs::is_directory(dir)) lab::fail("--maps {}: not a directory", dir.string());
    MapSet set;
    set.dir = dir;
    const fs::path json = dir / "maps.json";
    std::set<std::string> expected;
    bool listed = false;
    if (fs::exists(json)) {
      set.record = lab::read_json(json);
      if (!set.record.is_object()) lab::fail("{}: expected a JSON object", json.string());
      for (const char* key : {"method", "label"})  // the label a front end gave wins
        if (set.record.contains(key) && set.record[key].is_string() && !set.record[key].get<std::string>().empty())
          set.method = set.record[key].get<std::string>();
      check_made_for(json, set.record, data);
      set.fingerprint = set.record.contains("data-manifest") && set.record["data-manifest"].is_object() &&
                        set.record["data-manifest"].contains("fingerprint");
      if (set.record.contains("samples") && !set.record["samples"].is_array())
        lab::fail("{}: samples = {}; expected a list of {{\"id\": ...}}", json.string(), set.record["samples"].type_name());
      if (set.record.contains("samples")) {
        listed = true;
        for (const nlohmann::json& s : set.record["samples"]) {
          if (!s.is_object() || !s.contains("id") || !s["id"].is_string())
            lab::fail("{}: every entry of \"samples\" needs a string \"id\"", json.string());
          const std::string id = s["id"].get<std::string>();
          expected.insert(id);
          // Maps are read from <id>.npy: a "map" naming another file would be ignored, so it is refused.
          if (s.contains("map") && s["map"] != nlohmann::json(id + ".npy"))
            lab::fail("{}: sample {}: map = {}; maps are read from <id>.npy, expected \"{}.npy\"", json.string(), id,
                      s["map"].dump(), id);
          if (s.contains("target") && !s["target"].is_number_integer())
            lab::fail("{}: sample {}: target = {}; expected an integer (the output explained)", json.string(), id,
                      s["target"].dump());
          if (s.contains("target")) set.target[id] = s["target"].get<int64_t>();
        }
      }
    }
    if (set.method.empty()) set.method = dir_name(dir);

    std::set<std::string> present;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && entry.path().extension() == ".npy") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string id = f.stem().string();
      if (index_of.count(id) == 0) {
        set.rejected.emplace_back(f, fmt::format("not a sample id of the data at {}", data.path().string()));
        continue;
      }
      if (listed && expected.count(id) == 0) {
        set.rejected.emplace_back(f, "not listed in maps.json");
        continue;
      }
      present.insert(id);
    }
    for (const std::string& id : expected) {
      if (index_of.count(id) == 0) {
        set.rejected.emplace_back(dir / (id + ".npy"), fmt::format("maps.json lists sample {} which the data at {} "
                                                                   "does not have",
                                                                   id, data.path().string()));
      } else if (present.count(id) == 0) {
        set.rejected.emplace_back(dir / (id + ".npy"), "missing (listed in maps.json)");
      }
    }
    for (int64_t i = 0; i < data.size(); ++i) {
      const std::string id = data.id(i);
      if (present.count(id) == 0) continue;
      std::string reason, from;
      if (read_map(dir / (id + ".npy"), input, reason, &from)) {
        set.samples.push_back(i);
        if (!from.empty()) ++set.converted[from];
      } else {
        set.rejected.emplace_back(dir / (id + ".npy"), reason);
      }
    }
    if (set.samples.empty() && set.rejected.empty())
      lab::fail("--maps {}: holds no map of the data's samples (<id>.npy){}; expected a maps directory", dir.string(),
                fs::exists(dir / "manifest.json") ? " and is a data directory" : "");
    sets.push_back(std::move(set));
  }

  // Equal method names: tell them apart by directory name.
  for (size_t i = 0; i < sets.size(); ++i)
    for (size_t j = i + 1; j < sets.size(); ++j)
      if (sets[i].method == sets[j].method) {
        const std::string name = sets[i].method;
        for (MapSet& s : sets)
          if (s.method == name) s.method = dir_name(s.dir);
      }
  for (size_t i = 0; i < sets.size(); ++i)
    for (size_t j = i + 1; j < sets.size(); ++j)
      if (sets[i].method == sets[j].method)
        lab::fail("--maps {} and --maps {} both give method '{}'; rename a directory", sets[i].dir.string(),
                  sets[j].dir.string(), sets[i].method);
  for (const MapSet& s : sets)
    for (const auto& [file, reason] : s.rejected) rejected.push_back({s.method, file, reason});
  return sets;
}


}  // namespace

Evaluation evaluate_maps(const EvaluateRequest& request, const CurveSink& curves, const UnitObserver& progress,
                         const UnitFiles* units) {
  if (request.maps.empty()) lab::fail_parameter("give at least one --maps directory");
  if (request.metrics.empty()) lab::fail_parameter("give at least one --metric");
  if (request.unit < 1) lab::fail_parameter("--unit must be at least 1, got {}", request.unit);
  if (request.batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", request.batch);

  const datasets::DataDir data = datasets::DataDir::open(request.data);
  const datasets::Environment& env = data.env();
  lab::Options params = lab::Options::parse(request.params, "-p");
  std::vector<std::unique_ptr<Metric>> metrics = make_metrics(request.metrics, params, MetricSetup::of(env));
  const std::string model = request.model.empty() ? env.name() : request.model;

  Evaluation result;
  std::vector<MapSet> sets = scan_maps(data, request.maps, result.rejected);
  if (request.limit >= 0)
    for (MapSet& set : sets)
      set.samples.erase(std::remove_if(set.samples.begin(), set.samples.end(),
                                       [&](int64_t i) { return i >= request.limit; }),
                        set.samples.end());

  const lab::Network net = env.build_network();
  attributions::check_batch_memory(net, request.batch, fmt::format("--batch {}", request.batch));
  const ScoreStage stage(data, net, std::move(metrics), request.seed, request.unit, request.batch);
  const size_t unit = static_cast<size_t>(request.unit);
  if (progress) {
    int64_t count = 0;
    for (const MapSet& set : sets) count += static_cast<int64_t>((set.samples.size() + unit - 1) / unit);
    progress(count, "");
  }
  if (units && units->prepare) units->prepare();

  const lab::Shape input = env.input_shape();
  const int64_t h = input[1], w = input[2];
  nlohmann::json methods = nlohmann::json::array();
  for (size_t s = 0; s < sets.size(); ++s) {
    const MapSet& set = sets[s];
    // The method that made the maps, when maps.json names a registry method with its parameters:
    // the metrics that re-explain perturbed inputs (max-/avg-sensitivity) need it. Other maps
    // are scored without it, and those metrics refuse them.
    std::unique_ptr<attributions::Method> remade;
    std::unique_ptr<AttributeStage> remade_stage;
    Explainer explain;
    ScoredMethod scored;  // the same record for the invariant metric
    const nlohmann::json& rec = set.record;
    if (rec.is_object() && rec.contains("method") && rec["method"].is_string() && rec.contains("params") &&
        rec["params"].is_object()) {
      try {
        lab::Options options = lab::Options::from_json(rec["params"], "-p");
        remade = attributions::make_method(rec["method"].get<std::string>(), options);
      } catch (const lab::Error&) {
        remade.reset();
      }
      if (remade) {
        AttributeSetup setup;
        setup.label = set.method;
        if (rec.contains("context") && rec["context"].is_object() && rec["context"].contains("reference-inputs") &&
            rec["context"]["reference-inputs"].is_number_integer())
          setup.reference = rec["context"]["reference-inputs"].get<int64_t>();
        if (rec.contains("seed") && rec["seed"].is_number_unsigned()) setup.seed = rec["seed"].get<uint64_t>();
        remade_stage = std::make_unique<AttributeStage>(data, net, *remade, setup);
        explain = remade_stage->explainer();
        scored = remade_stage->scored_method();
      }
    }
    std::vector<ResultRow> rows;
    for (size_t begin = 0; begin < set.samples.size(); begin += unit) {
      const size_t end = std::min(set.samples.size(), begin + unit);
      // A unit an earlier, interrupted evaluation finished: its rows and curves read back.
      const fs::path stem = units ? units->dir / "units" / fmt::format("{:03}-{:05}", s, begin / unit) : fs::path();
      if (units && fs::exists(fs::path(stem.string() + ".done"))) {
        const fs::path rows_path = stem.string() + ".rows.csv", curves_path = stem.string() + ".curves.csv";
        const std::vector<ResultRow> kept = parse_result_csv(lab::read_text(rows_path), rows_path.string());
        const std::vector<CurveRow> points = parse_curve_csv(lab::read_text(curves_path), curves_path.string());
        if (curves && !points.empty()) curves(points);
        rows.insert(rows.end(), kept.begin(), kept.end());
        result.units.push_back(stem);
        if (progress) progress(kUnitKept, set.method);
        continue;
      }
      const std::vector<int64_t> samples(set.samples.begin() + static_cast<std::ptrdiff_t>(begin),
                                         set.samples.begin() + static_cast<std::ptrdiff_t>(end));
      std::vector<lab::Tensor> attrs;
      std::vector<int64_t> target;
      for (const int64_t i : samples) {
        const std::string id = data.id(i);
        std::string reason;
        std::optional<lab::Tensor> map = read_map(set.dir / (id + ".npy"), input, reason);
        if (!map) lab::fail("{}: {} (the file changed while evaluating)", (set.dir / (id + ".npy")).string(), reason);
        attrs.push_back(std::move(*map));
        const auto t = set.target.find(id);
        target.push_back(t != set.target.end() ? t->second : env.target_output(data.label(i)));
      }
      const lab::Tensor attr = lab::Tensor::stack(attrs);
      LAB_CHECK(attr.shape() == (lab::Shape{static_cast<int64_t>(samples.size()), h, w}), "maps {}",
                lab::to_string(attr.shape()));
      Scores scores = stage.score(model, set.method, samples, attr, target, explain, scored);
      if (units) {
        std::string rows_text = result_csv_header(), curves_text = curve_csv_header();
        for (const ResultRow& r : scores.rows) rows_text += to_csv_line(r);
        for (const CurveRow& c : scores.curves) curves_text += to_csv_line(c);
        lab::write_text_atomic(stem.string() + ".rows.csv", rows_text);
        lab::write_text_atomic(stem.string() + ".curves.csv", curves_text);
        lab::write_json(stem.string() + ".done", {{"method", set.method}, {"samples", samples.size()}});
        result.units.push_back(stem);
      }
      if (curves && !scores.curves.empty()) curves(scores.curves);
      rows.insert(rows.end(), scores.rows.begin(), scores.rows.end());
      if (progress) progress(kUnitScored, set.method);
    }
    // Per metric: the per-sample rows in data order, then its "all" rows.
    const std::vector<ResultRow> summary = stage.aggregate(model, set.method, rows);
    for (const auto& metric : stage.metrics()) {
      for (const ResultRow& r : rows)
        if (r.metric == metric->label()) result.rows.push_back(r);
      for (const ResultRow& r : summary)
        if (r.metric == metric->label()) result.rows.push_back(r);
    }
    if (!set.fingerprint) result.unfingerprinted.push_back(set.dir);
    for (const auto& [dtype, files] : set.converted) result.conversions.push_back({set.dir, dtype, files});
    nlohmann::json entry = {{"method", set.method},
                            {"maps", fs::absolute(set.dir).lexically_normal().string()},
                            {"scored", set.samples.size()},
                            {"rejected", set.rejected.size()},
                            {"fingerprint-checked", set.fingerprint}};
    if (set.record.is_object() && set.record.contains("params")) entry["params"] = set.record["params"];
    if (set.record.is_object() && set.record.contains("method")) entry["maps-method"] = set.record["method"];
    methods.push_back(std::move(entry));
  }

  nlohmann::json metric_records = nlohmann::json::array();
  for (const auto& m : stage.metrics()) {
    nlohmann::json variants = nlohmann::json::array();
    for (const Variant& v : m->variants()) {
      variants.push_back({{"name", v.name}, {"direction", direction_name(v.direction)}});
      result.variants.emplace_back(m->name(), v);
    }
    metric_records.push_back({{"name", m->name()}, {"family", m->family()}, {"params", m->params()}, {"variants", variants}});
  }
  nlohmann::json rejected = nlohmann::json::array();
  for (const RejectedMap& r : result.rejected)
    rejected.push_back({{"method", r.method}, {"file", r.file.string()}, {"reason", r.reason}});
  result.record = {{"format", 2},
                   {"attrlab-version", ATTRLAB_VERSION},
                   {"data",
                    {{"path", fs::absolute(data.path()).lexically_normal().string()},
                     {"env", env.name()},
                     {"seed", data.seed()},
                     {"count", data.size()},
                     {"fingerprint", data.fingerprint()}}},
                   {"model", model},
                   {"seed", request.seed},
                   {"limit", request.limit < 0 ? nlohmann::json(nullptr) : nlohmann::json(request.limit)},
                   {"metrics", metric_records},
                   {"methods", methods},
                   {"rejected", rejected}};
  return result;
}

fs::path record_path(const fs::path& results) {
  fs::path p = results;
  p.replace_extension(".json");
  if (p == results) p += ".json";
  return p;
}

fs::path unit_dir(const fs::path& results) { return fs::path(results.string() + ".units"); }

namespace {

/// What an evaluation computes, as request.json of its unit directory records it: a resumed
/// evaluation must ask for the same.
nlohmann::json request_record(const EvaluateRequest& request) {
  const datasets::DataDir data = datasets::DataDir::open(request.data);
  nlohmann::json maps = nlohmann::json::array();
  for (const fs::path& m : request.maps) maps.push_back(fs::absolute(m).lexically_normal().string());
  return {{"attrlab-version", ATTRLAB_VERSION},
          {"data", fs::absolute(request.data).lexically_normal().string()},
          {"fingerprint", data.fingerprint()},
          {"maps", maps},
          {"metrics", request.metrics},
          {"params", request.params},
          {"model", request.model},
          {"seed", request.seed},
          {"limit", request.limit},
          {"unit", request.unit}};
}

}  // namespace

Evaluation run_evaluate(const EvaluateRequest& request, const fs::path& results, const std::optional<fs::path>& curves,
                        const UnitObserver& progress, const EvaluateResume& how) {
  if (curves && fs::absolute(*curves) == fs::absolute(results)) lab::fail_parameter("--curves and --out name the same file");
  if (how.resume && how.force) lab::fail_usage("evaluate: --resume and --force exclude each other");
  const fs::path work = unit_dir(results);
  const fs::path request_path = work / "request.json";
  std::optional<lab::DirLock> lock;
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(work, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status))
      lab::fail_usage("--out {}: its unit directory {} is {}; expected a directory attrlab wrote", results.string(),
                      work.string(), lab::describe_file_type(work));
    // The lock comes first, so that a second evaluate into RESULTS is refused for that reason alone.
    lock.emplace(work, "--out");
    lab::sweep_stale_temps(work, true);  // temporaries of an evaluation that was killed
    if (!fs::is_regular_file(fs::symlink_status(request_path, ec))) {
      for (auto it = fs::directory_iterator(work, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().filename() != lab::DirLock::kFileName)
          lab::fail_usage("--out {}: {} holds files but no request.json, so attrlab did not write it; remove it or "
                          "choose another --out",
                          results.string(), work.string());
    } else if (how.force) {
      std::vector<fs::path> earlier;
      for (auto it = fs::directory_iterator(work, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().filename() != lab::DirLock::kFileName) earlier.push_back(it->path());
      for (const fs::path& p : earlier)
        if (!ec) fs::remove_all(p, ec);
      if (ec) lab::fail("{}: cannot remove the earlier evaluation: {}", work.string(), ec.message());
    } else if (!how.resume) {
      lab::fail_usage("--out {}: an interrupted evaluation of it is kept in {}; pass --resume to continue it, --force "
                      "to start again",
                      results.string(), work.string());
    } else {
      const nlohmann::json old = lab::read_json(request_path);
      const nlohmann::json now = request_record(request);
      for (const auto& [key, value] : now.items())
        if (!old.contains(key) || old.at(key) != value)
          lab::fail_usage("--resume: {} records another evaluation ({} = {}, now {}); use --force to start again",
                          request_path.string(), key, old.contains(key) ? old.at(key).dump() : "missing", value.dump());
    }
  }
  UnitFiles units;
  units.dir = work;
  units.prepare = [&] {
    fs::create_directories(work / "units", ec);
    if (ec) lab::fail("{}: cannot create the unit directory: {}", work.string(), ec.message());
    if (!lock) lock.emplace(work, "--out");
    if (!fs::exists(request_path)) lab::write_json(request_path, request_record(request));
  };

  const Evaluation evaluation = evaluate_maps(request, nullptr, progress, &units);
  if (curves) {
    // Copied from the unit files in unit order: memory never holds every curve.
    const std::string header = curve_csv_header();
    lab::write_atomic(*curves, [&](std::ostream& os) {
      os << header;
      for (const fs::path& stem : evaluation.units) {
        const std::string text = lab::read_text(stem.string() + ".curves.csv");
        LAB_CHECK(text.compare(0, header.size(), header) == 0, "{}.curves.csv without its header", stem.string());
        os.write(text.data() + header.size(), static_cast<std::streamsize>(text.size() - header.size()));
      }
    });
  }
  lab::write_atomic(results, [&](std::ostream& os) {
    os << result_csv_header();
    for (const ResultRow& r : evaluation.rows) os << to_csv_line(r);
  });
  lab::write_json(record_path(results), evaluation.record);
  fs::remove_all(work, ec);  // everything it kept is in the files now
  return evaluation;
}

}  // namespace experiments
