// attrlab export: an environment's exact network as ONNX or as a PyTorch archive
// (datasets/export.h, lab/io/export.h).
#include <fmt/format.h>

#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/network_source.h"
#include "datasets/export.h"
#include "lab/io/export.h"

namespace cli {

namespace {

struct ExportArgs {
  NetworkSource source;
  std::string format;
  std::string out;
};

void run_export(const ExportArgs& args) {
  const auto env = args.source.environment();
  const datasets::ExportFormat format = datasets::export_format(args.format);
  datasets::export_network(*env, format, args.out);
  const lab::Network network = env->build_network();
  fmt::print(stderr, "export: wrote the {} network ({} layers, {} parameters) as {} to {}\n", env->name(),
             network.size(), network.parameter_count(),
             format == datasets::ExportFormat::kOnnx ? fmt::format("ONNX opset {}", lab::kOnnxOpset)
                                                     : std::string("PyTorch .npz"),
             args.out);
}

}  // namespace

void register_export(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export", "Write an environment's network as ONNX or for PyTorch");
  args->source.add_to(*cmd, "Data directory whose manifest names the environment and its options");
  cmd->add_option("--format", args->format,
                  "onnx: an ONNX model (opset 13; outputs logits and probabilities, or outputs); torch: an .npz "
                  "of weights and architecture for attrlab.torch.load")
      ->required()
      ->check(CLI::IsMember({"onnx", "torch"}));
  cmd->add_option("--out", args->out, "Output file (written atomically), e.g. model.onnx or model.npz")->required();
  cmd->callback([args] { run_export(*args); });
}

}  // namespace cli
