// attrlab attribute: one attribution method over every sample of a data directory, written as
// MAPS/<id>.npy (float32 C×H×W) and MAPS/maps.json (see README, "Attribution methods").
#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "attributions/common.h"
#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "cli/commands.h"
#include "lab/core/random.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace cli {

namespace {

namespace fs = std::filesystem;

struct AttributeArgs {
  std::string data;
  std::string method;
  KeyValues params;
  std::string target = "label";
  int64_t batch = 16;
  int64_t chunk = 0;
  std::string seed = "0";
  int64_t reference = 16;
  int64_t limit = 0;
  std::string out;
};

// Bytes of network activations one chunk may hold when --chunk is not given.
constexpr int64_t kChunkMemory = int64_t{1} << 30;

// --target: "label", "predicted", or a fixed output unit.
struct TargetMode {
  std::string mode;
  int64_t unit = -1;
};

TargetMode parse_target(const std::string& text, int64_t units) {
  if (text == "label" || text == "predicted") return {text, -1};
  int64_t unit = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), unit);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || unit < 0 || unit >= units)
    lab::fail_parameter("--target {}: expected label, predicted or an output unit 0..{}", text, units - 1);
  return {"unit", unit};
}

void run_attribute(const AttributeArgs& args) {
  if (args.batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", args.batch);
  if (args.chunk < 0) lab::fail_parameter("--chunk must be at least 1 (or 0 for automatic), got {}", args.chunk);
  if (args.reference < 0) lab::fail_parameter("--reference must be at least 0, got {}", args.reference);
  if (args.limit < 0) lab::fail_parameter("--limit must be at least 0, got {}", args.limit);
  const uint64_t seed = parse_seed(args.seed);
  lab::Options params = lab::Options::parse(args.params, "-p");
  const std::unique_ptr<attributions::Method> method = attributions::make_method(args.method, params);

  const datasets::DataDir data = datasets::DataDir::open(args.data);
  const datasets::Environment& env = data.env();
  const lab::Network net = env.build_network();
  const int64_t units = lab::numel(net.output_shape(1));
  const TargetMode target = parse_target(args.target, units);
  const int64_t count = args.limit > 0 ? std::min(args.limit, data.size()) : data.size();
  const int64_t reference = std::min(args.reference, data.size());

  attributions::Context context;
  context.net = &net;
  context.background = env.background();
  context.layers = env.default_layers();
  if (reference > 0) context.reference_inputs = data.inputs(0, reference);
  context.chunk = args.chunk > 0 ? args.chunk : attributions::chunk_for_memory(net, kChunkMemory);
  context.to_input = [&env](const cv::Mat& image) { return env.to_input(image); };

  lab::StagedDir staged(args.out);
  nlohmann::json samples = nlohmann::json::array();
  int64_t evaluations = 0;
  const auto started = std::chrono::steady_clock::now();
  auto last_report = started;
  for (int64_t begin = 0; begin < count; begin += args.batch) {
    const int64_t end = std::min(count, begin + args.batch);
    attributions::Batch batch;
    batch.x = data.inputs(begin, end);
    std::vector<std::string> ids;
    for (int64_t i = begin; i < end; ++i) {
      ids.push_back(data.id(i));
      batch.seeds.push_back(lab::derive_seed(seed, static_cast<uint64_t>(i)));
      cv::Mat segments;
      data.patches(i).convertTo(segments, CV_32S);
      batch.segments.push_back(segments);
    }
    if (target.mode == "label") {
      for (int64_t i = begin; i < end; ++i) batch.target.push_back(env.target_output(data.label(i)));
    } else if (target.mode == "predicted") {
      const lab::Tensor y = net.forward(batch.x);
      for (int64_t k = 0; k < y.batch(); ++k) batch.target.push_back(env.target_output(env.predicted_label(y.sample(k))));
    } else {
      batch.target.assign(static_cast<size_t>(end - begin), target.unit);
    }
    const attributions::Result result = method->attribute(context, batch);
    if (result.attr.shape() != batch.x.shape())
      lab::fail("method '{}' returned maps of shape {} for inputs {}", method->name(), lab::to_string(result.attr.shape()),
                lab::to_string(batch.x.shape()));
    if (!result.attr.all_finite()) lab::fail("method '{}' returned NaN or Inf in samples {}..{}", method->name(), ids.front(), ids.back());
    evaluations += result.evaluations;
    tbb::parallel_for(int64_t{0}, end - begin, [&](int64_t k) {
      lab::write_npy(staged.path() / (ids[static_cast<size_t>(k)] + ".npy"),
                     result.attr.slice(k, k + 1).reshaped(batch.x.sample_shape()));
    });
    for (int64_t k = 0; k < end - begin; ++k) {
      nlohmann::json s = {{"id", ids[static_cast<size_t>(k)]},
                          {"map", ids[static_cast<size_t>(k)] + ".npy"},
                          {"label", data.label(begin + k)},
                          {"target", batch.target[static_cast<size_t>(k)]}};
      if (!result.convergence_delta.empty()) s["convergence_delta"] = result.convergence_delta[static_cast<size_t>(k)];
      samples.push_back(std::move(s));
    }
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_report).count() >= 2.0 && end < count) {
      const double elapsed = std::chrono::duration<double>(now - started).count();
      fmt::print(stderr, "attribute: {} {}/{} samples, {:.1f} s, about {:.0f} s left\n", method->name(), end, count, elapsed,
                 elapsed / static_cast<double>(end) * static_cast<double>(count - end));
      last_report = now;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const fs::path maps_dir = fs::absolute(staged.final_path());
  const fs::path data_dir = fs::absolute(data.path());
  nlohmann::json record = {
      {"format", 1},
      {"method", method->name()},
      {"params", method->params()},
      {"version", ATTRLAB_VERSION},
      {"data", fs::relative(data_dir, maps_dir).string()},
      {"data_manifest",
       {{"path", (data_dir / "manifest.json").string()}, {"env", env.name()}, {"seed", data.seed()}, {"count", data.size()}}},
      {"target", target.mode == "unit" ? nlohmann::json(target.unit) : nlohmann::json(target.mode)},
      {"seed", seed},
      {"context",
       {{"background", context.background}, {"layers", context.layers}, {"reference_inputs", reference}}},
      {"shape", env.input_shape()},
      {"evaluations", evaluations},
      {"seconds", seconds},
      {"samples", samples}};
  lab::write_json(staged.path() / "maps.json", record);
  staged.commit();
  fmt::print(stderr, "attribute: {} on {} samples of {} in {:.1f} s ({:.1f} network evaluations per sample); wrote {}\n",
             method->name(), count, args.data, seconds, static_cast<double>(evaluations) / static_cast<double>(count),
             args.out);
}

}  // namespace

void register_attribute(CLI::App& app) {
  auto args = std::make_shared<AttributeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "attribute", "Attribution maps of one method for every sample of a data directory (MAPS/<id>.npy, MAPS/maps.json)");
  cmd->add_option("--data", args->data, "Data directory (from attrlab generate)")->required();
  cmd->add_option("--method", args->method, "Attribution method (attrlab methods lists them)")->required();
  cmd->add_option("-p", args->params, "Method parameter key=value (repeatable), e.g. -p baseline=background");
  cmd->add_option("--target", args->target, "Output explained: label (the designed label), predicted, or a unit number")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "Images per method call (execution only; maps do not change)")
      ->capture_default_str();
  cmd->add_option("--chunk", args->chunk,
                  "Largest number of inputs per network call (execution only); 0 = as many as fit in 1 GiB of activations")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of stochastic methods; sample i uses a seed derived from (seed, i)")
      ->capture_default_str();
  cmd->add_option("--reference", args->reference,
                  "Reference inputs given to the method (the first K samples: DeepSHAP data:K baselines, IBA statistics)")
      ->capture_default_str();
  cmd->add_option("--limit", args->limit, "Attribute only the first N samples (0 = all)")->capture_default_str();
  cmd->add_option("--out", args->out, "Output maps directory (replaced atomically when complete)")->required();
  cmd->callback([args] { run_attribute(*args); });
}

}  // namespace cli
