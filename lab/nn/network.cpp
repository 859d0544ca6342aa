#include "lab/nn/network.h"

#include <algorithm>
#include <cmath>

#include "lab/core/error.h"
#include "lab/core/quadrature.h"

namespace lab {

namespace {

Tensor part_of(const Tensor& x, Part part, bool& nonzero) {
  if (part == Part::kAll) {
    nonzero = true;
    return x;
  }
  Tensor out = x;
  nonzero = false;
  for (float& v : out.values()) {
    v = part == Part::kPositive ? std::max(v, 0.0f) : std::min(v, 0.0f);
    nonzero |= v != 0.0f;
  }
  return out;
}

const Weights& weights_of(const AffineLayer& layer, const PreparedRule& p, Part part) {
  switch (part) {
    case Part::kAll: return layer.weights();
    case Part::kPositive: return p.positive;
    case Part::kNegative: return p.negative;
  }
  return layer.weights();
}

// LRP for an affine layer (rules.h): R_in = Σ_g c_g Σ_t x_t ⊙ W_tᵀ (R / stab(z_g)).
Tensor lrp(const AffineLayer& layer, const PreparedRule& p, const Tensor& x, const Tensor& y, const Tensor& relevance) {
  Tensor out(x.shape(), 0.0f);
  const double eps = p.rule.epsilon;
  for (const LrpGroup& group : p.rule.groups) {
    std::vector<Tensor> parts;
    std::vector<const Weights*> weights;
    for (const LrpTerm& term : group.terms) {
      bool nonzero = false;
      Tensor xt = part_of(x, term.input, nonzero);
      if (!nonzero) continue;
      parts.push_back(std::move(xt));
      weights.push_back(&weights_of(layer, p, term.weight));
    }
    if (parts.empty()) continue;
    Tensor z;
    const bool plain = group.terms.size() == 1 && group.terms[0].input == Part::kAll && group.terms[0].weight == Part::kAll;
    if (plain && group.bias) {
      z = y;  // the recorded output already is W x + b
    } else {
      z = layer.apply(*weights[0], parts[0], group.bias);
      for (size_t t = 1; t < parts.size(); ++t) {
        const Tensor zt = layer.apply(*weights[t], parts[t], false);
        for (int64_t i = 0; i < z.numel(); ++i) z[i] += zt[i];
      }
    }
    Tensor s(z.shape());
    for (int64_t i = 0; i < z.numel(); ++i) {
      const double zi = z[i];
      const double d = zi + eps * (zi >= 0 ? 1.0 : -1.0);
      s[i] = d == 0.0 ? 0.0f : static_cast<float>(relevance[i] / d);
    }
    for (size_t t = 0; t < parts.size(); ++t) {
      const Tensor c = layer.apply_transpose(*weights[t], s, x.shape());
      const float coef = static_cast<float>(group.coefficient);
      for (int64_t i = 0; i < out.numel(); ++i) out[i] += coef * parts[t][i] * c[i];
    }
  }
  return out;
}

// Reference activation for sample n: the reference batch is either 1 (broadcast) or N.
const float* reference_row(const Tensor& ref, int64_t n) { return ref.sample(ref.batch() == 1 ? 0 : n); }

// DeepLIFT rescale on ReLU: multiplier Δy/Δx, and the plain derivative where Δx ≈ 0.
Tensor rescale_relu(const Tensor& x, const Tensor& y, const Tensor& xr, const Tensor& yr, const Tensor& s) {
  Tensor out(x.shape());
  const int64_t k = x.sample_numel();
  for (int64_t n = 0; n < x.batch(); ++n) {
    const float* xrn = reference_row(xr, n);
    const float* yrn = reference_row(yr, n);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = n * k + j;
      const double dx = static_cast<double>(x[i]) - xrn[j];
      const double dy = static_cast<double>(y[i]) - yrn[j];
      out[i] = std::abs(dx) > 1e-7 ? static_cast<float>(s[i] * (dy / dx)) : (x[i] > 0 ? s[i] : 0.0f);
    }
  }
  return out;
}

// DeepLIFT rescale on softmax: the multiplier is the Jacobianᵀ averaged over the segment from the
// reference logits to the logits (Gauss–Legendre), so Σ m ⊙ Δz = Δ(s·p) up to quadrature error.
Tensor rescale_softmax(const Tensor& x, const Tensor& xr, const Tensor& s, int nodes) {
  const Quadrature q = make_quadrature("gauss-legendre", nodes);
  const int64_t k = x.dim(1);
  Tensor out(x.shape(), 0.0f);
  std::vector<double> u(static_cast<size_t>(k)), p(static_cast<size_t>(k));
  for (int64_t n = 0; n < x.batch(); ++n) {
    const float* zr = reference_row(xr, n);
    for (size_t node = 0; node < q.nodes.size(); ++node) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < k; ++j) {
        u[j] = zr[j] + q.nodes[node] * (static_cast<double>(x[n * k + j]) - zr[j]);
        mx = std::max(mx, u[j]);
      }
      double sum = 0, ps = 0;
      for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(u[j] - mx);
      for (int64_t j = 0; j < k; ++j) ps += (p[j] /= sum) * s[n * k + j];
      for (int64_t j = 0; j < k; ++j) out[n * k + j] += static_cast<float>(q.weights[node] * p[j] * (s[n * k + j] - ps));
    }
  }
  return out;
}

}  // namespace

Network::Network(Shape input_shape) : input_shape_(std::move(input_shape)) {}

void Network::add(std::string name, std::shared_ptr<const Layer> layer) {
  LAB_CHECK(layer != nullptr, "null layer {}", name);
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    fail_parameter("layer name '{}' used twice", name);
  names_.push_back(std::move(name));
  layers_.push_back(std::move(layer));
  gradient_rules_.layers.push_back(PreparedRule{Rule::gradient(), {}, {}});
}

size_t Network::index_of(const std::string& name) const {
  auto it = std::find(names_.begin(), names_.end(), name);
  if (it != names_.end()) return static_cast<size_t>(it - names_.begin());
  std::string list;
  for (const auto& n : names_) list += (list.empty() ? "" : ", ") + n;
  fail_parameter("no layer named '{}'; layers: {}", name, list);
}

Shape Network::shape_after(size_t i, int64_t batch) const {
  Shape s{batch};
  s.insert(s.end(), input_shape_.begin(), input_shape_.end());
  for (size_t k = 0; k <= i && k < layers_.size(); ++k) s = layers_[k]->output_shape(s);
  return s;
}

Shape Network::output_shape(int64_t batch) const {
  LAB_CHECK(!layers_.empty(), "empty network");
  return shape_after(layers_.size() - 1, batch);
}

int64_t Network::parameter_count() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l->parameter_count();
  return n;
}

void Network::check_input(const Tensor& x, size_t first_layer) const {
  const Shape expected = first_layer == 0 ? [&] {
    Shape s{x.rank() ? x.dim(0) : 0};
    s.insert(s.end(), input_shape_.begin(), input_shape_.end());
    return s;
  }() : shape_after(first_layer - 1, x.rank() ? x.dim(0) : 0);
  if (x.shape() != expected || x.dim(0) < 1)
    fail("network input of shape {} does not match the expected {}", to_string(x.shape()), to_string(expected));
}

Tensor Network::forward_range(size_t begin, size_t end, const Tensor& input) const {
  LAB_CHECK(begin <= end && end <= layers_.size(), "layer range [{}, {})", begin, end);
  check_input(input, begin);
  if (begin == end) return input;
  Tensor a = layers_[begin]->forward(input);
  for (size_t i = begin + 1; i < end; ++i) a = layers_[i]->forward(a);
  return a;
}

Tensor Network::forward(const Tensor& x) const { return forward_range(0, layers_.size(), x); }

Tensor Network::forward_from(const std::string& layer, const Tensor& activation) const {
  const size_t i = index_of(layer);
  return forward_range(i + 1, layers_.size(), activation);
}

Trace Network::trace(const Tensor& x) const {
  check_input(x, 0);
  Trace t;
  t.acts.reserve(layers_.size() + 1);
  t.acts.push_back(x);
  for (const auto& l : layers_) t.acts.push_back(l->forward(t.acts.back()));
  return t;
}

Tensor Network::backward(const Trace& trace, const Tensor& seed, const PreparedRules& rules,
                         std::optional<size_t> to_layer, const Trace* reference) const {
  LAB_CHECK(trace.acts.size() == layers_.size() + 1, "trace of {} activations for {} layers", trace.acts.size(),
            layers_.size());
  LAB_CHECK(rules.layers.size() == layers_.size(), "rules for {} layers, network has {}", rules.layers.size(),
            layers_.size());
  if (seed.shape() != trace.output().shape())
    fail("backward seed of shape {} does not match the output {}", to_string(seed.shape()),
         to_string(trace.output().shape()));
  if (rules.needs_reference) {
    if (!reference) fail_parameter("the rescale rule (DeepLIFT) needs the trace of a reference input");
    LAB_CHECK(reference->acts.size() == trace.acts.size() &&
                  (reference->input().batch() == 1 || reference->input().batch() == trace.input().batch()),
              "reference trace does not match");
  }
  const size_t stop = to_layer ? *to_layer + 1 : 0;
  LAB_CHECK(stop <= layers_.size(), "to_layer {} out of range", stop);
  Tensor s = seed;
  for (size_t i = layers_.size(); i-- > stop;) {
    const Layer& layer = *layers_[i];
    const Tensor& x = trace.acts[i];
    const Tensor& y = trace.acts[i + 1];
    const PreparedRule& p = rules.layers[i];
    switch (p.rule.kind) {
      case RuleKind::kGradient:
        s = layer.backward_data(x, y, s);
        break;
      case RuleKind::kPass:
        s.reshape(x.shape());
        break;
      case RuleKind::kGuided: {
        for (float& v : s.values()) v = std::max(v, 0.0f);
        s = layer.backward_data(x, y, s);
        break;
      }
      case RuleKind::kDeconv:
        for (float& v : s.values()) v = std::max(v, 0.0f);
        break;
      case RuleKind::kLrp:
        s = lrp(static_cast<const AffineLayer&>(layer), p, x, y, s);
        break;
      case RuleKind::kRescale:
        if (layer.kind() == LayerKind::kReLU) {
          s = rescale_relu(x, y, reference->acts[i], reference->acts[i + 1], s);
        } else if (layer.kind() == LayerKind::kSoftmax) {
          s = rescale_softmax(x, reference->acts[i], s, p.rule.quadrature);
        } else {
          s = layer.backward_data(x, y, s);
        }
        break;
    }
  }
  return s;
}

Tensor Network::gradient(const Trace& trace, const Tensor& seed, std::optional<size_t> to_layer) const {
  return backward(trace, seed, gradient_rules_, to_layer);
}

}  // namespace lab
