#include "attributions/gradient.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "lab/core/error.h"

namespace attributions {

namespace {

// One forward+backward per input of output[target] under `rules` (nullptr = plain gradient).
// Network evaluations per input: 2 for a forward+backward; LRP rules on signed weight copies
// apply every affine layer once more per extra term (gradient.h).
int64_t evaluations_per_input(const std::string& composite) {
  if (composite == "lrp-zplus" || composite == "lrp-epsilon-plus") return 3;
  if (composite == "lrp-alpha-beta") return 5;
  return 2;
}

Result single_pass(const Context& context, const Batch& batch, Output output, const std::string& composite,
                   const lab::CompositeParams& composite_params, bool seed_with_output) {
  check_batch(context, batch);
  const lab::Network net = explained_network(*context.net, output);
  lab::PreparedRules rules;
  Backprop bp{.net = &net, .seed_with_output = seed_with_output};
  if (composite != "gradient") {
    rules = lab::prepare(net, lab::make_composite(composite, composite_params));
    bp.rules = &rules;
  }
  Signal s = backprop_batch(bp, batch.x, batch.target, context.batch);
  Result r;
  r.attr = std::move(s.signal);
  r.evaluations = s.evaluations / 2 * evaluations_per_input(composite);
  return r;
}

}  // namespace

const lab::Schema<Saliency::Params>& Saliency::Params::schema() {
  static const auto s = lab::Schema<Params>()
                            .with(output_param(&Params::output, "App. G.2: gradient methods after the softmax"))
                            .field("abs", &Params::abs,
                                   {.help = "on: |gradient| (the original saliency map); off: the signed gradient",
                                    .source = "Simonyan et al. 2013, Sec. 3.1"});
  return s;
}

Result Saliency::attribute(const Context& context, const Batch& batch) const {
  Result r = single_pass(context, batch, params_.output, "gradient", {}, false);
  if (params_.abs)
    for (float& v : r.attr.values()) v = std::abs(v);
  return r;
}

MethodInfo Saliency::info() {
  return method_info<Saliency>("saliency",
                               "plain gradient of the explained output w.r.t. the input (Simonyan et al. 2013)");
}

const lab::Schema<InputXGradient::Params>& InputXGradient::Params::schema() {
  static const auto s =
      lab::Schema<Params>().with(output_param(&Params::output, "App. G.2: gradient methods after the softmax"));
  return s;
}

Result InputXGradient::attribute(const Context& context, const Batch& batch) const {
  Result r = single_pass(context, batch, params_.output, "gradient", {}, false);
  for (int64_t i = 0; i < r.attr.numel(); ++i) r.attr[i] *= batch.x[i];
  return r;
}

MethodInfo InputXGradient::info() {
  return method_info<InputXGradient>("input-x-gradient", "input times gradient, x ⊙ ∂f/∂x (Shrikumar et al. 2016)");
}

const lab::Schema<ReluComposite::Params>& ReluComposite::Params::schema() {
  static const auto s =
      lab::Schema<Params>().with(output_param(&Params::output, "App. G.2: GuidedBP after the softmax"));
  return s;
}

ReluComposite::ReluComposite(std::string composite, Params params) : composite_(std::move(composite)), params_(params) {
  LAB_CHECK(composite_ == "guided-backprop" || composite_ == "deconvnet", "composite {}", composite_);
  Params::schema().validate(params_);
}

Result ReluComposite::attribute(const Context& context, const Batch& batch) const {
  return single_pass(context, batch, params_.output, composite_, {}, false);
}

MethodInfo ReluComposite::guided_backprop_info() {
  return method_info<ReluComposite>(
      "guided-backprop",
      "Guided Backpropagation: ReLUs pass positive signal where their input was positive (Springenberg et al. 2015)",
      [](Params p) -> std::unique_ptr<Method> { return std::make_unique<ReluComposite>("guided-backprop", p); });
}

MethodInfo ReluComposite::deconvnet_info() {
  return method_info<ReluComposite>(
      "deconvnet", "Deconvnet: ReLUs pass the positive part of the signal (Zeiler & Fergus 2014)",
      [](Params p) -> std::unique_ptr<Method> { return std::make_unique<ReluComposite>("deconvnet", p); });
}

const lab::Schema<Lrp::Params>& Lrp::Params::schema() {
  static const auto s = [] {
    std::vector<std::string> composites;
    for (const std::string& name : lab::composite_names())
      if (name.rfind("lrp-", 0) == 0) composites.push_back(name);
    return lab::Schema<Params>()
        .field("composite", &Params::composite,
               {.choices = composites,
                .help = "rule composite (lrp-epsilon-plus: z+ on convolutions, ε on linear layers)",
                .source = "Montavon et al. 2019 (composite rules)"})
        .field("epsilon", &Params::epsilon,
               {.range = lab::above(0),
                .help = "ε of the ε rule (stabiliser; a large ε absorbs weak relevance)",
                .source = "Bach et al. 2015 (ε rule); runtime default, Captum uses 1e-9"})
        .field("alpha", &Params::alpha,
               {.range = lab::at_least(1), .help = "α of the αβ rule (α − β = 1)", .source = "Bach et al. 2015 (αβ rule)"})
        .field("beta", &Params::beta,
               {.range = lab::at_least(0), .help = "β of the αβ rule (α − β = 1)", .source = "Bach et al. 2015 (αβ rule)"})
        .with(output_param(&Params::output, "App. F.2: from the output; logit = the evidence for the class"))
        .check([](const Params& p, const std::string& flag) {
          if (std::abs(p.alpha - p.beta - 1.0) > 1e-9)
            lab::fail_value(flag, "alpha", fmt::format("{}", p.alpha),
                            fmt::format("beta + 1 = {} (the αβ rule needs α − β = 1)", p.beta + 1.0));
        });
  }();
  return s;
}

Lrp::Lrp(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

Result Lrp::attribute(const Context& context, const Batch& batch) const {
  return single_pass(context, batch, params_.output, params_.composite,
                     {.epsilon = params_.epsilon, .alpha = params_.alpha, .beta = params_.beta}, true);
}

MethodInfo Lrp::info() {
  return method_info<Lrp>("lrp",
                          "Layer-wise Relevance Propagation of R = f_t(x) under a rule composite (Bach et al. 2015)");
}

}  // namespace attributions
