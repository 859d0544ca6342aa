/// @file params_util.h
/// @brief Option readers shared by the model Params (seed as a full 64-bit word).
/// Tested in test_multi_color_sum.cpp (the largest seed, a negative one).
#pragma once

#include <cstdint>

#include "lab/core/options.h"

namespace networks {

/// `-o seed=S` with S in 0..2^64−1; anything else is a lab::Error naming the option.
uint64_t read_seed(lab::Options& options, uint64_t fallback);

}  // namespace networks
