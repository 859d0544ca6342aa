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
  Signal s = backprop_batch(bp, batch.x, batch.target, context.chunk);
  Result r;
  r.attr = std::move(s.signal);
  r.evaluations = s.evaluations / 2 * evaluations_per_input(composite);
  return r;
}

}  // namespace

Saliency::Params Saliency::Params::from_options(lab::Options& options) {
  Params p;
  p.output = read_output(options, p.output);
  p.abs = options.get_bool("abs", p.abs);
  p.validate();
  return p;
}

nlohmann::json Saliency::Params::to_json() const { return {{"output", output_name(output)}, {"abs", abs}}; }

Result Saliency::attribute(const Context& context, const Batch& batch) const {
  Result r = single_pass(context, batch, params_.output, "gradient", {}, false);
  if (params_.abs)
    for (float& v : r.attr.values()) v = std::abs(v);
  return r;
}

MethodInfo Saliency::info() {
  return make_info<Saliency>(
      "saliency", "plain gradient of the explained output w.r.t. the input (Simonyan et al. 2013)",
      {{"output", "probability (after the final softmax) | logit (before it)"},
       {"abs", "on: |gradient| (the original saliency map); off: the signed gradient"}});
}

InputXGradient::Params InputXGradient::Params::from_options(lab::Options& options) {
  Params p;
  p.output = read_output(options, p.output);
  p.validate();
  return p;
}

nlohmann::json InputXGradient::Params::to_json() const { return {{"output", output_name(output)}}; }

Result InputXGradient::attribute(const Context& context, const Batch& batch) const {
  Result r = single_pass(context, batch, params_.output, "gradient", {}, false);
  for (int64_t i = 0; i < r.attr.numel(); ++i) r.attr[i] *= batch.x[i];
  return r;
}

MethodInfo InputXGradient::info() {
  return make_info<InputXGradient>("input-x-gradient",
                                   "input times gradient, x ⊙ ∂f/∂x (Shrikumar et al. 2016)",
                                   {{"output", "probability (after the final softmax) | logit (before it)"}});
}

ReluComposite::Params ReluComposite::Params::from_options(lab::Options& options) {
  Params p;
  p.output = read_output(options, p.output);
  p.validate();
  return p;
}

nlohmann::json ReluComposite::Params::to_json() const { return {{"output", output_name(output)}}; }

ReluComposite::ReluComposite(std::string composite, Params params) : composite_(std::move(composite)), params_(params) {
  LAB_CHECK(composite_ == "guided-backprop" || composite_ == "deconvnet", "composite {}", composite_);
}

Result ReluComposite::attribute(const Context& context, const Batch& batch) const {
  return single_pass(context, batch, params_.output, composite_, {}, false);
}

MethodInfo ReluComposite::guided_backprop_info() {
  return make_info<ReluComposite>(
      "guided-backprop",
      "Guided Backpropagation: ReLUs pass positive signal where their input was positive (Springenberg et al. 2015)",
      {{"output", "probability (after the final softmax; App. G.2) | logit (before it)"}},
      [](Params p) -> std::unique_ptr<Method> { return std::make_unique<ReluComposite>("guided-backprop", p); });
}

MethodInfo ReluComposite::deconvnet_info() {
  return make_info<ReluComposite>(
      "deconvnet", "Deconvnet: ReLUs pass the positive part of the signal (Zeiler & Fergus 2014)",
      {{"output", "probability (after the final softmax) | logit (before it)"}},
      [](Params p) -> std::unique_ptr<Method> { return std::make_unique<ReluComposite>("deconvnet", p); });
}

void Lrp::Params::validate() const {
  const std::vector<std::string> names = {"lrp-epsilon", "lrp-zplus", "lrp-alpha-beta", "lrp-epsilon-plus"};
  if (std::find(names.begin(), names.end(), composite) == names.end())
    lab::fail_parameter("-p composite={}: expected one of lrp-epsilon|lrp-zplus|lrp-alpha-beta|lrp-epsilon-plus",
                        composite);
  lab::require(epsilon > 0, "-p epsilon", "> 0", fmt::format("{}", epsilon));
  lab::CompositeParams{.epsilon = epsilon, .alpha = alpha, .beta = beta}.validate();
}

Lrp::Params Lrp::Params::from_options(lab::Options& options) {
  Params p;
  p.composite = options.get_string("composite", p.composite);
  p.epsilon = options.get_double("epsilon", p.epsilon);
  p.alpha = options.get_double("alpha", p.alpha);
  p.beta = options.get_double("beta", p.beta);
  p.output = read_output(options, p.output);
  p.validate();
  return p;
}

nlohmann::json Lrp::Params::to_json() const {
  return {{"composite", composite}, {"epsilon", epsilon}, {"alpha", alpha}, {"beta", beta},
          {"output", output_name(output)}};
}

Lrp::Lrp(Params params) : params_(std::move(params)) { params_.validate(); }

Result Lrp::attribute(const Context& context, const Batch& batch) const {
  return single_pass(context, batch, params_.output, params_.composite,
                     {.epsilon = params_.epsilon, .alpha = params_.alpha, .beta = params_.beta}, true);
}

MethodInfo Lrp::info() {
  return make_info<Lrp>(
      "lrp", "Layer-wise Relevance Propagation of R = f_t(x) under a rule composite (Bach et al. 2015)",
      {{"composite", "lrp-epsilon | lrp-zplus | lrp-alpha-beta | lrp-epsilon-plus (z+ on convolutions, ε on linear)"},
       {"epsilon", "ε > 0 of the ε rule (stabiliser; large ε absorbs weak relevance)"},
       {"alpha", "α of the αβ rule (α − β = 1)"},
       {"beta", "β ≥ 0 of the αβ rule"},
       {"output", "logit (relevance = the class logit) | probability (relevance = p_t)"}});
}

}  // namespace attributions
