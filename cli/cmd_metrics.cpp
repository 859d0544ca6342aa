// attrlab metrics: every evaluation metric with its variants (and their directions) and parameters.
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

nlohmann::json variants_json(const std::vector<experiments::Variant>& variants) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& v : variants) out.push_back({{"name", v.name}, {"direction", experiments::direction_name(v.direction)}});
  return out;
}

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
                     {"source", m->source},
                     {"variants", variants_json(m->variants)},
                     {"params", params_json(m->params)}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  const size_t width = setting_width(shown);
  for (const auto* m : shown) {
    std::string variants;
    for (const auto& v : m->variants)
      variants += (variants.empty() ? "" : ", ") + v.name + " (" + experiments::direction_name(v.direction) + ")";
    fmt::print("{} ({})\n  {}\n  source: {}\n  variants: {}\n", m->name, m->family, m->summary, m->source, variants);
    print_params(m->params, width);
  }
}

}  // namespace

void register_metrics(CLI::App& app) {
  auto args = std::make_shared<MetricsArgs>();
  CLI::App* cmd =
      app.add_subcommand("metrics", "List the evaluation metrics with their variants, directions, parameters and defaults");
  cmd->add_option("name", args->name, "Show only this metric");
  cmd->add_flag("--json", args->json, "Print the list as JSON (name, family, summary, source, variants with directions, params)");
  cmd->callback([args] { run_metrics(*args); });
}

}  // namespace cli
