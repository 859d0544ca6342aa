// Propagation rules against dense-matrix references written here, LRP-ε conservation, DeepLIFT
// summation-to-delta, and Guided Backprop / Deconvnet on a hand-computed example.
#include <doctest/doctest.h>

#include <cmath>

#include "lab/core/error.h"
#include "random_nets.h"

using lab::Tensor;

namespace {

enum class Ref { kEpsilon, kZPlus, kAlphaBeta };

// Textbook LRP on one sample with dense matrices in double: relevance R_k of output k goes to
// input j in proportion to the contribution x_j·w_kj (ε), or to its positive/negative part (z⁺, αβ).
std::vector<double> dense_lrp(const lab::Network& net, const lab::Trace& trace, std::vector<double> r, Ref rule,
                              double eps, double alpha, double beta) {
  for (size_t i = net.size(); i-- > 0;) {
    const auto* affine = dynamic_cast<const lab::AffineLayer*>(&net.layer(i));
    if (!affine) continue;  // ReLU / Flatten pass relevance unchanged
    int64_t rows = 0, cols = 0;
    const std::vector<double> w = testnets::dense_matrix(*affine, affine->weights(), trace.acts[i].shape(), rows, cols);
    const Tensor& x = trace.acts[i];
    const Tensor& bias = affine->weights().bias;
    const int64_t per_channel = bias.empty() ? 1 : rows / bias.numel();
    std::vector<double> out(static_cast<size_t>(cols), 0.0);
    for (int64_t k = 0; k < rows; ++k) {
      double z = 0, zp = 0, zn = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const double c = w[k * cols + j] * x[j];
        z += c;
        zp += std::max(c, 0.0);
        zn += std::min(c, 0.0);
      }
      if (!bias.empty()) z += bias[k / per_channel];
      for (int64_t j = 0; j < cols; ++j) {
        const double c = w[k * cols + j] * x[j];
        if (rule == Ref::kEpsilon) {
          out[j] += c / (z + eps * (z >= 0 ? 1 : -1)) * r[k];
        } else {
          double v = zp > 0 ? alpha * std::max(c, 0.0) / (zp + 1e-9) * r[k] : 0.0;
          if (rule == Ref::kAlphaBeta && zn < 0) v -= beta * std::min(c, 0.0) / (zn - 1e-9) * r[k];
          out[j] += v;
        }
      }
    }
    r = std::move(out);
  }
  return r;
}

Tensor one_hot_times_output(const Tensor& out, int64_t target) {
  Tensor seed(out.shape(), 0.0f);
  for (int64_t n = 0; n < out.batch(); ++n) seed[n * out.dim(1) + target] = out[n * out.dim(1) + target];
  return seed;
}

}  // namespace

TEST_CASE("LRP rules match a dense-matrix reference") {
  struct Case { const char* name; lab::CompositeParams params; Ref ref; };
  const Case cases[] = {
      {"lrp-epsilon", {.epsilon = 0.25}, Ref::kEpsilon},
      {"lrp-zplus", {}, Ref::kZPlus},
      {"lrp-alpha-beta", {.alpha = 2.0, .beta = 1.0}, Ref::kAlphaBeta},
  };
  for (unsigned seed : {1u, 2u, 3u}) {
    const lab::Network net = testnets::random_convnet(seed);
    std::mt19937 rng(seed + 100);
    const Tensor x = testnets::random_tensor({1, 2, 8, 8}, rng);
    const lab::Trace trace = net.trace(x);
    for (const Case& c : cases) {
      CAPTURE(std::string(c.name));
      CAPTURE(seed);
      const lab::PreparedRules rules = lab::prepare(net, lab::make_composite(c.name, c.params));
      const Tensor r_out = one_hot_times_output(trace.output(), 1);
      const Tensor r_in = net.backward(trace, r_out, rules);
      const std::vector<double> ref = dense_lrp(net, trace, std::vector<double>(r_out.values().begin(), r_out.values().end()),
                                                c.ref, c.params.epsilon, c.params.alpha, c.params.beta);
      double scale = 0;
      for (double v : ref) scale = std::max(scale, std::abs(v));
      REQUIRE(scale > 0);
      for (int64_t j = 0; j < r_in.numel(); ++j) REQUIRE(std::abs(r_in[j] - ref[j]) <= 1e-4 * scale);
    }
  }
}

TEST_CASE("LRP-epsilon conserves relevance with zero biases and tiny epsilon") {
  for (unsigned seed : {4u, 5u, 6u, 7u}) {
    const lab::Network net = testnets::random_convnet(seed, /*bias=*/false);
    std::mt19937 rng(seed);
    const Tensor x = testnets::random_tensor({3, 2, 8, 8}, rng);
    const lab::Trace trace = net.trace(x);
    const auto rules = lab::prepare(net, lab::make_composite("lrp-epsilon", {.epsilon = 1e-9}));
    const Tensor r_in = net.backward(trace, one_hot_times_output(trace.output(), 0), rules);
    for (int64_t n = 0; n < 3; ++n) {
      double total = 0;
      for (int64_t j = 0; j < r_in.sample_numel(); ++j) total += r_in.sample(n)[j];
      const double f = trace.output()[n * 3 + 0];
      CAPTURE(seed);
      CHECK(std::abs(total - f) <= 1e-4 * std::max(std::abs(f), 1e-3));
    }
  }
}

TEST_CASE("DeepLIFT rescale sums to delta on random ReLU networks") {
  for (bool softmax : {false, true}) {
    for (unsigned seed : {11u, 12u, 13u, 14u}) {
      const lab::Network net = testnets::random_convnet(seed, /*bias=*/true, softmax);
      std::mt19937 rng(seed);
      const Tensor x = testnets::random_tensor({4, 2, 8, 8}, rng);
      const Tensor ref = testnets::random_tensor({1, 2, 8, 8}, rng, -0.5f, 0.5f);
      const lab::Trace trace = net.trace(x);
      const lab::Trace ref_trace = net.trace(ref);
      const auto rules = lab::prepare(net, lab::make_composite("deeplift-rescale"));
      REQUIRE(rules.needs_reference);
      Tensor seed_t(trace.output().shape(), 0.0f);
      for (int64_t n = 0; n < 4; ++n) seed_t[n * 3 + 2] = 1.0f;
      const Tensor m = net.backward(trace, seed_t, rules, std::nullopt, &ref_trace);
      for (int64_t n = 0; n < 4; ++n) {
        double sum = 0;
        for (int64_t j = 0; j < m.sample_numel(); ++j) sum += double(m.sample(n)[j]) * (x.sample(n)[j] - ref[j]);
        const double delta = double(trace.output()[n * 3 + 2]) - ref_trace.output()[2];
        CAPTURE(softmax);
        CAPTURE(seed);
        CHECK(std::abs(sum - delta) <= 1e-4 * std::max(std::abs(delta), 1e-2));
      }
      CHECK_THROWS_AS(net.backward(trace, seed_t, rules), lab::Error);  // no reference given
    }
  }
}

TEST_CASE("gradient, Guided Backprop and Deconvnet on a hand-computed two-layer network") {
  // x = (1, 2); h = ReLU(W1 x) with W1 = [[1,1],[1,-1],[-1,1]] → pre-activations (3, -1, 1);
  // y = W2 h with W2 = [[-1, 2, 3]]; seed dy = 1, so dL/dh = (-1, 2, 3).
  lab::Network net({2});
  net.add("fc1", std::make_shared<lab::Linear>(Tensor({3, 2}, {1, 1, 1, -1, -1, 1}), Tensor()));
  net.add("relu", std::make_shared<lab::ReLU>());
  net.add("fc2", std::make_shared<lab::Linear>(Tensor({1, 3}, {-1, 2, 3}), Tensor()));
  const lab::Trace trace = net.trace(Tensor({1, 2}, {1, 2}));
  CHECK(trace.output()[0] == 3.0f * -1 + 1.0f * 3);
  const Tensor seed({1, 1}, 1.0f);
  auto run = [&](const char* composite) { return net.backward(trace, seed, lab::prepare(net, lab::make_composite(composite))); };
  // Gradient: ReLU mask (1,0,1) → (-1, 0, 3); W1ᵀ → (-1 - 3, -1 + 3) = (-4, 2).
  CHECK(run("gradient").values() == std::vector<float>{-4, 2});
  // Guided: positive part (0, 2, 3), then mask → (0, 0, 3); W1ᵀ → (-3, 3).
  CHECK(run("guided-backprop").values() == std::vector<float>{-3, 3});
  // Deconvnet: positive part (0, 2, 3), no mask; W1ᵀ → (2 - 3, -2 + 3) = (-1, 1).
  CHECK(run("deconvnet").values() == std::vector<float>{-1, 1});
}

TEST_CASE("composites resolve by name, first affine layer and kind; bad settings are refused") {
  const lab::Network net = testnets::random_convnet(1);
  lab::Composite c = lab::make_composite("lrp-epsilon-plus");
  CHECK(c.resolve(net, 0).name == "zplus");
  CHECK(c.resolve(net, net.index_of("head.2")).name == "epsilon");
  CHECK(c.resolve(net, 1).name == "pass");
  c.first_affine = lab::Rule::epsilon_rule(0.5);
  c.by_name["features.2"] = lab::Rule::alpha_beta(2, 1);
  CHECK(c.resolve(net, 0).name == "epsilon");
  CHECK(c.resolve(net, 2).name == "alpha-beta");
  CHECK_THROWS_WITH_AS(lab::make_composite("lrp-nonsense"), doctest::Contains("unknown composite"), lab::Error);
  CHECK_THROWS_AS(lab::make_composite("lrp-alpha-beta", {.alpha = 2, .beta = 0.5}), lab::Error);
  CHECK_THROWS_AS(lab::make_composite("lrp-epsilon", {.epsilon = 0}), lab::Error);
}
