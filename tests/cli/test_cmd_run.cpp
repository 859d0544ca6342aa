// End to end: `attrlab run` and `attrlab attribute` share one attribute stage (the same maps and
// maps.json records, PNG baselines included); a bad experiment config is refused at once, by
// name, with nothing written; a finished run's report can be rebuilt from its files.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "lab/io/files.h"
#include "lab/io/npy.h"
#include "run_cli.h"

using clitest::run;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

/// A one-model experiment whose IG takes the PNG `baseline`.
std::string png_experiment(const fs::path& baseline) {
  return R"({"extends": "base", "name": "png-baseline", "count": 3, "size": 32, "unit": 2,
    "models": [{"label": "m", "env": "multi-color-sum"}],
    "methods": [{"label": "IG", "name": "integrated-gradients", "params": {"baseline": ")" +
         baseline.string() + R"(", "steps": 32, "output": "logit"}}],
    "metrics": [{"name": "gt"}]})";
}

}  // namespace

TEST_CASE("attrlab run and attrlab attribute: a PNG baseline works in both, same maps, same maps.json") {
  const fs::path dir = clitest::scratch() / "run-vs-attribute";
  fs::create_directories(dir);
  // The baseline: the first image of the run's data (the same seed generates it), so that
  // sample's IG map is exactly zero with the PNG baseline and not with the background (32
  // steps on the logit: fewer quadrature points all fall where the designed network is flat).
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 1 --seed 0 --out " + (dir / "other").string()).code == 0);
  const fs::path baseline = dir / "other" / "images" / "000000.png";
  REQUIRE(fs::exists(baseline));
  write(dir / "png.json", png_experiment(baseline));
  const fs::path out = dir / "run";
  const auto ran = run("run " + (dir / "png.json").string() + " --quiet --out " + out.string());
  INFO(ran.err);
  REQUIRE(ran.code == 0);

  // The same request through `attribute`, into a directory as deep as the run's maps directory.
  const fs::path maps = out / "maps" / "m" / "ig-attribute";
  const auto attributed = run("attribute --data " + (out / "data" / "m").string() +
                              " --method integrated-gradients --label IG -p baseline=" + baseline.string() +
                              " -p steps=32 -p output=logit --seed 0 --unit 2 --batch 64 --reference 16 --out " + maps.string());
  INFO(attributed.err);
  REQUIRE(attributed.code == 0);
  const nlohmann::json a = lab::read_json(out / "maps" / "m" / "ig" / "maps.json");
  const nlohmann::json b = lab::read_json(maps / "maps.json");
  CHECK(a == b);
  CHECK(a.at("params").at("baseline") == baseline.string());
  REQUIRE(a.at("samples").size() == 3);
  for (const nlohmann::json& s : a.at("samples")) {
    const std::string file = s.at("map");
    CHECK(lab::read_text(out / "maps" / "m" / "ig" / file) == lab::read_text(maps / file));  // byte-identical
    CHECK(s.contains("convergence-delta"));
  }
  // The PNG baseline reached the method: sample 0 explained against itself has a zero map.
  const fs::path background = dir / "background";
  REQUIRE(run("attribute --data " + (out / "data" / "m").string() +
              " --method integrated-gradients --label IG -p baseline=background -p steps=32 -p output=logit --out " + background.string())
              .code == 0);
  const std::string first = a.at("samples").at(0).at("map");
  const auto zero = [](const lab::Tensor& t) {
    for (float v : t.values())
      if (v != 0.0f) return false;
    return true;
  };
  CHECK(zero(lab::read_npy(maps / first)));
  CHECK_FALSE(zero(lab::read_npy(background / first)));

  SUBCASE("the report is rebuilt from the run directory alone, identical") {
    const std::string md = lab::read_text(out / "report.md");
    const std::string results = lab::read_text(out / "results.csv");
    fs::remove(out / "report.md");
    fs::remove_all(out / "tables");
    const auto rebuilt = run("run --rebuild --out " + out.string());
    INFO(rebuilt.err);
    REQUIRE(rebuilt.code == 0);
    CHECK(lab::read_text(out / "report.md") == md);
    CHECK(lab::read_text(out / "results.csv") == results);
  }
}

TEST_CASE("attrlab evaluate on a run's maps gives the run's rows and curves (one score stage)") {
  const fs::path dir = clitest::scratch() / "run-vs-evaluate";
  fs::create_directories(dir);
  write(dir / "exp.json", R"({"extends": "base", "name": "scores", "count": 3, "size": 32, "unit": 2, "seed": 7,
    "models": [{"label": "m", "env": "multi-color-sum"}],
    "methods": [{"label": "Grad", "name": "saliency"}],
    "metrics": [{"name": "gt"}, {"name": "deletion", "params": {"pixels-per-step": 16}},
                {"name": "sensitivity-n", "params": {"points": 4, "subsets": 10}}]})");
  const fs::path out = dir / "run";
  const auto ran = run("run " + (dir / "exp.json").string() + " --quiet --out " + out.string());
  INFO(ran.err);
  REQUIRE(ran.code == 0);
  const auto evaluated = run("evaluate --quiet --data " + (out / "data" / "m").string() + " --maps " +
                             (out / "maps" / "m" / "grad").string() +
                             " --metric gt --metric deletion --metric sensitivity-n -p pixels-per-step=16 -p points=4"
                             " -p subsets=10 --seed 7 --model m --unit 3 --out " + (dir / "results.csv").string() +
                             " --curves " + (dir / "curves.csv").string());
  INFO(evaluated.err);
  REQUIRE(evaluated.code == 0);
  // The run's lines of these metrics, in the run's order, are evaluate's lines (same header too).
  const auto lines = [](const std::string& text, bool keep_all) {
    std::vector<std::string> kept;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (keep_all || kept.empty() || line.find("\"completeness-gap\"") == std::string::npos) kept.push_back(line);
    return kept;
  };
  std::vector<std::string> from_run = lines(lab::read_text(out / "results.csv"), false);
  std::vector<std::string> from_evaluate = lines(lab::read_text(dir / "results.csv"), true);
  std::sort(from_run.begin() + 1, from_run.end());
  std::sort(from_evaluate.begin() + 1, from_evaluate.end());
  CHECK(from_run.size() > 3 * 10);
  CHECK(from_run == from_evaluate);
  std::vector<std::string> run_curves = lines(lab::read_text(out / "curves.csv"), true);
  std::vector<std::string> evaluate_curves = lines(lab::read_text(dir / "curves.csv"), true);
  std::sort(run_curves.begin() + 1, run_curves.end());
  std::sort(evaluate_curves.begin() + 1, evaluate_curves.end());
  CHECK(run_curves.size() > 3 * 4);
  CHECK(run_curves == evaluate_curves);
  // Another seed draws other Sensitivity-N subsets.
  const auto sensitivity = [&](const std::string& seed) {
    const fs::path csv = dir / ("seed-" + seed + ".csv");
    REQUIRE(run("evaluate --quiet --data " + (out / "data" / "m").string() + " --maps " +
                (out / "maps" / "m" / "grad").string() + " --metric sensitivity-n -p points=4 -p subsets=10 --seed " +
                seed + " --out " + csv.string())
                .code == 0);
    return lab::read_text(csv);
  };
  CHECK(sensitivity("7") == sensitivity("7"));
  CHECK(sensitivity("7") != sensitivity("8"));
}

/// Writes an H×W map as a float64 .npy, as numpy.save would.
void write_float64_map(const fs::path& path, const lab::Tensor& map) {
  const lab::Shape& s = map.shape();
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(s[0]) + ", " +
                     std::to_string(s[1]) + "), }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(dict.size() & 0xFF);
  bytes += static_cast<char>(dict.size() >> 8);
  bytes += dict;
  for (const float v : map.values()) {
    const double d = v;
    bytes.append(reinterpret_cast<const char*>(&d), 8);
  }
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_CASE("an outside method's maps join unseen-data-effect: --stage data, maps written outside, --resume") {
  const fs::path dir = clitest::scratch() / "outside";
  fs::create_directories(dir);
  const fs::path mine = dir / "mine";
  write(dir / "exp.json", R"({"extends": "unseen-data-effect", "count": 4, "size": 32, "unit": 2,
    "methods": [{"label": "GradCAM", "name": "gradcam"},
                {"label": "IG", "name": "integrated-gradients", "params": {"baseline": "zero", "steps": 16}},
                {"name": "Mine", "maps": ")" + mine.string() + R"("}]})");
  const fs::path out = dir / "run";
  const auto data = run("run " + (dir / "exp.json").string() + " --quiet --stage data --out " + out.string());
  INFO(data.err);
  REQUIRE(data.code == 0);
  CHECK(fs::exists(out / "data" / "with-ude" / "manifest.json"));
  CHECK_FALSE(fs::exists(out / "results.csv"));

  // The outside tool: IG by `attrlab attribute`, summed over channels, saved as float64 H×W, with
  // the maps.json that names the data's fingerprint.
  for (const char* model : {"with-ude", "without-ude"}) {
    const fs::path maps = dir / "ig" / model;
    const auto made = run("attribute --data " + (out / "data" / model).string() +
                          " --method integrated-gradients -p baseline=zero -p steps=16 --label IG --out " + maps.string());
    REQUIRE(made.code == 0);
    fs::create_directories(mine / model);
    fs::copy_file(maps / "maps.json", mine / model / "maps.json");
    for (const auto& entry : fs::directory_iterator(maps)) {
      if (entry.path().extension() != ".npy") continue;
      const lab::Tensor m = lab::read_npy(entry.path());  // C×H×W
      const int64_t hw = m.dim(1) * m.dim(2);
      lab::Tensor sum({m.dim(1), m.dim(2)}, 0.0f);
      for (int64_t c = 0; c < m.dim(0); ++c)
        for (int64_t p = 0; p < hw; ++p) sum[p] += m[c * hw + p];  // the metrics' channel sum, in float
      write_float64_map(mine / model / entry.path().filename(), sum);
    }
  }
  const auto resumed = run("run " + (dir / "exp.json").string() + " --quiet --resume --out " + out.string());
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);

  // Mine's rows are IG's, value for value; it is ranked in the tables and named in the report.
  std::map<std::string, std::string> ig, outside;
  std::istringstream rows(lab::read_text(out / "results.csv"));
  for (std::string line; std::getline(rows, line);) {
    const std::string ig_key = "\"IG\",", mine_key = "\"Mine\",";
    if (line.find(ig_key) != std::string::npos && line.find("completeness-gap") == std::string::npos) {
      std::string key = line;
      key.replace(key.find(ig_key), ig_key.size(), "");
      ig[key] = line;
    }
    if (line.find(mine_key) != std::string::npos) {
      std::string key = line;
      key.replace(key.find(mine_key), mine_key.size(), "");
      outside[key] = line;
    }
  }
  CHECK(outside.size() > 2 * 4 * 5);
  CHECK(outside.size() == ig.size());
  for (const auto& [key, line] : ig) {
    CAPTURE(line);
    CHECK(outside.count(key) == 1);
  }
  CHECK(lab::read_text(out / "tables" / "study2-with-ude-rankings.md").find("Mine") != std::string::npos);
  CHECK(lab::read_text(out / "report.md").find("Mine") != std::string::npos);

  SUBCASE("outside maps made for other data are refused before any work") {
    nlohmann::json record = lab::read_json(mine / "with-ude" / "maps.json");
    record["data-manifest"]["fingerprint"] = "fnv1a64:0000000000000000";
    lab::write_json(mine / "with-ude" / "maps.json", record);
    const fs::path again = dir / "again";
    const auto refused = run("run " + (dir / "exp.json").string() + " --quiet --out " + again.string());
    CHECK(refused.code == 1);
    CHECK(refused.err.find("fnv1a64:0000000000000000") != std::string::npos);
    const std::string data_fingerprint = lab::read_json(out / "data" / "with-ude" / "manifest.json")["fingerprint"];
    CHECK(refused.err.find(data_fingerprint) != std::string::npos);  // the data's, the same config's
    CHECK_FALSE(fs::exists(again));  // the run directory it created is gone again
    CHECK(clitest::slurp(mine / "with-ude" / "000000.npy").size() > 0);  // the maps are untouched
  }
}

TEST_CASE("a bad experiment config is refused by name at once, and nothing is written") {
  const fs::path dir = clitest::scratch() / "bad-config";
  fs::create_directories(dir);
  const std::string good = R"({"extends": "base", "count": 2, "size": 32,
    "models": [{"label": "m", "env": "multi-color-sum"}],
    "methods": [{"label": "Saliency", "name": "saliency"}],
    "metrics": [{"name": "gt"}, {"name": "insertion"}],
    "report": {"studies": [{"kind": "rankings", "title": "R", "model": "m",
                            "reference": {"metric": "gt", "variant": "f1-overall"},
                            "compare": [{"metric": "insertion", "variant": "auc"}]}]}})";
  struct Case {
    std::string from, to, named;
  };
  const std::vector<Case> cases = {
      {R"("count": 2)", R"("count": 2, "colour": 1)", "'colour'"},
      {R"("count": 2)", R"("count": 2, "save_maps": false)", "'save-maps'"},
      {R"("metric": "insertion")", R"("metric": "insertoin")", "'insertoin'"},
      {R"("variant": "auc")", R"("variant": "aoc")", "'aoc'"},
      {R"("title": "R")", R"("title": "R", "grid_rows": 2)", "'grid_rows'"},
      {R"("name": "saliency")", R"("name": "salency")", "'salency'"},
      {R"({"name": "gt"})", R"({"name": "gt", "params": {"colour": 1}})", "colour"},
  };
  int index = 0;
  for (const Case& c : cases) {
    std::string text = good;
    const size_t at = text.find(c.from);
    REQUIRE(at != std::string::npos);
    text.replace(at, c.from.size(), c.to);
    const fs::path config = dir / ("bad" + std::to_string(index) + ".json");
    const fs::path out = dir / ("out" + std::to_string(index++));
    write(config, text);
    CAPTURE(text);
    // The time beyond starting the program (measured alongside, so a loaded machine does not
    // count against the check): under a second.
    auto timed = [](const std::string& args, clitest::Outcome& outcome) {
      const auto started = std::chrono::steady_clock::now();
      outcome = run(args);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    clitest::Outcome version, outcome;
    const double startup = timed("--version", version);
    const double seconds = timed("run " + config.string() + " --quiet --out " + out.string(), outcome);
    CHECK(outcome.code == 1);
    CHECK(outcome.err.find(c.named) != std::string::npos);
    CHECK(seconds - startup < 1.0);
    CHECK_FALSE(fs::exists(out));
  }
  // The good config passes the same checks (the run itself is tested above).
  write(dir / "good.json", good);
  CHECK(run("run " + (dir / "good.json").string() + " --quiet -o count=1 --out " + (dir / "good").string()).code == 0);
}

TEST_CASE("attrlab run --list derives the settings from their schema") {
  const auto listed = run("run --list");
  REQUIRE(listed.code == 0);
  for (const char* key : {"unit", "batch", "save-maps", "reference", "target"})
    CHECK(listed.out.find(std::string("  ") + key + " ") != std::string::npos);
  CHECK(listed.out.find("chunk") == std::string::npos);
  CHECK(listed.out.find("unseen-data-effect") != std::string::npos);
}
