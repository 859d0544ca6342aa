// The control maps (attributions/controls.h) under every ground-truth metric of the registry:
// Fake-CAM and random maps never beat the ground-truth map, on any sample and variant.
#include <doctest/doctest.h>

#include <map>
#include <memory>

#include "attributions/method.h"
#include "datasets/environment.h"
#include "experiments/metrics/metric.h"

using namespace experiments;

TEST_CASE("Fake-CAM and random maps never beat the ground-truth map on any ground-truth metric") {
  for (const char* name : {"multi-color-sum", "single-color-modulo"}) {
    CAPTURE(name);
    lab::Options o = lab::Options::parse({"size=32"}, "-o");
    const auto env = datasets::make_environment(name, o);
    const lab::Network net = env->build_network();
    attributions::Batch in;
    Batch batch;
    std::vector<lab::Tensor> xs, gts, smooth;
    for (int64_t i = 0; i < 6; ++i) {
      const datasets::Sample s = env->generate(2, i);
      batch.ids.push_back(s.id);
      xs.push_back(env->to_input(s.image));
      gts.push_back(s.gt);
      smooth.push_back(s.gt_smooth);
      batch.target.push_back(env->target_output(s.label));
      batch.seeds.push_back(static_cast<uint64_t>(i) + 11);
    }
    batch.x = lab::Tensor::stack(xs);
    batch.gt = lab::Tensor::stack(gts);
    batch.gt_smooth = lab::Tensor::stack(smooth);
    in.x = batch.x;
    in.target = batch.target;
    in.seeds = batch.seeds;
    in.gt = batch.gt;
    const attributions::Context mc{.net = &net};
    auto map_of = [&](const std::string& method) {
      lab::Options none("-p");
      return attributions::make_method(method, none)->attribute(mc, in).attr;
    };
    const lab::Tensor truth = map_of("ground-truth");
    Context context;
    context.net = &net;
    context.env = name;
    context.background = env->background();
    context.input_max = env->image_channels() == 3 ? 255.0f : 1.0f;
    context.predicted_label = [&](const float* row) { return env->predicted_label(row); };
    int compared = 0, exact = 0;
    for (const MetricInfo& info : registry()) {
      // Soundness and completeness are perturbation metrics, but their -exact variants are read
      // off the ground truth (|A n I|/|A|, |A n I|/|I|): ground-truth metrics too.
      const bool exact_only = info.name == "soundness" || info.name == "completeness";
      if (info.family != "ground-truth" && !exact_only) continue;
      auto compared_variant = [&](const std::string& v) {
        return !exact_only || (v.size() > 6 && v.compare(v.size() - 6, 6, "-exact") == 0);
      };
      CAPTURE(info.name);
      lab::Options p("-p");
      const std::unique_ptr<Metric> metric = make_metric(info.name, p, MetricSetup::of(*env));
      batch.attr = truth;
      std::map<std::pair<std::string, std::string>, double> best;
      for (const MetricRow& r : metric->evaluate(context, batch).rows)
        if (compared_variant(r.variant)) best[{r.sample, r.variant}] = r.value;
      for (const char* control : {"fake-cam", "random"}) {
        CAPTURE(control);
        batch.attr = map_of(control);
        for (const MetricRow& r : metric->evaluate(context, batch).rows) {
          if (!compared_variant(r.variant)) continue;
          if (exact_only) ++exact;
          CAPTURE(r.sample);
          CAPTURE(r.variant);
          REQUIRE(best.count({r.sample, r.variant}) == 1);
          const double truth_value = best.at({r.sample, r.variant});
          if (metric->direction(r.variant) == Direction::kHigherIsBetter) CHECK(r.value <= truth_value);
          else CHECK(r.value >= truth_value);
          ++compared;
        }
      }
    }
    CHECK(compared > 20);
    CHECK(exact == 2 * 2 * (6 + 1));  // soundness-exact and completeness-exact, 2 controls, 6 images and "all"
  }
}

#include <unistd.h>

#include <filesystem>

#include "experiments/config.h"
#include "experiments/run.h"
#include "experiments/table.h"
#include "lab/io/files.h"

TEST_CASE("a run gives the re-explaining metrics the unit's method: the ground-truth map is not sensitive") {
  namespace fs = std::filesystem;
  const fs::path out = fs::temp_directory_path() / ("attrlab-test-controls-" + std::to_string(::getpid()));
  fs::remove_all(out);
  nlohmann::json config = load_config("faithfulness-test");
  config["methods"] = nlohmann::json::array(
      {{{"label", "GT"}, {"name", "ground-truth"}},
       {{"label", "Fake-CAM"}, {"name", "fake-cam"}},
       {{"label", "Random"}, {"name", "random"}},
       {{"label", "GT blurred"}, {"name", "blurred"}, {"params", {{"base", "ground-truth"}, {"blur-sigma", 1.0}}}}});
  config["metrics"] = nlohmann::json::array({{{"name", "max-sensitivity"}, {"params", {{"samples", 3}}}},
                                             {{"name", "pointing-game"}},
                                             {{"name", "sparseness"}}});
  config["report"]["studies"] = nlohmann::json::array();
  apply_overrides(config, {"count=2", "size=32"});
  const nlohmann::json resolved = finalize(config);
  RunOptions options;
  options.out = out;
  options.quiet = true;
  options.source = "test";
  run_experiment(resolved, options);
  const auto rows = parse_result_csv(lab::read_text(out / "results.csv"), "results.csv");
  std::map<std::string, double> all;
  for (const ResultRow& r : rows)
    if (r.sample == kAllSamples) all[r.method + "/" + r.metric] = r.value;
  fs::remove_all(out);
  CHECK(all.at("GT/max-sensitivity") == 0.0);
  CHECK(all.at("Fake-CAM/max-sensitivity") == 0.0);
  CHECK(all.at("Random/max-sensitivity") > 0.1);  // a new random map per re-explanation
  CHECK(all.at("GT/pointing-game") == 1.0);
  CHECK(all.at("GT blurred/sparseness") < all.at("GT/sparseness"));
}
