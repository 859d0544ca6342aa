// attrlab methods: every attribution method with its parameters, defaults and help.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "cli/commands.h"
#include "cli/listing.h"

namespace cli {

namespace {

struct MethodsArgs {
  std::string name;
  bool json = false;
};

void run_methods(const MethodsArgs& args) {
  const auto shown = select_entries(attributions::registry(), args.name, "method");
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* m : shown) out.push_back({{"name", m->name}, {"family", m->family}, {"summary", m->summary}, {"params", params_json(m->params)}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  const size_t width = setting_width(shown);
  for (const auto* m : shown) {
    // A plug-in's method may have no family.
    fmt::print("{}{}\n  {}\n", m->name, m->family.empty() ? "" : " (" + m->family + ")", m->summary);
    print_params(m->params, width);
  }
}

}  // namespace

void register_methods(CLI::App& app) {
  auto args = std::make_shared<MethodsArgs>();
  CLI::App* cmd = app.add_subcommand("methods", "List the attribution methods with their parameters and defaults");
  cmd->add_option("name", args->name, "Show only this method");
  cmd->add_flag("--json", args->json, "Print the list as JSON (name, family, summary, params with name/default/help)");
  cmd->callback([args] { run_methods(*args); });
}

}  // namespace cli
