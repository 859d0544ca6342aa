// attrlab generate: a data directory of an environment's samples with ground truth and a manifest
// (datasets/data_dir.h).
#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "datasets/data_dir.h"
#include "datasets/environment.h"
#include "cli/commands.h"
#include "cli/listing.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/io/outputs.h"

namespace cli {

namespace {

struct GenerateArgs {
  std::string env;
  KeyValues options;
  int64_t count = 0;
  std::string seed = "0";
  std::string out;
  bool force = false;
};

void run_generate(const GenerateArgs& args) {
  if (args.count < 1) lab::fail_parameter("--count must be at least 1, got {}", args.count);
  const uint64_t seed = parse_seed(args.seed);
  lab::check_output_dir({"--out", args.out}, "manifest.json", args.force);
  lab::Options options = lab::Options::parse(args.options, "-o");
  const std::unique_ptr<datasets::Environment> env = datasets::make_environment(args.env, options);
  const auto lock = lab::lock_output_dir({"--out", args.out}, "manifest.json", args.force);
  datasets::write_data_dir(*env, args.count, seed, args.out, args.count >= 100);
  fmt::print(stderr, "generate: wrote {} {} samples (seed {}) to {}\n", args.count, env->name(), seed, args.out);
}

}  // namespace

void register_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  std::string names;
  for (const std::string& n : datasets::environment_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("generate", "Generate a data directory: images, ground truth, manifest");
  cmd->footer([] { return names_footer(datasets::environments(), "Environments", "envs"); });
  cmd->add_option("--env", args->env, "Environment: " + names)->required();
  cmd->add_option("-o", args->options,
                  "Option key=value (repeatable): the model's and the data's, e.g. -o size=64 -o patch-max=20 "
                  "(attrlab envs lists them)");
  cmd->add_option("--count", args->count, "Number of samples (>= 1)")->required();
  cmd->add_option("--seed", args->seed, "Data seed, 0..2^64-1; sample i depends only on (options, seed, i)")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Output data directory (new or empty; appears when complete)")->required();
  cmd->add_flag("--force", args->force, "Replace --out if it is a data directory attrlab generated");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace cli
