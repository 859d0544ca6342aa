// attrlab attribute: one attribution method over every sample of a data directory, written as
// MAPS/<id>.npy (float32 C×H×W) and MAPS/maps.json (see README, "Attribution methods").
// The work is the attribute stage of experiments/pipeline.h, the same as `attrlab run`'s.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "attributions/common.h"
#include "attributions/method.h"
#include "cli/commands.h"
#include "cli/listing.h"
#include "datasets/data_dir.h"
#include "experiments/pipeline.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/io/files.h"
#include "lab/io/outputs.h"

namespace cli {

namespace {

struct AttributeArgs {
  std::string data;
  std::string method;
  std::string label;
  KeyValues params;
  std::string target = "label";
  int64_t unit = 16;
  int64_t batch = 0;
  std::string seed = "0";
  int64_t reference = 16;
  int64_t limit = 0;
  std::string out;
  bool force = false;
};

void run_attribute(const AttributeArgs& args) {
  if (args.unit < 1) lab::fail_parameter("--unit must be at least 1, got {}", args.unit);
  if (args.batch < 0) lab::fail_parameter("--batch must be at least 1 (or 0 for automatic), got {}", args.batch);
  if (args.reference < 0) lab::fail_parameter("--reference must be at least 0, got {}", args.reference);
  if (args.limit < 0) lab::fail_parameter("--limit must be at least 0, got {}", args.limit);
  const uint64_t seed = parse_seed(args.seed);
  lab::check_distinct({{"--out", args.out}}, {{"--data", args.data}});
  lab::check_output_dir({"--out", args.out}, "maps.json", args.force);
  lab::Options params = lab::Options::parse(args.params, "-p");
  const std::unique_ptr<attributions::Method> method = attributions::make_method(args.method, params);

  const datasets::DataDir data = datasets::DataDir::open(args.data);
  const lab::Network net = data.env().build_network();
  const int64_t count = args.limit > 0 ? std::min(args.limit, data.size()) : data.size();
  if (args.batch > 0) attributions::check_batch_memory(net, args.batch, fmt::format("--batch {}", args.batch));
  // A unit's inputs, maps and the method's copies of them (about four of each).
  lab::check_memory(static_cast<uint64_t>(std::min(args.unit, count)) * 4 * 2 *
                        static_cast<uint64_t>(lab::numel(data.env().input_shape())) * sizeof(float),
                    fmt::format("--unit {}", args.unit));
  experiments::AttributeSetup setup;
  setup.label = args.label;
  setup.target = experiments::TargetMode::parse(args.target, lab::numel(net.output_shape(1)), "--target");
  setup.seed = seed;
  setup.reference = args.reference;
  setup.batch = args.batch;
  const experiments::AttributeStage stage(data, net, *method, setup);

  const auto lock = lab::lock_output_dir({"--out", args.out}, "maps.json", args.force);
  lab::StagedDir staged(args.out);
  nlohmann::json samples = nlohmann::json::array();
  int64_t evaluations = 0;
  const auto started = std::chrono::steady_clock::now();
  auto last_report = started;
  for (int64_t begin = 0; begin < count; begin += args.unit) {
    const int64_t end = std::min(count, begin + args.unit);
    const experiments::AttributedUnit unit = stage.run(begin, end);
    evaluations += unit.result.evaluations;
    stage.save_maps(unit, staged.path());
    for (const nlohmann::json& s : unit.samples) samples.push_back(s);
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_report).count() >= 2.0 && end < count) {
      const double elapsed = std::chrono::duration<double>(now - started).count();
      fmt::print(stderr, "attribute: {} {}/{} samples, {:.1f} s, about {:.0f} s left\n", stage.label(), end, count, elapsed,
                 elapsed / static_cast<double>(end) * static_cast<double>(count - end));
      last_report = now;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  lab::write_json(staged.path() / "maps.json", stage.record(staged.final_path(), samples, evaluations));
  staged.commit();
  fmt::print(stderr, "attribute: {} on {} samples of {} in {:.1f} s ({:.1f} network evaluations per sample); wrote {}\n",
             stage.label(), count, args.data, seconds, static_cast<double>(evaluations) / static_cast<double>(count),
             args.out);
}

}  // namespace

void register_attribute(CLI::App& app) {
  auto args = std::make_shared<AttributeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "attribute", "Attribution maps of one method for every sample of a data directory (MAPS/<id>.npy, MAPS/maps.json)");
  cmd->footer([] { return names_footer(attributions::registry(), "Methods", "methods"); });
  cmd->add_option("--data", args->data, "Data directory (from attrlab generate)")->required();
  cmd->add_option("--method", args->method, "Attribution method (attrlab methods lists them)")->required();
  cmd->add_option("--label", args->label,
                  "The method's label in maps.json; sample i's seed derives from (seed, label, i) (default: the method's name)");
  cmd->add_option("-p", args->params, "Method parameter key=value (repeatable), e.g. -p baseline=background");
  cmd->add_option("--target", args->target, "Output explained: label (the designed label), predicted, or a unit number")
      ->capture_default_str();
  cmd->add_option("--unit", args->unit, "Images per method call (execution only; maps do not change)")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch,
                  "Largest number of inputs per network call (execution only); 0 = as many as fit in 1 GiB of activations")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of stochastic methods; sample i uses a seed derived from (seed, label, i)")
      ->capture_default_str();
  cmd->add_option("--reference", args->reference,
                  "Reference inputs given to the method (the first K samples: DeepSHAP data:K baselines, IBA statistics)")
      ->capture_default_str();
  cmd->add_option("--limit", args->limit, "Attribute only the first N samples (0 = all)")->capture_default_str();
  cmd->add_option("--out", args->out, "Output maps directory (new or empty; appears when complete)")->required();
  cmd->add_flag("--force", args->force, "Replace --out if it is a maps directory attrlab wrote");
  cmd->callback([args] { run_attribute(*args); });
}

}  // namespace cli
