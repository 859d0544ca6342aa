// Registry (env name → model) and the summary table of `attrlab summary`.
#include <doctest/doctest.h>

#include "lab/core/error.h"
#include "networks/registry.h"
#include "networks/summary.h"

TEST_CASE("the registry knows every environment and refuses others, listing them") {
  const std::vector<std::string> names = {"batch-norm", "interaction", "max-pool",   "multi-color-sum",    "position",
                                          "residual",   "reused-relu", "saturation", "single-color-modulo"};
  CHECK(networks::model_names() == names);
  lab::Options none;
  CHECK_THROWS_WITH_AS(networks::build_model("mnist", none),
                       doctest::Contains("known: batch-norm, interaction, max-pool, multi-color-sum, position, "
                                         "residual, reused-relu, saturation, single-color-modulo"),
                       lab::Error);
  lab::Options o = lab::Options::parse({"size=32", "colors=3", "unknown=1"}, "-o");
  const lab::Network net = networks::build_model("multi-color-sum", o);
  CHECK(net.output_shape() == lab::Shape{1, 3});
  CHECK_THROWS_WITH_AS(o.finish(), doctest::Contains("unknown"), lab::Error);
}

TEST_CASE("group_digits") {
  CHECK(networks::group_digits(0) == "0");
  CHECK(networks::group_digits(999) == "999");
  CHECK(networks::group_digits(675033) == "675,033");
  CHECK(networks::group_digits(1234567) == "1,234,567");
  CHECK(networks::group_digits(-1000) == "-1,000");
}

TEST_CASE("the summary lists every layer with its role and the Table 1 totals") {
  lab::Options o;
  const networks::ModelInfo info = networks::make_model("single-color-modulo", o);
  const std::string s = networks::format_summary(info, 0.0123);
  CHECK(s.find("accumulator.layers.19") != std::string::npos);
  CHECK(s.find("modulo.layers.13") != std::string::npos);
  CHECK(s.find("layers: 17 conv + linear") != std::string::npos);
  CHECK(s.find("parameters: 655,559") != std::string::npos);
  CHECK(s.find("675,033") != std::string::npos);
  CHECK(s.find("iba at accumulator.layers.11 (1×28×28)") != std::string::npos);
  CHECK(s.find("built in 12.3 ms") != std::string::npos);
  // One line per layer in the table.
  for (size_t i = 0; i < info.model.network.size(); ++i)
    CHECK(s.find("  " + info.model.network.name(i) + " ") != std::string::npos);

  lab::Options m = lab::Options::parse({"size=32", "accumulator=uniform"}, "-o");
  const std::string ms = networks::format_summary(networks::make_model("multi-color-sum", m), 0.001);
  CHECK(ms.find("softmax") != std::string::npos);
  CHECK(ms.find("gradcam at accumulator.layers.5 (4×4×4)") != std::string::npos);
  lab::Options shallow = lab::Options::parse({"size=32", "accumulator=uniform"}, "-o");
  const std::string ss = networks::format_summary(networks::make_model("single-color-modulo", shallow), 0.001);
  CHECK(ss.find("iba at accumulator.layers.11 (absent") != std::string::npos);
}
