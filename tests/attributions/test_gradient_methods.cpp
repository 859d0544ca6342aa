// Gradient and propagation methods on models with known answers: a linear model, hand-built
// networks, and the lab's designed networks (multi-color-sum, single-color-modulo).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <opencv2/imgproc.hpp>

#include "attributions/common.h"
#include "attributions/gradcam.h"
#include "attributions/method.h"
#include "datasets/environment.h"
#include "gradient_fixtures.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/io/npy.h"
#include "lab/nn/gradient_trace.h"
#include "networks/multi_color_sum.h"
#include "networks/single_color_modulo.h"

using attributions::Batch;
using attributions::Context;
using attributions::make_method;
using attributions::Result;
using fixtures::params;

namespace {

Result run(const std::string& method, const std::vector<std::string>& p, const Context& context, const Batch& batch) {
  lab::Options options = params(p);
  return make_method(method, options)->attribute(context, batch);
}

Batch batch_of(lab::Tensor x, std::vector<int64_t> target) {
  Batch b;
  b.x = std::move(x);
  b.target = std::move(target);
  for (size_t i = 0; i < b.target.size(); ++i) b.seeds.push_back(100 + i);
  return b;
}

// A generated data set of an environment at a small size: inputs, targets, pixel ground truth.
struct EnvData {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  Context context;
  Batch batch;
  std::vector<lab::Tensor> gt;
};

EnvData env_data(const std::string& name, int64_t count, uint64_t seed) {
  EnvData d;
  lab::Options o("-o");
  o.set("size", "32");
  d.env = datasets::make_environment(name, o);
  d.net = d.env->build_network();
  std::vector<lab::Tensor> xs;
  for (int64_t i = 0; i < count; ++i) {
    const datasets::Sample s = d.env->generate(seed, i);
    xs.push_back(d.env->to_input(s.image));
    d.batch.target.push_back(d.env->target_output(s.label));
    d.batch.seeds.push_back(static_cast<uint64_t>(i));
    d.gt.push_back(s.gt);
  }
  d.batch.x = lab::Tensor::stack(xs);
  d.context.net = &d.net;
  d.context.background = d.env->background();
  d.context.layers = d.env->default_layers();
  return d;
}

}  // namespace

TEST_CASE("on a linear model saliency = w and input-x-gradient = w ⊙ x exactly") {
  const lab::Network net = fixtures::linear_model(2, 3, 3);
  Context context{.net = &net};
  const lab::Tensor x = fixtures::uniform_inputs({4, 2, 3, 3}, 1, -2.0f, 2.0f);
  const Batch batch = batch_of(x, {0, 1, 2, 1});
  const auto& w = static_cast<const lab::Linear&>(net.layer(1)).weights().weight;
  for (const char* output : {"output=probability", "output=logit"}) {
    CAPTURE(output);
    const Result sal = run("saliency", {output}, context, batch);
    const Result ixg = run("input-x-gradient", {output}, context, batch);
    REQUIRE(sal.attr.shape() == x.shape());
    for (int64_t s = 0; s < 4; ++s)
      for (int64_t j = 0; j < 18; ++j) {
        const float wj = w[batch.target[static_cast<size_t>(s)] * 18 + j];
        CHECK(sal.attr[s * 18 + j] == wj);
        CHECK(ixg.attr[s * 18 + j] == wj * x[s * 18 + j]);
      }
    CHECK(sal.evaluations == 8);
  }
  const Result abs = run("saliency", {"abs=on"}, context, batch);
  for (int64_t j = 0; j < 18; ++j) CHECK(abs.attr[j] == std::abs(w[j]));
}

TEST_CASE("on a linear model IG and DeepLIFT equal (x − x') ⊙ w with zero gap") {
  const lab::Network net = fixtures::linear_model(3, 2, 2);
  Context context{.net = &net, .background = {20, 20, 20}};
  const lab::Tensor x = fixtures::uniform_inputs({3, 3, 2, 2}, 2, 0.0f, 255.0f);
  const Batch batch = batch_of(x, {1, 0, 1});
  const auto& w = static_cast<const lab::Linear&>(net.layer(1)).weights().weight;
  for (const std::string baseline : {"zero", "background", "1,2,3"}) {
    const std::vector<float> b = baseline == "zero" ? std::vector<float>{0, 0, 0}
                                 : baseline == "background" ? std::vector<float>{20, 20, 20}
                                                            : std::vector<float>{1, 2, 3};
    for (const std::string quadrature :
         {"riemann-left", "riemann-right", "riemann-middle", "trapezoid", "gauss-legendre", "exact"}) {
      CAPTURE(baseline);
      CAPTURE(quadrature);
      const Result ig = run("integrated-gradients", {"baseline=" + baseline, "quadrature=" + quadrature, "steps=7"},
                            context, batch);
      REQUIRE(ig.convergence_delta.size() == 3);
      for (int64_t s = 0; s < 3; ++s) {
        for (int64_t j = 0; j < 12; ++j) {
          const double expected = (x[s * 12 + j] - b[static_cast<size_t>(j / 4)]) * w[batch.target[static_cast<size_t>(s)] * 12 + j];
          CHECK(ig.attr[s * 12 + j] == doctest::Approx(expected).epsilon(1e-5).scale(1.0));
        }
        CHECK(std::abs(ig.convergence_delta[static_cast<size_t>(s)]) < 1e-3);
      }
      // A linear model is one linear region: exact spends 4 evaluations on it.
      CHECK(ig.evaluations == (quadrature == "exact" ? 3 * 4 : 3 * 7 * 2) + 3 + 1);
    }
    const Result dl = run("deeplift", {"baseline=" + baseline}, context, batch);
    for (int64_t s = 0; s < 3; ++s) {
      for (int64_t j = 0; j < 12; ++j) {
        const float expected = (x[s * 12 + j] - b[static_cast<size_t>(j / 4)]) * w[batch.target[static_cast<size_t>(s)] * 12 + j];
        CHECK(dl.attr[s * 12 + j] == expected);
      }
      CHECK(std::abs(dl.convergence_delta[static_cast<size_t>(s)]) < 1e-3);
    }
  }
}

TEST_CASE("IG completeness on multi-color-sum: 50 fixed nodes miss the detector ramps; the exact region sum is complete") {
  // The designed colour detector switches on within one unit of each colour component (ramps of
  // eq. 6), i.e. within the last 1/|V − b| (< 1/200) of the straight path from the baseline. At
  // the paper's 50 steps no rule resolves that, so the gap is a sizeable part of f(x) − f(x');
  // Gauss–Legendre nodes crowd towards the ends and close it as the steps grow.
  networks::MultiColorSumParams mp;
  mp.size = 8;
  const lab::Network net = networks::build_multi_color_sum(mp);
  Context context{.net = &net, .background = {20, 20, 20}, .batch = 256};
  const lab::Tensor x = fixtures::colour_images(1, 8, 4, 7);
  const int64_t label = fixtures::dominant_colour(x, 0, 4);
  const Batch batch = batch_of(x, {label});
  for (const std::string baseline : {"zero", "background"}) {
    CAPTURE(baseline);
    const lab::Tensor b = attributions::Baseline::parse(baseline).resolve(context, {3, 8, 8});
    const double df = net.forward(x)[label] - net.forward(b)[label];
    REQUIRE(std::abs(df) > 1e-4);
    std::vector<double> gap;
    for (int steps : {50, 200, 1000}) {
      const Result r = run("integrated-gradients", {"baseline=" + baseline, "steps=" + std::to_string(steps)}, context, batch);
      // The reported gap is Σ attr − (f(x) − f(x')).
      CHECK(r.convergence_delta[0] == doctest::Approx(fixtures::sample_sum(r.attr, 0) - df).epsilon(1e-6).scale(1e-3));
      gap.push_back(std::abs(r.convergence_delta[0]) / std::abs(df));
    }
    MESSAGE("multi-color-sum IG (" << baseline << ") gap / |f(x) − f(x')| at 50, 200, 1000 Gauss–Legendre steps: "
                                   << gap[0] << ", " << gap[1] << ", " << gap[2]);
    CHECK(gap[0] > 0.2);
    CHECK(gap[1] < gap[0]);
    CHECK(gap[2] < gap[0] / 10);
    CHECK(gap[2] < 0.05);
    // The left Riemann rule never samples the last 1/50 of the path, where every detector
    // switches on: its sum is 0 and it misses all of f(x) − f(x').
    const Result left = run("integrated-gradients", {"baseline=" + baseline, "quadrature=riemann-left"}, context, batch);
    CHECK(fixtures::sample_sum(left.attr, 0) == 0.0);
    // The region-by-region integral is complete to rounding (of the probability from black, of
    // the logit from the background).
    {
      const std::string output = baseline == "zero" ? "probability" : "logit";
      CAPTURE(output);
      const Result exact =
          run("integrated-gradients", {"baseline=" + baseline, "quadrature=exact", "output=" + output}, context, batch);
      const lab::Network explained = attributions::explained_network(net, output == "logit"
                                                                              ? attributions::Output::kLogit
                                                                              : attributions::Output::kProbability);
      const double d = explained.forward(x)[label] - explained.forward(b)[label];
      MESSAGE("multi-color-sum IG (" << baseline << ", " << output << ") exact: gap / |f(x) − f(x')| "
                                     << exact.convergence_delta[0] / d << " over " << exact.evaluations / 4
                                     << " regions");
      CHECK(std::abs(exact.convergence_delta[0]) < 1e-4 * std::abs(d));
    }
  }
}

TEST_CASE("IG with quadrature=exact is the path integral: the midpoint rule converges to it") {
  networks::MultiColorSumParams mp;
  mp.size = 4;
  const lab::Network net = networks::build_multi_color_sum(mp);
  Context context{.net = &net, .background = {20, 20, 20}, .batch = 4096};
  const lab::Tensor x = fixtures::colour_images(2, 4, 4, 11);
  const Batch batch = batch_of(x, {fixtures::dominant_colour(x, 0, 4), fixtures::dominant_colour(x, 1, 4)});
  const Result exact = run("integrated-gradients", {"quadrature=exact", "output=logit"}, context, batch);
  // 20,000 midpoints, some 80 in each ramp 1/255 of the path wide, come within a percent.
  const Result fine = run("integrated-gradients", {"quadrature=riemann-middle", "steps=20000", "output=logit"}, context, batch);
  double diff = 0, norm = 0;
  for (int64_t j = 0; j < exact.attr.numel(); ++j) {
    diff += std::abs(exact.attr[j] - fine.attr[j]);
    norm += std::abs(exact.attr[j]);
  }
  MESSAGE("exact vs 20,000 midpoints: relative L1 difference " << diff / norm);
  CHECK(norm > 0);
  CHECK(diff < 0.01 * norm);
  // The same bytes for one sample per network call and 2 threads.
  const int threads = lab::Runtime::get().threads();
  lab::Runtime::get().set_threads(2);
  Context small = context;
  small.batch = 1;
  const Result chunked = run("integrated-gradients", {"quadrature=exact", "output=logit"}, small, batch);
  lab::Runtime::get().set_threads(threads);
  CHECK(chunked.attr.values() == exact.attr.values());
  CHECK(chunked.evaluations == exact.evaluations);
  // A network with a layer it cannot walk through (a softmax before the last layer) is refused.
  lab::Network odd(net.input_shape());
  odd.add("flatten", std::make_shared<lab::Flatten>());
  odd.add("inner", std::make_shared<lab::Softmax>());
  odd.add("output", std::make_shared<lab::Softmax>());
  CHECK_THROWS_WITH_AS(run("integrated-gradients", {"quadrature=exact"}, Context{.net = &odd, .batch = 4}, batch),
                       doctest::Contains("quadrature=exact"), lab::Error);
}

TEST_CASE("IG on the modulo network: the sawtooth breaks 50-step completeness; the gap closes with more steps") {
  EnvData d = env_data("single-color-modulo", 3, 3);
  d.context.batch = 512;
  for (const std::string quadrature : {"riemann-middle", "trapezoid"}) {
    CAPTURE(quadrature);
    std::vector<double> worst;
    for (int steps : {50, 500, 5000}) {
      const Result r = run("integrated-gradients", {"quadrature=" + quadrature, "steps=" + std::to_string(steps)},
                           d.context, d.batch);
      double w = 0;
      for (double g : r.convergence_delta) w = std::max(w, std::abs(g));
      worst.push_back(w);
    }
    MESSAGE("modulo IG (" << quadrature << ") largest |gap| at 50, 500, 5000 steps: " << worst[0] << ", " << worst[1]
                          << ", " << worst[2]);
    // Outputs are 0..29; at 50 steps the gap is whole units, far from completeness.
    CHECK(worst[0] > 1.0);
    CHECK(worst[1] < worst[0]);
    CHECK(worst[2] < 0.1 * worst[0]);
  }
}

TEST_CASE("IG* (true background baseline) is clearly more precise than IG with (0,0,0) on multi-color-sum") {
  EnvData d = env_data("multi-color-sum", 6, 5);
  double ig = 0, ig_star = 0;
  for (const std::string baseline : {"zero", "background"}) {
    const Result r = run("integrated-gradients", {"baseline=" + baseline}, d.context, d.batch);
    const lab::Tensor maps = attributions::reduce_channels(r.attr);
    double mean = 0;
    for (int64_t s = 0; s < 6; ++s)
      mean += fixtures::overall_precision(maps.sample(s), d.gt[static_cast<size_t>(s)].data(), maps.sample_numel()) / 6;
    (baseline == "zero" ? ig : ig_star) = mean;
  }
  MESSAGE("overall precision: IG " << ig << ", IG* " << ig_star);
  CHECK(ig_star > ig + 0.2);
  CHECK(ig_star > 0.9);
}

TEST_CASE("DeepLIFT summation-to-delta is exact on the lab's networks") {
  for (const std::string env : {"multi-color-sum", "single-color-modulo"}) {
    EnvData d = env_data(env, 4, 11);
    for (const std::string output : {"probability", "logit"})
      for (const std::string baseline : {"zero", "background"}) {
        CAPTURE(env);
        CAPTURE(output);
        CAPTURE(baseline);
        const Result r = run("deeplift", {"baseline=" + baseline, "output=" + output}, d.context, d.batch);
        const lab::Network net = attributions::explained_network(
            d.net, output == "logit" ? attributions::Output::kLogit : attributions::Output::kProbability);
        const lab::Tensor fx = net.forward(d.batch.x);
        const lab::Tensor fb = net.forward(attributions::Baseline::parse(baseline).resolve(d.context, d.batch.x.sample_shape()));
        for (int64_t s = 0; s < 4; ++s) {
          const int64_t t = d.batch.target[static_cast<size_t>(s)];
          const double df = fx.sample(s)[t] - fb[t];
          REQUIRE(std::abs(df) > 1e-4);
          CHECK(std::abs(fixtures::sample_sum(r.attr, s) - df) <= 1e-4 * std::abs(df));
          CHECK(std::abs(r.convergence_delta[static_cast<size_t>(s)]) <= 1e-4 * std::abs(df));
        }
      }
  }
}

TEST_CASE("DeepSHAP equals the mean of DeepLIFT over its baselines") {
  EnvData d = env_data("multi-color-sum", 3, 13);
  // Reference inputs: three more generated images.
  std::vector<lab::Tensor> refs;
  for (int64_t i = 0; i < 3; ++i) refs.push_back(d.env->to_input(d.env->generate(14, i).image));
  d.context.reference_inputs = lab::Tensor::stack(refs);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "attrlab_test_deepshap";
  std::filesystem::create_directories(dir);
  std::vector<Result> per_baseline;
  for (int64_t k = 0; k < 3; ++k) {
    const std::string file = (dir / ("ref" + std::to_string(k) + ".npy")).string();
    lab::write_npy(file, refs[static_cast<size_t>(k)]);
    per_baseline.push_back(run("deeplift", {"baseline=" + file}, d.context, d.batch));
  }
  auto mean_of = [&](const std::vector<int64_t>& ks, int64_t s, int64_t j) {
    double m = 0;
    for (int64_t k : ks) m += per_baseline[static_cast<size_t>(k)].attr[s * d.batch.x.sample_numel() + j];
    return m / static_cast<double>(ks.size());
  };
  const int64_t m = d.batch.x.sample_numel();

  SUBCASE("all reference inputs") {
    const Result shap = run("deepshap", {"baselines=data"}, d.context, d.batch);
    for (int64_t s = 0; s < 3; ++s) {
      for (int64_t j = 0; j < m; ++j) REQUIRE(shap.attr[s * m + j] == doctest::Approx(mean_of({0, 1, 2}, s, j)).epsilon(1e-5).scale(1e-6));
      double delta = 0;
      for (int64_t k = 0; k < 3; ++k) delta += per_baseline[static_cast<size_t>(k)].convergence_delta[static_cast<size_t>(s)] / 3;
      CHECK(std::abs(shap.convergence_delta[static_cast<size_t>(s)] - delta) < 1e-6);
    }
  }
  SUBCASE("data:2 draws two distinct baselines per sample, reproducibly") {
    const Result shap = run("deepshap", {"baselines=data:2"}, d.context, d.batch);
    const Result again = run("deepshap", {"baselines=data:2"}, d.context, d.batch);
    CHECK(shap.attr.values() == again.attr.values());
    for (int64_t s = 0; s < 3; ++s) {
      int matches = 0;
      for (const std::vector<int64_t>& pair : {std::vector<int64_t>{0, 1}, {0, 2}, {1, 2}}) {
        bool all = true;
        for (int64_t j = 0; j < m && all; ++j)
          all = std::abs(shap.attr[s * m + j] - mean_of(pair, s, j)) <= 1e-5 * (1e-3 + std::abs(mean_of(pair, s, j)));
        matches += all;
      }
      CHECK(matches == 1);
    }
  }
  SUBCASE("the default zero baseline is DeepLIFT's") {
    const Result shap = run("deepshap", {}, d.context, d.batch);
    const Result lift = run("deeplift", {}, d.context, d.batch);
    CHECK(shap.attr.values() == lift.attr.values());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("LRP-ε conserves relevance on the lab's networks with zero biases") {
  // Conservation Σ_i R_i = f_t(x) holds layer by layer when no bias absorbs relevance. The number
  // checkers (colour detector, modulo unit) cannot work without their biases; the rest of the
  // designed networks are taken with zero biases: multi-color-sum from its accumulator to the
  // softmax, fed the detector's channel maps of images, and single-color-modulo's accumulator,
  // which outputs the white-pixel count.
  networks::MultiColorSumParams mp;
  mp.size = 32;
  networks::SingleColorModuloParams sp;
  sp.size = 32;
  const lab::Network colour = networks::build_multi_color_sum(mp);
  const size_t first = colour.index_of("accumulator.layers.0");
  const lab::Network modulo = networks::build_single_color_modulo(sp);
  const lab::Tensor detected = colour.trace(fixtures::colour_images(3, 32, 4, 3)).acts[first];
  const std::vector<std::tuple<std::string, lab::Network, lab::Tensor>> cases = {
      {"multi-color-sum from accumulator.layers.0",
       fixtures::zero_biases(fixtures::layer_range(colour, first, colour.size())), detected},
      {"single-color-modulo up to flatten",
       fixtures::zero_biases(fixtures::layer_range(modulo, 0, modulo.index_of("flatten") + 1)),
       fixtures::uniform_inputs({3, 1, 32, 32}, 4)}};
  for (const auto& [name, net, x] : cases) {
    CAPTURE(name);
    Context context{.net = &net};
    const lab::Tensor logits = attributions::explained_network(net, attributions::Output::kLogit).forward(x);
    std::vector<int64_t> target;
    for (int64_t s = 0; s < 3; ++s)
      target.push_back(std::max_element(logits.sample(s), logits.sample(s) + logits.sample_numel()) - logits.sample(s));
    const Batch batch = batch_of(x, target);
    const Result r = run("lrp", {"composite=lrp-epsilon", "epsilon=1e-9"}, context, batch);
    for (int64_t s = 0; s < 3; ++s) {
      const double f = logits.sample(s)[target[static_cast<size_t>(s)]];
      REQUIRE(f > 0.01);
      CHECK(fixtures::sample_sum(r.attr, s) == doctest::Approx(f).epsilon(1e-4));
    }
    if (attributions::ends_with_softmax(net)) {
      // At the probability output the relevance distributed is p_t.
      const lab::Tensor p = net.forward(x);
      const Result rp = run("lrp", {"composite=lrp-epsilon", "epsilon=1e-9", "output=probability"}, context, batch);
      for (int64_t s = 0; s < 3; ++s)
        CHECK(fixtures::sample_sum(rp.attr, s) == doctest::Approx(p.sample(s)[target[static_cast<size_t>(s)]]).epsilon(1e-4));
    }
  }
}

TEST_CASE("LRP composites on the designed multi-color-sum network put relevance on the winning colour only") {
  EnvData d = env_data("multi-color-sum", 3, 17);
  for (const std::string composite : {"lrp-epsilon", "lrp-zplus", "lrp-alpha-beta", "lrp-epsilon-plus"}) {
    CAPTURE(composite);
    const Result r = run("lrp", {"composite=" + composite}, d.context, d.batch);
    const lab::Tensor maps = attributions::reduce_channels(r.attr);
    for (int64_t s = 0; s < 3; ++s) {
      double on = 0, off = 0;
      const float* g = d.gt[static_cast<size_t>(s)].data();
      for (int64_t j = 0; j < maps.sample_numel(); ++j) (g[j] > 0 ? on : off) += std::abs(maps.sample(s)[j]);
      CHECK(on > 0);
      CHECK(off <= 1e-3 * on);
    }
  }
}

TEST_CASE("guided backprop and deconvnet on a hand-computed network") {
  // x = (1, 2) → W1 = [[1, 1], [1, −1]] → z = (3, −1) → ReLU → (3, 0) → w2 = (−2, 3) → f = −6.
  //   gradient: (−2, 0)·W1 = (−2, −2); guided: positive signal only → (0, 0);
  //   deconvnet: positive part (0, 3), no forward mask → (0, 3)·W1 = (3, −3).
  lab::Network net({1, 1, 2});
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("fc1", std::make_shared<lab::Linear>(lab::Tensor({2, 2}, {1, 1, 1, -1}), lab::Tensor({2}, 0.0f)));
  net.add("relu", std::make_shared<lab::ReLU>());
  net.add("fc2", std::make_shared<lab::Linear>(lab::Tensor({1, 2}, {-2, 3}), lab::Tensor({1}, 0.0f)));
  Context context{.net = &net};
  const Batch batch = batch_of(lab::Tensor({1, 1, 1, 2}, {1, 2}), {0});
  CHECK(run("saliency", {}, context, batch).attr.values() == std::vector<float>{-2, -2});
  CHECK(run("guided-backprop", {}, context, batch).attr.values() == std::vector<float>{0, 0});
  CHECK(run("deconvnet", {}, context, batch).attr.values() == std::vector<float>{3, -3});
}

TEST_CASE("GradCAM at a layer whose activations are known by design gives the designed map") {
  SUBCASE("the colour detector's output: the map is the winning colour's pixels, uniformly") {
    // detector.layers.9 holds C_c(pixel) ∈ {0, 1} at full resolution. At the logit, ∂f_t/∂C_k = 0
    // for every other colour and the redundant channels are 0 on in-distribution images, so
    // Σ_k α_k C_k = α_t C_t: a constant on exactly the pixels of colour t.
    EnvData d = env_data("multi-color-sum", 3, 19);
    for (const char* method : {"gradcam", "gradcam-plus-plus"}) {
      CAPTURE(method);
      const Result r = run(method, {"layer=detector.layers.9"}, d.context, d.batch);
      const lab::Tensor maps = attributions::reduce_channels(r.attr);
      for (int64_t s = 0; s < 3; ++s) {
        const float* g = d.gt[static_cast<size_t>(s)].data();
        const float* m = maps.sample(s);
        float on = -1;
        for (int64_t j = 0; j < maps.sample_numel(); ++j) {
          if (g[j] > 0) {
            if (on < 0) on = m[j];
            REQUIRE(m[j] == on);
          } else {
            REQUIRE(m[j] == 0.0f);
          }
        }
        CHECK(on > 0);
        // Each of the three channels holds a third of the map.
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t j = 0; j < maps.sample_numel(); ++j)
            REQUIRE(r.attr.sample(s)[c * maps.sample_numel() + j] == doctest::Approx(m[j] / 3).epsilon(1e-6));
      }
    }
  }
  SUBCASE("a coarse layer: block sums, weighted by a designed gradient, upsampled bilinearly") {
    // conv 2×2 stride 2 of ones → block sums S (4×4) → ReLU → Linear with weights v_j.
    // ∂f/∂S_j = v_j; GradCAM: α = mean v, map = α S; GradCAM++: α = Σ_j v_j / (2 + v_j ΣS) for v_j > 0.
    lab::Network net({1, 8, 8});
    net.add("blocks", std::make_shared<lab::Conv2d>(
                          lab::Conv2dParams{.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2},
                          lab::Tensor({1, 1, 2, 2}, 1.0f), lab::Tensor()));
    net.add("blocks.relu", std::make_shared<lab::ReLU>());
    net.add("flatten", std::make_shared<lab::Flatten>());
    lab::Tensor v({1, 16});
    for (int64_t j = 0; j < 16; ++j) v[j] = static_cast<float>(j % 5) / 4.0f;
    net.add("head", std::make_shared<lab::Linear>(v, lab::Tensor()));
    Context context{.net = &net, .layers = {{"gradcam", "blocks.relu"}}};
    const lab::Tensor x = fixtures::uniform_inputs({2, 1, 8, 8}, 5);
    const Batch batch = batch_of(x, {0, 0});
    const Result cam = run("gradcam", {}, context, batch);
    const Result pp = run("gradcam-plus-plus", {}, context, batch);
    for (int64_t s = 0; s < 2; ++s) {
      cv::Mat sums(4, 4, CV_32F);
      double total = 0;
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          float b = 0;
          for (int64_t a = 0; a < 2; ++a)
            for (int64_t c = 0; c < 2; ++c) b += x.at(s, 0, 2 * i + a, 2 * j + c);
          sums.at<float>(static_cast<int>(i), static_cast<int>(j)) = b;
          total += b;
        }
      double mean_v = 0, alpha_pp = 0;
      for (int64_t j = 0; j < 16; ++j) {
        mean_v += v[j] / 16.0;
        if (v[j] > 0) alpha_pp += v[j] / (2.0 + v[j] * total);
      }
      cv::Mat expected_cam, expected_pp;
      cv::resize(sums * mean_v, expected_cam, cv::Size(8, 8), 0, 0, cv::INTER_LINEAR);
      cv::resize(sums * alpha_pp, expected_pp, cv::Size(8, 8), 0, 0, cv::INTER_LINEAR);
      for (int64_t j = 0; j < 64; ++j) {
        CHECK(cam.attr.sample(s)[j] == doctest::Approx(expected_cam.at<float>(static_cast<int>(j))).epsilon(1e-5));
        CHECK(pp.attr.sample(s)[j] == doctest::Approx(expected_pp.at<float>(static_cast<int>(j))).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("the gradient's trace (lab::trace_for_gradient) gives the full trace's maps byte for byte") {
  // The plain-gradient methods, and GuidedBP and Deconvnet (rules that read only the ReLUs'
  // signs, lab::reads_only_signs), run on a trace without the colour detector's inner activations
  // (the ReLUs' sign bits instead); GradCAM at a layer inside the detector's run keeps that
  // layer. Each map against the one from the full trace (set_gradient_traces_lean(false)), at 1
  // and 2 threads.
  EnvData d = env_data("multi-color-sum", 3, 23);
  const std::vector<std::pair<std::string, std::vector<std::string>>> methods = {
      {"saliency", {}},
      {"input-x-gradient", {}},
      {"integrated-gradients", {"steps=8"}},
      {"gradcam", {"layer=detector.layers.3"}},
      {"extremal-perturbation", {"iterations=3"}},
      {"guided-backprop", {}},
      {"deconvnet", {}},
  };
  const int threads = lab::Runtime::get().threads();
  for (const int t : {1, 2}) {
    CAPTURE(t);
    lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
    for (const auto& [method, p] : methods) {
      CAPTURE(method);
      lab::set_gradient_traces_lean(false);
      const Result full = run(method, p, d.context, d.batch);
      lab::set_gradient_traces_lean(true);
      const Result lean = run(method, p, d.context, d.batch);
      REQUIRE(lean.attr.shape() == full.attr.shape());
      CHECK(std::memcmp(lean.attr.data(), full.attr.data(), sizeof(float) * full.attr.numel()) == 0);
    }
  }
  lab::Runtime::get().set_threads(threads);
  // The trace of the same images does leave activations out.
  const lab::Trace t = lab::trace_for_gradient(d.net, d.batch.x);
  CHECK(std::count_if(t.acts.begin(), t.acts.end(), [](const lab::Tensor& a) { return a.empty(); }) > 0);
}

TEST_CASE("GradCAM uses the environment's layer by default and refuses layers without feature maps") {
  EnvData d = env_data("multi-color-sum", 1, 21);
  const Result by_default = run("gradcam", {}, d.context, d.batch);
  const Result named = run("gradcam", {"layer=accumulator.layers.5"}, d.context, d.batch);
  CHECK(d.context.layers.at("gradcam") == "accumulator.layers.5");
  CHECK(by_default.attr.values() == named.attr.values());
  CHECK_THROWS_WITH_AS(run("gradcam", {"layer=mlp.layers.0"}, d.context, d.batch), doctest::Contains("expected N×K×h×w"),
                       lab::Error);
  CHECK_THROWS_WITH_AS(run("gradcam", {"layer=nowhere"}, d.context, d.batch), doctest::Contains("no layer named 'nowhere'"),
                       lab::Error);
  Context bare{.net = &d.net};
  CHECK_THROWS_WITH_AS(run("gradcam", {}, bare, d.batch), doctest::Contains("names no gradcam layer"), lab::Error);
}

TEST_CASE("SmoothGrad averages its base method over noisy copies") {
  const lab::Network linear = fixtures::linear_model(1, 4, 2);
  const lab::Tensor x = fixtures::uniform_inputs({2, 1, 4, 4}, 6);
  const Batch batch = batch_of(x, {1, 0});
  Context context{.net = &linear};
  SUBCASE("the gradient of a linear model does not depend on the noise") {
    const Result sg = run("smoothgrad", {"samples=5", "noise=0.3"}, context, batch);
    const Result sal = run("saliency", {}, context, batch);
    CHECK(sg.attr.values() == sal.attr.values());
    CHECK(sg.evaluations == 5 * sal.evaluations);
  }
  SUBCASE("noise = 0 gives the base method") {
    EnvData d = env_data("multi-color-sum", 2, 23);
    const Result sg = run("smoothgrad", {"samples=3", "noise=0", "base=input-x-gradient"}, d.context, d.batch);
    const Result base = run("input-x-gradient", {}, d.context, d.batch);
    for (int64_t i = 0; i < sg.attr.numel(); ++i) REQUIRE(sg.attr[i] == doctest::Approx(base.attr[i]).epsilon(1e-6).scale(1e-9));
  }
  SUBCASE("the k-th copy of sample n is explained with seed derive_seed(seed_n, k)") {
    const Result sg = run("smoothgrad", {"samples=4", "base=random"}, context, batch);
    for (int64_t s = 0; s < 2; ++s) {
      std::vector<double> mean(16, 0.0);
      for (uint64_t k = 0; k < 4; ++k) {
        Batch one = batch_of(x.slice(s, s + 1), {0});
        one.seeds = {lab::derive_seed(batch.seeds[static_cast<size_t>(s)], k)};
        const Result r = run("random", {}, context, one);
        for (int64_t j = 0; j < 16; ++j) mean[static_cast<size_t>(j)] += r.attr[j] / 4.0;
      }
      for (int64_t j = 0; j < 16; ++j) CHECK(sg.attr.sample(s)[j] == doctest::Approx(mean[static_cast<size_t>(j)]).epsilon(1e-6));
    }
  }
  SUBCASE("the base method's parameters pass through") {
    lab::Options o = params({"base=integrated-gradients", "steps=5", "samples=2", "baseline=background"});
    const auto m = make_method("smoothgrad", o);
    const nlohmann::json p = m->params();
    CHECK(p.at("base") == "integrated-gradients");
    CHECK(p.at("base-params").at("steps") == 5);
    CHECK(p.at("base-params").at("baseline") == "background");
  }
}

TEST_CASE("random is U(0,1) and reproducible by seed; constant is the constant") {
  const lab::Network net = fixtures::linear_model(3, 16, 2);
  Context context{.net = &net};
  Batch batch = batch_of(fixtures::uniform_inputs({3, 3, 16, 16}, 7), {0, 1, 0});
  const Result a = run("random", {}, context, batch);
  const Result b = run("random", {}, context, batch);
  CHECK(a.attr.values() == b.attr.values());
  CHECK(a.evaluations == 0);
  double mean = 0;
  for (float v : a.attr.values()) {
    REQUIRE(v >= 0.0f);
    REQUIRE(v < 1.0f);
    mean += v / static_cast<double>(a.attr.numel());
  }
  CHECK(mean == doctest::Approx(0.5).epsilon(0.03));
  // A sample's map depends on its own seed only: sample 1 alone with seed 101 gives the same map.
  Batch single = batch_of(batch.x.slice(1, 2), {1});
  single.seeds = {batch.seeds[1]};
  const Result alone = run("random", {}, context, single);
  for (int64_t j = 0; j < alone.attr.numel(); ++j) REQUIRE(alone.attr[j] == a.attr.sample(1)[j]);
  batch.seeds = {7, 8, 9};
  const Result c = run("random", {}, context, batch);
  CHECK(c.attr.values() != a.attr.values());

  const Result one = run("constant", {}, context, batch);
  for (float v : one.attr.values()) REQUIRE(v == 1.0f);
  const Result half = run("constant", {"value=0.5"}, context, batch);
  CHECK(half.attr.values() == std::vector<float>(static_cast<size_t>(half.attr.numel()), 0.5f));
}
