/// @file param_parts.h
/// @brief Parameters that several metrics have, each declared once as a part of a schema
/// (lab::Schema::with, as attributions/common.h does for the methods): the key, its type, range
/// and choices are written here; a metric passes the line of help and the source that describe
/// the parameter in its own terms, and its Params member's initializer stays the default.
///
///     static const auto s = lab::Schema<Params>()
///         .with(pixels_per_step_param(&Params::pixels_per_step, "pixels flipped per step"))
///         .with(score_output_param(&Params::output, "score read: the target logit, or its probability"));
///
/// Listed, read and recorded like any field (`attrlab metrics NAME`).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "experiments/engine/perturbation.h"
#include "lab/core/schema.h"

namespace experiments {

/// `-p output=probability|logit`: the target's score a metric reads (OutputReader), after the
/// softmax or before it. The default (the member's initializer) is listed first.
template <class P>
auto score_output_param(OutputKind P::*member, std::string help, std::string source = "") {
  return [member, help = std::move(help), source = std::move(source)](lab::Schema<P>& s) {
    std::vector<std::pair<OutputKind, std::string>> names = {{OutputKind::kProbability, "probability"},
                                                             {OutputKind::kLogit, "logit"}};
    if (P{}.*member == OutputKind::kLogit) std::swap(names[0], names[1]);
    s.choice("output", member, std::move(names), {.help = help, .source = source});
  };
}

/// `-p pixels-per-step=N`, an integer ≥ 1: the pixels one step of a metric's perturbation
/// changes (or one of its pixel sets holds).
template <class P>
auto pixels_per_step_param(int64_t P::*member, std::string help, std::string source = "") {
  return [member, help = std::move(help), source = std::move(source)](lab::Schema<P>& s) {
    s.field("pixels-per-step", member, {.range = lab::at_least(1), .help = help, .source = source});
  };
}

/// `-p seed=N`, an integer ≥ 0: the metric's random stream, combined with each sample's seed
/// (`help` says what it selects).
template <class P>
auto seed_param(uint64_t P::*member, std::string help) {
  return [member, help = std::move(help)](lab::Schema<P>& s) {
    s.field("seed", member, {.range = lab::at_least(0), .help = help});
  };
}

}  // namespace experiments
