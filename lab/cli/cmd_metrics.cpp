// attrlab metrics: every evaluation metric with its parameters, defaults and direction.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "experiments/metrics/metric.h"
#include "lab/cli/commands.h"
#include "lab/core/error.h"

namespace cli {

namespace {

struct MetricsArgs {
  std::string name;
  bool json = false;
};

void run_metrics(const MetricsArgs& args) {
  const auto& table = experiments::registry();
  std::vector<const experiments::MetricInfo*> shown;
  for (const auto& m : table)
    if (args.name.empty() || m.name == args.name) shown.push_back(&m);
  if (shown.empty()) {
    std::string list;
    for (const auto& m : table) list += (list.empty() ? "" : ", ") + m.name;
    lab::fail_parameter("unknown metric '{}'; known: {}", args.name, list);
  }
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* m : shown) {
      nlohmann::json params = nlohmann::json::array();
      for (const auto& p : m->params) params.push_back({{"name", p.name}, {"default", p.default_value}, {"help", p.help}});
      out.push_back({{"name", m->name},
                     {"family", m->family},
                     {"summary", m->summary},
                     {"direction", m->direction},
                     {"params", params}});
    }
    fmt::print("{}\n", out.dump(2));
    return;
  }
  size_t width = 0;
  for (const auto* m : shown)
    for (const auto& p : m->params) width = std::max(width, p.name.size() + p.default_value.size() + 4);
  for (const auto* m : shown) {
    fmt::print("{} ({})\n  {}\n  {}\n", m->name, m->family, m->summary, m->direction);
    if (m->params.empty()) fmt::print("  (no parameters)\n");
    for (const auto& p : m->params) {
      const std::string setting = fmt::format("-p {}={}", p.name, p.default_value);
      fmt::print("  {:<{}}  {}\n", setting, width + 3, p.help);
    }
    fmt::print("\n");
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
