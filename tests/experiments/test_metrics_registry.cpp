// Generic properties of every registered metric (experiments/metrics/metric.h), iterating the
// registry itself — a metric added to the table or with add_metric() is covered without being
// listed here: documented defaults fed back as `-p key=default` change nothing; out-of-range
// numbers and unknown choices are refused in one line naming the key; every variant written has
// its listed direction; rows do not depend on the batch size. Two 16×16 samples per designed
// environment keep the defaults (Sensitivity-N's 100 subsets at 16 N) affordable.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attributions/method.h"
#include "datasets/environment.h"
#include "experiments/metrics/metric.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

/// A designed environment at 16×16 with two samples, random signed maps and a context.
struct Data {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  Context context;
  Batch batch;
  std::unique_ptr<attributions::Method> method;

  explicit Data(const std::string& name) {
    lab::Options options = lab::Options::parse({"size=16"}, "-o");
    env = datasets::make_environment(name, options);
    net = env->build_network();
    context.net = &net;
    context.env = name;
    context.background = env->background();
    context.input_max = env->image_channels() == 3 ? 255.0f : 1.0f;
    context.predicted_label = [this](const float* row) { return env->predicted_label(row); };
    // The metrics that re-explain perturbed inputs get a method: the gradient (saliency).
    lab::Options none("-p");
    method = attributions::make_method("saliency", none);
    context.explain = [this](const lab::Tensor& x, const std::string&, int64_t target, const std::vector<uint64_t>& seeds) {
      attributions::Batch b;
      b.x = x;
      b.target.assign(static_cast<size_t>(x.batch()), target);
      b.seeds = seeds;
      return method->attribute(attributions::Context{.net = &net}, b).attr;
    };
    // The method that made the maps, for the invariant metric: DeepLIFT (summation-to-delta).
    lab::Options deeplift_params("-p");
    context.method.name = "deeplift";
    context.method.params = attributions::make_method("deeplift", deeplift_params)->params();
    std::mt19937 rng(11);
    std::vector<lab::Tensor> xs, attrs, gts, smooths;
    for (int64_t i = 0; i < 2; ++i) {
      const datasets::Sample s = env->generate(3, i);
      batch.ids.push_back(s.id);
      batch.target.push_back(env->target_output(s.label));
      batch.seeds.push_back(static_cast<uint64_t>(i) + 1);
      xs.push_back(env->to_input(s.image));
      lab::Tensor a(s.gt.shape());
      for (float& v : a.values()) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
      attrs.push_back(a);
      gts.push_back(s.gt);
      smooths.push_back(s.gt_smooth);
    }
    batch.x = lab::Tensor::stack(xs);
    batch.attr = lab::Tensor::stack(attrs);
    batch.gt = lab::Tensor::stack(gts);
    batch.gt_smooth = lab::Tensor::stack(smooths);
  }

  std::unique_ptr<Metric> make(const std::string& name, const std::vector<std::string>& items) const {
    lab::Options options = lab::Options::parse(items, "-p");
    return make_metric(name, options, MetricSetup::of(*env));
  }
};

void check_same(const MetricOutput& a, const MetricOutput& b) {
  REQUIRE(a.rows.size() == b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    CAPTURE(i);
    CHECK(a.rows[i].sample == b.rows[i].sample);
    CHECK(a.rows[i].variant == b.rows[i].variant);
    CHECK(a.rows[i].value == b.rows[i].value);
  }
  REQUIRE(a.curves.size() == b.curves.size());
  for (size_t i = 0; i < a.curves.size(); ++i) {
    CHECK(a.curves[i].x == b.curves[i].x);
    CHECK(a.curves[i].y == b.curves[i].y);
  }
}

std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

/// A number just outside `range` (nullopt when the range is unbounded).
std::optional<double> outside(const lab::Range& range, bool integer) {
  const double step = integer ? 1.0 : 1e-3;
  if (range.min) return range.min_open ? *range.min : *range.min - step;
  if (range.max) return range.max_open ? *range.max : *range.max + step;
  return std::nullopt;
}

}  // namespace

TEST_CASE("every metric: documented defaults given back change nothing; rows do not depend on the batch size") {
  for (const char* env : {"multi-color-sum", "single-color-modulo"}) {
    Data data(env);
    for (const MetricInfo& info : registry()) {
      CAPTURE(env);
      CAPTURE(info.name);
      std::vector<std::string> defaults;
      for (const lab::ParamDoc& p : info.params) defaults.push_back(p.name + "=" + p.default_text());
      const auto plain = data.make(info.name, {});
      const auto given = data.make(info.name, defaults);
      CHECK(plain->params() == given->params());
      CHECK(plain->name() == info.name);
      CHECK(plain->family() == info.family);
      // The record holds every documented key, with derived defaults resolved from the data.
      for (const lab::ParamDoc& p : info.params) {
        CAPTURE(p.name);
        REQUIRE(plain->params().contains(p.name));
        if (p.info.derived.empty()) CHECK(plain->params()[p.name] == p.default_value);
        else CHECK_FALSE(plain->params()[p.name].is_null());
      }
      data.context.unit = 16;
      const MetricOutput out = plain->evaluate(data.context, data.batch);
      CHECK_FALSE(out.rows.empty());
      check_same(out, given->evaluate(data.context, data.batch));
      data.context.unit = 1;
      check_same(out, plain->evaluate(data.context, data.batch));
      for (const MetricRow& r : out.rows) CHECK_NOTHROW(plain->direction(r.variant));
    }
  }
}

TEST_CASE("every metric: out-of-range numbers and unknown choices are refused naming the key") {
  const Data data("multi-color-sum");
  for (const MetricInfo& info : registry())
    for (const lab::ParamDoc& p : info.params) {
      CAPTURE(info.name);
      CAPTURE(p.name);
      if (!p.info.choices.empty()) {
        const std::string item = p.name + "=no-such-choice";
        const std::string message = error_of([&] { data.make(info.name, {item}); });
        CHECK(message.find("-p " + item + ": must be one of") != std::string::npos);
      }
      const bool integer = p.type == lab::ParamType::kInt || p.type == lab::ParamType::kIntList;
      if (const auto bad = outside(p.info.range, integer)) {
        const std::string item = p.name + "=" + lab::option_text(integer ? nlohmann::json(static_cast<int64_t>(*bad))
                                                                        : nlohmann::json(*bad));
        const std::string message = error_of([&] { data.make(info.name, {item}); });
        CHECK(message.find("-p " + item + ": must be") != std::string::npos);
      }
      if (p.type == lab::ParamType::kInt || p.type == lab::ParamType::kFloat) {
        const std::string message = error_of([&] { data.make(info.name, {p.name + "=x1"}); });
        CHECK(message.find("-p " + p.name + "=x1: must be") != std::string::npos);
      }
    }
}

TEST_CASE("every metric: each variant it writes is listed, with its direction") {
  for (const MetricInfo& info : registry()) {
    CAPTURE(info.name);
    REQUIRE_FALSE(info.variants.empty());
    for (const Variant& v : info.variants)
      CHECK((direction_name(v.direction) == "higher-is-better" || direction_name(v.direction) == "lower-is-better"));
  }
  for (const char* env : {"multi-color-sum", "single-color-modulo"}) {
    const Data data(env);
    for (const MetricInfo& info : registry()) {
      CAPTURE(env);
      CAPTURE(info.name);
      const auto m = data.make(info.name, {});
      for (const Variant& v : m->variants()) {
        CAPTURE(v.name);
        const auto listed = std::find_if(info.variants.begin(), info.variants.end(),
                                         [&](const Variant& l) { return l.name == v.name; });
        REQUIRE(listed != info.variants.end());
        CHECK(listed->direction == v.direction);
        CHECK(m->direction(v.name) == v.direction);
      }
    }
  }
}

TEST_CASE("every metric: the listing names its paper and the section, equation or algorithm; every parameter documented") {
  // What `attrlab metrics` prints: a source that points into a paper, one help line and a default
  // (or the rule deriving it) per parameter, a summary stating what is computed.
  const std::vector<std::string> places = {"Sec. ", "eq. ", "Eq. ", "Alg. ", "App. ", "Definition ", "Proposition ", "Table "};
  for (const MetricInfo& info : registry()) {
    // The README's example of an outside metric (test_metrics_example.cpp registers it when that
    // test runs first) cites no paper; every built-in metric does.
    if (info.name == "mass-on-gt") continue;
    CAPTURE(info.name);
    CHECK_FALSE(info.summary.empty());
    CHECK(std::any_of(places.begin(), places.end(),
                      [&](const std::string& p) { return info.source.find(p) != std::string::npos; }));
    for (const lab::ParamDoc& p : info.params) {
      CAPTURE(p.name);
      CHECK(lab::is_key_spelling(p.name));
      CHECK_FALSE(p.info.help.empty());
      CHECK((!p.default_value.is_null() || !p.info.derived.empty()));
    }
  }
}
