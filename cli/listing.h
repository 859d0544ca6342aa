/// @file listing.h
/// @brief What `attrlab methods`, `attrlab metrics` and `attrlab envs` share: choosing entries of a registry by
/// name, and writing each entry's `-p` parameters as JSON or as aligned text.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/schema.h"

namespace cli {

/// Every entry of `table` (entries have a `name`), or the one called `name` when it is not
/// empty; an unknown name is a parameter error listing the known ones (`kind`: "method", ...).
template <class Info>
std::vector<const Info*> select_entries(const std::vector<Info>& table, const std::string& name, const char* kind) {
  std::vector<const Info*> shown;
  for (const auto& entry : table)
    if (name.empty() || entry.name == name) shown.push_back(&entry);
  if (shown.empty()) {
    std::string list;
    for (const auto& entry : table) list += (list.empty() ? "" : ", ") + entry.name;
    lab::fail_parameter("unknown {} '{}'; known: {}", kind, name, list);
  }
  return shown;
}

/// The --help footer of a command that takes a component by name: every registered name, and
/// the listing command that shows their parameters from their schemas.
template <class Info>
std::string names_footer(const std::vector<Info>& table, const char* kind, const char* listing) {
  std::string names;
  for (const auto& entry : table) names += (names.empty() ? "" : ", ") + entry.name;
  return fmt::format("{}: {}\nParameters, types, defaults and ranges: attrlab {} NAME [--json]", kind, names, listing);
}

/// [{name, type, default, range or choices, help, source}, ...] (lab::ParamDoc::to_json)
inline nlohmann::json params_json(const std::vector<lab::ParamDoc>& params) { return lab::docs_json(params); }

/// Width of the "-p name=default" column that aligns the help of every entry shown.
template <class Info>
size_t setting_width(const std::vector<const Info*>& shown) {
  size_t width = 0;
  for (const auto* entry : shown)
    for (const auto& p : entry->params) width = std::max(width, p.name.size() + p.default_text().size() + 4);
  return width + 3;
}

/// "  -p name=default   help" per parameter (`flag`: -p for methods and metrics, -o for
/// environments; a derived default adds "(auto: how)"), "(no parameters)" when there are none,
/// then a blank line.
inline void print_params(const std::vector<lab::ParamDoc>& params, size_t width, const char* flag = "-p") {
  if (params.empty()) fmt::print("  (no parameters)\n");
  for (const auto& p : params)
    fmt::print("  {:<{}}  {}{}\n", fmt::format("{} {}={}", flag, p.name, p.default_text()), width, p.info.help,
               p.info.derived.empty() ? "" : " (auto: " + p.info.derived + ")");
  fmt::print("\n");
}

}  // namespace cli
