// End-to-end runs of every shipped experiment at a tiny scale (2 images of 32×32, small method
// and metric budgets): the outputs exist, parse, and hold the expected rows, tables and figures;
// a resumed run reproduces results.csv byte for byte; the unit size does not change results.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "experiments/config.h"
#include "experiments/meta_evaluation.h"
#include "experiments/run.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace experiments;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("attrlab-test-run-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// Small budgets for every expensive method and metric of the shipped experiments.
std::vector<std::string> tiny(const std::string& name) {
  std::vector<std::string> o = {"count=2", "size=32"};
  const json config = load_config(name);
  for (const json& m : config.at("methods")) {
    const std::string label = m.at("label"), method = m.at("name");
    if (method == "lime") o.push_back("methods." + label + ".params.samples=24");
    if (method == "extremal-perturbation") o.push_back("methods." + label + ".params.iterations=3");
    if (method == "integrated-gradients") o.push_back("methods." + label + ".params.steps=4");
    if (method == "iba") o.push_back("methods." + label + ".params.iterations=2");
  }
  for (size_t i = 0; i < config.at("metrics").size(); ++i) {
    if (config.at("metrics").at(i).at("name") == "sensitivity-n") {
      o.push_back(fmt::format("metrics.{}.params.subsets=4", i));
      o.push_back(fmt::format("metrics.{}.params.points=3", i));
    }
  }
  return o;
}

json resolve(const std::string& name, std::vector<std::string> overrides) {
  json config = load_config(name);
  apply_overrides(config, overrides);
  return finalize(config);
}

RunSummary run(const json& resolved, const fs::path& out, bool resume = false) {
  RunOptions options;
  options.out = out;
  options.quiet = true;
  options.resume = resume;
  options.source = resolved.at("name");
  return run_experiment(resolved, options);
}

/// Checks the run directory of a finished run against its resolved config.
void check_outputs(const json& resolved, const fs::path& out) {
  const Experiment e = Experiment::from_json(resolved);
  // config.json: the resolved config, the version and the seeds.
  const json record = lab::read_json(out / "config.json");
  CHECK(record.at("config") == resolved);
  CHECK(record.at("attrlab-version") == ATTRLAB_VERSION);
  CHECK(record.at("seeds").at("seed") == e.seed);

  const auto rows = parse_result_csv(lab::read_text(out / "results.csv"), "results.csv");
  const auto curves = parse_curve_csv(lab::read_text(out / "curves.csv"), "curves.csv");
  for (const ModelSpec& model : e.models) {
    for (const MethodSpec& method : e.methods) {
      if (!method.runs_on(model.label)) continue;
      CAPTURE(model.label);
      CAPTURE(method.label);
      // Every image has its map, in the attribute command's layout.
      for (const char* id : {"000000", "000001"}) CHECK(fs::exists(out / "maps" / model.label / method.slug / (std::string(id) + ".npy")));
      const json maps = lab::read_json(out / "maps" / model.label / method.slug / "maps.json");
      CHECK(maps.at("method") == method.name);
      CHECK(maps.at("samples").size() == 2);
      CHECK(maps.at("data-manifest").at("env") == model.env);
      for (const MetricSpec& metric : e.metrics) {
        std::set<std::string> samples;
        int summary = 0;
        for (const ResultRow& r : rows) {
          if (r.model != model.label || r.method != method.label || r.metric != metric.label) continue;
          if (r.sample == "all") ++summary;
          else samples.insert(r.sample);
          CHECK(std::isfinite(r.value));
        }
        CAPTURE(metric.label);
        CHECK(samples == std::set<std::string>{"000000", "000001"});
        CHECK(summary > 0);
      }
      // costs.csv: the unit of two images with its network evaluations.
      CHECK(lab::read_text(out / "costs.csv").find(fmt::format("{},{},0,1,", csv_quote(model.label), csv_quote(method.label))) !=
            std::string::npos);
    }
  }
  for (const MetricSpec& metric : e.metrics) {
    if (metric.name == "gt") continue;
    bool found = false;
    for (const CurveRow& c : curves) found = found || c.metric == metric.label;
    CHECK_MESSAGE(found, "no curve of " << metric.name);
  }
  // Tables (CSV and Markdown), figures (PNG and SVG), reports.
  int tables = 0, figures = 0;
  for (const auto& f : fs::directory_iterator(out / "tables")) {
    if (f.path().extension() == ".csv") {
      ++tables;
      CHECK(fs::exists(fs::path(f.path()).replace_extension(".md")));
      const std::string text = lab::read_text(f.path());
      CHECK(text.rfind("\"", 0) == 0);                       // a quoted header cell
      CHECK(std::count(text.begin(), text.end(), '\n') >= 3);  // the header and rows
    }
  }
  for (const auto& f : fs::directory_iterator(out / "figures")) {
    if (f.path().extension() == ".png") {
      ++figures;
      CHECK(fs::exists(fs::path(f.path()).replace_extension(".svg")));
    }
  }
  CHECK(tables >= 2);
  CHECK(figures >= 2);
  const std::string md = lab::read_text(out / "report.md");
  const std::string html = lab::read_text(out / "report.html");
  for (const json& study : resolved.at("report").at("studies")) {
    CHECK_MESSAGE(md.find(study.at("title").get<std::string>()) != std::string::npos, study.at("title"));
  }
  CHECK(md.find("](figures/") != std::string::npos);
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
  CHECK(html.find("src=\"figures/") == std::string::npos);  // self-contained
}

}  // namespace

TEST_CASE("unseen-data-effect at a tiny scale: Table 2, 5 and 6 with the paper's numbers") {
  TempDir dir("ude");
  const json resolved = resolve("unseen-data-effect", tiny("unseen-data-effect"));
  const RunSummary s = run(resolved, dir.path);
  CHECK(s.units == 2 * 8);  // 2 models × 8 methods × one unit of 2 images (unit 4)
  check_outputs(resolved, dir.path);
  const std::string table2 = lab::read_text(dir.path / "tables" / "study1-spearman.md");
  CHECK(table2.find("| Yes ") != std::string::npos);
  CHECK(table2.find("0.02") != std::string::npos);  // the paper's Insertion ρ with the effect
  CHECK(table2.find("0.81") != std::string::npos);  // the paper's Sensitivity-N ρ without it
  const std::string table5 = lab::read_text(dir.path / "tables" / "study2-with-ude-rankings.csv");
  CHECK(table5.find("\"Spearman ρ vs GT F1 (positive)\"") != std::string::npos);
}

TEST_CASE("faithfulness-test at a tiny scale: P/R/F1 and pass/fail at both thresholds") {
  TempDir dir("faithfulness");
  const json resolved = resolve("faithfulness-test", tiny("faithfulness-test"));
  run(resolved, dir.path);
  check_outputs(resolved, dir.path);
  const std::string test = lab::read_text(dir.path / "tables" / "study1-multi-color-sum-faithfulness-test.csv");
  CHECK(test.find("\"γ=0.5 (overall)\"") != std::string::npos);
  CHECK(test.find("\"γ=0.6 (overall)\"") != std::string::npos);
  // The ground truth of the smooth kind is scored for every method (ground-truth=both).
  const auto rows = parse_result_csv(lab::read_text(dir.path / "results.csv"), "results.csv");
  bool smooth = false;
  for (const ResultRow& r : rows) smooth = smooth || (r.method == "IBA" && r.variant == "f1-positive-smooth");
  CHECK(smooth);
}

TEST_CASE("single-color-modulo at a tiny scale: Table 3 and 4 with the modulo metrics") {
  TempDir dir("modulo");
  const json resolved = resolve("single-color-modulo", tiny("single-color-modulo"));
  run(resolved, dir.path);
  check_outputs(resolved, dir.path);
  const auto rows = parse_result_csv(lab::read_text(dir.path / "results.csv"), "results.csv");
  std::set<std::string> variants;
  for (const ResultRow& r : rows) variants.insert(r.metric + "/" + r.variant);
  CHECK(variants.count("insertion/auc-modulo") == 1);
  CHECK(variants.count("deletion/auc-modulo") == 1);
  CHECK(variants.count("sensitivity-n/mean-modulo") == 1);
  const std::string table4 = lab::read_text(dir.path / "tables" / "study2-single-color-modulo-auc.md");
  CHECK(table4.find("0.9754") != std::string::npos);
}

TEST_CASE("resume: deleted units are recomputed and results.csv comes out byte-identical") {
  TempDir dir("resume");
  std::vector<std::string> o = tiny("unseen-data-effect");
  o.insert(o.end(), {"select=GradCAM,IG,DeepSHAP", "models-select=with-ude", "unit=1"});
  const json resolved = resolve("unseen-data-effect", o);
  const RunSummary first = run(resolved, dir.path);
  CHECK(first.units == 3 * 2);
  const std::string results = lab::read_text(dir.path / "results.csv");
  const std::string curves = lab::read_text(dir.path / "curves.csv");

  // "Interrupt": one unit lost its marker (it was being written), another lost everything.
  fs::remove(dir.path / "units" / "with-ude" / "ig" / "00001.done");
  fs::remove(dir.path / "units" / "with-ude" / "gradcam" / "00000.done");
  fs::remove(dir.path / "units" / "with-ude" / "gradcam" / "00000.rows.csv");
  fs::remove(dir.path / "results.csv");
  fs::remove(dir.path / "curves.csv");
  const RunSummary second = run(resolved, dir.path, true);
  CHECK(second.skipped == 4);
  CHECK(lab::read_text(dir.path / "results.csv") == results);
  CHECK(lab::read_text(dir.path / "curves.csv") == curves);

  SUBCASE("without --resume an existing run is refused") {
    CHECK_THROWS_WITH_AS(run(resolved, dir.path), doctest::Contains("--resume"), lab::Error);
  }
  SUBCASE("--resume with another config is refused, naming the difference") {
    json other = resolved;
    other["seed"] = 99;
    CHECK_THROWS_WITH_AS(run(other, dir.path, true), doctest::Contains("seed"), lab::Error);
  }
  SUBCASE("another thread count gives the same results") {
    TempDir fresh("resume-threads");
    const int threads = lab::Runtime::get().threads();
    lab::Runtime::get().set_threads(threads == 1 ? 2 : 1);
    run(resolved, fresh.path);
    lab::Runtime::get().set_threads(threads);
    CHECK(lab::read_text(fresh.path / "results.csv") == results);
    CHECK(lab::read_text(fresh.path / "curves.csv") == curves);
  }
  SUBCASE("another unit size gives the same results") {
    TempDir fresh("resume-unit");
    std::vector<std::string> o2 = tiny("unseen-data-effect");
    o2.insert(o2.end(), {"select=GradCAM,IG,DeepSHAP", "models-select=with-ude", "unit=2"});
    json resolved2 = resolve("unseen-data-effect", o2);
    run(resolved2, fresh.path);
    CHECK(lab::read_text(fresh.path / "results.csv") == results);
  }
}

TEST_CASE("--reuse: a run takes an earlier run's maps of the same method, data and settings, with the same results") {
  TempDir ude("reuse-ude"), plain("reuse-plain"), reused("reuse-reused"), altered("reuse-altered");
  // unseen-data-effect's with-ude model is faithfulness-test's multi-color-sum (other label, same
  // options once resolved); its without-ude model has other options, hence another network.
  std::vector<std::string> o = tiny("unseen-data-effect");
  o.front() = "count=4";
  o.insert(o.end(), {"unit=2", "select=GradCAM,ExPerturb,IG,LIME"});
  run(resolve("unseen-data-effect", o), ude.path);
  // An earlier run still in progress: its second ExPerturb unit on with-ude is not finished.
  fs::remove(ude.path / "units" / "with-ude" / "experturb" / "00001.done");

  std::vector<std::string> f = tiny("faithfulness-test");
  f.front() = "count=4";
  f.insert(f.end(), {"unit=2", "select=GradCAM,ExPerturb,IG,IG*,LIME (quickshift)"});
  const json resolved = resolve("faithfulness-test", f);
  run(resolved, plain.path);
  RunOptions options;
  options.out = reused.path;
  options.quiet = true;
  options.source = "faithfulness-test";
  options.reuse = {ude.path};
  const RunSummary summary = run_experiment(resolved, options);
  // GradCAM 2 units, IG 2, ExPerturb 1 (the finished one); IG* and LIME (quickshift), another
  // label hence other sample seeds, are computed.
  CHECK(summary.reused == 5);
  for (const char* file : {"results.csv", "curves.csv", "costs.csv"})
    CHECK(lab::read_text(reused.path / file) == lab::read_text(plain.path / file));
  // maps.json records the same, but for the path of its own run's data manifest.
  const auto record = [](const fs::path& run) {
    json r = lab::read_json(run / "maps" / "multi-color-sum" / "experturb" / "maps.json");
    r["data-manifest"].erase("path");
    return r;
  };
  CHECK(record(reused.path) == record(plain.path));
  const auto maps_from = [&](const fs::path& run, const std::string& method, int unit) {
    const json done = lab::read_json(run / "units" / "multi-color-sum" / method / fmt::format("{:05}.done", unit));
    return done.value("maps-from", std::string());
  };
  CHECK(maps_from(reused.path, "gradcam", 1) == (ude.path / "units" / "with-ude" / "gradcam").string());
  CHECK(maps_from(reused.path, "experturb", 0) == (ude.path / "units" / "with-ude" / "experturb").string());
  CHECK(maps_from(reused.path, "experturb", 1).empty());
  CHECK(maps_from(reused.path, "ig-star", 0).empty());
  CHECK(maps_from(reused.path, "lime-quickshift", 0).empty());

  {
    // The maps are read from the earlier run's files: a map changed in the earlier run shows up in the new one: it was taken, not recomputed.
    const fs::path source = ude.path / "maps" / "with-ude" / "ig";
    const json manifest = lab::read_json(source / "maps.json");
    const std::string id = manifest.at("samples").at(0).at("id");
    lab::Tensor map = lab::read_npy(source / (id + ".npy"));
    map.fill(7.0f);
    lab::write_npy(source / (id + ".npy"), map);
    options.out = altered.path;
    run_experiment(resolved, options);
    CHECK(lab::read_npy(altered.path / "maps" / "multi-color-sum" / "ig" / (id + ".npy")).values() == map.values());
  }
  {
    // Other settings are not reused.
    TempDir other_dir("reuse-other");
    std::vector<std::string> g = f;
    g.back() = "select=GradCAM,IG";
    g.push_back("seed=1");  // other data, other sample seeds
    const json other = resolve("faithfulness-test", g);
    options.out = other_dir.path;
    CHECK(run_experiment(other, options).reused == 0);
  }
  {
    // A directory that holds no run is refused, before anything is written.
    TempDir refused("reuse-refused");
    options.out = refused.path;
    options.reuse = {plain.path / "maps"};
    CHECK_THROWS_WITH_AS(run_experiment(resolved, options), doctest::Contains("--reuse"), lab::Error);
    CHECK_FALSE(fs::exists(refused.path));
  }
}

TEST_CASE("metric-coherency at a tiny scale: internal consistency, reliability matrix and heat map, agreement with the truth") {
  TempDir dir("coherency");
  std::vector<std::string> o = tiny("metric-coherency");
  o.front() = "count=3";
  const json resolved = resolve("metric-coherency", o);
  run(resolved, dir.path);
  const std::string md = lab::read_text(dir.path / "report.md");
  for (const json& study : resolved.at("report").at("studies"))
    CHECK_MESSAGE(md.find(study.at("title").get<std::string>()) != std::string::npos, study.at("title"));
  for (const char* file : {"study1-internal-consistency.csv", "study1-reliability-multi-color-sum.csv",
                           "study1-reliability-multi-color-sum-per-method.csv", "study1-agreement-with-truth.csv",
                           "study2-reliability-single-color-modulo.csv", "study2-agreement-with-truth.csv"})
    CHECK_MESSAGE(fs::exists(dir.path / "tables" / file), file);
  for (const char* file : {"study1-reliability-multi-color-sum.png", "study1-reliability-multi-color-sum.svg",
                           "study2-reliability-single-color-modulo.png"})
    CHECK_MESSAGE(fs::exists(dir.path / "figures" / file), file);
  const std::string ic = lab::read_text(dir.path / "tables" / "study1-internal-consistency.csv");
  CHECK(ic.find("\"real-valued map\",\"binarised map\"") != std::string::npos);
  // Baselines and granularities, each configuration a labelled metrics entry (the paper's Table 1).
  CHECK(ic.find("\"Insertion\",\"zero, 1 px/step\",\"blur, 64 px/step\"") != std::string::npos);
  CHECK(ic.find("\"Deletion\",\"zero, 64 px/step\",\"noise, 64 px/step\"") != std::string::npos);
  CHECK(ic.find("\"ROAD MoRF\",\"noisy imputation, 9 fractions\",\"noiseless, 9 fractions\"") != std::string::npos);
  const std::string ic2 = lab::read_text(dir.path / "tables" / "study2-internal-consistency.csv");
  CHECK(ic2.find("\"Pixel flipping\",\"zero, 16 px/step\",\"noise, 16 px/step\"") != std::string::npos);
  CHECK(ic2.find("\"ROAD LeRF\",\"9 fractions\",\"4 fractions\"") != std::string::npos);
  // A configuration restricted to one model has rows there only.
  const std::string results = lab::read_text(dir.path / "results.csv");
  CHECK(results.find("\"multi-color-sum\",\"000000\",\"GT map\",\"insertion-blur-coarse\"") != std::string::npos);
  CHECK(results.find("\"single-color-modulo\",\"000000\",\"GT map\",\"insertion-blur-coarse\"") == std::string::npos);
  CHECK(results.find("\"single-color-modulo\",\"000000\",\"GT map\",\"road-coarse\"") != std::string::npos);
  // The per-method matrix names the point-biserial for the Pointing Game where its hits differ.
  const std::string lines = lab::read_text(dir.path / "tables" / "study1-reliability-multi-color-sum-per-method.csv");
  CHECK(lines.find("\"Insertion\",\"Deletion\"") != std::string::npos);
  const std::string truth = lab::read_text(dir.path / "tables" / "study1-agreement-with-truth.csv");
  CHECK(truth.find("\"Pointing Game\"") != std::string::npos);
  CHECK(truth.find("\"multi-color-sum 95% interval\"") != std::string::npos);
  // The ground-truth map ranks first under the truth; the report says what each metric does.
  CHECK(md.find("Against the truth on multi-color-sum (10 methods)") != std::string::npos);
}

TEST_CASE("metric labels flow through rows, curves, units, resume, shards and the consistency tables") {
  // Three configurations of Deletion: the probability one pixel per step (the default), the
  // logit, and 64 pixels per step. Every row and curve carries the entry's label. (Noise
  // replacement would not do: multi-color-sum's network ignores colours it was not designed for,
  // so its areas equal the zero replacement's.)
  json config = json::parse(R"json({
    "name": "labels", "count": 4, "size": 32, "unit": 1,
    "models": [{"label": "m", "env": "multi-color-sum", "options": {}}],
    "methods": [{"label": "Saliency", "name": "saliency"}, {"label": "Random", "name": "random"},
                {"label": "GT map", "name": "ground-truth"}],
    "metrics": [{"name": "gt"}, {"name": "deletion"},
                {"name": "deletion", "label": "deletion-logit", "params": {"output": "logit"}},
                {"name": "deletion", "label": "deletion-coarse", "params": {"pixels-per-step": 64}}],
    "report": {"studies": [{"kind": "coherency", "title": "Labels", "rows": [{"label": "m", "model": "m"}],
      "reference": {"metric": "gt", "variant": "f1-overall"},
      "compare": [{"metric": "deletion", "variant": "auc", "label": "Deletion"},
                  {"metric": "deletion-logit", "variant": "auc", "label": "Deletion (logit)"}],
      "consistency": [{"label": "Deletion", "configs": [
        {"metric": "deletion", "variant": "auc", "label": "zero"},
        {"metric": "deletion-logit", "variant": "auc", "label": "logit"},
        {"metric": "deletion-coarse", "variant": "auc", "label": "64 px/step"}]}]}]}
  })json");
  const json resolved = finalize(config);
  TempDir dir("labels");
  run(resolved, dir.path);
  const std::string results = lab::read_text(dir.path / "results.csv");
  const std::string curves = lab::read_text(dir.path / "curves.csv");
  const auto rows = parse_result_csv(results, "results.csv");
  const auto points = parse_curve_csv(curves, "curves.csv");
  const std::vector<std::string> labels = {"deletion", "deletion-logit", "deletion-coarse"};
  std::map<std::string, std::map<std::string, double>> value;  // label → method/sample → auc
  for (const ResultRow& r : rows)
    if (r.variant == "auc") value[r.metric][r.method + "/" + r.sample] = r.value;
  CHECK(value.size() == 3);
  for (const std::string& label : labels) {
    CAPTURE(label);
    CHECK(value[label].size() == 3 * (4 + 1));  // 3 methods × (4 images + "all")
  }
  // The parameters went with the labels: the logit and coarse steps change the areas.
  int differ_logit = 0, differ_coarse = 0;
  for (const auto& [key, v] : value["deletion"]) {
    differ_logit += v != value["deletion-logit"].at(key);
    differ_coarse += v != value["deletion-coarse"].at(key);
  }
  CHECK(differ_logit > 0);
  CHECK(differ_coarse > 0);
  // Curves: 1024 one-pixel steps resampled to 101 points, 64-pixel steps give 17.
  std::map<std::string, int64_t> curve_points;
  for (const CurveRow& c : points)
    if (c.method == "Saliency" && c.sample == "000000") ++curve_points[c.metric];
  CHECK(curve_points["deletion"] == 101);
  CHECK(curve_points["deletion-logit"] == 101);
  CHECK(curve_points["deletion-coarse"] == 17);
  // The unit files hold the labels (what --resume and merge read back).
  const std::string unit_rows = lab::read_text(dir.path / "units" / "m" / "saliency" / "00001.rows.csv");
  CHECK(unit_rows.find("\"deletion-logit\"") != std::string::npos);
  CHECK(unit_rows.find("\"deletion-coarse\"") != std::string::npos);
  CHECK(lab::read_json(dir.path / "units" / "m" / "saliency" / "00001.done").at("metric-seconds").contains("deletion-coarse"));

  // Internal consistency under the labels, both oriented lower-is-better (Deletion's direction):
  // a label whose direction were lost would be taken as higher-is-better and flip the sign.
  const std::string ic = lab::read_text(dir.path / "tables" / "study1-internal-consistency.csv");
  const CorrelationMatrix m = internal_consistency(
      rows, "m", {"Saliency", "Random", "GT map"},
      {{"zero", "deletion", "auc", Direction::kLowerIsBetter},
       {"logit", "deletion-logit", "auc", Direction::kLowerIsBetter},
       {"64 px/step", "deletion-coarse", "auc", Direction::kLowerIsBetter}});
  REQUIRE(std::isfinite(m.mean[0][1]));
  CHECK(ic.find(fmt::format("\"m\",\"Deletion\",\"zero\",\"logit\",\"{}\"", fixed(m.mean[0][1], 2))) != std::string::npos);
  CHECK(ic.find(fmt::format("\"m\",\"Deletion\",\"zero\",\"64 px/step\",\"{}\"", fixed(m.mean[0][2], 2))) != std::string::npos);

  SUBCASE("resume reads the labelled rows back: byte-identical files") {
    fs::remove(dir.path / "units" / "m" / "random" / "00002.done");
    fs::remove(dir.path / "results.csv");
    fs::remove(dir.path / "curves.csv");
    const RunSummary again = run(resolved, dir.path, true);
    CHECK(again.skipped == 3 * 4 - 1);
    CHECK(lab::read_text(dir.path / "results.csv") == results);
    CHECK(lab::read_text(dir.path / "curves.csv") == curves);
    CHECK(lab::read_text(dir.path / "tables" / "study1-internal-consistency.csv") == ic);
  }
  SUBCASE("two shards merged give the same files") {
    TempDir a("labels-shard0"), b("labels-shard1"), merged("labels-merged");
    for (auto [shard, out] : {std::pair<int64_t, fs::path>{0, a.path}, {1, b.path}}) {
      RunOptions options;
      options.out = out;
      options.quiet = true;
      options.source = "labels";
      options.shard_index = shard;
      options.shard_count = 2;
      run_experiment(resolved, options);
    }
    RunOptions options;
    options.out = merged.path;
    options.quiet = true;
    merge_runs({a.path, b.path}, options);
    CHECK(lab::read_text(merged.path / "results.csv") == results);
    CHECK(lab::read_text(merged.path / "curves.csv") == curves);
  }
  SUBCASE("a resumed run with a label changed is refused, naming it") {
    json renamed = config;
    renamed["metrics"][2]["label"] = "deletion-raw";
    renamed["report"]["studies"][0]["compare"][1]["metric"] = "deletion-raw";
    renamed["report"]["studies"][0]["consistency"][0]["configs"][1]["metric"] = "deletion-raw";
    CHECK_THROWS_WITH_AS(run(finalize(renamed), dir.path, true), doctest::Contains("metrics.2.label"), lab::Error);
  }
}
namespace {

/// The rows of a table CSV (header first), each split into its fields.
std::vector<std::vector<std::string>> table_rows(const fs::path& csv) {
  std::vector<std::vector<std::string>> out;
  std::istringstream lines(lab::read_text(csv));
  std::string line;
  while (std::getline(lines, line))
    if (!line.empty()) out.push_back(csv_split(line));
  return out;
}

/// report.md with the Markdown escapes of generated text undone, to search for sentences.
std::string report_text(const fs::path& run) {
  std::string md = lab::read_text(run / "report.md"), out;
  for (size_t i = 0; i < md.size(); ++i) {
    if (md[i] == '\\' && i + 1 < md.size() && std::ispunct(static_cast<unsigned char>(md[i + 1]))) continue;
    out += md[i];
  }
  return out;
}

/// tiny() at 16×16 (seconds on a loaded machine), IG inside the edits with 4 steps too.
std::vector<std::string> tiny16(const std::string& name) {
  std::vector<std::string> o = tiny(name);
  for (std::string& item : o)
    if (item == "size=32") item = "size=16";
  const json config = load_config(name);  // a range-for over a temporary's member would dangle
  for (const json& m : config.at("methods"))
    if (m.value("name", "") == "edited" && m.at("params").value("base", "") == "integrated-gradients")
      o.push_back("methods." + m.at("label").get<std::string>() + ".params.steps=4");
  return o;
}

void check_files(const fs::path& run, const std::vector<std::string>& tables, const std::vector<std::string>& figures) {
  for (const std::string& t : tables) {
    CHECK_MESSAGE(fs::exists(run / "tables" / (t + ".csv")), t);
    CHECK_MESSAGE(fs::exists(run / "tables" / (t + ".md")), t);
  }
  for (const std::string& f : figures) {
    CHECK_MESSAGE(fs::file_size(run / "figures" / (f + ".png")) > 1000, f);
    CHECK_MESSAGE(fs::exists(run / "figures" / (f + ".svg")), f);
  }
}

}  // namespace

TEST_CASE("soundness-completeness at a tiny scale: estimators against the exact values, the edits, verdicts from the tables") {
  TempDir dir("soundness-completeness");
  // One pixel per soundness step at 16×16 (the config's schedule is set for 32×32).
  std::vector<std::string> o = tiny16("soundness-completeness");
  for (const char* m : {"0", "2"}) {
    o.push_back(fmt::format("metrics.{}.params.mask-first=0.99609375", m));
    o.push_back(fmt::format("metrics.{}.params.mask-step=0.00390625", m));
  }
  const json resolved = resolve("soundness-completeness", o);
  run(resolved, dir.path);
  const std::string md = report_text(dir.path);
  CHECK(md.find(resolved.at("report").at("studies").at(0).at("title").get<std::string>()) != std::string::npos);
  check_files(dir.path, {"study1-estimator-error", "study1-estimators", "study1-edits-hausdorff", "study1-edits-truth"},
              {"study1-estimate-vs-exact", "study1-edits"});
  // Each error row is a sentence of the paragraph, and the verdict follows from the rows.
  const auto rows = table_rows(dir.path / "tables" / "study1-estimator-error.csv");
  REQUIRE(rows.size() == 5);
  double holds = 0.0, fails = 0.0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    CHECK_MESSAGE(md.find(fmt::format("on {} (assumption {}) the {} estimate is off the exact value by {} on average and within "
                                      "0.05 on {} of {} (method, image) pairs",
                                      r[0], r[1], r[2], r[4], r[5], r[3])) != std::string::npos,
                  r[2]);
    (r[1] == "holds" ? holds : fails) = std::max(r[1] == "holds" ? holds : fails, std::stod(r[4]));
  }
  // With one pixel per step the estimators are exact where the assumption holds (tested in
  // test_metrics_soundness.cpp), and off where it fails.
  CHECK(holds <= 0.05);
  CHECK(fails > 0.05);
  CHECK(md.find(fmt::format("the claim holds, and only under its assumption: the largest mean error is {} where the assumption "
                            "holds against {} where it fails",
                            fixed(holds, 3), fixed(fails, 3))) != std::string::npos);
  // Table 1: the mean row of the Hausdorff table and the verdict sentence agree.
  const auto h = table_rows(dir.path / "tables" / "study1-edits-hausdorff.csv");
  REQUIRE(h.size() == 9);  // header, 6 edits, mean, paper
  CHECK(h[7][0] == "mean ± sd");
  CHECK(h[8][2] == "0.503");
  std::vector<double> mu;
  for (size_t k = 2; k < h[7].size(); ++k) mu.push_back(std::stod(h[7][k].substr(0, h[7][k].find(' '))));
  const double value_based = std::min(mu[0], mu[1]), order_based = std::max(mu[2], mu[3]);
  CHECK(md.find(fmt::format("mean minimal Hausdorff distance Completeness {} (paper 0.503)", h[7][2].substr(0, h[7][2].find(' ')))) !=
        std::string::npos);
  CHECK(md.find(fmt::format("the claim {}: the smallest distance of the value-based metrics is {}",
                            value_based > order_based ? "holds" : "does not hold", fixed(value_based, 3))) != std::string::npos);
  // The truth table: Remove on the ground-truth map never lowers its exact soundness.
  const auto t = table_rows(dir.path / "tables" / "study1-edits-truth.csv");
  for (const auto& r : t)
    if (r[0].rfind("GT map (Remove", 0) == 0) CHECK(std::stod(r[1]) == 0.0);
}

TEST_CASE("unified-metrics at a tiny scale: pixel isolation, reference pixel flipping, Pointing Game, verdicts from the tables") {
  TempDir dir("unified-metrics");
  const json resolved = resolve("unified-metrics", tiny16("unified-metrics"));
  run(resolved, dir.path);
  const std::string md = report_text(dir.path);
  CHECK(md.find(resolved.at("report").at("studies").at(0).at("title").get<std::string>()) != std::string::npos);
  check_files(dir.path, {"study1-isolation", "study1-reference-pixel-flipping", "study1-pointing-game"},
              {"study1-pixel-flipping", "study1-pointing-game"});
  const auto iso = table_rows(dir.path / "tables" / "study1-isolation.csv");
  REQUIRE(iso.size() == 5);  // header, 2 models × {Random, Isolated}
  bool any_majority = false;
  for (size_t i = 1; i < iso.size(); ++i) {
    const auto& r = iso[i];
    CHECK_MESSAGE(md.find(fmt::format("on {} the {} mask beats GT map under Pixel flipping AUC on {} ({} {} against {})", r[0],
                                      r[1], r[4], "Pixel flipping AUC", r[2], r[3])) != std::string::npos,
                  r[1]);
    any_majority = any_majority || std::stod(r[4].substr(0, r[4].find('%'))) > 50.0;
  }
  CHECK(md.find(any_majority ? "the isolation claim holds" : "the isolation claim does not hold") != std::string::npos);
  const auto refs = table_rows(dir.path / "tables" / "study1-reference-pixel-flipping.csv");
  std::map<std::string, std::pair<int, int>> faster;
  for (size_t i = 1; i < refs.size(); ++i) {
    ++faster[refs[i][0]].second;
    faster[refs[i][0]].first += refs[i][4] == "yes" ? 1 : 0;
  }
  for (const auto& [model, count] : faster)
    CHECK(md.find(fmt::format("on {} the reference order decays faster than the method's own order for {} of {} methods", model,
                              count.first, count.second)) != std::string::npos);
  // The ground-truth map hits with tolerance 0 and has F1 1 on the positive ground truth.
  for (const auto& r : table_rows(dir.path / "tables" / "study1-pointing-game.csv"))
    if (r[1] == "GT map") {
      CHECK(r[2] == "1.00");
      CHECK(r[3] == "1.00");
    }
}

TEST_CASE("false-sense at a tiny scale: Fake-CAM and random against real methods, verdicts from the tables") {
  TempDir dir("false-sense");
  const json resolved = resolve("false-sense", tiny16("false-sense"));
  run(resolved, dir.path);
  const std::string md = report_text(dir.path);
  CHECK(md.find(resolved.at("report").at("studies").at(0).at("title").get<std::string>()) != std::string::npos);
  check_files(dir.path, {"study1-scores", "study1-uninformed-wins"}, {"study1-scores"});
  const auto scores = table_rows(dir.path / "tables" / "study1-scores.csv");
  const auto wins = table_rows(dir.path / "tables" / "study1-uninformed-wins.csv");
  REQUIRE(scores.size() == 9);  // header, 8 methods
  std::vector<std::string> fake, gradcam;
  for (const auto& r : scores) {
    if (r[1] == "Fake-CAM") fake = r;
    if (r[1] == "GradCAM") gradcam = r;
  }
  REQUIRE(!fake.empty());
  REQUIRE(wins.at(1).at(1) == "Fake-CAM");
  const std::vector<std::string> labels = {"Average Drop", "Increase in Confidence", "Average Gain", "Monotonicity"};
  std::vector<std::string> top, rest;
  for (size_t k = 0; k < labels.size(); ++k) {
    const std::string rank = fake[3 + 2 * k];
    CHECK_MESSAGE(md.find(fmt::format("on multi-color-sum, Fake-CAM ranks {} of 8 under {} and beats GradCAM on {} images, but "
                                      "scores GT F1 (positive) {} against GradCAM's {}",
                                      rank, labels[k], wins[1][2 + k], fake[10], gradcam[10])) != std::string::npos,
                  labels[k]);
    (std::stod(rank) <= 2.0 ? top : rest).push_back(labels[k] + " on multi-color-sum");
  }
  // The ground truth is not fooled: the uninformed maps never beat the ground-truth map on F1.
  double gt_f1 = 0.0;
  for (const auto& r : scores)
    if (r[1] == "GT map") gt_f1 = std::stod(r[10]);
  CHECK(std::stod(fake[10]) < gt_f1);
  CHECK(md.find(fmt::format("the uninformed map is in the top 2 under {}", top.empty() ? std::string("none") : top.front())) !=
        std::string::npos);
}
