// C++ plug-ins end to end: `cmake --install` into a temporary prefix, examples/plugin-method/
// built by its own CMakeLists.txt against that installed package (and a plug-in that claims
// another attrlab version), then the attrlab binary loading them: listed by `methods`, used by
// `attribute` and by a faithfulness-test config's "plugins", whose rows, tables and maps equal
// those of the built-in input-x-gradient; files that are no plug-in are refused in one line.
// Needs ATTRLAB_BUILD_DIR, ATTRLAB_CMAKE and ATTRLAB_CXX (set by tests/CMakeLists.txt), and for
// the Python module's attrlab.load_plugin() ATTRLAB_PYTHON and ATTRLAB_PYTHONPATH.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "scratch.h"

namespace fs = std::filesystem;
using clitest::run;
using clitest::slurp;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) throw std::runtime_error(std::string(name) + " is not set (run the test through ctest)");
  return value;
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// Runs a shell command with its output into `log`; throws with the log when it fails.
void shell(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " >" + quote(log) + " 2>&1").c_str());
  if (status != 0) throw std::runtime_error("failed: " + command + "\n" + slurp(log));
}

// What the tests share: the temporary install prefix and the two plug-ins built against it.
struct Installed {
  testdir::Scratch scratch{"plugin"};
  fs::path prefix = scratch.dir / "prefix";
  fs::path example;        // examples/plugin-method's gradient-times-input
  fs::path other_version;  // the same entry points, compiled as if against attrlab 0.0.1

  Installed() {
    const std::string cmake = quote(env("ATTRLAB_CMAKE"));
    shell(cmake + " --install " + quote(env("ATTRLAB_BUILD_DIR")) + " --prefix " + quote(prefix),
          scratch.dir / "install.log");
    // A second project: its source claims another attrlab version before including plugin.h.
    const fs::path other = scratch.dir / "other-version";
    write(other / "CMakeLists.txt",
          "cmake_minimum_required(VERSION 3.20)\nproject(other_version LANGUAGES CXX)\n"
          "find_package(attrlab REQUIRED)\nadd_library(other_version MODULE other_version.cpp)\n"
          "target_link_libraries(other_version PRIVATE attrlab::attrlab)\n");
    write(other / "other_version.cpp",
          "#undef ATTRLAB_VERSION\n#define ATTRLAB_VERSION \"0.0.1\"\n#include \"attributions/plugin.h\"\n"
          "ATTRLAB_PLUGIN(registry) { (void)registry; }\n");
    const std::string configure = " -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=" + quote(env("ATTRLAB_CXX")) +
                                  " -DCMAKE_PREFIX_PATH=" + quote(prefix);
    const fs::path source = fs::path(env("ATTRLAB_SOURCE_DIR")) / "examples" / "plugin-method";
    shell(cmake + " -S " + quote(source) + " -B " + quote(scratch.dir / "example-build") + configure,
          scratch.dir / "configure-example.log");
    shell(cmake + " -S " + quote(other) + " -B " + quote(scratch.dir / "other-build") + configure,
          scratch.dir / "configure-other.log");
    // The two builds side by side (each one compiler process).
    shell("(" + cmake + " --build " + quote(scratch.dir / "example-build") + " >" + quote(scratch.dir / "a.log") +
              " 2>&1 || cat " + quote(scratch.dir / "a.log") + ") & (" + cmake + " --build " +
              quote(scratch.dir / "other-build") + " >" + quote(scratch.dir / "b.log") + " 2>&1 || cat " +
              quote(scratch.dir / "b.log") + ") & wait",
          scratch.dir / "build.log");
    example = scratch.dir / "example-build" / "libgradient_times_input.so";
    other_version = scratch.dir / "other-build" / "libother_version.so";
    if (!fs::exists(example) || !fs::exists(other_version))
      throw std::runtime_error("the plug-ins were not built:\n" + slurp(scratch.dir / "build.log"));
  }
};

// Built once; a failure is reported by every test case without building again.
const Installed& installed() {
  static std::string failure;
  if (!failure.empty()) throw std::runtime_error(failure);
  try {
    static const Installed once;
    return once;
  } catch (const std::exception& e) {
    failure = e.what();
    throw;
  }
}

// `methods NAME --json`'s entry, without its name and summary.
nlohmann::json method_params(const std::string& plugin_flag, const std::string& name) {
  const auto listed = run(plugin_flag + " methods " + name + " --json");
  REQUIRE(listed.code == 0);
  return nlohmann::json::parse(listed.out).at(0).at("params");
}

// The lines of a CSV file whose first quoted field list contains `"label"`, with the label
// replaced by LABEL, so the rows of two methods compare equal.
std::vector<std::string> rows_of(const fs::path& csv, const std::string& label) {
  std::vector<std::string> rows;
  std::ifstream in(csv);
  const std::string quoted = "\"" + label + "\"";
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(quoted);
    if (at == std::string::npos) continue;
    rows.push_back(line.substr(0, at) + "LABEL" + line.substr(at + quoted.size()));
  }
  return rows;
}

}  // namespace

TEST_CASE("cmake --install writes the command, the shared libraries, the headers and the CMake package") {
  const Installed& in = installed();
  CHECK(fs::is_regular_file(in.prefix / "bin" / "attrlab"));
  CHECK(fs::is_regular_file(in.prefix / "include" / "attrlab" / "attributions" / "plugin.h"));
  CHECK(fs::is_regular_file(in.prefix / "include" / "attrlab" / "lab" / "core" / "schema.h"));
  CHECK(fs::is_regular_file(in.prefix / "lib" / "libattrlab_attributions.so"));
  CHECK(fs::is_regular_file(in.prefix / "lib" / "cmake" / "attrlab" / "attrlab-config.cmake"));
  CHECK(fs::is_regular_file(in.prefix / "lib" / "cmake" / "attrlab" / "attrlab-config-version.cmake"));
  // The installed command finds its libraries beside it and loads the plug-in too.
  const fs::path out = in.scratch.dir / "installed-methods.txt";
  const int status = std::system((quote(in.prefix / "bin" / "attrlab") + " --plugin " + quote(in.example) +
                                  " methods gradient-times-input >" + quote(out) + " 2>&1")
                                     .c_str());
  CAPTURE(slurp(out));
  CHECK(status == 0);
  CHECK(slurp(out).rfind("gradient-times-input\n", 0) == 0);
}

TEST_CASE("attrlab --plugin lists the plug-in's method with the built-in method's parameters") {
  const Installed& in = installed();
  const std::string flag = "--plugin " + quote(in.example);
  const auto all = run(flag + " methods");
  REQUIRE(all.code == 0);
  CHECK(all.out.find("\ngradient-times-input\n  input times gradient") != std::string::npos);
  CHECK(all.out.find("\ninput-x-gradient (gradient)\n") != std::string::npos);
  CHECK(method_params(flag, "gradient-times-input") == method_params("", "input-x-gradient"));
  // Without the flag the method is unknown (exit 1); the same file twice is loaded once.
  CHECK(run("methods gradient-times-input").code == 1);
  CHECK(run(flag + " " + flag + " methods gradient-times-input").code == 0);
  // The --help of the commands that take a method name lists the plug-in's method too.
  const auto help = run(flag + " attribute --help");
  REQUIRE(help.code == 0);
  CHECK(help.out.find("gradient-times-input") != std::string::npos);
  CHECK(run("attribute --help").out.find("gradient-times-input") == std::string::npos);
}

TEST_CASE("attrlab attribute with the plug-in's method writes the built-in method's maps") {
  const Installed& in = installed();
  const fs::path data = in.scratch.dir / "data";
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 3 --seed 5 --out " + quote(data)).code == 0);
  const auto builtin = run("attribute --data " + quote(data) + " --method input-x-gradient -p output=logit --out " +
                           quote(in.scratch.dir / "maps-builtin"));
  REQUIRE(builtin.code == 0);
  const auto plugin = run("--plugin " + quote(in.example) + " attribute --data " + quote(data) +
                          " --method gradient-times-input -p output=logit --out " + quote(in.scratch.dir / "maps-plugin"));
  CAPTURE(plugin.err);
  REQUIRE(plugin.code == 0);
  for (const char* id : {"000000", "000001", "000002"}) {
    CAPTURE(id);
    const std::string a = slurp(in.scratch.dir / "maps-builtin" / (std::string(id) + ".npy"));
    CHECK(!a.empty());
    CHECK(a == slurp(in.scratch.dir / "maps-plugin" / (std::string(id) + ".npy")));
  }
}

TEST_CASE("a faithfulness-test config's \"plugins\" run the plug-in's method with the built-in method's rows") {
  const Installed& in = installed();
  // The plug-in path is relative to the config file; the study is shrunk to 4 images of 32×32.
  const fs::path config = in.scratch.dir / "configs" / "plugin-study.json";
  write(config, R"({
  "extends": "faithfulness-test",
  "plugins": [")" + fs::relative(in.example, config.parent_path()).string() + R"("],
  "count": 4,
  "size": 32,
  "methods": [
    {"label": "built-in", "name": "input-x-gradient"},
    {"label": "plug-in", "name": "gradient-times-input"}
  ],
  "report": {"studies": [{"kind": "faithfulness", "title": "Plug-in and built-in input x gradient",
                          "model": "multi-color-sum", "metric": "gt", "kinds": ["positive", "negative", "overall"],
                          "gammas": [0.5, 0.6]}]}
})");
  const fs::path out = in.scratch.dir / "run";
  const auto ran = run("run " + quote(config) + " --quiet --out " + quote(out));
  CAPTURE(ran.err);
  REQUIRE(ran.code == 0);
  const std::vector<std::string> results = rows_of(out / "results.csv", "built-in");
  // (4 samples and "all") × precision, recall, F1 of 3 ground truths, plain and smoothed.
  CHECK(results.size() == 5 * 18);
  CHECK(rows_of(out / "results.csv", "plug-in") == results);
  int tables = 0;
  for (const auto& entry : fs::directory_iterator(out / "tables")) {
    if (entry.path().extension() != ".csv") continue;
    CAPTURE(entry.path());
    ++tables;
    CHECK(!rows_of(entry.path(), "built-in").empty());
    CHECK(rows_of(entry.path(), "plug-in") == rows_of(entry.path(), "built-in"));
  }
  CHECK(tables >= 1);
  for (const auto& entry : fs::directory_iterator(out / "maps" / "multi-color-sum" / "built-in")) {
    if (entry.path().extension() != ".npy") continue;
    CHECK(slurp(entry.path()) == slurp(out / "maps" / "multi-color-sum" / "plug-in" / entry.path().filename()));
  }
  // The run records the plug-in by its absolute path; --plugin with the same file as well is no
  // second registration.
  const nlohmann::json recorded = nlohmann::json::parse(slurp(out / "config.json"));
  const nlohmann::json plugins = recorded.at("config").at("plugins");
  REQUIRE(plugins.size() == 1);
  CHECK(fs::path(plugins[0].get<std::string>()).is_absolute());
  CHECK(fs::equivalent(plugins[0].get<std::string>(), in.example));
  const auto again = run("--plugin " + quote(in.example) + " run " + quote(config) + " --quiet --resume --out " +
                         quote(out));
  CAPTURE(again.err);
  CHECK(again.code == 0);
}

TEST_CASE("a plug-in built against another attrlab is refused in one line naming both") {
  const Installed& in = installed();
  const auto version = run("--version");
  REQUIRE(version.code == 0);
  const std::string ours = version.out.substr(std::string("attrlab ").size(), version.out.find('\n') - 8);
  const auto refused = run("--plugin " + quote(in.other_version) + " methods");
  CHECK(refused.code == 2);
  CHECK(refused.out.empty());
  const std::string expected_start =
      "attrlab: error: " + in.other_version.string() + ": built against attrlab 0.0.1 (";
  CAPTURE(refused.err);
  CHECK(refused.err.rfind(expected_start, 0) == 0);
  CHECK(refused.err.find(", this is " + ours + " (") != std::string::npos);
  CHECK(refused.err.find('\n') == refused.err.size() - 1);
}

TEST_CASE("files that are not plug-ins are refused in one line, exit 2") {
  const Installed& in = installed();
  const std::string readme = (fs::path(env("ATTRLAB_SOURCE_DIR")) / "README.md").string();
  const auto text = run("--plugin " + quote(readme) + " methods");
  CHECK(text.code == 2);
  CHECK(text.err == "attrlab: error: " + readme + ": not a loadable plug-in: invalid ELF header\n");
  // A shared library without the entry points: attrlab's own.
  const std::string library = (in.prefix / "lib" / "libattrlab_lab.so").string();
  const auto plain = run("--plugin " + quote(library) + " methods");
  CHECK(plain.code == 2);
  CHECK(plain.err == "attrlab: error: " + library +
                         ": not an attrlab plug-in (no entry point attrlab_plugin_abi; a plug-in defines them with "
                         "ATTRLAB_PLUGIN)\n");
  const std::string missing = (in.scratch.dir / "missing.so").string();
  const auto absent = run("--plugin " + quote(missing) + " methods");
  CHECK(absent.code == 2);
  CHECK(absent.err == "attrlab: error: " + missing +
                          ": no plug-in file (missing); expected a shared library built with ATTRLAB_PLUGIN\n");
  // The same from a config's "plugins" (relative to the config file), before anything is written.
  const fs::path config = in.scratch.dir / "configs" / "missing-plugin.json";
  write(config, R"({"extends": "faithfulness-test", "plugins": ["missing.so"], "count": 2})");
  const auto from_config = run("run " + quote(config) + " --out " + quote(in.scratch.dir / "never"));
  CHECK(from_config.code == 2);
  CHECK(from_config.err == "attrlab: error: " + (config.parent_path() / "missing.so").string() +
                               ": no plug-in file (missing); expected a shared library built with ATTRLAB_PLUGIN\n");
  CHECK(!fs::exists(in.scratch.dir / "never" / "config.json"));
  // A config's "plugins" must be a list of paths.
  write(config, R"({"extends": "faithfulness-test", "plugins": "missing.so"})");
  const auto not_list = run("run " + quote(config) + " --out " + quote(in.scratch.dir / "never"));
  CHECK(not_list.code == 1);
  CHECK(not_list.err.find("'plugins' must be a list of strings") != std::string::npos);
}

TEST_CASE("attrlab.load_plugin makes the plug-in's method usable from Python") {
  const char* python = std::getenv("ATTRLAB_PYTHON");
  const char* python_path = std::getenv("ATTRLAB_PYTHONPATH");
  if (!python || !python_path) return;  // built without the Python module (ATTRLAB_BUILD_PYTHON=OFF)
  const Installed& in = installed();
  const fs::path script = in.scratch.dir / "load_plugin.py";
  write(script, R"(import sys
import numpy as np
import attrlab
assert attrlab.load_plugin(sys.argv[1]) == ["gradient-times-input"]
assert attrlab.load_plugin(sys.argv[1]) == ["gradient-times-input"]  # loaded once
assert "gradient-times-input" in [m["name"] for m in attrlab.methods()]
env = attrlab.Environment("multi-color-sum", size=32)
data = env.generate(3, seed=2)
model = env.model()
ours = attrlab.attribute(model, data, "label", "gradient-times-input")
builtin = attrlab.attribute(model, data, "label", "input-x-gradient")
assert np.array_equal(ours, builtin) and np.abs(builtin).sum() > 0
for bad in (sys.argv[2], sys.argv[3]):
    try:
        attrlab.load_plugin(bad)
        raise SystemExit("no error for " + bad)
    except attrlab.Error as e:
        print(e)
print("ok")
)");
  const fs::path log = in.scratch.dir / "python.log";
  const int status = std::system(("env PYTHONPATH=" + quote(python_path) + " PYTHONDONTWRITEBYTECODE=1 " +
                                  quote(python) + " " + quote(script) + " " + quote(in.example) + " " +
                                  quote(in.other_version) + " " + quote(in.scratch.dir / "missing.so") + " >" +
                                  quote(log) + " 2>&1")
                                     .c_str());
  const std::string out = slurp(log);
  CAPTURE(out);
  CHECK(status == 0);
  CHECK(out.find(in.other_version.string() + ": built against attrlab 0.0.1 (") != std::string::npos);
  CHECK(out.find("missing.so: no plug-in file (missing)") != std::string::npos);
  CHECK(out.ends_with("ok\n"));
}
