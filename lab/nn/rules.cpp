#include "lab/nn/rules.h"

#include <algorithm>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/nn/network.h"

namespace lab {

Rule Rule::gradient() { return Rule{.name = "gradient", .kind = RuleKind::kGradient}; }
Rule Rule::pass() { return Rule{.name = "pass", .kind = RuleKind::kPass}; }
Rule Rule::guided() { return Rule{.name = "guided", .kind = RuleKind::kGuided}; }
Rule Rule::deconv() { return Rule{.name = "deconv", .kind = RuleKind::kDeconv}; }
Rule Rule::rescale() { return Rule{.name = "rescale", .kind = RuleKind::kRescale}; }

Rule Rule::epsilon_rule(double epsilon) {
  require(epsilon > 0, "epsilon", "positive", std::to_string(epsilon));
  return Rule{.name = "epsilon",
              .kind = RuleKind::kLrp,
              .groups = {LrpGroup{1.0, {{Part::kAll, Part::kAll}}, true}},
              .epsilon = epsilon};
}

Rule Rule::zplus() {
  return Rule{.name = "zplus",
              .kind = RuleKind::kLrp,
              .groups = {LrpGroup{1.0, {{Part::kPositive, Part::kPositive}, {Part::kNegative, Part::kNegative}}, false}},
              .epsilon = 1e-9};
}

Rule Rule::alpha_beta(double alpha, double beta) {
  require(beta >= 0, "beta", "non-negative", std::to_string(beta));
  require(std::abs(alpha - beta - 1.0) < 1e-9, "alpha - beta", "1 (relevance is conserved)",
          std::to_string(alpha - beta));
  Rule r{.name = "alpha-beta", .kind = RuleKind::kLrp, .epsilon = 1e-9};
  r.groups.push_back(LrpGroup{alpha, {{Part::kPositive, Part::kPositive}, {Part::kNegative, Part::kNegative}}, false});
  if (beta > 0)
    r.groups.push_back(LrpGroup{-beta, {{Part::kPositive, Part::kNegative}, {Part::kNegative, Part::kPositive}}, false});
  return r;
}

namespace {

bool is_affine(LayerKind k) { return k == LayerKind::kConv2d || k == LayerKind::kLinear; }

size_t first_affine_index(const Network& net) {
  for (size_t i = 0; i < net.size(); ++i)
    if (is_affine(net.layer(i).kind())) return i;
  return net.size();
}

Weights signed_copy(const Weights& w, bool positive) {
  auto part = [positive](const Tensor& t) {
    Tensor out = t;
    for (float& v : out.values()) v = positive ? std::max(v, 0.0f) : std::min(v, 0.0f);
    return out;
  };
  return Weights{part(w.weight), part(w.bias)};
}

}  // namespace

Rule Composite::resolve(const Network& net, size_t layer) const {
  if (auto it = by_name.find(net.name(layer)); it != by_name.end()) return it->second;
  if (first_affine && layer == first_affine_index(net)) return *first_affine;
  if (auto it = by_kind.find(net.layer(layer).kind()); it != by_kind.end()) return it->second;
  return Rule::gradient();
}

void CompositeParams::validate() const {
  require(epsilon > 0, "epsilon", "positive", std::to_string(epsilon));
  require(beta >= 0, "beta", "non-negative", std::to_string(beta));
  require(std::abs(alpha - beta - 1.0) < 1e-9, "alpha - beta", "1", std::to_string(alpha - beta));
}

std::vector<std::string> composite_names() {
  return {"gradient", "guided-backprop", "deconvnet", "lrp-epsilon", "lrp-zplus",
          "lrp-alpha-beta", "lrp-epsilon-plus", "deeplift-rescale"};
}

Composite make_composite(const std::string& name, const CompositeParams& params) {
  params.validate();
  Composite c{.name = name};
  auto lrp = [&c, &params](const Rule& conv, const Rule& linear) {
    c.by_kind[LayerKind::kConv2d] = conv;
    c.by_kind[LayerKind::kLinear] = linear;
    c.by_kind[LayerKind::kReLU] = Rule::pass();
    c.by_kind[LayerKind::kSoftmax] = Rule::pass();
    c.by_kind[LayerKind::kFlatten] = Rule::pass();
    // Graph nodes (rules.h): batch-norm and the sum take LRP-ε (the sum's split), max-pooling
    // and concatenation route relevance like the gradient, a product gives it to its signal.
    c.by_kind[LayerKind::kBatchNorm] = Rule::epsilon_rule(params.epsilon);
    c.by_kind[LayerKind::kAdd] = Rule::epsilon_rule(params.epsilon);
    c.by_kind[LayerKind::kMaxPool2d] = Rule::gradient();
    c.by_kind[LayerKind::kConcat] = Rule::gradient();
    c.by_kind[LayerKind::kMultiply] = Rule::pass();
  };
  if (name == "gradient") {
  } else if (name == "guided-backprop") {
    c.by_kind[LayerKind::kReLU] = Rule::guided();
  } else if (name == "deconvnet") {
    c.by_kind[LayerKind::kReLU] = Rule::deconv();
  } else if (name == "lrp-epsilon") {
    lrp(Rule::epsilon_rule(params.epsilon), Rule::epsilon_rule(params.epsilon));
  } else if (name == "lrp-zplus") {
    lrp(Rule::zplus(), Rule::zplus());
  } else if (name == "lrp-alpha-beta") {
    lrp(Rule::alpha_beta(params.alpha, params.beta), Rule::alpha_beta(params.alpha, params.beta));
  } else if (name == "lrp-epsilon-plus") {
    lrp(Rule::zplus(), Rule::epsilon_rule(params.epsilon));
  } else if (name == "deeplift-rescale") {
    c.by_kind[LayerKind::kReLU] = Rule::rescale();
    c.by_kind[LayerKind::kSoftmax] = Rule::rescale();
    c.by_kind[LayerKind::kMaxPool2d] = Rule::rescale();
    c.by_kind[LayerKind::kMultiply] = Rule::rescale();
  } else {
    std::string list;
    for (const auto& n : composite_names()) list += (list.empty() ? "" : ", ") + n;
    fail_parameter("unknown composite '{}'; known: {}", name, list);
  }
  return c;
}

PreparedRules prepare(const Network& net, const Composite& composite) {
  PreparedRules prepared;
  for (size_t i = 0; i < net.size(); ++i) {
    const LayerKind kind = net.layer(i).kind();
    // Layers LRP treats as affine: their own weights, or a batch-norm's per-channel scale.
    const bool affine = is_affine(kind) || kind == LayerKind::kBatchNorm;
    // Layers whose every rule but rescale is the gradient: max-pool (winner takes all) and concat.
    const bool routing = kind == LayerKind::kMaxPool2d || kind == LayerKind::kConcat;
    PreparedRule p{composite.resolve(net, i), {}, {}};
    switch (p.rule.kind) {
      case RuleKind::kLrp:
        if (kind == LayerKind::kAdd) break;  // the proportional split, network.cpp
        if (routing) {
          p.rule = Rule::gradient();
        } else if (!affine) {
          p.rule = Rule::pass();
        } else {
          const auto& w = static_cast<const AffineLayer&>(net.layer(i)).weights();
          bool pos = false, neg = false;
          for (const LrpGroup& g : p.rule.groups)
            for (const LrpTerm& t : g.terms) {
              pos |= t.weight == Part::kPositive;
              neg |= t.weight == Part::kNegative;
            }
          if (pos) p.positive = signed_copy(w, true);
          if (neg) p.negative = signed_copy(w, false);
        }
        break;
      case RuleKind::kPass:
        if (affine)
          fail_parameter("rule 'pass' cannot carry a signal through {} layer '{}'", kind_name(kind), net.name(i));
        if (kind == LayerKind::kAdd)
          fail_parameter("rule 'pass' on add node '{}' would copy the whole signal to every input; give it an LRP "
                         "rule (the proportional split) or the gradient", net.name(i));
        if (routing) p.rule = Rule::gradient();
        break;
      case RuleKind::kGuided:
      case RuleKind::kDeconv:
        if (kind != LayerKind::kReLU) p.rule = Rule::gradient();
        break;
      case RuleKind::kRescale:
        if (kind == LayerKind::kReLU || kind == LayerKind::kSoftmax || kind == LayerKind::kMaxPool2d ||
            kind == LayerKind::kMultiply)
          prepared.needs_reference = true;
        break;
      case RuleKind::kGradient:
        break;
    }
    prepared.layers.push_back(std::move(p));
  }
  return prepared;
}

}  // namespace lab
