// Generic checks over the method registry, so that every registered method (also one added with
// attributions::add_method) gets them without being listed here: listed parameters, documented
// defaults, refusal of values outside the documented ranges and choices, shape, determinism and
// the same maps for any batch size, chunk size and thread count.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

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

Result run(const std::string& method, const std::vector<std::string>& p, const Context& context, const Batch& batch) {
  lab::Options options = params(p);
  return make_method(method, options)->attribute(context, batch);
}

/// The names of a params() record: its keys, and the keys of a nested record (SmoothGrad's
/// "base-params") in place of that key.
std::set<std::string> record_names(const nlohmann::json& record) {
  std::set<std::string> out;
  for (const auto& [key, value] : record.items()) {
    if (value.is_object()) {
      for (const auto& [inner, unused] : value.items()) out.insert(inner);
    } else {
      out.insert(key);
    }
  }
  return out;
}

/// Texts just outside a documented range: below a closed minimum, at an open one, and the same
/// at the maximum (integers step by 1, numbers by the next representable double).
std::vector<std::string> outside(const lab::ParamDoc& doc) {
  const lab::Range& r = doc.info.range;
  const bool integer = doc.type == lab::ParamType::kInt || doc.type == lab::ParamType::kIntList;
  auto text = [&](double v) { return integer ? std::to_string(static_cast<int64_t>(v)) : fmt::format("{}", v); };
  std::vector<std::string> out;
  if (r.min) {
    if (r.min_open) out.push_back(text(*r.min));
    else out.push_back(text(integer ? *r.min - 1 : std::nextafter(*r.min, -std::numeric_limits<double>::infinity())));
  }
  if (r.max) {
    if (r.max_open) out.push_back(text(*r.max));
    else out.push_back(text(integer ? *r.max + 1 : std::nextafter(*r.max, std::numeric_limits<double>::infinity())));
  }
  return out;
}

/// A small task every method can run on at its defaults: a network of two small convolutions
/// and a linear layer with weights in {−1, 0, 1}/2^k (exact sums on integer images), a softmax,
/// hook layers for GradCAM and IBA, reference inputs, `samples` multi-color-sum images of 8×8 with
/// seeds and designed segments.
struct SmallTask {
  lab::Network net;
  Context context;
  Batch batch;
};

lab::Network dyadic_convnet(int64_t variant = 0) {
  // Weights in {−1, 0, 1} / scale: on images of integers 0..255 every sum has at most 23
  // significant bits, so it is exact in float whatever order the runtime adds in.
  auto weights = [](lab::Shape shape, int64_t salt, float scale) {
    lab::Tensor w(std::move(shape));
    for (int64_t j = 0; j < w.numel(); ++j) w[j] = static_cast<float>((7 * j + 5 * (j / 3) + salt) % 3 - 1) / scale;
    return w;
  };
  lab::Network net({3, 8, 8});
  net.add("features.0", std::make_shared<lab::Conv2d>(
                            lab::Conv2dParams{.in_channels = 3, .out_channels = 4, .kernel_h = 3, .kernel_w = 3,
                                              .pad_h = 1, .pad_w = 1},
                            weights({4, 3, 3, 3}, 1 + variant, 1), lab::Tensor({4}, {1, -2, 0, 3})));
  net.add("features.1", std::make_shared<lab::ReLU>());
  net.add("features.2", std::make_shared<lab::Conv2d>(lab::Conv2dParams{.in_channels = 4, .out_channels = 4, .kernel_h = 1,
                                                                          .kernel_w = 1},
                                                        weights({4, 4, 1, 1}, 2 + variant, 1), lab::Tensor({4}, 0.0f)));
  net.add("features.3", std::make_shared<lab::ReLU>());
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("head", std::make_shared<lab::Linear>(weights({4, 256}, variant, 256), lab::Tensor({4}, {0, 1, 0, -1})));
  net.add("softmax", std::make_shared<lab::Softmax>());
  return net;
}

SmallTask small_task(int64_t samples, lab::Network net) {
  SmallTask t{.net = std::move(net)};
  t.context = Context{.net = &t.net, .background = {20, 20, 20}};
  t.context.reference_inputs = fixtures::colour_images(3, 8, 4, 40);
  t.batch.x = fixtures::colour_images(samples, 8, 4, 41);
  for (int64_t s = 0; s < samples; ++s) {
    t.batch.target.push_back(s % 4);
    t.batch.seeds.push_back(1000 + static_cast<uint64_t>(s));
    t.batch.segments.push_back(cv::Mat(8, 8, CV_32S, cv::Scalar(static_cast<int>(s % 2))));
  }
  // A signed pixel ground truth per sample, for the `ground-truth` control.
  t.batch.gt = lab::Tensor({samples, 8, 8}, 0.0f);
  for (int64_t j = 0; j < t.batch.gt.numel(); ++j) t.batch.gt[j] = static_cast<float>((j * 5 + j / 64) % 3) - 1.0f;
  return t;
}

/// The README's row of a method in "Parameters of every method": each parameter as
/// `key`=default (what a value must be), derived from the schema.
std::string readme_row(const attributions::MethodInfo& info) {
  std::string parts;
  for (const lab::ParamDoc& d : info.params) {
    const std::string range = d.info.range.describe();
    std::string what;
    switch (d.type) {
      case lab::ParamType::kInt: what = "integer" + (range.empty() ? "" : " " + range); break;
      case lab::ParamType::kFloat: what = "number" + (range.empty() ? "" : " " + range); break;
      case lab::ParamType::kBool: what = "on/off"; break;
      case lab::ParamType::kEnum:
        for (const std::string& c : d.info.choices) what += (what.empty() ? "" : "/") + c;
        break;
      case lab::ParamType::kIntList: what = "integers" + (range.empty() ? "" : ", each " + range); break;
      case lab::ParamType::kFloatList: what = "numbers" + (range.empty() ? "" : ", each " + range); break;
      case lab::ParamType::kPath: what = "path"; break;
      default: what = "text"; break;
    }
    if (d.default_value.is_null() && !d.info.derived.empty()) what += "; auto: " + d.info.derived;
    const std::string value = d.default_text().empty() ? "\"\"" : d.default_text();
    parts += (parts.empty() ? "" : ", ") + fmt::format("`{}`={} ({})", d.name, value, what);
  }
  return fmt::format("| `{}` | {} |", info.name, parts.empty() ? "none" : parts);
}

}  // namespace

TEST_CASE("the README lists every method's parameters as the schema declares them") {
  const char* source = std::getenv("ATTRLAB_SOURCE_DIR");
  if (!source) {
    MESSAGE("ATTRLAB_SOURCE_DIR not set (run through ctest): README not checked");
    return;
  }
  std::ifstream in(std::string(source) + "/README.md");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  for (const auto& info : attributions::registry()) {
    if (info.name == "centre-bias") continue;  // the example of test_example_method.cpp
    const std::string row = readme_row(info);
    CAPTURE(row);
    CHECK(readme.find(row + "\n") != std::string::npos);
  }
}

TEST_CASE("every registered method: unique name, listed parameters, documented defaults that make the same method") {
  std::set<std::string> names;
  for (const auto& info : attributions::registry()) {
    CAPTURE(info.name);
    CHECK(names.insert(info.name).second);
    CHECK(lab::is_key_spelling(info.name));
    CHECK(!info.summary.empty());
    lab::Options none("-p");
    const auto method = make_method(info.name, none);
    CHECK(method->name() == info.name);
    // params() records exactly the parameters `attrlab methods` lists.
    const nlohmann::json p = method->params();
    const std::vector<std::string> listed = lab::param_names(info.params);
    CHECK(record_names(p) == std::set<std::string>(listed.begin(), listed.end()));
    CHECK(listed.size() == std::set<std::string>(listed.begin(), listed.end()).size());
    std::vector<std::string> items;
    for (const auto& param : info.params) {
      CAPTURE(param.name);
      CHECK(lab::is_key_spelling(param.name));
      CHECK(!param.info.help.empty());
      items.push_back(param.name + "=" + param.default_text());
    }
    // Every documented default given back as -p makes the same method.
    lab::Options defaults = params(items);
    CHECK(make_method(info.name, defaults)->params() == p);
    // The record (what maps.json stores; a nested record's keys as plain -p keys) makes it again.
    nlohmann::json flat = nlohmann::json::object();
    for (const auto& [key, value] : p.items()) {
      if (value.is_object()) flat.update(value);
      else flat[key] = value;
    }
    lab::Options again = lab::Options::from_json(flat, "-p");
    CHECK(make_method(info.name, again)->params() == p);
    lab::Options unknown = params({"no-such-key=1"});
    CHECK_THROWS_WITH_AS(make_method(info.name, unknown), doctest::Contains("unknown option -p no-such-key=1"), lab::Error);
  }
}

TEST_CASE("every registered method refuses each number just outside its range and each value outside its choices") {
  auto refused = [](const std::string& method, const std::string& key, const std::string& text) {
    CAPTURE(method);
    CAPTURE(key);
    CAPTURE(text);
    lab::Options o = params({key + "=" + text});
    const std::string start = "-p " + key + "=";
    try {
      make_method(method, o);
      FAIL("accepted");
    } catch (const lab::Error& e) {
      CHECK(std::string(e.what()).rfind(start, 0) == 0);
      CHECK(e.kind() == lab::ErrorKind::kParameter);
    }
  };
  int numbers = 0, enums = 0;
  for (const auto& info : attributions::registry()) {
    for (const auto& param : info.params) {
      switch (param.type) {
        case lab::ParamType::kInt:
        case lab::ParamType::kFloat:
        case lab::ParamType::kIntList:
        case lab::ParamType::kFloatList:
          for (const std::string& text : outside(param)) {
            refused(info.name, param.name, text);
            ++numbers;
          }
          if (param.type == lab::ParamType::kInt || param.type == lab::ParamType::kIntList)
            refused(info.name, param.name, "1.5");
          refused(info.name, param.name, "nan");
          break;
        case lab::ParamType::kEnum:
          refused(info.name, param.name, "no-such-choice");
          ++enums;
          break;
        case lab::ParamType::kBool: refused(info.name, param.name, "maybe"); break;
        default: break;
      }
    }
  }
  CHECK(numbers > 40);
  CHECK(enums >= 19);
}

TEST_CASE("every registered method at its defaults: maps shaped like the input, finite, evaluations counted, the same maps from the same seeds and for any batch size") {
  SmallTask t = small_task(2, dyadic_convnet());
  t.context.layers = {{"gradcam", "features.1"}, {"iba", "features.3"}};
  for (const auto& info : attributions::registry()) {
    CAPTURE(info.name);
    t.context.batch = 256;
    const Result first = run(info.name, {}, t.context, t.batch);
    REQUIRE(first.attr.shape() == t.batch.x.shape());
    CHECK(first.attr.all_finite());
    if (first.evaluations == 0) {
      // A method that reports no network evaluation cannot depend on the network: another
      // network gives the same maps.
      SmallTask other = small_task(2, dyadic_convnet(1));
      other.context.layers = t.context.layers;
      CHECK(run(info.name, {}, other.context, other.batch).attr.values() == first.attr.values());
    }
    // One input per network call: the same maps and evaluations. Bit for bit where every sum is
    // exact (integer inputs); inputs between pixel values (paths, noise, masks, blur) may round
    // differently in a batched call, so the bound is float rounding of the largest value.
    t.context.batch = 1;
    const Result single = run(info.name, {}, t.context, t.batch);
    CHECK(single.evaluations == first.evaluations);
    REQUIRE(single.attr.shape() == first.attr.shape());
    float scale = 0, worst = 0;
    for (int64_t j = 0; j < first.attr.numel(); ++j) {
      scale = std::max(scale, std::abs(first.attr[j]));
      worst = std::max(worst, std::abs(single.attr[j] - first.attr[j]));
    }
    CHECK(worst <= 1e-5f * scale);
    // The documented defaults given as -p give the same maps, bit for bit (same seeds, same chunk).
    std::vector<std::string> items;
    for (const auto& param : info.params) items.push_back(param.name + "=" + param.default_text());
    t.context.batch = 256;
    CHECK(run(info.name, items, t.context, t.batch).attr.values() == first.attr.values());
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
  refuse("saliency", {"abs=maybe"}, "-p abs=maybe: must be on or off");
  refuse("integrated-gradients", {"steps=0"}, "-p steps=0: must be an integer in [1, 100000]");
  refuse("integrated-gradients", {"steps=1", "quadrature=trapezoid"}, "-p steps=1: must be an integer in 2..100000 for trapezoid");
  refuse("integrated-gradients", {"quadrature=simpson"}, "-p quadrature=simpson: must be one of riemann-left");
  refuse("integrated-gradients", {"baseline=grey"}, "-p baseline=grey: must be zero, background");
  refuse("integrated-gradients", {"output=softmax"}, "-p output=softmax: must be one of probability|logit");
  refuse("lrp", {"composite=lrp-gamma"}, "-p composite=lrp-gamma: must be one of lrp-epsilon|lrp-zplus");
  refuse("lrp", {"epsilon=0"}, "-p epsilon=0: must be a finite number > 0");
  refuse("lrp", {"composite=lrp-alpha-beta", "alpha=2", "beta=0.5"}, "-p alpha=2: must be beta + 1 = 1.5");
  refuse("smoothgrad", {"samples=0"}, "-p samples=0: must be an integer in [1, 100000]");
  refuse("smoothgrad", {"noise=-0.1"}, "-p noise=-0.1: must be a finite number ≥ 0");
  refuse("smoothgrad", {"base=nothing"}, "unknown method 'nothing'");
  refuse("smoothgrad", {"base=smoothgrad"}, "-p base=smoothgrad: must be another method: SmoothGrad cannot wrap itself");
  refuse("smoothgrad", {"base=saliency", "steps=4"}, "unknown option -p steps=4");
  refuse("deepshap", {"baselines=data:0"}, "-p baselines=data:0: must be zero, background, R,G,B, a .npy/.png file, data:K with an integer K ≥ 1");
  refuse("deepshap", {"baselines=data:x"}, "-p baselines=data:x: must be");
  refuse("constant", {"value=nan"}, "-p value=nan: must be a finite number");
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
  // Every registered method, with settings that keep this test fast where its defaults are costly,
  // and variants whose code paths the defaults do not take.
  const std::map<std::string, std::vector<std::string>> fast = {
      {"smoothgrad", {"samples=4", "noise=0.01"}}, {"lime", {"samples=20"}},     {"kernelshap", {"samples=20"}},
      {"rise", {"masks=20"}},                      {"extremal-perturbation", {"iterations=2"}},
      {"iba", {"iterations=2", "samples=2"}}};
  std::vector<std::pair<std::string, std::vector<std::string>>> cases;
  for (const auto& info : attributions::registry())
    cases.emplace_back(info.name, fast.count(info.name) ? fast.at(info.name) : std::vector<std::string>{});
  cases.push_back({"integrated-gradients", {"baseline=background"}});
  cases.push_back({"smoothgrad", {"samples=4", "noise=0.01", "base=input-x-gradient"}});
  cases.push_back({"lrp", {"composite=lrp-alpha-beta", "alpha=2", "beta=1"}});
  cases.push_back({"deeplift", {"baseline=background"}});
  cases.push_back({"deepshap", {"baselines=data:2"}});

  networks::MultiColorSumParams mp;
  mp.size = 8;
  SmallTask t = small_task(32, networks::build_multi_color_sum(mp));
  t.context.layers = {{"gradcam", "accumulator.layers.5"}, {"iba", "accumulator.layers.7"}};
  Context& context = t.context;
  const Batch& batch = t.batch;
  const int threads = lab::Runtime::get().threads();
  for (const auto& [name, settings] : cases) {
    CAPTURE(name);
    CAPTURE(settings.size());
    context.batch = 32;
    lab::Runtime::get().set_threads(2);
    const Result whole = run(name, settings, context, batch);
    REQUIRE(whole.attr.shape() == batch.x.shape());
    CHECK(whole.attr.all_finite());
    // One sample per call, small chunks: every sample's map is the same, bit for bit.
    context.batch = 5;
    for (int64_t s = 0; s < 32; s += 7) {
      Batch one;
      one.x = batch.x.slice(s, s + 1);
      one.target = {batch.target[static_cast<size_t>(s)]};
      one.seeds = {batch.seeds[static_cast<size_t>(s)]};
      one.segments = {batch.segments[static_cast<size_t>(s)]};
      one.gt = batch.gt.slice(s, s + 1);
      const Result single = run(name, settings, context, one);
      for (int64_t j = 0; j < single.attr.numel(); ++j) REQUIRE(single.attr[j] == whole.attr.sample(s)[j]);
      if (!whole.convergence_delta.empty())
        CHECK(single.convergence_delta[0] == doctest::Approx(whole.convergence_delta[static_cast<size_t>(s)]).epsilon(1e-9));
    }
    lab::Runtime::get().set_threads(1);
    context.batch = 32;
    const Result one_thread = run(name, settings, context, batch);
    CHECK(one_thread.attr.values() == whole.attr.values());
  }
  lab::Runtime::get().set_threads(threads);
}
