#include "cli/network_source.h"

#include "datasets/data_dir.h"
#include "lab/core/options.h"

namespace cli {

void NetworkSource::add_to(CLI::App& cmd, const std::string& data_help) {
  std::string names;
  for (const std::string& n : datasets::environment_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::Option* data_opt = cmd.add_option("--data", data, data_help);
  CLI::Option* env_opt = cmd.add_option("--env", env, "Environment whose network is used (instead of --data): " + names);
  CLI::Option* o_opt = cmd.add_option("-o", options,
                                      "Environment option key=value (repeatable, with --env; attrlab envs lists them)");
  env_opt->excludes(data_opt);
  o_opt->needs(env_opt);
}

std::shared_ptr<const datasets::Environment> NetworkSource::environment() const {
  if (!data.empty()) {
    // The data directory's own environment object (the one predict and attribute use).
    auto dir = std::make_shared<datasets::DataDir>(datasets::DataDir::open(data));
    return std::shared_ptr<const datasets::Environment>(dir, &dir->env());
  }
  if (env.empty()) throw CLI::RequiredError("--data or --env");
  lab::Options o = lab::Options::parse(options, "-o");
  return datasets::make_environment(env, o);
}

}  // namespace cli
