// End to end: attrlab metrics lists every metric with its family, summary, source, variants
// (each with its direction) and parameters, as text and as JSON.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "run_cli.h"

using clitest::run;

TEST_CASE("attrlab metrics lists variants with directions and the schema's parameters") {
  const auto text = run("metrics");
  REQUIRE(text.code == 0);
  for (const char* expected :
       {"gt (ground-truth)", "faithfulness-test", "insertion (perturbation)", "sensitivity-n", "source: ",
        "variants: auc (higher-is-better), auc-modulo (higher-is-better)", "auc (lower-is-better)",
        "-p pixels-per-step=1", "-p ground-truth=pixel", "-p blur-sigma=5", "-p noise-high=auto", "-p mode=auto",
        "-p gamma=0.5", "-p subsets=100"})
    CHECK_MESSAGE(text.out.find(expected) != std::string::npos, expected);
  CHECK(text.out.find("_") == std::string::npos);  // every key hyphenated

  const auto json = run("metrics deletion --json");
  REQUIRE(json.code == 0);
  const nlohmann::json list = nlohmann::json::parse(json.out);
  REQUIRE(list.size() == 1);
  const nlohmann::json& m = list[0];
  CHECK(m["name"] == "deletion");
  CHECK(m["family"] == "perturbation");
  CHECK(m["source"].get<std::string>().find("App. G.4") != std::string::npos);
  CHECK(m["variants"] == nlohmann::json::parse(R"([{"name": "auc", "direction": "lower-is-better"},
                                                   {"name": "auc-modulo", "direction": "lower-is-better"}])"));
  std::map<std::string, nlohmann::json> params;
  for (const auto& p : m["params"]) params[p["name"]] = p;
  REQUIRE(params.count("pixels-per-step") == 1);
  CHECK(params["pixels-per-step"]["type"] == "int");
  CHECK(params["pixels-per-step"]["default"] == 1);
  CHECK(params["pixels-per-step"]["min"] == 1);
  CHECK(params["blur-sigma"]["default"] == 5.0);
  CHECK(params["replacement"]["type"] == "enum");
  CHECK(params["replacement"]["choices"] == nlohmann::json({"constant", "background", "blur", "noise"}));
  CHECK(params["value"]["default"] == nlohmann::json({0.0}));
  // Data-dependent defaults are null with the rule that derives them.
  CHECK(params["mode"]["default"].is_null());
  CHECK(params["mode"]["derived"].get<std::string>().find("single-color-modulo") != std::string::npos);
  CHECK(params["noise-high"]["default"].is_null());
  CHECK(m.find("direction") == m.end());  // no free-text direction line any more

  const auto gt = run("metrics gt --json");
  REQUIRE(gt.code == 0);
  const nlohmann::json g = nlohmann::json::parse(gt.out)[0];
  CHECK(g["variants"].size() == 18);  // precision/recall/F1 × 3 kinds × pixel/smooth
  for (const auto& v : g["variants"]) CHECK(v["direction"] == "higher-is-better");

  const auto unknown = run("metrics no-such-metric");
  CHECK(unknown.code == 1);
  CHECK(unknown.err.find("unknown metric 'no-such-metric'") != std::string::npos);
}
