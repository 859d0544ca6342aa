// attrlab predict: the environment's network on every sample of a data directory, as CSV.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "datasets/data_dir.h"
#include "datasets/predict.h"
#include "cli/commands.h"
#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace cli {

namespace {

struct PredictArgs {
  std::string data;
  std::string out;
  int64_t batch = 16;
};

void run_predict(const PredictArgs& args) {
  if (args.batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", args.batch);
  lab::check_distinct({{"--out", args.out}}, {{"--data", args.data}});
  lab::check_output_file({"--out", args.out});
  const datasets::DataDir data = datasets::DataDir::open(args.data);
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
  CLI::App* cmd = app.add_subcommand("predict", "Run the environment's network on a data directory; write a CSV");
  cmd->add_option("--data", args->data, "Data directory (from attrlab generate)")->required();
  cmd->add_option("--out", args->out, "CSV: id,label,predicted, logits and probabilities (or outputs)")->required();
  cmd->add_option("--batch", args->batch, "Images per network call (execution only; results do not change)")
      ->capture_default_str();
  cmd->callback([args] { run_predict(*args); });
}

}  // namespace cli
