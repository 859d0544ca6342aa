// attrlab evaluate: scores attribution maps of any origin (MAPS/<id>.npy) against a data
// directory with chosen metrics through the score stage `attrlab run` uses; writes the results
// CSV (+ .json record) and optionally the curves CSV (experiments/evaluate.h, README
// "Evaluation metrics").
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "experiments/evaluate.h"
#include "cli/commands.h"
#include "cli/listing.h"
#include "experiments/metrics/metric.h"
#include "experiments/progress.h"
#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace cli {

namespace {

struct EvaluateArgs {
  std::string data;
  std::vector<std::string> maps;
  std::vector<std::string> metrics;
  KeyValues params;
  std::string out;
  std::string curves;
  std::string model;
  std::string seed = "0";
  int64_t limit = -1;
  int64_t unit = 16;
  int64_t batch = 256;
  bool quiet = false;
  bool resume = false;
  bool force = false;
};

void print_summary(const experiments::Evaluation& e) {
  std::map<std::pair<std::string, std::string>, std::string> direction;
  for (const auto& [metric, v] : e.variants) direction[{metric, v.name}] = experiments::direction_name(v.direction);
  size_t wm = 6, wx = 6, wv = 7;
  for (const experiments::ResultRow& r : e.rows)
    if (r.sample == experiments::kAllSamples) {
      wm = std::max(wm, r.method.size());
      wx = std::max(wx, r.metric.size());
      wv = std::max(wv, r.variant.size());
    }
  fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>12}  {}\n", "method", wm, "metric", wx, "variant", wv, "mean", "better");
  for (const experiments::ResultRow& r : e.rows)
    if (r.sample == experiments::kAllSamples)
      fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>12.6f}  {}\n", r.method, wm, r.metric, wx, r.variant, wv, r.value,
                 direction[{r.metric, r.variant}]);
}

void run_evaluate(const EvaluateArgs& args) {
  std::vector<lab::NamedPath> outputs = {{"--out", args.out}, {"--out's record", experiments::record_path(args.out)}};
  if (!args.curves.empty()) outputs.push_back({"--curves", args.curves});
  outputs.push_back({"--out's unit directory", experiments::unit_dir(args.out)});
  std::vector<lab::NamedPath> inputs = {{"--data", args.data}};
  for (const std::string& m : args.maps) inputs.push_back({"--maps", m});
  lab::check_distinct(outputs, inputs);
  for (const lab::NamedPath& o : outputs)
    if (o.path != experiments::unit_dir(args.out)) lab::check_output_file(o);
  experiments::EvaluateRequest request;
  request.data = args.data;
  request.maps.assign(args.maps.begin(), args.maps.end());
  request.metrics = args.metrics;
  request.params = args.params;
  request.model = args.model;
  request.seed = parse_seed(args.seed);
  request.limit = args.limit;
  request.unit = args.unit;
  request.batch = args.batch;
  const std::optional<std::filesystem::path> curves =
      args.curves.empty() ? std::nullopt : std::optional<std::filesystem::path>(args.curves);
  std::unique_ptr<experiments::Progress> progress;
  int64_t total = 0, kept = 0;
  const experiments::Evaluation e = experiments::run_evaluate(
      request, args.out, curves, [&](int64_t units, const std::string& method) {
        if (units >= 0) {
          total = units;
          // Only on a terminal: a log or a pipe gets the summary alone.
          progress = std::make_unique<experiments::Progress>(units, !args.quiet && ::isatty(::fileno(stderr)) == 1);
        } else if (units == experiments::kUnitKept) {
          ++kept;
          progress->skip(1);
        } else {
          progress->start(method);
          progress->advance();
        }
      },
      {args.resume, args.force});
  if (progress) progress->finish();
  if (kept > 0)
    fmt::print(stderr, "evaluate: {} of {} units kept from the interrupted evaluation in {}\n", kept, total,
               experiments::unit_dir(args.out).string());
  print_summary(e);
  for (const experiments::Evaluation::Conversion& c : e.conversions)
    fmt::print(stderr, "evaluate: {}: {} map file(s) of dtype {} converted to float32\n", c.dir.string(), c.files,
               c.dtype);
  for (const std::filesystem::path& dir : e.unfingerprinted)
    fmt::print(stderr, "evaluate: {}: no data fingerprint (maps.json absent or without one); matched to the data by "
               "sample ids and shapes only\n", dir.string());
  for (const experiments::RejectedMap& r : e.rejected)
    fmt::print(stderr, "evaluate: rejected {} (method {}): {}\n", r.file.string(), r.method, r.reason);
  fmt::print(stderr, "evaluate: wrote {} rows to {} and {}{}\n", e.rows.size(), args.out,
             experiments::record_path(args.out).string(), curves ? " and curves to " + args.curves : "");
  if (!e.rejected.empty())
    lab::fail("{}: rejected; {} map file(s) rejected and not scored in all (listed above), the other maps were scored",
              e.rejected.front().file.string(), e.rejected.size());
}

}  // namespace

void register_evaluate(CLI::App& app) {
  auto args = std::make_shared<EvaluateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "evaluate", "Score attribution maps (MAPS/<id>.npy, any origin) on a data directory with evaluation metrics");
  cmd->footer([] { return names_footer(experiments::registry(), "Metrics", "metrics"); });
  cmd->add_option("--data", args->data, "Data directory (from attrlab generate)")->required();
  cmd->add_option("--maps", args->maps, "Maps directory of one method (repeatable): <id>.npy, optional maps.json")
      ->required();
  cmd->add_option("--metric", args->metrics, "Metric (repeatable; attrlab metrics lists them)")->required();
  cmd->add_option("-p", args->params, "Metric parameter key=value (repeatable), applied to every metric that knows it");
  cmd->add_option("--out", args->out, "Results CSV: model,sample,method,metric,variant,value (+ a .json record beside it)")
      ->required();
  cmd->add_option("--curves", args->curves, "Curves CSV: model,sample,method,metric,variant,x,y");
  cmd->add_option("--model", args->model, "The model column of the rows (default: the data's environment name)");
  cmd->add_option("--seed", args->seed, "Seed of the metrics' random draws (sample i uses a seed derived from it)")
      ->capture_default_str();
  cmd->add_option("--limit", args->limit, "Score only the first N samples of the data (a quick look)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet", args->quiet, "No progress bar on stderr");
  cmd->add_flag("--resume", args->resume,
                "Continue an interrupted evaluation of the same --out (its finished units are kept in OUT.units/)");
  cmd->add_flag("--force", args->force, "Start an interrupted evaluation of the same --out again");
  cmd->add_option("--unit", args->unit, "Samples per metric call (execution only; results do not change)")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "Largest number of perturbed inputs per network call (execution only)")
      ->capture_default_str();
  cmd->callback([args] { run_evaluate(*args); });
}

}  // namespace cli
