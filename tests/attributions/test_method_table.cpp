// Generic checks over the method table: registry entries, parameter errors, and for the gradient
// and propagation methods the same maps for any batch size, chunk size and thread count.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "attributions/common.h"
#include "attributions/method.h"
#include "gradient_fixtures.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "networks/multi_color_sum.h"

using attributions::Batch;
using attributions::Context;
using attributions::make_method;
using attributions::Result;
using fixtures::params;

namespace {

// The methods of attributions/ part 1, with settings that keep this test fast.
const std::vector<std::pair<std::string, std::vector<std::string>>> kGradientMethods = {
    {"saliency", {}},
    {"input-x-gradient", {}},
    {"integrated-gradients", {"baseline=background"}},
    {"smoothgrad", {"samples=4", "noise=0.01", "base=input-x-gradient"}},
    {"guided-backprop", {}},
    {"deconvnet", {}},
    {"lrp", {}},
    {"lrp", {"composite=lrp-alpha-beta", "alpha=2", "beta=1"}},
    {"deeplift", {"baseline=background"}},
    {"deepshap", {"baselines=data:2"}},
    {"gradcam", {}},
    {"gradcam++", {}},
    {"random", {}},
    {"constant", {}},
};

Result run(const std::string& method, const std::vector<std::string>& p, const Context& context, const Batch& batch) {
  lab::Options options = params(p);
  return make_method(method, options)->attribute(context, batch);
}

}  // namespace

TEST_CASE("every registered method: unique name, listed parameters, defaults that make the method") {
  std::set<std::string> names;
  for (const auto& info : attributions::registry()) {
    CAPTURE(info.name);
    CHECK(names.insert(info.name).second);
    CHECK(!info.summary.empty());
    lab::Options none("-p");
    const auto method = make_method(info.name, none);
    CHECK(method->name() == info.name);
    for (const auto& param : info.params) CHECK(!param.info.help.empty());
  }
  for (const auto& [name, settings] : kGradientMethods) CHECK(names.count(name) == 1);
  // For these methods params() lists exactly the parameters `attrlab methods` shows, and the
  // listed defaults given back as -p settings make the same method.
  for (const auto& info : attributions::registry()) {
    if (std::none_of(kGradientMethods.begin(), kGradientMethods.end(), [&](const auto& m) { return m.first == info.name; }))
      continue;
    CAPTURE(info.name);
    lab::Options none("-p");
    const nlohmann::json p = make_method(info.name, none)->params();
    std::vector<std::string> items;
    for (const auto& param : info.params) {
      CHECK(p.contains(param.name));
      items.push_back(param.name + "=" + param.default_text());
    }
    CHECK(p.size() == info.params.size() + (info.name == "smoothgrad" ? 1 : 0));  // + base_params
    lab::Options defaults = params(items);
    CHECK(make_method(info.name, defaults)->params() == p);
  }
}

TEST_CASE("unknown methods and bad parameters are refused with one-line messages") {
  auto refuse = [](const std::string& method, const std::vector<std::string>& p, const std::string& message) {
    CAPTURE(method);
    lab::Options o = params(p);
    CHECK_THROWS_WITH_AS(make_method(method, o), doctest::Contains(message.c_str()), lab::Error);
  };
  refuse("gradient-x", {}, "unknown method 'gradient-x'; known: saliency, input-x-gradient");
  refuse("saliency", {"steps=3"}, "unknown option -p steps=3; known: output, abs");
  refuse("saliency", {"abs=maybe"}, "-p abs=maybe: expected on or off");
  refuse("integrated-gradients", {"steps=0"}, "-p steps=0: must be an integer in [1, 100000]");
  refuse("integrated-gradients", {"steps=1", "quadrature=trapezoid"}, "-p steps=1: must be an integer in 2..100000 for trapezoid");
  refuse("integrated-gradients", {"quadrature=simpson"}, "-p quadrature=simpson: must be one of riemann-left");
  refuse("integrated-gradients", {"baseline=grey"}, "-p baseline=grey: must be zero, background");
  refuse("integrated-gradients", {"output=softmax"}, "-p output=softmax: must be one of probability|logit");
  refuse("lrp", {"composite=lrp-gamma"}, "-p composite=lrp-gamma: expected one of lrp-epsilon");
  refuse("lrp", {"epsilon=0"}, "-p epsilon must be > 0, got 0");
  refuse("lrp", {"composite=lrp-alpha-beta", "alpha=2", "beta=0.5"}, "alpha");
  refuse("smoothgrad", {"samples=0"}, "-p samples must be an integer in 1..100000");
  refuse("smoothgrad", {"noise=-0.1"}, "-p noise must be ≥ 0");
  refuse("smoothgrad", {"base=nothing"}, "unknown method 'nothing'");
  refuse("smoothgrad", {"base=smoothgrad"}, "SmoothGrad cannot wrap itself");
  refuse("smoothgrad", {"base=saliency", "steps=4"}, "unknown option -p steps=4");
  refuse("deepshap", {"baselines=data:0"}, "-p baselines=data:0: expected data:K with an integer K ≥ 1");
  refuse("deepshap", {"baselines=data:x"}, "-p baselines=data:x: expected data:K");
  refuse("constant", {"value=nan"}, "-p value=nan: expected a finite number");
  refuse("random", {"value=1"}, "unknown option -p value=1");

  // Errors that depend on the data.
  const lab::Network net = fixtures::linear_model(3, 4, 2);
  Context context{.net = &net};
  Batch batch;
  batch.x = fixtures::uniform_inputs({2, 3, 4, 4}, 1);
  batch.target = {0, 2};
  CHECK_THROWS_WITH_AS(run("saliency", {}, context, batch), doctest::Contains("target 2 is not an output unit"), lab::Error);
  batch.target = {0};
  CHECK_THROWS_WITH_AS(run("saliency", {}, context, batch), doctest::Contains("1 targets for 2 inputs"), lab::Error);
  batch.target = {0, 1};
  CHECK_THROWS_WITH_AS(run("random", {}, context, batch), doctest::Contains("needs one seed per sample"), lab::Error);
  CHECK_THROWS_WITH_AS(run("integrated-gradients", {"baseline=1,2"}, context, batch),
                       doctest::Contains("has 2 values, the input has 3 channels"), lab::Error);
  batch.seeds = {1, 2};
  CHECK_THROWS_WITH_AS(run("deepshap", {"baselines=data:3"}, context, batch),
                       doctest::Contains("needs reference inputs of shape"), lab::Error);
  context.reference_inputs = fixtures::uniform_inputs({2, 3, 4, 4}, 2);
  CHECK_THROWS_WITH_AS(run("deepshap", {"baselines=data:3"}, context, batch),
                       doctest::Contains("only 2 reference inputs are available"), lab::Error);
  batch.x = fixtures::uniform_inputs({2, 3, 5, 5}, 1);
  CHECK_THROWS_WITH_AS(run("saliency", {}, context, batch), doctest::Contains("do not fit the network's input"), lab::Error);
}

TEST_CASE("same maps for batch size 1 and 32, any chunk size, and 1 or 2 threads") {
  networks::MultiColorSumParams mp;
  mp.size = 8;
  const lab::Network net = networks::build_multi_color_sum(mp);
  Context context{.net = &net, .background = {20, 20, 20}, .layers = {{"gradcam", "accumulator.layers.5"}}};
  context.reference_inputs = fixtures::colour_images(3, 8, 4, 40);
  Batch batch;
  batch.x = fixtures::colour_images(32, 8, 4, 41);
  for (int64_t s = 0; s < 32; ++s) {
    batch.target.push_back(s % 4);
    batch.seeds.push_back(1000 + static_cast<uint64_t>(s));
  }
  const int threads = lab::Runtime::get().threads();
  for (const auto& [name, settings] : kGradientMethods) {
    CAPTURE(name);
    context.chunk = 32;
    lab::Runtime::get().set_threads(2);
    const Result whole = run(name, settings, context, batch);
    REQUIRE(whole.attr.shape() == batch.x.shape());
    CHECK(whole.attr.all_finite());
    // One sample per call, small chunks: every sample's map is the same, bit for bit.
    context.chunk = 5;
    for (int64_t s = 0; s < 32; s += 7) {
      Batch one;
      one.x = batch.x.slice(s, s + 1);
      one.target = {batch.target[static_cast<size_t>(s)]};
      one.seeds = {batch.seeds[static_cast<size_t>(s)]};
      const Result single = run(name, settings, context, one);
      for (int64_t j = 0; j < single.attr.numel(); ++j) REQUIRE(single.attr[j] == whole.attr.sample(s)[j]);
      if (!whole.convergence_delta.empty())
        CHECK(single.convergence_delta[0] == doctest::Approx(whole.convergence_delta[static_cast<size_t>(s)]).epsilon(1e-9));
    }
    lab::Runtime::get().set_threads(1);
    context.chunk = 32;
    const Result one_thread = run(name, settings, context, batch);
    CHECK(one_thread.attr.values() == whole.attr.values());
  }
  lab::Runtime::get().set_threads(threads);
}
