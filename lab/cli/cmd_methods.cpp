// attrlab methods: every attribution method with its parameters, defaults and help.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "lab/cli/commands.h"
#include "lab/core/error.h"

namespace cli {

namespace {

struct MethodsArgs {
  std::string name;
  bool json = false;
};

void run_methods(const MethodsArgs& args) {
  const auto& table = attributions::registry();
  std::vector<const attributions::MethodInfo*> shown;
  for (const auto& m : table)
    if (args.name.empty() || m.name == args.name) shown.push_back(&m);
  if (shown.empty()) {
    std::string list;
    for (const auto& m : table) list += (list.empty() ? "" : ", ") + m.name;
    lab::fail_parameter("unknown method '{}'; known: {}", args.name, list);
  }
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* m : shown) {
      nlohmann::json params = nlohmann::json::array();
      for (const auto& p : m->params) params.push_back({{"name", p.name}, {"default", p.default_value}, {"help", p.help}});
      out.push_back({{"name", m->name}, {"summary", m->summary}, {"params", params}});
    }
    fmt::print("{}\n", out.dump(2));
    return;
  }
  size_t width = 0;
  for (const auto* m : shown)
    for (const auto& p : m->params) width = std::max(width, p.name.size() + p.default_value.size() + 4);
  for (const auto* m : shown) {
    fmt::print("{}\n  {}\n", m->name, m->summary);
    if (m->params.empty()) fmt::print("  (no parameters)\n");
    for (const auto& p : m->params) {
      const std::string setting = fmt::format("-p {}={}", p.name, p.default_value);
      fmt::print("  {:<{}}  {}\n", setting, width + 3, p.help);
    }
    fmt::print("\n");
  }
}

}  // namespace

void register_methods(CLI::App& app) {
  auto args = std::make_shared<MethodsArgs>();
  CLI::App* cmd = app.add_subcommand("methods", "List the attribution methods with their parameters and defaults");
  cmd->add_option("name", args->name, "Show only this method");
  cmd->add_flag("--json", args->json, "Print the list as JSON (name, summary, params with name/default/help)");
  cmd->callback([args] { run_methods(*args); });
}

}  // namespace cli
