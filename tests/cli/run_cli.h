// Runs the built attrlab binary (path in ATTRLAB_BINARY, set by ctest) and captures its output.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace clitest {

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string binary() {
  const char* b = std::getenv("ATTRLAB_BINARY");
  return b ? b : "attrlab";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A fresh scratch directory per test binary run.
inline std::filesystem::path scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("attrlab-cli-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Runs `attrlab ARGS` (ARGS is shell-quoted by the caller), with `env` ("NAME=value ...") added
/// to its environment.
inline Outcome run(const std::string& args, const std::string& env = "") {
  const auto out = scratch() / "stdout.txt";
  const auto err = scratch() / "stderr.txt";
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + binary() + " " + args + " >" + out.string() + " 2>" + err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  Outcome o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = slurp(out);
  o.err = slurp(err);
  return o;
}

}  // namespace clitest
