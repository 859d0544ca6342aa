/// @file predict.h
/// @brief The environment's network run over a data directory: per sample the label, the
/// prediction, the logits and (when the network ends in a softmax) the probabilities.
///
/// The network runs on whole batches of `batch` images (an execution knob: results are the same
/// for every batch size). Logits are the output of the layer before the final softmax; for a
/// network without one (single-color-modulo) the outputs are reported as they are.
/// The designed networks predict every generated label (tested in test_predict.cpp at sizes 32 and 64).
///
/// Any images (not only a data directory's) go through predict_inputs(): read_inputs_npy() takes
/// a .npy batch in either layout, N×C×H×W or N×H×W×C (N×H×W too for a one-channel input), as
/// float32 network inputs (used as they are) or uint8 images (converted per image by
/// Environment::to_input, exactly as the data pipeline converts its PNGs). A shape that fits both
/// layouts, or neither, is refused naming the file, its shape and the expected ones.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/data_dir.h"
#include "lab/core/tensor.h"

namespace datasets {

struct Predictions {
  bool softmax = false;          ///< the network ends in a softmax: `logits` precede it
  std::vector<int64_t> labels;   ///< from the manifest; empty for predict_inputs
  std::vector<int64_t> predicted;
  lab::Tensor logits;            ///< N×K: pre-softmax outputs, or the outputs (no softmax)
  lab::Tensor probabilities;     ///< N×K softmax outputs; empty without a softmax
  /// Fraction of samples whose prediction equals the label.
  double accuracy() const;
};

/// Runs the network on every sample of `data`, `batch` (>= 1) images at a time.
Predictions predict(const DataDir& data, int64_t batch = 16);

/// Runs the network of `env` on the network inputs `x` (N×C×H×W), `batch` (>= 1) images at a time.
Predictions predict_inputs(const Environment& env, const lab::Tensor& x, int64_t batch = 16);

/// How a batch file's dimensions are laid out.
enum class BatchLayout { kNCHW, kNHWC, kNHW };
/// The layout of a file shaped `file_shape` for one input shaped `input_shape` (C×H×W); `file`
/// names the file in the error for an ambiguous or unfitting shape.
BatchLayout batch_layout(const lab::Shape& file_shape, const lab::Shape& input_shape, const std::string& file);
/// N×C×H×W network inputs of `env` from a .npy batch (see the file comment); NaN/Inf refused.
lab::Tensor read_inputs_npy(const Environment& env, const std::filesystem::path& path);

/// CSV of predict_inputs: index (row of the batch),predicted, then the logit/prob (or output)
/// columns as write_predictions_csv writes them. Atomic.
void write_input_predictions_csv(const Predictions& predictions, const std::filesystem::path& out);

/// CSV with a header: id,label,predicted, then logit_0..logit_{K-1} and prob_0..prob_{K-1}
/// (softmax networks) or output_0..output_{K-1}; floats in shortest round-trip form. Atomic.
void write_predictions_csv(const DataDir& data, const Predictions& predictions, const std::filesystem::path& out);

}  // namespace datasets
