// gradient-times-input: an attribution method from outside attrlab's tree, in one file. It is
// the built-in input-x-gradient under another name, attr = x ⊙ ∂f_t/∂x (Shrikumar et al. 2016),
// so its maps and scores equal the built-in method's (tests/plugin/test_plugin.cpp checks it).
// Build against the installed package (CMakeLists.txt beside this file), then
//   attrlab --plugin build/libgradient_times_input.so methods gradient-times-input
#include <memory>
#include <string>
#include <utility>

#include "attributions/common.h"
#include "attributions/plugin.h"

namespace {

class GradientTimesInput final : public attributions::Method {
 public:
  struct Params {
    attributions::Output output = attributions::Output::kProbability;
    static const lab::Schema<Params>& schema() {
      static const auto s = lab::Schema<Params>().with(
          attributions::output_param(&Params::output, "App. G.2: gradient methods after the softmax"));
      return s;
    }
  };

  explicit GradientTimesInput(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "gradient-times-input"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }

  attributions::Result attribute(const attributions::Context& context,
                                 const attributions::Batch& batch) const override {
    attributions::check_batch(context, batch);
    // One forward and one backward of output[target] per input, in chunks of Context::batch.
    const lab::Network net = attributions::explained_network(*context.net, params_.output);
    attributions::Signal s =
        attributions::backprop_batch({.net = &net}, batch.x, batch.target, context.batch);
    attributions::Result r;
    r.attr = std::move(s.signal);
    for (int64_t i = 0; i < r.attr.numel(); ++i) r.attr[i] *= batch.x[i];
    r.evaluations = s.evaluations;
    return r;
  }

 private:
  Params params_;
};

}  // namespace

ATTRLAB_PLUGIN(registry) {
  registry.add_method(attributions::method_info<GradientTimesInput>(
      "gradient-times-input", "input times gradient, x ⊙ ∂f/∂x (Shrikumar et al. 2016), as a plug-in"));
}
