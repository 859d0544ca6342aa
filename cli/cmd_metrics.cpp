// attrlab metrics: every evaluation metric with its parameters, defaults and direction.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "experiments/metrics/metric.h"
#include "cli/commands.h"
#include "cli/listing.h"

namespace cli {

namespace {

struct MetricsArgs {
  std::string name;
  bool json = false;
};

void run_metrics(const MetricsArgs& args) {
  const auto shown = select_entries(experiments::registry(), args.name, "metric");
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* m : shown)
      out.push_back({{"name", m->name},
                     {"family", m->family},
                     {"summary", m->summary},
                     {"direction", m->direction},
                     {"params", params_json(m->params)}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  const size_t width = setting_width(shown);
  for (const auto* m : shown) {
    fmt::print("{} ({})\n  {}\n  {}\n", m->name, m->family, m->summary, m->direction);
    print_params(m->params, width);
  }
}

}  // namespace

void register_metrics(CLI::App& app) {
  auto args = std::make_shared<MetricsArgs>();
  CLI::App* cmd =
      app.add_subcommand("metrics", "List the evaluation metrics with their parameters, defaults and direction");
  cmd->add_option("name", args->name, "Show only this metric");
  cmd->add_flag("--json", args->json, "Print the list as JSON (name, family, summary, direction, params)");
  cmd->callback([args] { run_metrics(*args); });
}

}  // namespace cli
