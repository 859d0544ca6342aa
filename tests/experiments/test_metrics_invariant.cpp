// The invariant metric (experiments/metrics/invariant.h): hand-computed sums on a linear network
// with and without a bias, the quadrature term of IG at a known kink, DeepSHAP's references
// re-drawn from the sample's seed, and the outcome every method must have on every trap of the
// zoo (datasets/traps.h), worked out from each trap's designed function.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attributions/deeplift.h"
#include "attributions/method.h"
#include "datasets/environment.h"
#include "experiments/metrics/invariant.h"
#include "lab/core/error.h"
#include "lab/nn/layers.h"

namespace {

using namespace experiments;

/// 1×2×2 input → flatten → linear (weights 1, 2, 3, 4 and `bias`) → (optionally) ReLU: one output.
lab::Network linear_net(float bias, bool relu, std::vector<float> weights = {1, 2, 3, 4}) {
  lab::Network net({1, 2, 2});
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("linear", std::make_shared<lab::Linear>(lab::Tensor({1, 4}, weights), lab::Tensor({1}, {bias})));
  if (relu) net.add("relu", std::make_shared<lab::ReLU>());
  return net;
}

/// Batch of the given 2×2 inputs with maps whose pixel sums are `sums` (the sum put on pixel 0).
Batch batch_of(const std::vector<std::vector<float>>& xs, const std::vector<double>& sums) {
  Batch b;
  const auto n = static_cast<int64_t>(xs.size());
  b.x = lab::Tensor({n, 1, 2, 2});
  b.attr = lab::Tensor({n, 2, 2}, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    std::copy(xs[static_cast<size_t>(i)].begin(), xs[static_cast<size_t>(i)].end(), b.x.sample(i));
    b.attr.sample(i)[0] = static_cast<float>(sums[static_cast<size_t>(i)]);
    b.ids.push_back("s" + std::to_string(i));
    b.target.push_back(0);
    b.seeds.push_back(static_cast<uint64_t>(i));
  }
  return b;
}

std::map<std::string, std::vector<double>> rows_of(const MetricOutput& out) {
  std::map<std::string, std::vector<double>> m;
  for (const MetricRow& r : out.rows)
    if (r.sample != kAllSamples) m[r.variant].push_back(r.value);
  return m;
}

MetricOutput score(const Context& context, const Batch& batch, const std::vector<std::string>& p = {}) {
  lab::Options options = lab::Options::parse(p, "-p");
  return make_metric("invariant", options, MetricSetup{})->evaluate(context, batch);
}

}  // namespace

TEST_CASE("invariant: conservation on a linear network is exact without a bias, off by b/f with one") {
  for (const float bias : {0.0f, 1.0f}) {
    CAPTURE(bias);
    const lab::Network net = linear_net(bias, false);
    Context context;
    context.net = &net;
    context.background = {0.0f};
    // x = (1, 1, 1, 1): w·x = 10; map = x ⊙ w sums to 10.
    const auto r = rows_of(score(context, batch_of({{1, 1, 1, 1}}, {10.0}), {"promise=conservation", "output=logit"}));
    const double f = 10.0 + bias;
    CHECK(r.at("violation")[0] == doctest::Approx(bias / f).epsilon(1e-6));
    CHECK(r.at("allowed")[0] == doctest::Approx(1e-5));
    CHECK(r.at("pass")[0] == (bias == 0.0f ? 1.0 : 0.0));
    // Completeness against a baseline cancels the bias: Δ = w·(x − x').
    const auto c = rows_of(score(context, batch_of({{1, 1, 1, 1}, {1, 0, 0, 1}}, {10.0 - 5.0, 5.0 - 0.5 * 10.0 + 0.3}),
                                 {"promise=completeness", "baseline=0.5"}));
    CHECK(c.at("violation")[0] == doctest::Approx(0.0).epsilon(1e-9));
    CHECK(c.at("pass")[0] == 1.0);
    // Second image: f(x) = 5 + b, f(x') = 5 + b, Δ = 0, the map sums to 0.3: violation 0.3 / (5 + b).
    CHECK(c.at("violation")[1] == doctest::Approx(0.3 / (5.0 + bias)).epsilon(1e-6));
    CHECK(c.at("pass")[1] == 0.0);
  }
}

TEST_CASE("invariant: IG's quadrature term is the largest weight times the jump of the path integrand") {
  // f(x) = ReLU(Σ x − 2) on x = 1: along the path from 0, z(α) = 4α − 2, g(α) = 4 for α > 1/2 and
  // 0 below (ReLU'(0) = 0). Left Riemann with 4 steps: nodes 0, 1/4, 1/2, 3/4, so IG sums to
  // (1/4)·4 = 1 while Δ = f(x) − f(0) = 2: a gap of 1 = w_max · V = (1/4) · 4.
  const lab::Network net = linear_net(-2.0f, true, {1, 1, 1, 1});
  Context context;
  context.net = &net;
  context.background = {0.0f};
  context.method.name = "integrated-gradients";
  context.method.params = {{"steps", 4}, {"quadrature", "riemann-left"}, {"baseline", "zero"}, {"output", "probability"}};
  const auto r = rows_of(score(context, batch_of({{1, 1, 1, 1}, {1, 1, 1, 1}}, {1.0, 0.9})));
  // s = max(|f(x)|, |f(0)|) = 2; allowed = 1e-5 + (1/4 · 4) / 2.
  CHECK(r.at("allowed")[0] == doctest::Approx(0.5 + 1e-5));
  CHECK(r.at("violation")[0] == doctest::Approx(0.5));
  CHECK(r.at("pass")[0] == 1.0);  // the Riemann sum's own error: within the bound
  CHECK(r.at("violation")[1] == doctest::Approx(0.55));
  CHECK(r.at("pass")[1] == 0.0);  // 0.1 more than the rule can explain
  CHECK(Invariant::quadrature_weight("riemann-left", 4) == doctest::Approx(0.25));
  CHECK(Invariant::quadrature_weight("exact", 50) == 0.0);
  // Gauss–Legendre's largest weight, below π/(2n) for n = 50.
  CHECK(Invariant::quadrature_weight("gauss-legendre", 50) < 3.1416 / 100);
  // With the exact rule there is no quadrature term.
  context.method.params["quadrature"] = "exact";
  const auto e = rows_of(score(context, batch_of({{1, 1, 1, 1}}, {1.0})));
  CHECK(e.at("allowed")[0] == doctest::Approx(1e-5));
  CHECK(e.at("pass")[0] == 0.0);
}

TEST_CASE("invariant: DeepSHAP's references are the ones its seed drew; no promise gives no rows") {
  const lab::Network net = linear_net(0.5f, false);
  attributions::Context method_context;
  method_context.net = &net;
  method_context.background = {0.0f};
  method_context.reference_inputs = lab::Tensor({3, 1, 2, 2}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1});  // w·b = 1, 2, 7
  Context context;
  context.net = &net;
  context.background = {0.0f};
  context.method.name = "deepshap";
  context.method.params = {{"baselines", "data:2"}, {"output", "probability"}};
  context.method.context = &method_context;
  context.method.seed = [](const std::string& id) { return id == "s0" ? uint64_t{11} : uint64_t{12}; };
  std::vector<double> sums;
  for (const uint64_t seed : {uint64_t{11}, uint64_t{12}}) {
    const std::vector<int64_t> pick = attributions::DeepShap::draw_baselines(seed, 3, 2);
    REQUIRE(pick.size() == 2);
    const double wb[3] = {1, 2, 7};
    sums.push_back(10.0 - 0.5 * (wb[pick[0]] + wb[pick[1]]));  // w·x − mean w·b (the bias cancels)
  }
  sums[1] += 0.01;
  const auto r = rows_of(score(context, batch_of({{1, 1, 1, 1}, {1, 1, 1, 1}}, sums)));
  CHECK(r.at("pass")[0] == 1.0);
  CHECK(r.at("pass")[1] == 0.0);
  CHECK(r.at("violation")[1] == doctest::Approx(0.01 / 10.5).epsilon(1e-4));

  context.method.name = "saliency";
  CHECK(score(context, batch_of({{1, 1, 1, 1}}, {3.0})).rows.empty());
  context.method = {};
  CHECK_THROWS_AS(score(context, batch_of({{1, 1, 1, 1}}, {3.0})), lab::Error);  // auto, method unknown
  CHECK_THROWS_AS(score(context, batch_of({{1, 1, 1, 1}}, {3.0}), {"tolerance=-1"}), lab::Error);
  CHECK(Invariant::promise_of("lrp") == "conservation");
  CHECK(Invariant::promise_of("deeplift") == "summation-to-delta");
  CHECK(Invariant::promise_of("integrated-gradients") == "completeness");
  CHECK(Invariant::promise_of("occlusion") == "none");
}

namespace {

/// Pass fraction of the invariant of `method` (with `-p` params) on 8 images of `trap`, and the
/// largest violation.
std::pair<double, double> trap_outcome(const std::string& trap, const std::string& method,
                                       const std::vector<std::string>& params) {
  lab::Options o = lab::Options::parse({"size=16"}, "-o");
  const std::unique_ptr<datasets::Environment> env = datasets::make_environment(trap, o);
  const lab::Network net = env->build_network();
  const int64_t n = 8;
  std::vector<lab::Tensor> xs;
  Batch batch;
  attributions::Batch abatch;
  for (int64_t i = 0; i < n; ++i) {
    const datasets::Sample s = env->generate(9, i);
    xs.push_back(env->to_input(s.image).reshaped({1, 1, 16, 16}));
    batch.ids.push_back(s.id);
    batch.target.push_back(0);
    batch.seeds.push_back(static_cast<uint64_t>(i));
  }
  batch.x = lab::Tensor::concat(xs);
  abatch.x = batch.x;
  abatch.target = batch.target;
  abatch.seeds = {101, 102, 103, 104, 105, 106, 107, 108};
  attributions::Context actx;
  actx.net = &net;
  actx.background = env->background();
  actx.layers = env->default_layers();
  actx.reference_inputs = batch.x;
  lab::Options p = lab::Options::parse(params, "-p");
  const std::unique_ptr<attributions::Method> m = attributions::make_method(method, p);
  const lab::Tensor attr = m->attribute(actx, abatch).attr;
  batch.attr = attr;
  Context context;
  context.net = &net;
  context.background = env->background();
  context.method.name = m->name();
  context.method.params = m->params();
  context.method.context = &actx;
  context.method.seed = [&batch, &abatch](const std::string& id) {
    for (size_t i = 0; i < batch.ids.size(); ++i)
      if (batch.ids[i] == id) return abatch.seeds[i];
    return uint64_t{0};
  };
  const auto r = rows_of(score(context, batch));
  if (r.empty()) return {-1.0, 0.0};
  double pass = 0.0, worst = 0.0;
  for (double v : r.at("pass")) pass += v;
  for (double v : r.at("violation")) worst = std::max(worst, v);
  return {pass / static_cast<double>(n), worst};
}

}  // namespace

TEST_CASE("invariant on the trap zoo: each method keeps or breaks its promise as the trap's design says") {
  const std::vector<std::string> all = {"residual", "reused-relu", "max-pool", "batch-norm", "saturation",
                                        "interaction", "position"};
  // DeepLIFT and DeepSHAP (rescale through the shared ReLU per application, max-pool by its exact
  // average Jacobian) and IG (the path integrand jumps once, at α = 1/2, where no 50-point
  // Gauss–Legendre node lies; the 15-step left sum is within its bound) keep their promise everywhere.
  for (const std::string& trap : all) {
    CAPTURE(trap);
    auto dl = trap_outcome(trap, "deeplift", {});
    CHECK(dl.first == 1.0);
    CHECK(dl.second <= 1e-5);
    CHECK(trap_outcome(trap, "deepshap", {"baselines=data:3"}).first == 1.0);
    const auto ig = trap_outcome(trap, "integrated-gradients", {});
    CHECK(ig.first == 1.0);
    CHECK(ig.second <= 1e-5);
    CHECK(trap_outcome(trap, "integrated-gradients", {"quadrature=riemann-left", "steps=15"}).first == 1.0);
    CHECK(trap_outcome(trap, "saliency", {}).first == -1.0);  // no promise: n/a
  }
  // Bias-free designs (residual, max-pool, position) are positively homogeneous: LRP-ε conserves
  // and Input×Gradient is complete. Every other trap has a bias of −1 (reused-relu's 2a − 1,
  // batch-norm's 2c − 1, saturation's 2x − 1, interaction's x + x' − 1): LRP-ε's bias absorbs (here:
  // injects) relevance and Input×Gradient misses the bias, each by exactly f(x) (violation 1).
  for (const char* trap : {"residual", "max-pool", "position"}) {
    CAPTURE(trap);
    const auto lrp = trap_outcome(trap, "lrp", {});
    CHECK(lrp.first == 1.0);
    CHECK(lrp.second <= 1e-5);
    CHECK(trap_outcome(trap, "input-x-gradient", {}).first == 1.0);
    CHECK(trap_outcome(trap, "lrp", {"composite=lrp-zplus"}).first == 1.0);
  }
  for (const char* trap : {"reused-relu", "batch-norm", "saturation", "interaction"}) {
    CAPTURE(trap);
    const auto lrp = trap_outcome(trap, "lrp", {});
    CHECK(lrp.first < 1.0);
    CHECK(lrp.second == doctest::Approx(1.0).epsilon(1e-4));
    const auto ixg = trap_outcome(trap, "input-x-gradient", {});
    CHECK(ixg.first < 1.0);
    CHECK(ixg.second == doctest::Approx(1.0).epsilon(1e-4));
  }
  // LRP-z⁺ leaves the biases of affine layers out, so it conserves on those traps too; but the
  // LRP composites treat batch-norm with the ε rule and its bias (lab/nn/rules.h), so on the
  // uncanonized batch-norm trap 2c − 1 doubles the relevance (violation 1).
  for (const char* trap : {"reused-relu", "saturation", "interaction"}) {
    CAPTURE(trap);
    const auto zplus = trap_outcome(trap, "lrp", {"composite=lrp-zplus"});
    CHECK(zplus.first == 1.0);
    CHECK(zplus.second <= 1e-5);
  }
  const auto bn = trap_outcome("batch-norm", "lrp", {"composite=lrp-zplus"});
  CHECK(bn.first < 1.0);
  CHECK(bn.second == doctest::Approx(1.0).epsilon(1e-4));
}
