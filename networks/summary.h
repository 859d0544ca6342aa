/// @file summary.h
/// @brief The model summary `attrlab summary` prints: every layer with its kind, output shape,
/// parameters and what it holds, then the totals counted like the paper's Table 1.
///
/// Table 1 counts convolution and linear layers ("Ours: 17 layers, 675,033 parameters"); the
/// summary gives that count and the count of all layers (ReLU, flatten and softmax included).
/// Tested in test_registry.cpp (columns, totals and the Table 1 line of both default models).
#pragma once

#include <string>

#include "networks/registry.h"

namespace networks {

/// "675,033".
std::string group_digits(int64_t n);

/// The summary text: options, a table of layers, the totals, the paper's method layers and
/// `build_seconds` (how long building took).
std::string format_summary(const ModelInfo& info, double build_seconds);

}  // namespace networks
