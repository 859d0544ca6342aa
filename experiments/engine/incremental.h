/// @file incremental.h
/// @brief The incremental evaluation engine lives in lab/nn/incremental.h (methods such as
/// Occlusion use it too); the experiments keep their names for it.
#pragma once

#include "lab/nn/incremental.h"

namespace experiments {

using lab::LocalChanges;
using lab::PathEvaluator;
using lab::PerturbationPath;
using lab::uniform_steps;

}  // namespace experiments
