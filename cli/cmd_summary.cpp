// attrlab summary: every layer of an environment's hand-weighted model and the totals, like the
// paper's Table 1.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "lab/core/options.h"
#include "networks/registry.h"
#include "networks/summary.h"

namespace cli {

namespace {

struct SummaryArgs {
  std::string env;
  KeyValues options;
};

void run_summary(const SummaryArgs& args) {
  lab::Options options = lab::Options::parse(args.options, "-o");
  const auto start = std::chrono::steady_clock::now();
  const networks::ModelInfo info = networks::make_model(args.env, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  options.finish(info.keys);
  const std::string text = networks::format_summary(info, seconds);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

void register_summary(CLI::App& app) {
  auto args = std::make_shared<SummaryArgs>();
  std::string names;
  for (const std::string& n : networks::model_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("summary", "Print every layer of an environment's model and the totals (Table 1)");
  cmd->add_option("--env", args->env, "Environment: " + names)->required();
  cmd->add_option("-o", args->options, "Model option key=value (repeatable), e.g. -o size=64 -o accumulator=uniform");
  cmd->callback([args] { run_summary(*args); });
}

}  // namespace cli
