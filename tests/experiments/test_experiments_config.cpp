// Experiment definitions: `extends` merging, dotted -o overrides with typed values, validation,
// and the shipped experiments (each resolves, and count/size are overridable for every one).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "lab/core/schema.h"
#include "lab/core/error.h"

using experiments::apply_overrides;
using experiments::finalize;
using experiments::merge;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A minimal valid definition (one model, two methods, one metric).
json minimal() {
  return json::parse(R"({
    "name": "mini", "count": 3, "size": 32,
    "models": [{"label": "m", "env": "multi-color-sum", "options": {"colors": 4}}],
    "methods": [{"label": "IG*", "name": "integrated-gradients", "params": {"baseline": "background"}},
                {"label": "Saliency", "name": "saliency"}],
    "metrics": [{"name": "gt"}]
  })");
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("attrlab-test-config-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

}  // namespace

TEST_CASE("merge: objects merge key by key, every other value is replaced whole") {
  const json under = json::parse(R"({"a": 1, "o": {"x": 1, "y": [1, 2]}, "l": [1, 2, 3]})");
  const json over = json::parse(R"({"b": 2, "o": {"y": [9]}, "l": [4]})");
  const json m = merge(under, over);
  CHECK(m == json::parse(R"({"a": 1, "b": 2, "o": {"x": 1, "y": [9]}, "l": [4]})"));
}

TEST_CASE("extends: a chain of files down to a shipped definition; cycles are refused") {
  TempDir dir("extends");
  write(dir.path / "parent.json", R"({"extends": "base", "count": 7, "description": "parent"})");
  write(dir.path / "child.json", R"({"extends": "parent.json", "size": 40})");
  const json c = experiments::load_config((dir.path / "child.json").string());
  CHECK(c.at("count") == 7);
  CHECK(c.at("size") == 40);
  CHECK(c.at("description") == "parent");
  CHECK(c.at("unit") == json(experiments::load_config("faithfulness-test").at("unit")));  // from base
  CHECK(c.at("name") == "child");
  CHECK_FALSE(c.contains("extends"));

  write(dir.path / "a.json", R"({"extends": "b.json"})");
  write(dir.path / "b.json", R"({"extends": "a.json"})");
  CHECK_THROWS_AS(experiments::load_config((dir.path / "a.json").string()), lab::Error);
  write(dir.path / "lost.json", R"({"extends": "no-such-experiment"})");
  CHECK_THROWS_WITH_AS(experiments::load_config((dir.path / "lost.json").string()),
                       doctest::Contains("no-such-experiment"), lab::Error);
  CHECK_THROWS_AS(experiments::load_config("no-such-experiment"), lab::Error);

  // A file that extends itself, however the path is spelled ("./self.json" grows a "./" per level).
  write(dir.path / "self.json", R"({"extends": "./self.json"})");
  CHECK_THROWS_WITH_AS(experiments::load_config((dir.path / "self.json").string()), doctest::Contains("forms a cycle"),
                       lab::Error);
  write(dir.path / "loop.json", json({{"extends", "../" + dir.path.filename().string() + "/loop.json"}}).dump());
  CHECK_THROWS_WITH_AS(experiments::load_config((dir.path / "loop.json").string()), doctest::Contains("forms a cycle"),
                       lab::Error);
}

TEST_CASE("finalize: a model's own size, which the experiment's size would replace, is refused by name") {
  json c = minimal();
  c["models"][0]["options"]["size"] = 64;
  CHECK_THROWS_WITH_AS(finalize(c), doctest::Contains("options.size = 64 would be ignored"), lab::Error);
  // The same size as the experiment's is no conflict.
  json same = minimal();
  same["models"][0]["options"]["size"] = 32;
  CHECK(finalize(same).at("models").at(0).at("options").at("size") == 32);
}

TEST_CASE("overrides: dotted keys, list elements by label or index, values typed like what they replace") {
  json c = minimal();
  apply_overrides(c, {"count=5", "size=48", "methods.IG*.params.steps=16", "methods.1.params.output=logit",
                      "models.m.options.colors=3", "target=predicted", "select=IG*,Saliency", "seed=11"});
  CHECK(c.at("count") == 5);
  CHECK(c.at("size") == 48);
  CHECK(c.at("methods").at(0).at("params").at("steps") == 16);
  CHECK(c.at("methods").at(1).at("params").at("output") == "logit");
  CHECK(c.at("models").at(0).at("options").at("colors") == 3);
  CHECK(c.at("target") == "predicted");
  CHECK(c.at("select") == json::parse(R"(["IG*", "Saliency"])"));
  CHECK(c.at("seed") == 11);

  SUBCASE("a string value stays a string even when it spells a number") {
    json d = minimal();
    apply_overrides(d, {"methods.IG*.params.baseline=20"});
    CHECK(d.at("methods").at(0).at("params").at("baseline") == "20");
  }
  SUBCASE("params may be created in an entry that has none") {
    json d = minimal();
    apply_overrides(d, {"metrics.0.params.ground-truth=both"});
    CHECK(d.at("metrics").at(0).at("params").at("ground-truth") == "both");
  }
  SUBCASE("refused: bad types, unknown keys, missing elements, repeats, no '='") {
    json d = minimal();
    CHECK_THROWS_WITH_AS(apply_overrides(d, {"count=many"}), doctest::Contains("count"), lab::Error);
    CHECK_THROWS_AS(apply_overrides(d, {"count=2.5"}), lab::Error);
    CHECK_THROWS_WITH_AS(apply_overrides(d, {"colour=3"}), doctest::Contains("unknown experiment key 'colour'"),
                         lab::Error);
    CHECK_THROWS_WITH_AS(apply_overrides(d, {"methods.IG.params.steps=3"}), doctest::Contains("no element 'IG'"),
                         lab::Error);
    CHECK_THROWS_AS(apply_overrides(d, {"methods.7.params.steps=3"}), lab::Error);
    CHECK_THROWS_AS(apply_overrides(d, {"methods.IG*.steps=3"}), lab::Error);
    CHECK_THROWS_AS(apply_overrides(d, {"count=2", "count=3"}), lab::Error);
    CHECK_THROWS_AS(apply_overrides(d, {"count"}), lab::Error);
    CHECK_THROWS_AS(apply_overrides(d, {"save-maps=maybe"}), lab::Error);
  }
}

TEST_CASE("finalize: defaults, size into every model, selection, and validation") {
  const json r = finalize(minimal());
  CHECK(r.at("models").at(0).at("options").at("size") == 32);
  CHECK(r.at("models").at(0).at("options").at("colors") == 4);
  CHECK(r.at("methods").size() == 2);
  CHECK(r.at("methods").at(1).at("params") == json::object());
  CHECK(r.at("target") == "label");
  const experiments::Experiment e = experiments::Experiment::from_json(r);
  CHECK(e.methods.at(0).slug == "ig-star");
  CHECK(e.count == 3);

  json s = minimal();
  apply_overrides(s, {"select=Saliency"});
  CHECK(finalize(s).at("methods").size() == 1);
  CHECK(finalize(s).at("methods").at(0).at("label") == "Saliency");

  auto refused = [](const std::string& item) {
    json c = minimal();
    apply_overrides(c, {item});
    CHECK_THROWS_AS(finalize(c), lab::Error);
  };
  refused("count=0");
  refused("size=4");
  refused("unit=0");
  refused("target=everything");
  refused("select=Nothing");
  refused("models-select=other");
  json dup = minimal();
  dup["methods"].push_back(json::parse(R"({"label": "IG*", "name": "saliency"})"));
  CHECK_THROWS_WITH_AS(finalize(dup), doctest::Contains("given twice"), lab::Error);
  json unknown = minimal();
  unknown["colour"] = 1;
  CHECK_THROWS_AS(finalize(unknown), lab::Error);
  json no_label = minimal();
  no_label["methods"].push_back(json::parse(R"({"name": "saliency"})"));
  CHECK_THROWS_AS(finalize(no_label), lab::Error);
}

TEST_CASE("every shipped experiment resolves, and count and size override it") {
  const auto shipped = experiments::runnable_configs();
  std::vector<std::string> names;
  for (const auto* c : shipped) names.push_back(c->name);
  CHECK(names == std::vector<std::string>{"faithfulness-test", "false-sense", "metric-coherency", "single-color-modulo",
                                         "soundness-completeness", "trap-zoo", "unified-metrics", "unseen-data-effect"});
  for (const auto* c : shipped) {
    CAPTURE(c->name);
    CHECK_FALSE(c->description.empty());
    json config = experiments::load_config(c->name);
    apply_overrides(config, {"count=4", "size=32"});
    const json r = finalize(config);
    CHECK(r.at("name") == c->name);
    CHECK(r.at("count") == 4);
    for (const json& m : r.at("models")) CHECK(m.at("options").at("size") == 32);
    CHECK(r.at("methods").size() >= 8);
    CHECK_FALSE(r.at("report").at("studies").empty());
    // The paper-scale settings are valid overrides of the definition.
    json paper = experiments::load_config(c->name);
    std::vector<std::string> items;
    for (const auto& [key, value] : paper.at("paper-scale").items()) items.push_back(key + "=" + value.dump());
    apply_overrides(paper, items);
    const json resolved_paper = finalize(paper);
    CHECK(resolved_paper.at("size") == 224);
    // LIME's quickshift runs LIME's settings at 224×224 and the same scaled by size/224 at the
    // default 64×64 (superpixels covering as much of the image).
    const json defaults = finalize(experiments::load_config(c->name));
    for (size_t i = 0; i < defaults.at("methods").size(); ++i) {
      const json& m = defaults.at("methods").at(i);
      if (m.at("name") != "lime" || m.at("params").at("segmentation") != "quickshift") continue;
      CAPTURE(m.at("label"));
      const double s = defaults.at("size").get<double>() / 224.0;
      CHECK(m.at("params").at("kernel-size").get<double>() == doctest::Approx(4.0 * s));
      CHECK(m.at("params").at("max-dist").get<double>() == doctest::Approx(200.0 * s));
      CHECK(m.at("params").at("ratio").get<double>() == doctest::Approx(0.2 * s));
      const json& p = resolved_paper.at("methods").at(i).at("params");
      CHECK(p.at("kernel-size").get<double>() == 4.0);
      CHECK(p.at("max-dist").get<double>() == 200.0);
      CHECK(p.at("ratio").get<double>() == 0.2);
    }
  }
}

TEST_CASE("slugify and seeds") {
  CHECK(experiments::slugify("IG*") == "ig-star");
  CHECK(experiments::slugify("Occlusion*") == "occlusion-star");
  CHECK(experiments::slugify("LIME (quickshift)") == "lime-quickshift");
  CHECK(experiments::slugify("GradCAM") == "gradcam");
  CHECK(experiments::slugify("--") == "method");
  // A sample's seed depends on (seed, label, index) only.
  CHECK(experiments::sample_seed(0, "IG", 3) == experiments::sample_seed(0, "IG", 3));
  CHECK(experiments::sample_seed(0, "IG", 3) != experiments::sample_seed(0, "IG", 4));
  CHECK(experiments::sample_seed(0, "IG", 3) != experiments::sample_seed(0, "IG*", 3));
  CHECK(experiments::sample_seed(0, "IG", 3) != experiments::sample_seed(1, "IG", 3));
}

TEST_CASE("the scalar settings come from one schema: defaults, typed values, one-line refusals") {
  // Every default of the schema is what finalize() fills in.
  const json r = finalize(minimal());
  const experiments::Settings defaults;
  CHECK(r.at("unit") == defaults.unit);
  CHECK(r.at("batch") == defaults.batch);
  CHECK(r.at("reference") == defaults.reference);
  CHECK(r.at("save-maps") == defaults.save_maps);
  for (const lab::ParamDoc& d : experiments::Settings::schema().docs()) {
    CAPTURE(d.name);
    CHECK(r.contains(d.name));
    CHECK_FALSE(d.info.help.empty());
  }
  // Values are written back with their declared type.
  json typed = minimal();
  typed["unit"] = "2";
  CHECK(finalize(typed).at("unit") == 2);
  json bad = minimal();
  bad["unit"] = 0;
  CHECK_THROWS_WITH_AS(finalize(bad), doctest::Contains("unit=0: must be an integer ≥ 1"), lab::Error);
  bad = minimal();
  bad["target"] = "everything";
  CHECK_THROWS_WITH_AS(finalize(bad), doctest::Contains("target=everything"), lab::Error);
  // The '_' spelling is refused with the right key, in a file and in -o alike.
  json old = minimal();
  old["save_maps"] = false;
  CHECK_THROWS_WITH_AS(finalize(old), doctest::Contains("'save_maps' (keys are spelled with '-': 'save-maps')"),
                       lab::Error);
  json d = minimal();
  CHECK_THROWS_WITH_AS(apply_overrides(d, {"models_select=m"}), doctest::Contains("'models-select'"), lab::Error);
  // "chunk" is gone: a work unit is `unit`.
  json chunk = minimal();
  chunk["chunk"] = 4;
  CHECK_THROWS_WITH_AS(finalize(chunk), doctest::Contains("unknown experiment key 'chunk'"), lab::Error);
}

TEST_CASE("report studies are checked by name before anything runs") {
  auto with_study = [](const std::string& study) {
    json c = minimal();
    c["metrics"] = json::parse(R"([{"name": "gt"}, {"name": "insertion"}])");
    c["report"] = {{"studies", json::array({json::parse(study)})}};
    return c;
  };
  const std::string good = R"({"kind": "rankings", "title": "R", "model": "m",
      "reference": {"metric": "gt", "variant": "f1-overall"},
      "compare": [{"metric": "insertion", "variant": "auc", "label": "Ins"}], "methods": ["IG*", "Saliency"]})";
  const json ok = finalize(with_study(good));
  experiments::check_experiment(experiments::Experiment::from_json(ok));

  auto refused = [&](const std::string& from, const std::string& to, const std::string& message) {
    std::string study = good;
    const size_t at = study.find(from);
    REQUIRE(at != std::string::npos);
    study.replace(at, from.size(), to);
    CAPTURE(study);
    CHECK_THROWS_WITH_AS(finalize(with_study(study)), doctest::Contains(message.c_str()), lab::Error);
  };
  refused(R"("kind": "rankings")", R"("kind": "ranking")", "unknown kind 'ranking'");
  refused(R"("title": "R")", R"("title": "R", "grid_rows": 2)", "unknown key 'grid_rows'");
  refused(R"("metric": "insertion")", R"("metric": "insertoin")", "unknown metric 'insertoin'");
  refused(R"("metric": "insertion")", R"("metric": "deletion")", "metric 'deletion' is not among");
  refused(R"("model": "m")", R"("model": "x")", "no model 'x'");
  refused(R"("Saliency"])", R"("Salency"])", "no method 'Salency'");
  // A faithfulness study names its ground-truth metric; a spearman study's curves name measures.
  CHECK_NOTHROW(finalize(with_study(R"({"kind": "faithfulness", "title": "F", "model": "m", "metric": "gt"})")));
  CHECK_THROWS_WITH_AS(finalize(with_study(R"({"kind": "faithfulness", "title": "F", "model": "m"})")),
                       doctest::Contains("needs \"metric\""), lab::Error);
  CHECK_THROWS_WITH_AS(finalize(with_study(R"({"kind": "faithfulness", "title": "F", "model": "m", "metric": "gtt"})")),
                       doctest::Contains("unknown metric 'gtt'"), lab::Error);
  const std::string spearman = R"({"kind": "spearman", "title": "S", "rows": [{"label": "a", "model": "m"}],
      "reference": {"metric": "gt", "variant": "f1-overall"},
      "compare": [{"metric": "insertion", "variant": "auc", "label": "Ins"}], "curves": ["Ins"]})";
  CHECK_NOTHROW(finalize(with_study(spearman)));
  std::string bad_curves = spearman;
  bad_curves.replace(bad_curves.find(R"(["Ins"])"), 7, R"(["Del"])");
  CHECK_THROWS_WITH_AS(finalize(with_study(bad_curves)), doctest::Contains("curves names \"Del\""), lab::Error);
  // A method left out by `select` may still be named (it is skipped, not misspelt).
  json selected = with_study(good);
  selected["select"] = json::array({"IG*"});
  CHECK_NOTHROW(finalize(selected));
  // Variants need the metric built: check_experiment() refuses an unknown one.
  std::string variant = good;
  variant.replace(variant.find(R"("variant": "auc")"), 16, R"("variant": "aoc")");
  const json resolved = finalize(with_study(variant));
  CHECK_THROWS_WITH_AS(experiments::check_experiment(experiments::Experiment::from_json(resolved)),
                       doctest::Contains("no variant 'aoc'"), lab::Error);
  // So do misspelt method and metric names and parameters outside the report.
  json method = minimal();
  method["methods"][1]["name"] = "salency";
  CHECK_THROWS_WITH_AS(experiments::check_experiment(experiments::Experiment::from_json(finalize(method))),
                       doctest::Contains("salency"), lab::Error);
  json metric = minimal();
  metric["metrics"][0]["name"] = "gtt";
  CHECK_THROWS_WITH_AS(experiments::check_experiment(experiments::Experiment::from_json(finalize(metric))),
                       doctest::Contains("gtt"), lab::Error);
}

TEST_CASE("metric labels: configurations of one metric, each named by its label") {
  json c = minimal();
  c["metrics"] = json::parse(R"([{"name": "gt"}, {"name": "deletion"},
      {"name": "deletion", "label": "deletion-noise", "params": {"replacement": "noise"}},
      {"name": "deletion", "label": "deletion-coarse", "params": {"pixels-per-step": 8}}])");
  c["report"] = {{"studies", json::array({json::parse(R"({"kind": "coherency", "title": "C",
      "rows": [{"label": "m", "model": "m"}], "reference": {"metric": "gt", "variant": "f1-overall"},
      "compare": [{"metric": "deletion", "variant": "auc", "label": "Deletion"}],
      "consistency": [{"label": "Deletion", "configs": [
        {"metric": "deletion", "variant": "auc"}, {"metric": "deletion-noise", "variant": "auc"},
        {"metric": "deletion-coarse", "variant": "auc"}]}]})")})}};
  const json r = finalize(c);
  CHECK(r.at("metrics").at(1).contains("label") == false);  // the resolved config keeps what was written
  CHECK(r.at("metrics").at(2).at("label") == "deletion-noise");
  const experiments::Experiment e = experiments::Experiment::from_json(r);
  REQUIRE(e.metrics.size() == 4);
  CHECK(e.metrics[1].name == "deletion");
  CHECK(e.metrics[1].label == "deletion");
  CHECK(e.metrics[2].name == "deletion");
  CHECK(e.metrics[2].label == "deletion-noise");
  experiments::check_experiment(e);  // the study's variants are found under the labels
  const auto made = experiments::make_model_metrics(e, e.models.at(0));
  REQUIRE(made.size() == 4);
  CHECK(made[1]->label() == "deletion");
  CHECK(made[2]->name() == "deletion");
  CHECK(made[2]->label() == "deletion-noise");
  CHECK(made[2]->params().at("replacement") == "noise");
  CHECK(made[3]->label() == "deletion-coarse");
  CHECK(made[3]->params().at("pixels-per-step") == 8);

  // -o reaches a configuration by its label.
  json o = c;
  apply_overrides(o, {"metrics.deletion-noise.params.noise-high=0.5"});
  CHECK(finalize(o).at("metrics").at(2).at("params").at("noise-high") == 0.5);
  CHECK(finalize(o).at("metrics").at(3).at("params").contains("noise-high") == false);

  auto refused = [&](const std::string& entry, const std::string& message) {
    json bad = c;
    bad["metrics"].push_back(json::parse(entry));
    CAPTURE(entry);
    CHECK_THROWS_WITH_AS(finalize(bad), doctest::Contains(message.c_str()), lab::Error);
  };
  refused(R"({"name": "deletion", "label": "deletion-noise"})", "metric label 'deletion-noise' given twice");
  refused(R"({"name": "deletion"})", "metric label 'deletion' given twice");
  refused(R"({"name": "insertion", "label": "deletion"})", "label 'deletion' is the name of another metric");
  refused(R"({"name": "deletion", "label": "insertion"})", "label 'insertion' is the name of another metric");
  refused(R"({"name": "deletion", "label": "method"})", "label 'method' is the name of another metric");
  refused(R"({"name": "deletion", "label": "Deletion Blur"})", "label = \"Deletion Blur\"; expected lower-case words");
  refused(R"({"name": "deletion", "label": "deletion_blur"})", "expected lower-case words joined by '-'");
  refused(R"({"name": "deletion", "label": ""})", "expected lower-case words");
  refused(R"({"name": "deletion", "label": 3})", "expected lower-case words");
  refused(R"({"name": "deletion", "lable": "x"})", "unknown key 'lable'; known: name, label, params, models");
  // Its own name is a valid label (the same as none).
  json own = minimal();
  own["metrics"] = json::parse(R"([{"name": "gt", "label": "gt"}])");
  CHECK(experiments::Experiment::from_json(finalize(own)).metrics.at(0).label == "gt");
  // A study naming a label no metric has is refused.
  json missing = c;
  missing["report"]["studies"][0]["consistency"][0]["configs"][1]["metric"] = "deletion-blur";
  CHECK_THROWS_WITH_AS(finalize(missing), doctest::Contains("unknown metric 'deletion-blur'"), lab::Error);
}
