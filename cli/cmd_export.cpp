// attrlab export: an environment's exact network as ONNX or as a PyTorch archive (lab/io/export.h).
#include <fmt/format.h>

#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "cli/commands.h"
#include "cli/network_source.h"
#include "lab/core/error.h"
#include "lab/io/export.h"

namespace cli {

namespace {

struct ExportArgs {
  NetworkSource source;
  std::string format;
  std::string out;
};

/// The divisor d with network input = pixel value / d (float32), read off the environment's own
/// conversion: 1 for RGB (multi-color-sum), 255 for gray (single-color-modulo).
float image_divisor(const datasets::Environment& env) {
  const int side = static_cast<int>(env.image_size());
  const int type = env.image_channels() == 3 ? CV_8UC3 : CV_8UC1;
  const lab::Tensor white = env.to_input(cv::Mat(side, side, type, cv::Scalar::all(255)));
  const lab::Tensor one = env.to_input(cv::Mat(side, side, type, cv::Scalar::all(1)));
  const float divisor = 255.0f / white[0];
  LAB_CHECK(1.0f / divisor == one[0] && 255.0f / divisor == white[0],
            "to_input is not a division of the pixel value: 255 -> {}, 1 -> {}", white[0], one[0]);
  return divisor;
}

void run_export(const ExportArgs& args) {
  const auto env = args.source.environment();
  const lab::Network network = env->build_network();
  const nlohmann::json metadata = {
      {"env", env->name()}, {"options", env->options()}, {"image-divisor", image_divisor(*env)}};
  if (args.format == "onnx")
    lab::export_onnx(network, args.out, metadata);
  else
    lab::export_torch(network, args.out, metadata);
  fmt::print(stderr, "export: wrote the {} network ({} layers, {} parameters) as {} to {}\n", env->name(),
             network.size(), network.parameter_count(),
             args.format == "onnx" ? fmt::format("ONNX opset {}", lab::kOnnxOpset) : std::string("PyTorch .npz"),
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
