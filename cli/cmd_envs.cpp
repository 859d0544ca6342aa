// attrlab envs: every environment with its paper section and its -o options, defaults and help.
#include <fmt/format.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/listing.h"
#include "datasets/environment.h"

namespace cli {

namespace {

struct EnvsArgs {
  std::string name;
  bool json = false;
};

void run_envs(const EnvsArgs& args) {
  const auto shown = select_entries(datasets::environments(), args.name, "environment");
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* e : shown)
      out.push_back(
          {{"name", e->name}, {"summary", e->summary}, {"source", e->source}, {"params", params_json(e->params)}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  const size_t width = setting_width(shown);
  for (const auto* e : shown) {
    fmt::print("{}\n  {} ({})\n", e->name, e->summary, e->source);
    print_params(e->params, width, "-o");
  }
}

}  // namespace

void register_envs(CLI::App& app) {
  auto args = std::make_shared<EnvsArgs>();
  CLI::App* cmd = app.add_subcommand("envs", "List the environments with their -o options and defaults");
  cmd->add_option("name", args->name, "Show only this environment");
  cmd->add_flag("--json", args->json, "Print the list as JSON (name, summary, source, params with type/default/help)");
  cmd->callback([args] { run_envs(*args); });
}

}  // namespace cli
