// Experiment definitions: `extends` merging, dotted -o overrides with typed values, validation,
// and the shipped experiments (each resolves, and count/size are overridable for every one).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "experiments/config.h"
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
  CHECK(c.at("chunk") == json(experiments::load_config("faithfulness-test").at("chunk")));  // from base
  CHECK(c.at("name") == "child");
  CHECK_FALSE(c.contains("extends"));

  write(dir.path / "a.json", R"({"extends": "b.json"})");
  write(dir.path / "b.json", R"({"extends": "a.json"})");
  CHECK_THROWS_AS(experiments::load_config((dir.path / "a.json").string()), lab::Error);
  write(dir.path / "lost.json", R"({"extends": "no-such-experiment"})");
  CHECK_THROWS_WITH_AS(experiments::load_config((dir.path / "lost.json").string()),
                       doctest::Contains("no-such-experiment"), lab::Error);
  CHECK_THROWS_AS(experiments::load_config("no-such-experiment"), lab::Error);
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
    apply_overrides(d, {"metrics.0.params.ground_truth=both"});
    CHECK(d.at("metrics").at(0).at("params").at("ground_truth") == "both");
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
    CHECK_THROWS_AS(apply_overrides(d, {"save_maps=maybe"}), lab::Error);
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
  refused("chunk=0");
  refused("target=everything");
  refused("select=Nothing");
  refused("models_select=other");
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
  CHECK(names == std::vector<std::string>{"faithfulness-test", "single-color-modulo", "unseen-data-effect"});
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
    for (const auto& [key, value] : paper.at("paper_scale").items()) items.push_back(key + "=" + value.dump());
    apply_overrides(paper, items);
    CHECK(finalize(paper).at("size") == 224);
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
