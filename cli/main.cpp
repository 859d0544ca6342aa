// attrlab: the command-line entry point. One top-level catch turns every error into a one-line
// message and an exit code: 1 for what the user typed (an unknown flag, a bad option or parameter
// value, an unknown name, a bad config key, an unusable path), 2 for a bad input file (missing, malformed, bad shape
// or data), 4 for an internal error.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "attributions/plugin.h"
#include "cli/commands.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/io/outputs.h"

namespace {

using Register = void (*)(CLI::App&);

// Every subcommand, in the order `attrlab --help` lists them.
constexpr Register kCommands[] = {
    cli::register_summary,
    cli::register_generate,
    cli::register_envs,
    cli::register_predict,
    cli::register_methods,
    cli::register_attribute,
    cli::register_run,
    cli::register_metrics,
    cli::register_evaluate,
    cli::register_export,
    cli::register_merge,
};

// The values of every `--plugin PATH` / `--plugin=PATH` before the subcommand.
std::vector<std::string> plugin_arguments(int argc, char** argv) {
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--plugin" && i + 1 < argc) paths.emplace_back(argv[++i]);
    else if (arg.rfind("--plugin=", 0) == 0) paths.push_back(arg.substr(9));
    else if (arg == "--threads") ++i;  // the one other global option with a value
    else if (arg.empty() || arg[0] != '-') break;  // the subcommand
  }
  return paths;
}

}  // namespace

// The command's entry point, called by the executable (cli/launcher.cpp) once it has loaded this
// library.
extern "C" int attrlab_main(int argc, char** argv) {
  lab::prepare_process(argv);
  lab::install_interrupt_cleanup();  // before any other thread starts
  CLI::App app{"attrlab: a laboratory for testing feature-attribution methods against known truth"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("attrlab ") + ATTRLAB_VERSION);
  std::string threads;
  app.add_option("--threads", threads,
                 "Threads for oneDNN and TBB, at most 4 × the cores (default: ATTRLAB_THREADS or all cores)");
  std::vector<std::string> plugins;
  app.add_option("--plugin", plugins,
                 "Load attribution methods from a plug-in (a shared library built with ATTRLAB_PLUGIN; "
                 "repeatable)")
      ->allow_extra_args(false);
  app.parse_complete_callback([&] {
    // Parsed first so that a bad value is named before ATTRLAB_THREADS is read.
    const int n = threads.empty() ? 0 : lab::parse_threads(threads, "--threads " + threads);
    lab::Runtime& runtime = lab::Runtime::get();  // reads and checks ATTRLAB_THREADS
    if (n > 0) runtime.set_threads(n);
    // Before any subcommand runs, so that every command makes and lists the plug-ins' methods.
    for (const std::string& path : plugins) attributions::load_plugin(path);
  });
  for (Register add : kCommands) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 1 (CLI11's own codes are not ours).
    // Help is called for before the parse completes: load the plug-ins named so far, so that the
    // help's list of methods names theirs too.
    if (dynamic_cast<const CLI::CallForHelp*>(&e) || dynamic_cast<const CLI::CallForAllHelp*>(&e)) {
      try {
        for (const std::string& path : plugin_arguments(argc, argv)) attributions::load_plugin(path);
      } catch (const lab::Error& error) {
        std::fprintf(stderr, "attrlab: error: %s\n", error.what());
        return static_cast<int>(error.kind());
      }
    }
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const lab::Error& e) {
    std::fprintf(stderr, "attrlab: error: %s\n", e.what());
    return static_cast<int>(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attrlab: internal error: %s\n", e.what());
    return 4;
  }
  return 0;
}
