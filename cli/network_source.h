/// @file network_source.h
/// @brief Where `predict --inputs` and `export` take the network from: a data directory's
/// manifest (--data DIR) or an environment named on the command line (--env NAME -o key=value).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "cli/commands.h"
#include "datasets/environment.h"

namespace cli {

struct NetworkSource {
  std::string data;
  std::string env;
  KeyValues options;
  /// Adds --data, --env and -o to `cmd`; --data and --env exclude each other, -o needs --env.
  /// `data_help` says what --data is for in this command.
  void add_to(CLI::App& cmd, const std::string& data_help);
  /// The environment: rebuilt from DIR's manifest (as every command does) or made from --env and -o
  /// (unknown -o keys refused). Neither given throws CLI::RequiredError (a usage error).
  std::shared_ptr<const datasets::Environment> environment() const;
};

}  // namespace cli
