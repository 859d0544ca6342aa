/// @file commands.h
/// @brief The attrlab subcommands. Each lives in its own cmd_<name>.cpp and adds itself to the
/// app in its register function; main.cpp lists them in one table.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cli {

/// Each register function adds one subcommand (with its --help text, flags and callback).
void register_summary(CLI::App& app);
void register_generate(CLI::App& app);
void register_envs(CLI::App& app);
void register_predict(CLI::App& app);
void register_methods(CLI::App& app);
void register_attribute(CLI::App& app);
void register_run(CLI::App& app);
void register_metrics(CLI::App& app);
void register_evaluate(CLI::App& app);
void register_export(CLI::App& app);
void register_merge(CLI::App& app);

/// Splits repeated "-o key=value" style options: CLI11 stores them as a vector of strings.
using KeyValues = std::vector<std::string>;

/// A --seed value: the full unsigned 64-bit range; a sign or anything else is refused (never
/// wrapped).
uint64_t parse_seed(const std::string& text);

}  // namespace cli
