// The perturbation, surrogate and optimisation methods in the registry: listed with their
// parameters, rebuilt identically from their own params() record (what maps.json stores),
// unknown keys refused, every map shaped like the input.
#include "test_perturbation_util.h"

namespace {

const std::vector<std::string> kMethods = {"occlusion", "lime", "kernelshap", "rise", "extremal-perturbation", "iba"};

}  // namespace

TEST_CASE("perturbation methods are registered with defaults, and rebuilt exactly from their record") {
  const auto& table = attributions::registry();
  for (const std::string& name : kMethods) {
    CAPTURE(name);
    const auto it = std::find_if(table.begin(), table.end(), [&](const auto& m) { return m.name == name; });
    REQUIRE(it != table.end());
    CHECK_FALSE(it->summary.empty());
    CHECK_FALSE(it->params.empty());
    const auto method = ptest::make(name, {});
    CHECK(method->name() == name);
    const nlohmann::json record = method->params();
    lab::Options again = lab::Options::from_json(record, "-p");
    CHECK(attributions::make_method(name, again)->params() == record);
    CHECK_THROWS_WITH_AS(ptest::make(name, {{"no-such-key", "1"}}), doctest::Contains("no-such-key"), lab::Error);
  }
}

TEST_CASE("perturbation methods return maps shaped like the input, with the evaluations they spent") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0});
  e.context.reference_inputs = ptest::reference_inputs(*e.env, 8);
  const std::vector<std::vector<std::pair<std::string, std::string>>> settings = {
      {}, {{"samples", "20"}}, {{"samples", "20"}}, {{"masks", "20"}}, {{"iterations", "2"}}, {{"iterations", "2"}}};
  for (size_t k = 0; k < kMethods.size(); ++k) {
    CAPTURE(kMethods[k]);
    const attributions::Result r = ptest::make(kMethods[k], settings[k])->attribute(e.context, e.batch);
    CHECK(r.attr.shape() == e.batch.x.shape());
    CHECK(r.attr.all_finite());
    CHECK(r.evaluations > 0);
  }
}
