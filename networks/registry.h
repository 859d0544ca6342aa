/// @file registry.h
/// @brief Environment name → model builder: the one table the CLI and experiments look models up in.
///
/// An explicit table (no self-registration, which static linking would drop). Names are the
/// environments': "multi-color-sum", "single-color-modulo" and the trap zoo's (networks/traps.h). Tested in test_registry.cpp.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/options.h"
#include "lab/nn/network.h"
#include "networks/model.h"

namespace networks {

/// The known environment names, sorted.
std::vector<std::string> model_names();

/// A built model with its resolved options and the layers the paper's methods attach to.
struct ModelInfo {
  std::string env;
  nlohmann::json params;                            ///< Params::schema().to_json(): every option, resolved
  std::vector<std::string> keys;                    ///< every `-o` key of the model
  Model model;
  std::map<std::string, std::string> paper_layers;  ///< method → layer name (App. F.2, G.2)
};

/// Reads the environment's model options from `options` (not calling finish()) and builds the
/// model. An unknown env throws lab::Error(kParameter) listing the known names.
ModelInfo make_model(const std::string& env, lab::Options& options);
lab::Network build_model(const std::string& env, lab::Options& options);

}  // namespace networks
