/// @file predict.h
/// @brief The environment's network run over a data directory: per sample the label, the
/// prediction, the logits and (when the network ends in a softmax) the probabilities.
///
/// The network runs on whole batches of `batch` images (an execution knob: results are the same
/// for every batch size). Logits are the output of the layer before the final softmax; for a
/// network without one (single-color-modulo) the outputs are reported as they are.
/// The designed networks predict every generated label (tested in test_predict.cpp at sizes 32 and 64).
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
  std::vector<int64_t> labels;   ///< from the manifest
  std::vector<int64_t> predicted;
  lab::Tensor logits;            ///< N×K: pre-softmax outputs, or the outputs (no softmax)
  lab::Tensor probabilities;     ///< N×K softmax outputs; empty without a softmax
  /// Fraction of samples whose prediction equals the label.
  double accuracy() const;
};

/// Runs the network on every sample of `data`, `batch` (>= 1) images at a time.
Predictions predict(const DataDir& data, int64_t batch = 16);

/// CSV with a header: id,label,predicted, then logit_0..logit_{K-1} and prob_0..prob_{K-1}
/// (softmax networks) or output_0..output_{K-1}; floats in shortest round-trip form. Atomic.
void write_predictions_csv(const DataDir& data, const Predictions& predictions, const std::filesystem::path& out);

}  // namespace datasets
