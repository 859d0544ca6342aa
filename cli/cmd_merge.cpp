// attrlab merge: joins the run directories of `attrlab run --shard K/N` into one run directory,
// byte-identical to a 1-process run (experiments/run.h, merge_runs).
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "experiments/run.h"

namespace cli {

namespace {

struct MergeArgs {
  std::vector<std::string> dirs;
  std::string out;
};

void run_merge(const MergeArgs& args) {
  experiments::RunOptions options;
  options.out = args.out;
  options.quiet = true;
  const std::vector<std::filesystem::path> dirs(args.dirs.begin(), args.dirs.end());
  const experiments::RunSummary summary = experiments::merge_runs(dirs, options);
  fmt::print("merge: {} units from {} directories; results in {}\n", summary.units, dirs.size(),
             summary.results.string());
  fmt::print("merge: report at {} (and {})\n", summary.report_html.string(), summary.report_md.string());
}

}  // namespace

void register_merge(CLI::App& app) {
  auto args = std::make_shared<MergeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "merge", "Join the run directories of the shards of a run (run --shard K/N) into one run directory --out");
  cmd->add_option("dirs", args->dirs, "The shards' run directories (every unit exactly once)")->required();
  cmd->add_option("--out", args->out, "The run directory to write (new or empty)")->required();
  cmd->callback([args] { run_merge(*args); });
}

}  // namespace cli
