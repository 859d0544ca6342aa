// End to end: attrlab methods lists every method, attrlab envs every environment; attrlab attribute writes the maps layout
// (MAPS/<id>.npy, MAPS/maps.json) for a small data directory; errors exit with their codes.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "lab/io/files.h"
#include "lab/io/npy.h"
#include "run_cli.h"

using clitest::run;

TEST_CASE("attrlab methods lists methods, parameters and defaults") {
  const auto text = run("methods");
  REQUIRE(text.code == 0);
  for (const char* expected : {"integrated-gradients (gradient)", "lrp (propagation)", "occlusion (perturbation)",
                               "extremal-perturbation (optimisation)", "fake-cam (control)", "-p steps=50", "-p baseline=zero", "deepshap", "gradcam-plus-plus",
                               "-p composite=lrp-epsilon", "random", "constant"})
    CHECK(text.out.find(expected) != std::string::npos);
  const auto json = run("methods lrp --json");
  REQUIRE(json.code == 0);
  const nlohmann::json list = nlohmann::json::parse(json.out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["name"] == "lrp");
  CHECK(list[0]["family"] == "propagation");
  CHECK(list[0]["params"][0]["name"] == "composite");
  CHECK(list[0]["params"][0]["default"] == "lrp-epsilon");
  const auto unknown = run("methods no-such-method");
  CHECK(unknown.code == 1);
  CHECK(unknown.err.find("unknown method 'no-such-method'") != std::string::npos);
}

TEST_CASE("attrlab envs lists environments, their -o options and defaults") {
  const auto text = run("envs");
  REQUIRE(text.code == 0);
  for (const char* expected : {"multi-color-sum", "single-color-modulo", "-o size=224", "-o ude-strength=0.0625",
                               "-o logit-scale=0.00390625", "-o background=20,20,20", "-o patch-max=auto",
                               "-o shapes=triangle,square,circle", "-o shapes=bezier", "-o max-count=4500", "App. G"})
    CHECK(text.out.find(expected) != std::string::npos);
  const auto json = run("envs single-color-modulo --json");
  REQUIRE(json.code == 0);
  const nlohmann::json list = nlohmann::json::parse(json.out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["name"] == "single-color-modulo");
  CHECK(!list[0]["source"].get<std::string>().empty());
  bool seen_seed = false, seen_patch_max = false;
  for (const auto& p : list[0]["params"]) {
    CHECK(p.contains("type"));
    CHECK(!p["help"].get<std::string>().empty());
    if (p["name"] == "seed") {
      seen_seed = true;
      CHECK(p["type"] == "int");
      CHECK(p["default"] == 0);
    }
    if (p["name"] == "patch-max") {
      seen_patch_max = true;
      CHECK(p["default"].is_null());
      CHECK(p["derived"].get<std::string>().find("size/4") != std::string::npos);
    }
  }
  CHECK(seen_seed);
  CHECK(seen_patch_max);
  const auto unknown = run("envs no-such-env");
  CHECK(unknown.code == 1);
  CHECK(unknown.err.find("unknown environment 'no-such-env'") != std::string::npos);
}

TEST_CASE("attrlab attribute writes one float32 C×H×W map per sample and maps.json") {
  const auto dir = clitest::scratch();
  const std::string data = (dir / "attr-data").string();
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 5 --seed 3 --out " + data).code == 0);
  const std::string maps = (dir / "attr-maps").string();
  const auto ig = run("attribute --data " + data + " --method integrated-gradients -p baseline=background -p steps=8 --unit 2 --out " + maps);
  REQUIRE(ig.code == 0);
  const nlohmann::json record = lab::read_json(std::filesystem::path(maps) / "maps.json");
  CHECK(record["method"] == "integrated-gradients");
  CHECK(record["params"]["baseline"] == "background");
  CHECK(record["params"]["steps"] == 8);
  CHECK(record["target"] == "label");
  CHECK(record["data-manifest"]["env"] == "multi-color-sum");
  CHECK(record["data-manifest"]["seed"] == 3);
  REQUIRE(record["samples"].size() == 5);
  const nlohmann::json manifest = lab::read_json(std::filesystem::path(data) / "manifest.json");
  for (size_t i = 0; i < 5; ++i) {
    const nlohmann::json& s = record["samples"][i];
    CHECK(s["id"] == manifest["samples"][i]["id"]);
    CHECK(s["label"] == manifest["samples"][i]["label"]);
    CHECK(s["target"] == manifest["samples"][i]["label"]);
    CHECK(s.contains("convergence-delta"));
    const lab::Tensor map = lab::read_npy(std::filesystem::path(maps) / s["map"].get<std::string>());
    CHECK(map.shape() == lab::Shape{3, 32, 32});
  }
  // The same maps whatever the unit and batch sizes.
  const std::string again = (dir / "attr-maps-2").string();
  REQUIRE(run("attribute --data " + data + " --method integrated-gradients -p baseline=background -p steps=8 --unit 5 --batch 3 --out " + again).code == 0);
  for (size_t i = 0; i < 5; ++i) {
    const std::string file = record["samples"][i]["map"];
    CHECK(lab::read_npy(std::filesystem::path(maps) / file).values() == lab::read_npy(std::filesystem::path(again) / file).values());
  }
  // A fixed target unit and a method without completeness.
  const auto fixed = run("attribute --data " + data + " --method saliency --target 2 --limit 2 --force --out " + again);
  REQUIRE(fixed.code == 0);
  const nlohmann::json r2 = lab::read_json(std::filesystem::path(again) / "maps.json");
  CHECK(r2["target"] == 2);
  CHECK(r2["samples"].size() == 2);
  CHECK(r2["samples"][0]["target"] == 2);
  CHECK(!r2["samples"][0].contains("convergence-delta"));
}

TEST_CASE("attrlab attribute refuses bad methods, parameters, targets and data") {
  const auto dir = clitest::scratch();
  const std::string data = (dir / "attr-data-errors").string();
  REQUIRE(run("generate --env single-color-modulo -o size=32 --count 2 --out " + data).code == 0);
  const std::string out = (dir / "never").string();
  const auto method = run("attribute --data " + data + " --method nope --out " + out);
  CHECK(method.code == 1);
  const auto param = run("attribute --data " + data + " --method lrp -p composite=gamma --out " + out);
  CHECK(param.code == 1);
  CHECK(param.err.find("composite=gamma") != std::string::npos);
  const auto target = run("attribute --data " + data + " --method saliency --target 1 --out " + out);
  CHECK(target.code == 1);
  CHECK(target.err.find("--target 1") != std::string::npos);
  const auto missing = run("attribute --data " + (dir / "missing").string() + " --method saliency --out " + out);
  CHECK(missing.code == 2);
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("maps made for data of another seed are refused by evaluate: exit 1, both fingerprints named, nothing written") {
  const std::filesystem::path dir = clitest::scratch() / "fingerprint";
  for (const char* seed : {"1", "2"})
    REQUIRE(run(std::string("generate --env multi-color-sum -o size=16 --count 3 --seed ") + seed + " --out " +
                (dir / (std::string("data") + seed)).string())
                .code == 0);
  REQUIRE(run("attribute --data " + (dir / "data1").string() + " --method saliency --out " + (dir / "maps").string()).code == 0);
  const nlohmann::json record = lab::read_json(dir / "maps" / "maps.json");
  const std::string made_for = record["data-manifest"]["fingerprint"];
  const std::string other = lab::read_json(dir / "data2" / "manifest.json")["fingerprint"];
  REQUIRE(made_for != other);
  const auto refused = run("evaluate --quiet --data " + (dir / "data2").string() + " --maps " + (dir / "maps").string() +
                           " --metric gt --out " + (dir / "results.csv").string());
  CHECK(refused.code == 1);
  CHECK(refused.err.find(made_for) != std::string::npos);
  CHECK(refused.err.find(other) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "results.csv"));
  CHECK_FALSE(std::filesystem::exists(dir / "results.json"));
  // The data they were made for: scored.
  CHECK(run("evaluate --quiet --data " + (dir / "data1").string() + " --maps " + (dir / "maps").string() +
            " --metric gt --out " + (dir / "results.csv").string())
            .code == 0);
}
