#include "experiments/metrics/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "attributions/common.h"
#include "datasets/data_dir.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

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
};

std::string number(double v) { return fmt::format("{}", v); }

/// The last component of a directory path, also when written with a trailing slash.
std::string dir_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

/// The H×W pixel map of a file, or the reason it is rejected.
std::optional<lab::Tensor> read_map(const fs::path& file, const lab::Shape& input, std::string& reason) {
  lab::Tensor t;
  try {
    t = lab::read_npy(file);
  } catch (const lab::Error& e) {
    reason = e.what();
    return std::nullopt;
  }
  const int64_t c = input[0], h = input[1], w = input[2];
  const lab::Shape& s = t.shape();
  const bool plain = s == lab::Shape{h, w};
  const bool channels = s.size() == 3 && (s[0] == 1 || s[0] == c) && s[1] == h && s[2] == w;
  if (!plain && !channels) {
    reason = fmt::format("shape {}; expected [{}, {}] or [C, {}, {}] with C = 1 or {}", lab::to_string(s), h, w, h, w, c);
    return std::nullopt;
  }
  if (!t.all_finite()) {
    reason = "holds NaN or Inf";
    return std::nullopt;
  }
  if (plain) return t;
  return pixel_map(t.reshaped({1, s[0], h, w})).reshaped({h, w});
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
      if (set.record.contains("method") && set.record["method"].is_string())
        set.method = set.record["method"].get<std::string>();
      const nlohmann::json* env = nullptr;
      if (set.record.contains("data-manifest") && set.record["data-manifest"].contains("env"))
        env = &set.record["data-manifest"]["env"];
      if (env && *env != data.env().name())
        lab::fail("{}: maps made for environment {}, the data at {} is {}", json.string(), env->dump(),
                  data.path().string(), data.env().name());
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
      std::string reason;
      if (read_map(dir / (id + ".npy"), input, reason)) {
        set.samples.push_back(i);
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

bool needs_smooth(const Metric& metric) {
  const nlohmann::json p = metric.params();
  return p.contains("ground-truth") && p["ground-truth"] != "pixel";
}

}  // namespace

std::string results_csv_header() { return "sample,method,metric,variant,value\n"; }

std::string curves_csv_header() { return "sample,method,metric,variant,x,y\n"; }

std::string csv_line(const ScoreRow& r) {
  return fmt::format("{},{},{},{},{}\n", csv_quote(r.sample), csv_quote(r.method), csv_quote(r.metric),
                     csv_quote(r.variant), number(r.value));
}

std::string csv_line(const std::string& method, const std::string& metric, const CurvePoint& p) {
  return fmt::format("{},{},{},{},{},{}\n", csv_quote(p.sample), csv_quote(method), csv_quote(metric),
                     csv_quote(p.variant), number(p.x), number(p.y));
}

Evaluation evaluate_maps(const EvaluateRequest& request, const CurveSink& curves) {
  if (request.maps.empty()) lab::fail_parameter("give at least one --maps directory");
  if (request.metrics.empty()) lab::fail_parameter("give at least one --metric");
  if (request.batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", request.batch);
  if (request.max_chunk < 1) lab::fail_parameter("--chunk must be at least 1, got {}", request.max_chunk);

  const datasets::DataDir data = datasets::DataDir::open(request.data);
  const datasets::Environment& env = data.env();
  lab::Options params = lab::Options::parse(request.params, "-p");
  const std::vector<std::unique_ptr<Metric>> metrics = make_metrics(request.metrics, params, MetricSetup::of(env));
  const bool smooth = std::any_of(metrics.begin(), metrics.end(), [](const auto& m) { return needs_smooth(*m); });

  Evaluation result;
  const std::vector<MapSet> sets = scan_maps(data, request.maps, result.rejected);

  const lab::Network net = env.build_network();
  attributions::check_chunk_memory(net, request.max_chunk, fmt::format("--batch {}", request.max_chunk));
  Context context;
  context.net = &net;
  context.env = env.name();
  context.background = env.background();
  context.input_max = env.image_channels() == 3 ? 255.0f : 1.0f;
  context.predicted_label = [&env](const float* row) { return env.predicted_label(row); };
  context.batch = request.batch;
  context.max_chunk = request.max_chunk;

  const lab::Shape input = env.input_shape();
  const int64_t h = input[1], w = input[2];
  nlohmann::json methods = nlohmann::json::array();
  for (const MapSet& set : sets) {
    std::vector<std::vector<MetricRow>> rows(metrics.size());
    for (size_t begin = 0; begin < set.samples.size(); begin += static_cast<size_t>(request.batch)) {
      const size_t end = std::min(set.samples.size(), begin + static_cast<size_t>(request.batch));
      const int64_t n = static_cast<int64_t>(end - begin);
      Batch batch;
      std::vector<lab::Tensor> xs, attrs, gts, smooths;
      for (size_t k = begin; k < end; ++k) {
        const int64_t i = set.samples[k];
        const std::string id = data.id(i);
        batch.ids.push_back(id);
        xs.push_back(data.input(i));
        std::string reason;
        std::optional<lab::Tensor> map = read_map(set.dir / (id + ".npy"), input, reason);
        if (!map) lab::fail("{}: {} (the file changed while evaluating)", (set.dir / (id + ".npy")).string(), reason);
        attrs.push_back(std::move(*map));
        gts.push_back(data.gt(i));
        if (smooth) smooths.push_back(data.gt(i, true));
        const auto t = set.target.find(id);
        batch.target.push_back(t != set.target.end() ? t->second : env.target_output(data.label(i)));
        batch.seeds.push_back(static_cast<uint64_t>(i));
      }
      batch.x = lab::Tensor::stack(xs);
      batch.attr = lab::Tensor::stack(attrs);
      batch.gt = lab::Tensor::stack(gts);
      if (smooth) batch.gt_smooth = lab::Tensor::stack(smooths);
      LAB_CHECK(batch.attr.shape() == (lab::Shape{n, h, w}), "maps {}", lab::to_string(batch.attr.shape()));
      for (size_t m = 0; m < metrics.size(); ++m) {
        MetricOutput out = metrics[m]->evaluate_samples(context, batch);
        rows[m].insert(rows[m].end(), out.rows.begin(), out.rows.end());
        if (curves && !out.curves.empty()) curves(set.method, metrics[m]->name(), out.curves);
      }
    }
    for (size_t m = 0; m < metrics.size(); ++m) {
      std::vector<MetricRow> summary = metrics[m]->aggregate(rows[m]);
      rows[m].insert(rows[m].end(), summary.begin(), summary.end());
      for (const MetricRow& r : rows[m])
        result.rows.push_back({r.sample, set.method, metrics[m]->name(), r.variant, r.value});
    }
    nlohmann::json entry = {{"method", set.method},
                            {"maps", fs::absolute(set.dir).lexically_normal().string()},
                            {"scored", set.samples.size()},
                            {"rejected", set.rejected.size()}};
    if (set.record.is_object() && set.record.contains("params")) entry["params"] = set.record["params"];
    if (set.record.is_object() && set.record.contains("method")) entry["maps-method"] = set.record["method"];
    methods.push_back(std::move(entry));
  }

  nlohmann::json metric_records = nlohmann::json::array();
  for (const auto& m : metrics) {
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
  result.record = {{"format", 1},
                   {"version", ATTRLAB_VERSION},
                   {"data",
                    {{"path", fs::absolute(data.path()).lexically_normal().string()},
                     {"env", env.name()},
                     {"seed", data.seed()},
                     {"count", data.size()}}},
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

Evaluation run_evaluate(const EvaluateRequest& request, const fs::path& results,
                        const std::optional<fs::path>& curves) {
  Evaluation evaluation;
  if (curves) {
    if (fs::absolute(*curves) == fs::absolute(results)) lab::fail_parameter("--curves and --out name the same file");
    lab::write_atomic(*curves, [&](std::ostream& os) {
      os << curves_csv_header();
      evaluation = evaluate_maps(request, [&](const std::string& method, const std::string& metric,
                                              const std::vector<CurvePoint>& points) {
        for (const CurvePoint& p : points) os << csv_line(method, metric, p);
      });
    });
  } else {
    evaluation = evaluate_maps(request, nullptr);
  }
  lab::write_atomic(results, [&](std::ostream& os) {
    os << results_csv_header();
    for (const ScoreRow& r : evaluation.rows) os << csv_line(r);
  });
  lab::write_json(record_path(results), evaluation.record);
  return evaluation;
}

}  // namespace experiments
