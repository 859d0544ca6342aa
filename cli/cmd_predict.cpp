// attrlab predict: the environment's network on every sample of a data directory, or on any batch
// of images (--inputs batch.npy), as CSV.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "datasets/data_dir.h"
#include "datasets/predict.h"
#include "cli/commands.h"
#include "cli/network_source.h"
#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace cli {

namespace {

struct PredictArgs {
  NetworkSource source;
  std::string inputs;
  std::string out;
  int64_t batch = 16;
};

void run_predict(const PredictArgs& args) {
  if (args.batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", args.batch);
  lab::check_output_file({"--out", args.out});
  if (!args.inputs.empty()) {
    lab::check_distinct({{"--out", args.out}}, {{"--inputs", args.inputs}});
    const auto env = args.source.environment();
    const lab::Tensor x = datasets::read_inputs_npy(*env, args.inputs);
    const datasets::Predictions p = datasets::predict_inputs(*env, x, args.batch);
    datasets::write_input_predictions_csv(p, args.out);
    fmt::print(stderr, "predict: {} images of {}; wrote {}\n", p.predicted.size(), args.inputs, args.out);
    return;
  }
  if (args.source.data.empty()) throw CLI::RequiredError("--data (or --inputs)");
  if (!args.source.env.empty()) throw CLI::ValidationError("--env", "needs --inputs (--data names its own environment)");
  lab::check_distinct({{"--out", args.out}}, {{"--data", args.source.data}});
  const datasets::DataDir data = datasets::DataDir::open(args.source.data);
  const datasets::Predictions p = datasets::predict(data, args.batch);
  datasets::write_predictions_csv(data, p, args.out);
  int64_t hits = 0;
  for (size_t i = 0; i < p.labels.size(); ++i) hits += p.labels[i] == p.predicted[i];
  fmt::print(stderr, "predict: accuracy {:.4f} ({}/{} predictions equal the label); wrote {}\n", p.accuracy(), hits,
             p.labels.size(), args.out);
}

}  // namespace

void register_predict(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "Run the environment's network on a data directory or on a batch of images (--inputs); write a CSV");
  args->source.add_to(*cmd, "Data directory (from attrlab generate): its samples, or with --inputs only its network");
  cmd->add_option("--inputs", args->inputs,
                  ".npy batch: N×C×H×W or N×H×W×C, float32 network inputs or uint8 images (converted as the data "
                  "pipeline converts its PNGs); the network comes from --data or --env");
  cmd->add_option("--out", args->out,
                  "CSV: id,label,predicted (with --inputs: index,predicted), logits and probabilities (or outputs)")
      ->required();
  cmd->add_option("--batch", args->batch, "Images per network call (execution only; results do not change)")
      ->capture_default_str();
  cmd->callback([args] { run_predict(*args); });
}

}  // namespace cli
