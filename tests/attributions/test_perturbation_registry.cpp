// The perturbation, surrogate and optimisation methods on the multi-color-sum task: every map
// shaped like the input, with the evaluations it spent. (Listing, defaults, the rebuild from the
// params() record and unknown keys are checked for every registered method in
// test_method_table.cpp.)
#include "test_perturbation_util.h"

namespace {

const std::vector<std::string> kMethods = {"occlusion", "lime", "kernelshap", "rise", "extremal-perturbation", "iba"};

}  // namespace

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
