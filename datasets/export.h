/// @file export.h
/// @brief An environment's network written for other frameworks (lab/io/export.h), with the
/// environment's record: what `attrlab export` and the Python module's `model.export` write.
///
/// The metadata stored with the network (ONNX metadata_props, the PyTorch archive's
/// architecture.json "metadata") is {"env": name, "options": every option resolved (as
/// environment_from_json() accepts them), "image-divisor": d}, where network input = pixel / d
/// (float32) is the environment's own image conversion: 1 for multi-color-sum (RGB values as
/// they are), 255 for single-color-modulo (white = 1). Tested in tests/datasets/test_export.cpp.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/environment.h"

namespace datasets {

enum class ExportFormat { kOnnx, kTorch };

/// "onnx" or "torch"; anything else throws lab::Error(kParameter) naming the value.
ExportFormat export_format(const std::string& name);
/// The divisor d with network input = pixel value / d, read off env.to_input.
float image_divisor(const Environment& env);
/// {"env", "options", "image-divisor"} (see the file comment).
nlohmann::json export_metadata(const Environment& env);
/// Writes env's network in `format` to `path`, atomically.
void export_network(const Environment& env, ExportFormat format, const std::filesystem::path& path);

}  // namespace datasets
