// attrlab run: one experiment end to end — data, maps, metrics, tables, figures, report
// (experiments/config.h, experiments/run.h).
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "experiments/config.h"
#include "experiments/report/report.h"
#include "experiments/run.h"
#include "lab/core/schema.h"
#include "cli/commands.h"
#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace cli {

namespace {

struct RunArgs {
  std::string experiment;
  KeyValues overrides;
  bool quiet = false;
  bool resume = false;
  bool list = false;
  bool paper_scale = false;
  bool rebuild = false;
  std::string stage = "all";
  bool force = false;
  std::string shard;
  CLI::Option* shard_option = nullptr;  // given at all (an empty K/N is refused, not ignored)
  bool mpi = false;
  std::vector<std::string> reuse;
  std::string out;
};

void list_experiments() {
  fmt::print("Settings (-o key=value; the shipped experiments extend base):\n");
  for (const lab::ParamDoc& d : experiments::Settings::schema().docs())
    fmt::print("  {:<12} {:<7} {:<8} {}\n", d.name, lab::type_name(d.type), d.default_text(), d.info.help);
  fmt::print("  select, models-select, models, methods, metrics, report, paper-scale: see the README\n\nExperiments:\n");
  for (const experiments::ShippedConfig* c : experiments::runnable_configs()) {
    const nlohmann::json resolved = experiments::finalize(experiments::load_config(c->name));
    fmt::print("{}\n    {}\n    default: {} images, size {}, {} models, {} methods\n", c->name, c->description,
               resolved.at("count").get<int64_t>(), resolved.at("size").get<int64_t>(), resolved.at("models").size(),
               resolved.at("methods").size());
  }
}

void run_run(const RunArgs& args) {
  if (args.list) {
    if (!args.experiment.empty() || !args.out.empty() || !args.overrides.empty())
      lab::fail_parameter("run --list takes no experiment, -o or --out");
    list_experiments();
    return;
  }
  if (args.rebuild) {
    if (!args.experiment.empty() || !args.overrides.empty() || args.resume || args.paper_scale || args.force ||
        args.shard_option->count() > 0 || args.mpi || !args.reuse.empty())
      lab::fail_parameter("run --rebuild takes only --out RUN_DIR");
    if (args.out.empty()) lab::fail_parameter("run --rebuild: --out RUN_DIR is required");
    if (!std::filesystem::is_directory(args.out))
      lab::fail("--out {}: no run directory ({})", args.out, lab::describe_file_type(args.out));
    const lab::DirLock lock(args.out, "--out");
    const experiments::ReportFiles files = experiments::rebuild_report(args.out);
    fmt::print("run: report rebuilt at {} (and {})\n", files.html.string(), files.markdown.string());
    return;
  }
  if (args.experiment.empty()) lab::fail_parameter("run: name a shipped experiment or a config file (see run --list)");
  if (args.out.empty()) lab::fail_parameter("run: --out RUN_DIR is required");
  const bool sharded = args.shard_option->count() > 0;
  const auto [shard_index, shard_count] =
      sharded ? experiments::parse_shard(args.shard) : std::pair<int64_t, int64_t>{0, 0};
  if (sharded && args.mpi)
    lab::fail_parameter("run: --shard and --mpi exclude each other (with --mpi the ranks share the units)");
  nlohmann::json config = experiments::load_config(args.experiment);
  std::vector<std::string> applied;
  if (args.paper_scale) {
    const nlohmann::json scale = config.value("paper-scale", nlohmann::json::object());
    for (const auto& [key, value] : scale.items())
      applied.push_back(key + "=" + (value.is_string() ? value.get<std::string>() : value.dump()));
    experiments::apply_overrides(config, applied);
  }
  experiments::apply_overrides(config, args.overrides);
  applied.insert(applied.end(), args.overrides.begin(), args.overrides.end());
  const nlohmann::json resolved = experiments::finalize(config);
  experiments::RunOptions options;
  options.out = args.out;
  options.resume = args.resume;
  options.force = args.force;
  options.quiet = args.quiet;
  options.source = args.experiment;
  options.overrides = applied;
  options.stage = args.stage;
  options.shard_index = shard_index;
  options.shard_count = shard_count;
  options.mpi = args.mpi;
  options.reuse.assign(args.reuse.begin(), args.reuse.end());
  const experiments::RunSummary summary = experiments::run_experiment(resolved, options);
  if (summary.worker) return;  // rank 0 of the MPI job reports
  if (args.stage == "data") {
    for (const std::filesystem::path& dir : summary.data) fmt::print("run: data in {}\n", dir.string());
    fmt::print("run: stopped after the data (--stage data); continue with --resume and the same config\n");
    return;
  }
  if (summary.shard) {
    fmt::print("run: shard {}/{}: {} units ({} kept from the earlier run) in {}; join the shards with attrlab merge\n",
               shard_index, shard_count, summary.units, summary.skipped, args.out);
    return;
  }
  fmt::print("run: {} units ({} kept from the earlier run{}); results in {}\n", summary.units, summary.skipped,
             summary.reused > 0 ? fmt::format(", {} with maps from --reuse", summary.reused) : "",
             summary.results.string());
  fmt::print("run: report at {} (and {})\n", summary.report_html.string(), summary.report_md.string());
}

}  // namespace

void register_run(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  std::string names;
  for (const experiments::ShippedConfig* c : experiments::runnable_configs()) names += (names.empty() ? "" : ", ") + c->name;
  CLI::App* cmd = app.add_subcommand(
      "run", "Run an experiment end to end (data, maps, metrics, tables, figures, report) into --out");
  cmd->add_option("experiment", args->experiment, "Shipped experiment (" + names + ") or a JSON config file");
  cmd->add_option("-o", args->overrides,
                  "Override key=value (repeatable; dotted keys, list elements by label or index), "
                  "e.g. -o count=4 -o size=32 -o methods.IG.params.steps=16");
  cmd->add_flag("--paper-scale", args->paper_scale,
                "Apply the experiment's paper-scale settings (224×224 images, more of them) before -o");
  cmd->add_flag("--quiet", args->quiet, "No progress bar on stderr");
  cmd->add_flag("--resume", args->resume, "Continue the run in --out: keep its finished units, compute the rest");
  cmd->add_option("--stage", args->stage,
                  "all, or data: stop after writing config.json and the data (for outside tools; then --resume)")
      ->check(CLI::IsMember({"all", "data"}))
      ->capture_default_str();
  cmd->add_flag("--force", args->force,
                "Start the run in --out again: remove its files first (only a run directory attrlab wrote)");
  cmd->add_flag("--list", args->list, "List the experiment settings and the shipped experiments, and exit");
  cmd->add_flag("--rebuild", args->rebuild,
                "Write the tables, figures and report of the finished run in --out again from its files");
  args->shard_option = cmd->add_option("--shard", args->shard,
                  "K/N: run only shard K of N (0 <= K < N; units i with i % N == K); join the shards with attrlab merge");
  cmd->add_flag("--mpi", args->mpi, "Under mpirun: the ranks share the units, rank 0 writes --out");
  cmd->add_option("--reuse", args->reuse,
                  "RUN_DIR of an earlier run (repeatable): take its maps of the same method, data and settings "
                  "instead of computing them (results unchanged)");
  cmd->add_option("--out", args->out, "Run directory (created; must be new or empty unless --resume)");
  cmd->callback([args] { run_run(*args); });
}

}  // namespace cli
