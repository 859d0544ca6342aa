/// @file export.h
/// @brief A lab::Network written for other frameworks: ONNX (opset 13) and a PyTorch archive
/// (.npz of weights plus a JSON architecture, loaded by python/attrlab/torch.py).
///
/// Both formats hold the exact network: every layer in order, weights and biases as the float32
/// values the runtime uses, nothing fused or folded. The layers map one to one:
///
/// | lab layer | ONNX (opset 13)                                   | torch.nn                    |
/// |-----------|---------------------------------------------------|-----------------------------|
/// | Conv2d    | Conv (kernel_shape, strides, pads, group)         | Conv2d                      |
/// | Linear    | Gemm (transB = 1)                                 | Linear                      |
/// | ReLU      | Relu                                              | ReLU                        |
/// | Softmax   | Softmax (axis = 1, on N×K)                        | Softmax(dim=1)              |
/// | Flatten   | Flatten (axis = 1)                                | Flatten(1)                  |
/// | MaxPool2d | MaxPool (kernel_shape, strides, pads)             | MaxPool2d                   |
/// | BatchNorm | BatchNormalization (epsilon; γ, β, mean, var)     | attrlab.torch.BatchNorm     |
/// | Add       | Add (2 inputs) or Sum (more)                      | attrlab.torch.Add           |
/// | Concat    | Concat (axis = 1)                                 | attrlab.torch.Concat        |
/// | Multiply  | Mul                                               | attrlab.torch.Multiply      |
///
/// Graph networks: ONNX nodes read their inputs' tensors by name; the archive's layer records of a
/// graph add "inputs" (node names, "input" for the network input) and, for a node applying the
/// same layer object as an earlier node, "shares" (that node's name; the loader reuses its module).
/// A chain's records have neither. A final softmax must read the node before it (its "logits").
///
/// ONNX graph: input "input" (batch × C × H × W, the batch dimension symbolic, "batch"); every
/// layer's output tensor is named after the layer ("accumulator.layers.5"), except the graph
/// outputs: a network ending in a softmax outputs "logits" (the softmax's input) and
/// "probabilities"; a network without one outputs "outputs". Weights are initializers
/// "<layer>.weight" and "<layer>.bias". `metadata` (e.g. {"env", "options"}) is stored as
/// metadata_props, objects as JSON text. The model passes onnx::checker before it is written.
///
/// PyTorch archive (.npz, lab/io/npz.h): "architecture.json" (format "attrlab-network", version 1,
/// input-shape, output, metadata and per layer its name, kind and hyper-parameters) and per affine
/// layer "<layer>.weight.npy" and "<layer>.bias.npy" (absent without bias), shaped as torch.nn
/// stores them (Conv2d: out × in/groups × kh × kw; Linear: out × in); a batch-norm stores γ, β,
/// "<layer>.running_mean.npy" and "<layer>.running_var.npy".
/// Tested in tests/datasets/test_export.cpp (checker, OpenCV's ONNX importer against the runtime
/// on both environments) and tests/python/test_export_torch.py (logits and input gradients).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "lab/nn/network.h"

namespace lab {

/// The ONNX operator set the exported models declare.
inline constexpr int kOnnxOpset = 13;

/// Serialized ONNX ModelProto of `network` (checked with onnx::checker).
std::string onnx_model_bytes(const Network& network, const nlohmann::json& metadata = nlohmann::json::object());
/// Writes onnx_model_bytes to `path`, atomically.
void export_onnx(const Network& network, const std::filesystem::path& path,
                 const nlohmann::json& metadata = nlohmann::json::object());
/// Parses an ONNX file and runs onnx::checker::check_model (full check); a problem throws
/// lab::Error naming the file and the checker's message.
void check_onnx(const std::filesystem::path& path);

/// The architecture record of the PyTorch archive (see the file comment).
nlohmann::json architecture_json(const Network& network, const nlohmann::json& metadata = nlohmann::json::object());
/// Writes the PyTorch archive (.npz) of `network` to `path`, atomically.
void export_torch(const Network& network, const std::filesystem::path& path,
                  const nlohmann::json& metadata = nlohmann::json::object());

}  // namespace lab
