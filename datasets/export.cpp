#include "datasets/export.h"

#include <opencv2/core.hpp>

#include "lab/core/error.h"
#include "lab/io/export.h"

namespace datasets {

ExportFormat export_format(const std::string& name) {
  if (name == "onnx") return ExportFormat::kOnnx;
  if (name == "torch") return ExportFormat::kTorch;
  lab::fail_parameter("export format '{}' is unknown; expected onnx or torch", name);
}

float image_divisor(const Environment& env) {
  // Both environments divide the pixel value by a constant; reading it off to_input keeps the
  // conversion written once (in the environment).
  const int side = static_cast<int>(env.image_size());
  const int type = env.image_channels() == 3 ? CV_8UC3 : CV_8UC1;
  const lab::Tensor white = env.to_input(cv::Mat(side, side, type, cv::Scalar::all(255)));
  const lab::Tensor one = env.to_input(cv::Mat(side, side, type, cv::Scalar::all(1)));
  const float divisor = 255.0f / white[0];
  LAB_CHECK(1.0f / divisor == one[0] && 255.0f / divisor == white[0],
            "to_input is not a division of the pixel value: 255 -> {}, 1 -> {}", white[0], one[0]);
  return divisor;
}

nlohmann::json export_metadata(const Environment& env) {
  return {{"env", env.name()}, {"options", env.options()}, {"image-divisor", image_divisor(env)}};
}

void export_network(const Environment& env, ExportFormat format, const std::filesystem::path& path) {
  const lab::Network network = env.build_network();
  if (format == ExportFormat::kOnnx)
    lab::export_onnx(network, path, export_metadata(env));
  else
    lab::export_torch(network, path, export_metadata(env));
}

}  // namespace datasets
