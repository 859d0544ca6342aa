#include "experiments/run.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "datasets/environment.h"
#include "experiments/cluster.h"
#include "experiments/config.h"
#include "experiments/maps.h"
#include "experiments/metrics/metric.h"
#include "experiments/pipeline.h"
#include "experiments/progress.h"
#include "experiments/report/report.h"
#include "experiments/reuse.h"
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
  bool reused = false;  ///< its maps came from an earlier run (--reuse)
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
                    const Unit& unit, const fs::path& out, int64_t grid_rows, int rank,
                    const std::optional<ReuseSource>& source) {
  const auto started = std::chrono::steady_clock::now();
  const double cpu_started = process_cpu_seconds();
  // The maps of an earlier run (--reuse) when it finished this unit, else the method's.
  std::optional<AttributedUnit> reused;
  if (source)
    if (std::optional<ReusedUnit> files = MapReuse::unit(*source, unit.begin, unit.end))
      reused = stage.reuse(unit.begin, unit.end, std::move(*files));
  const AttributedUnit maps = reused ? std::move(*reused) : stage.run(unit.begin, unit.end);
  const auto attributed = std::chrono::steady_clock::now();
  const double cpu_attributed = process_cpu_seconds();
  if (e.save_maps) stage.save_maps(maps, out / "maps" / state.spec->label / spec.slug);
  const std::string& model = state.spec->label;
  // Maps read from files cannot be re-made for perturbed inputs: no explainer for them.
  Scores scores = state.scores->score(model, spec.label, unit.begin, unit.end, maps.result.attr, maps.batch.target,
                                      spec.maps.empty() ? stage.explainer() : Explainer(),
                                      spec.maps.empty() ? stage.scored_method() : ScoredMethod());

  UnitResult r;
  r.reused = reused.has_value();
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
  json done = {{"model", model}, {"method", spec.label}, {"begin", unit.begin}, {"end", unit.end},
               {"samples", r.samples},
               {"evaluations", r.evaluations},
               {"method-seconds", std::chrono::duration<double>(attributed - started).count()},
               {"metric-seconds", scores.metric_seconds},
               {"method-cpu-seconds", cpu_attributed - cpu_started},
               {"metric-cpu-seconds", scores.metric_cpu_seconds}};
  if (rank >= 0) done["rank"] = rank;  // the MPI rank that computed it
  if (reused) done["maps-from"] = (source->run / "units" / source->model / source->slug).string();
  lab::write_json(out / (unit.stem.string() + ".done"), done);
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
  r.reused = done.contains("maps-from");
  return r;
}

std::vector<Unit> make_units(const Experiment& e) {
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
  return units;
}

/// The files of a finished unit, relative to the run directory, its .done marker last.
std::vector<fs::path> unit_files(const Experiment& e, const Unit& unit, const json& samples) {
  std::vector<fs::path> files = {unit.stem.string() + ".rows.csv", unit.stem.string() + ".curves.csv"};
  if (e.save_maps)
    for (const json& s : samples)
      files.push_back(fs::path("maps") / e.models[unit.model].label / e.methods[unit.method].slug /
                      s.at("map").get<std::string>());
  files.push_back(unit.stem.string() + ".done");
  return files;
}

/// One finished unit as an MPI message: its index and its files (binary CBOR).
std::string pack_unit(size_t index, const std::vector<fs::path>& files, const fs::path& root) {
  json message = {{"unit", index}, {"files", json::array()}};
  for (const fs::path& f : files) {
    const std::string bytes = lab::read_text(root / f);
    message["files"].push_back({f.string(), json::binary(std::vector<uint8_t>(bytes.begin(), bytes.end()))});
  }
  const std::vector<uint8_t> cbor = json::to_cbor(message);
  return std::string(cbor.begin(), cbor.end());
}

/// Writes the files of a packed unit into `out` (in their order: .done last); returns its index.
size_t unpack_unit(const std::string& bytes, const fs::path& out) {
  const json message = json::from_cbor(bytes);
  for (const json& f : message.at("files")) {
    const fs::path rel = f.at(0).get<std::string>();
    LAB_CHECK(rel.is_relative() && rel.lexically_normal().string().rfind("..", 0) != 0, "unit file {}", rel.string());
    const std::vector<uint8_t>& data = f.at(1).get_binary();
    lab::write_text_atomic(out / rel, std::string(data.begin(), data.end()));
  }
  return message.at("unit").get<size_t>();
}

/// A scratch directory of this process, removed when it goes (or on an interrupt).
struct ScratchDir {
  fs::path path;
  std::optional<lab::TempRegistration> registration;
  explicit ScratchDir(fs::path p) : path(std::move(p)) {
    registration.emplace(path, [&] { fs::create_directories(path); });
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string version_text(const json& version) {
  return version.is_string() ? version.get<std::string>() : version.dump();
}

std::string shard_text(const json& shard) {
  return fmt::format("{}/{}", shard.at("index").get<int64_t>(), shard.at("count").get<int64_t>());
}

}  // namespace

std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  const auto number = [](std::string_view digits, int64_t& value) {
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    return !digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && digits[0] != '-' &&
           digits[0] != '+';
  };
  const size_t slash = text.find('/');
  int64_t k = -1, n = -1;
  if (slash == std::string::npos || !number(std::string_view(text).substr(0, slash), k) ||
      !number(std::string_view(text).substr(slash + 1), n) || n < 1 || k < 0 || k >= n)
    lab::fail_parameter("--shard {}: expected K/N, shard K of N counted from 0 (0 <= K < N, e.g. 0/4 ... 3/4)", text);
  return {k, n};
}

RunSummary run_experiment(const json& resolved, const RunOptions& options) {
  const Experiment e = Experiment::from_json(resolved);
  const fs::path out = options.out;
  if (out.empty()) lab::fail_parameter("--out: the run directory is required");
  const bool sharded = options.shard_count > 0;
  if (sharded && (options.shard_index < 0 || options.shard_index >= options.shard_count))
    lab::fail_parameter("--shard {}/{}: expected 0 <= K < N", options.shard_index, options.shard_count);
  if (sharded && options.mpi)
    lab::fail_usage("run: --shard and --mpi exclude each other (with --mpi the ranks share the units)");
  if (options.resume && options.force) lab::fail_usage("run: --resume and --force exclude each other");
  const MapReuse reuse(options.reuse);  // refuses a --reuse directory that holds no run, before anything is written
  std::unique_ptr<cluster::Session> session;
  if (options.mpi) session = std::make_unique<cluster::Session>();
  const int rank = session ? session->rank() : 0;
  const int ranks = session ? session->size() : 1;
  const bool worker = rank > 0;  // an MPI rank that sends its units to rank 0 and writes no RUN_DIR

  std::error_code ec;
  const fs::path config_path = out / "config.json";
  json record = {{"attrlab-version", ATTRLAB_VERSION},
                 {"source", options.source},
                 {"overrides", options.overrides},
                 {"seeds", seeds_record(e)},
                 {"config", resolved}};
  if (sharded) record["shard"] = {{"index", options.shard_index}, {"count", options.shard_count}};
  std::optional<lab::DirLock> lock;
  // RUN_DIR is prepared by the one process that writes it.
  const auto prepare_out = [&] {
    // Every environment, method, metric and report study is checked before anything is written.
    check_experiment(e);
    // The lock comes first, so that a second run into RUN_DIR is refused for that reason alone.
    const fs::file_status out_status = fs::status(out, ec);
    if (fs::exists(out_status) && !fs::is_directory(out_status))
      lab::fail_usage("--out {}: is {}; expected a run directory", out.string(), lab::describe_file_type(out));
    if (fs::exists(out_status)) {
      lock.emplace(out, "--out");
      lab::sweep_stale_temps(out, true);  // temporaries of an earlier run that was killed
    }
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
      const json old_shard = old.value("shard", json()), new_shard = record.value("shard", json());
      if (old_shard != new_shard)
        lab::fail_usage("--out {}: holds {}; continue it with {}", out.string(),
                        old_shard.is_null() ? "a whole run" : "shard " + shard_text(old_shard),
                        old_shard.is_null() ? "--resume and no --shard" : "--shard " + shard_text(old_shard) + " --resume");
      if (!old.contains("config") || old.at("config") != resolved)
        lab::fail("{}: --resume with a different configuration (first difference at '{}'); use a new --out",
                  config_path.string(), old.contains("config") ? first_difference(old.at("config"), resolved, "") : "config");
    } else if (fs::exists(out_status) && holds_files()) {
      lab::fail_usage("--out {}: the directory exists, holds files and no run of attrlab (no config.json); choose "
                      "a new one",
                      out.string());
    }
    fs::create_directories(out, ec);
    if (ec) lab::fail("--out {}: cannot create the directory: {}", out.string(), ec.message());
    if (!lock) lock.emplace(out, "--out");
    lab::write_json(config_path, record);
  };
  // A run directory this call creates is removed again if the run fails before its first unit
  // (outside maps of other data, say): a refused run leaves nothing behind.
  struct RemoveIfRefused {
    fs::path dir;
    bool armed = false;
    ~RemoveIfRefused() {
      std::error_code ignored;
      if (armed) fs::remove_all(dir, ignored);
    }
  } created{out, !worker && !fs::exists(out, ec)};
  if (!session) {
    prepare_out();
  } else {
    // Rank 0 prepares RUN_DIR and tells the others whether it could ("0") or the exit code.
    std::string status = "0";
    if (rank == 0) {
      try {
        prepare_out();
      } catch (const lab::Error& err) {
        status = std::to_string(static_cast<int>(err.kind()));
        session->broadcast(status);
        throw;
      } catch (const std::exception&) {
        status = "4";
        session->broadcast(status);
        throw;
      }
    }
    session->broadcast(status);
    if (status != "0") {
      // Rank 0 reports the error and its exit code is the job's. The other ranks end quietly
      // with 0: mpirun kills every rank as soon as one exits non-zero, and a worker exiting
      // first with rank 0's code could kill rank 0 before it printed its line.
      session.reset();
      std::exit(0);
    }
    if (worker) check_experiment(e);
  }
  // The other ranks generate the data (the same bytes: a function of config and seed) in a
  // scratch directory, where their units are written before they go to rank 0.
  std::optional<ScratchDir> scratch;
  if (worker) scratch.emplace(fs::temp_directory_path() / fmt::format("attrlab-rank{}-{}", rank, ::getpid()));
  const fs::path root = worker ? scratch->path : out;
  const bool quiet = options.quiet || worker;

  // Models: data, network and the score stage of their metrics.
  std::vector<ModelState> states(e.models.size());
  for (size_t m = 0; m < e.models.size(); ++m) {
    ModelState& s = states[m];
    s.spec = &e.models[m];
    s.data = prepare_data(e, e.models[m], root / "data" / e.models[m].label, options.resume && !worker, quiet);
    s.net = s.data->env().build_network();
    s.scores = std::make_unique<ScoreStage>(*s.data, s.net, make_model_metrics(e, e.models[m]),
                                              static_cast<uint64_t>(e.seed), e.unit, e.batch);
  }
  RunSummary summary;
  summary.worker = worker;
  summary.shard = sharded;
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

  // --reuse: the earlier (model, method) with the same maps, per (model, method) of this run.
  std::map<std::pair<size_t, size_t>, ReuseSource> sources;
  if (!options.reuse.empty()) {
    std::vector<json> manifests;
    for (const ModelState& s : states) manifests.push_back(lab::read_json(s.data->path() / "manifest.json"));
    for (const auto& [key, stage] : stages) {
      const json& manifest = manifests[key.first];
      if (std::optional<ReuseSource> source = reuse.find(e, e.models[key.first], e.methods[key.second], manifest)) {
        if (!quiet)
          fmt::print(stderr, "attrlab run: maps of {} on {} are taken from {} where that run finished them\n",
                     e.methods[key.second].label, e.models[key.first].label,
                     (source->run / "maps" / source->model / source->slug).string());
        sources.emplace(key, std::move(*source));
      }
    }
  }

  created.armed = false;

  // Units, in the order their rows appear in results.csv. This process computes the units i
  // with i % N == K: shard K of N (--shard), rank K of N (--mpi), or all of them. Round-robin
  // over that order gives every shard a share of every model and method, so their costs balance.
  const std::vector<Unit> units = make_units(e);
  const auto mine = [&](size_t i) {
    if (sharded) return static_cast<int64_t>(i % static_cast<size_t>(options.shard_count)) == options.shard_index;
    return static_cast<int>(i % static_cast<size_t>(ranks)) == rank;
  };
  std::string done_flags(units.size(), '0');
  if (!worker)
    for (size_t i = 0; i < units.size(); ++i)
      if (options.resume && fs::exists(out / (units[i].stem.string() + ".done"))) done_flags[i] = '1';
  if (session) session->broadcast(done_flags);
  std::vector<bool> done(units.size());
  for (size_t i = 0; i < units.size(); ++i) done[i] = done_flags[i] == '1';
  int64_t expected = 0;  // units rank 0 receives from the other ranks
  for (size_t i = 0; i < units.size(); ++i) {
    const bool counted = sharded ? mine(i) : true;
    summary.units += counted ? 1 : 0;
    summary.skipped += counted && done[i] ? 1 : 0;
    if (session && rank == 0 && !mine(i) && !done[i]) ++expected;
  }

  // Rows of the units computed here stay in memory; those of an earlier run (or of another
  // rank) are read back from their files.
  std::vector<UnitResult> results(units.size());
  std::vector<bool> in_memory(units.size(), false);
  Progress progress(summary.units, !quiet);
  if (summary.skipped > 0) progress.skip(summary.skipped);
  const auto receive = [&](const std::string& message) {
    done[unpack_unit(message, out)] = true;
    --expected;
    progress.advance();
  };
  try {
    for (size_t i = 0; i < units.size(); ++i) {
      const Unit& u = units[i];
      if (!mine(i) || done[i]) continue;
      progress.start(u.label);
      const auto source = sources.find({u.model, u.method});
      UnitResult r = run_unit(e, states[u.model], e.methods[u.method], *stages.at({u.model, u.method}), u, root,
                              e.save_maps && !worker && !sharded ? grid_rows(e.report) : 0, session ? rank : -1,
                              source == sources.end() ? std::nullopt : std::optional<ReuseSource>(source->second));
      if (worker) {
        const std::vector<fs::path> files = unit_files(e, u, r.samples);
        session->send(pack_unit(i, files, root));
        for (const fs::path& f : files) fs::remove(root / f, ec);
      } else {
        results[i] = std::move(r);
        in_memory[i] = true;
      }
      ++summary.computed;
      progress.advance();
      std::string message;
      while (session && rank == 0 && session->poll(message)) receive(message);
    }
    if (worker) {
      session->flush();
      return summary;
    }
    while (session && expected > 0) receive(session->receive());
  } catch (const std::exception& err) {
    // One rank's error ends them all (the others would wait for it forever).
    if (!session) throw;
    const auto* lab_error = dynamic_cast<const lab::Error*>(&err);
    fmt::print(stderr, "attrlab: {}error: {}\n", lab_error ? "" : "internal ", err.what());
    session->abort(lab_error ? static_cast<int>(lab_error->kind()) : 4);
  }
  progress.finish();
  // A shard's units wait for `attrlab merge`; it writes no report of its own.
  if (sharded) return summary;

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
    UnitResult r = in_memory[i] ? std::move(results[i]) : read_unit(u, out);
    // Units of this run (here or on another MPI rank) whose maps came from --reuse.
    if (done_flags[i] != '1' && r.reused) ++summary.reused;
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
      for (const Variant& v : metric->variants()) inputs.directions[metric->label() + "/" + v.name] = v.direction;
  }
  const ReportFiles files = write_report(inputs);
  summary.results = files.results;
  summary.report_md = files.markdown;
  summary.report_html = files.html;
  return summary;
}


RunSummary merge_runs(const std::vector<fs::path>& dirs, const RunOptions& options) {
  if (dirs.empty()) lab::fail_parameter("merge: name the shard directories to join (RUN_DIR...)");
  const fs::path out = options.out;
  if (out.empty()) lab::fail_parameter("merge: --out RUN_DIR is required");
  std::error_code ec;
  // Every shard: a run directory of the same attrlab version, configuration and seeds, no shard
  // given twice, and not being written while it is read.
  std::vector<json> records;
  std::vector<std::unique_ptr<lab::DirLock>> locks;
  for (size_t j = 0; j < dirs.size(); ++j) {
    const fs::path& dir = dirs[j];
    if (!fs::is_directory(dir, ec))
      lab::fail("{}: is {}; expected the run directory of a shard", dir.string(), lab::describe_file_type(dir));
    if (!fs::exists(dir / "config.json"))
      lab::fail("{}: no config.json; expected the run directory of a shard (attrlab run --shard K/N)", dir.string());
    for (size_t i = 0; i < j; ++i)
      if (fs::equivalent(dirs[i], dir, ec)) lab::fail("{}: given twice (also as {})", dir.string(), dirs[i].string());
    json record = lab::read_json(dir / "config.json");
    if (!record.contains("config") || !record.contains("seeds") || !record.contains("attrlab-version"))
      lab::fail("{}: expected \"attrlab-version\", \"seeds\" and \"config\" in config.json", dir.string());
    if (j > 0) {
      const json& first = records.front();
      if (record.at("attrlab-version") != first.at("attrlab-version"))
        lab::fail("{}: made by attrlab {}, {} by attrlab {}; merge only shards of one run", dir.string(),
                  version_text(record.at("attrlab-version")), dirs[0].string(), version_text(first.at("attrlab-version")));
      if (record.at("config") != first.at("config"))
        lab::fail("{}: another configuration than {} (first difference at '{}'); merge only shards of one run",
                  dir.string(), dirs[0].string(), first_difference(first.at("config"), record.at("config"), ""));
      if (record.at("seeds") != first.at("seeds"))
        lab::fail("{}: other seeds than {}; merge only shards of one run", dir.string(), dirs[0].string());
    }
    if (record.contains("shard"))
      for (size_t i = 0; i < j; ++i)
        if (records[i].value("shard", json()) == record.at("shard"))
          lab::fail("{}: shard {} again (also {}); give each shard once", dir.string(), shard_text(record.at("shard")),
                    dirs[i].string());
    records.push_back(std::move(record));
    locks.push_back(std::make_unique<lab::DirLock>(dir, "merge"));
  }
  const json& resolved = records.front().at("config");
  const Experiment e = Experiment::from_json(resolved);
  check_experiment(e);

  // Every unit finished in exactly one directory, with all its files.
  const std::vector<Unit> units = make_units(e);
  std::vector<size_t> owner(units.size(), dirs.size());
  for (size_t i = 0; i < units.size(); ++i) {
    for (size_t j = 0; j < dirs.size(); ++j) {
      if (!fs::exists(dirs[j] / (units[i].stem.string() + ".done"))) continue;
      if (owner[i] != dirs.size())
        lab::fail("{}: unit '{}' is also in {}; give each shard once", dirs[j].string(), units[i].label,
                  dirs[owner[i]].string());
      owner[i] = j;
    }
    if (owner[i] != dirs.size()) continue;
    for (size_t j = 0; j < dirs.size(); ++j) {
      const json shard = records[j].value("shard", json());
      if (shard.is_null()) continue;
      const auto k = shard.at("index").get<size_t>(), n = shard.at("count").get<size_t>();
      if (i % n != k) continue;
      size_t finished = 0, total = 0;
      for (size_t u = k; u < units.size(); u += n) {
        ++total;
        finished += fs::exists(dirs[j] / (units[u].stem.string() + ".done")) ? 1 : 0;
      }
      lab::fail("{}: shard {} has not finished unit '{}' ({} of its {} units done); continue it with --shard {} --resume",
                dirs[j].string(), shard_text(shard), units[i].label, finished, total, shard_text(shard));
    }
    const json shard = records.front().value("shard", json());
    if (!shard.is_null())
      lab::fail("{}: no directory holds unit '{}' (shard {}/{} is missing)", dirs.front().string(), units[i].label,
                i % shard.at("count").get<size_t>(), shard.at("count").get<size_t>());
    lab::fail("{}: no directory holds unit '{}'", dirs.front().string(), units[i].label);
  }
  std::vector<std::vector<fs::path>> files(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    const fs::path& dir = dirs[owner[i]];
    const UnitResult r = read_unit(units[i], dir);  // parses its rows and curves
    files[i] = unit_files(e, units[i], r.samples);
    for (const fs::path& f : files[i])
      if (!fs::is_regular_file(dir / f, ec))
        lab::fail("{}: unit '{}' lacks {}", dir.string(), units[i].label, f.string());
  }
  for (const ModelSpec& model : e.models)
    if (!fs::is_regular_file(dirs.front() / "data" / model.label / "manifest.json", ec))
      lab::fail("{}: no data directory data/{}", dirs.front().string(), model.label);

  // --out: a new directory (or an empty one). Refused before anything is written.
  const fs::file_status out_status = fs::status(out, ec);
  if (fs::exists(out_status) && !fs::is_directory(out_status))
    lab::fail_usage("--out {}: is {}; expected a new run directory", out.string(), lab::describe_file_type(out));
  if (fs::exists(out_status))
    for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->path().filename() != lab::DirLock::kFileName)
        lab::fail_usage("--out {}: the directory exists and holds files; merge writes a new run directory", out.string());
  const bool created = !fs::exists(out_status);
  json record = records.front();
  record.erase("shard");
  try {
    fs::create_directories(out, ec);
    if (ec) lab::fail_usage("--out {}: cannot create the directory: {}", out.string(), ec.message());
    {
      const lab::DirLock lock(out, "--out");
      lab::write_json(out / "config.json", record);
      // The data are the same in every shard (config and seed decide them): the first one's.
      for (const ModelSpec& model : e.models) {
        const fs::path to = out / "data" / model.label;
        fs::create_directories(to.parent_path());
        fs::copy(dirs.front() / "data" / model.label, to, fs::copy_options::recursive, ec);
        if (ec) lab::fail("{}: cannot copy {}: {}", out.string(), (dirs.front() / "data" / model.label).string(), ec.message());
      }
      for (size_t i = 0; i < units.size(); ++i)
        for (const fs::path& f : files[i])
          lab::write_text_atomic(out / f, lab::read_text(dirs[owner[i]] / f));
    }
    // Every unit is done: the run continued in --out computes nothing and writes maps.json,
    // results.csv, curves.csv, costs.csv, the tables, figures and report as one process would.
    RunOptions resume;
    resume.out = out;
    resume.resume = true;
    resume.quiet = true;
    resume.source = record.value("source", std::string());
    resume.overrides = record.value("overrides", std::vector<std::string>());
    RunSummary summary = run_experiment(resolved, resume);
    summary.skipped = 0;
    return summary;
  } catch (...) {
    // Nothing is left of a merge that failed half-way.
    if (created) {
      fs::remove_all(out, ec);
    } else {
      for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().filename() != lab::DirLock::kFileName) fs::remove_all(it->path(), ec);
    }
    throw;
  }
}

}  // namespace experiments
