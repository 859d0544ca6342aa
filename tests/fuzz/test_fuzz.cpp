// Seeded fuzzing of every input format through the real attrlab binary: PNG and NPY files
// (byte-level mutations), the data manifest, maps.json and experiment configs (JSON-aware
// mutations, and bytes), -o/-p values, and --out targets. Every case must end with an exit code
// of its class (never 4 = internal, never a signal or a hang), one `attrlab: error:` line naming
// something (and no other tool's lines), no partial outputs, no temporaries, and its inputs
// untouched.
//
// Environment: ATTRLAB_FUZZ_SEED (default 20261203), ATTRLAB_FUZZ_SECONDS (default 60; the time
// budget), ATTRLAB_FUZZ_COUNT (default unlimited; stop after that many cases). The seed and the
// number of cases are printed, and each failing case prints its number and command; the same
// seed gives the same cases in the same order, so `ATTRLAB_FUZZ_SEED=S ATTRLAB_FUZZ_COUNT=N`
// replays the first N.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/scratch.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string binary() {
  const char* b = std::getenv("ATTRLAB_BINARY");
  return b ? b : "attrlab";
}

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

/// Single-quoted for sh.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Outcome {
  int code = -1;       ///< exit code, or -1 when ended by a signal
  bool timed_out = false;
  std::string err;
};

/// Runs attrlab with `args` (each quoted), stdout discarded, stderr kept; 60 s at most.
Outcome run(const fs::path& scratch, const std::vector<std::string>& args, const std::string& env = "") {
  std::string cmd = "timeout -s KILL 60 env " + env + " " + quote(binary());
  for (const std::string& a : args) cmd += " " + quote(a);
  const fs::path err = scratch / "stderr.txt";
  cmd += " >/dev/null 2>" + quote(err.string()) + " </dev/null";
  const int status = std::system(cmd.c_str());
  Outcome o;
  if (WIFEXITED(status)) {
    o.code = WEXITSTATUS(status);
    o.timed_out = o.code == 137 || o.code == 124;
  }
  o.err = slurp(err);
  return o;
}

/// Every file below `dir` (relative path → type and bytes), to prove inputs untouched.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return files;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) {
    const fs::file_status st = fs::symlink_status(dir, ec);
    files[""] = std::to_string(static_cast<int>(st.type())) + (fs::is_regular_file(st) ? slurp(dir) : "");
    return files;
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    files[fs::relative(it->path(), dir).string()] =
        std::to_string(static_cast<int>(st.type())) + (fs::is_regular_file(st) ? slurp(it->path()) : "");
  }
  return files;
}

using testdir::temporaries;

// ---- mutations ------------------------------------------------------------------------------

using Rng = std::mt19937_64;

size_t below(Rng& rng, size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); }

/// One to four byte-level edits: bit flips, special bytes, truncation, insertion, deletion,
/// duplication of a range.
std::string mutate_bytes(std::string bytes, Rng& rng) {
  const size_t edits = 1 + below(rng, 4);
  for (size_t e = 0; e < edits; ++e) {
    const size_t n = bytes.size();
    switch (below(rng, 7)) {
      case 0:
        if (n) bytes[below(rng, n)] ^= static_cast<char>(1u << below(rng, 8));
        break;
      case 1: {
        static const char special[] = {'\0', '\xff', '\x7f', '\x80', '9', '-', 'e', '.', '\n', '"', '\'', '{', '}'};
        if (n) bytes[below(rng, n)] = special[below(rng, sizeof special)];
        break;
      }
      case 2:
        bytes.resize(below(rng, n + 1));
        break;
      case 3: {
        std::string extra(1 + below(rng, 16), '\0');
        for (char& c : extra) c = static_cast<char>(rng());
        bytes.insert(below(rng, n + 1), extra);
        break;
      }
      case 4:
        if (n) {
          const size_t at = below(rng, n);
          bytes.erase(at, 1 + below(rng, std::min<size_t>(64, n - at)));
        }
        break;
      case 5:
        if (n) {
          const size_t at = below(rng, n);
          const std::string part = bytes.substr(at, 1 + below(rng, 64));
          bytes.insert(below(rng, n + 1), part);
        }
        break;
      default:
        // Bytes near the start: headers, magic strings, lengths.
        if (n) bytes[below(rng, std::min<size_t>(n, 64))] = static_cast<char>(rng());
        break;
    }
  }
  return bytes;
}

/// Values a mistaken or malicious file might hold.
json odd_value(Rng& rng) {
  switch (below(rng, 16)) {
    case 0: return nullptr;
    case 1: return true;
    case 2: return 0;
    case 3: return -1;
    case 4: return 1;
    case 5: return 2;
    case 6: return 1.5;
    case 7: return 1e300;
    case 8: return int64_t{1000000000000000000};
    case 9: return "";
    case 10: return "x";
    case 11: return "\xc3\xa9t\xc3\xa9";
    case 12: return json::array();
    case 13: return json::object();
    case 14: return json::array({1, 2});
    default: return "../../etc/passwd";
  }
}

/// Every JSON pointer of `j`.
void pointers(const json& j, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object())
    for (const auto& [k, v] : j.items()) pointers(v, at / k, out);
  else if (j.is_array())
    for (size_t i = 0; i < j.size(); ++i) pointers(j[i], at / i, out);
}

/// One to three JSON-aware edits (remove, retype, add an unknown or '_' key, duplicate, wrap),
/// and sometimes a byte-level edit of the text.
std::string mutate_json(json j, Rng& rng) {
  const size_t edits = 1 + below(rng, 3);
  for (size_t e = 0; e < edits; ++e) {
    std::vector<json::json_pointer> all;
    pointers(j, json::json_pointer(), all);
    const json::json_pointer at = all[below(rng, all.size())];
    json& node = j[at];
    const bool has_parent = !at.empty();
    switch (below(rng, 7)) {
      case 0:
        if (has_parent) {
          json& parent = j[at.parent_pointer()];
          if (parent.is_object()) parent.erase(at.back());
          else if (parent.is_array() && !parent.empty()) parent.erase(static_cast<size_t>(std::stoul(at.back())));
        }
        break;
      case 1:
      case 2:
        node = odd_value(rng);
        break;
      case 3:
        if (node.is_object()) node[below(rng, 2) ? "colour" : "image_shape"] = odd_value(rng);
        break;
      case 4:
        if (node.is_array() && !node.empty()) node.push_back(node[below(rng, node.size())]);
        break;
      case 5:
        node = json::array({node});
        break;
      default:
        if (node.is_number_integer()) node = node.get<int64_t>() + (below(rng, 2) ? 1 : -1);
        else if (node.is_string()) node = node.get<std::string>() + "_";
        break;
    }
  }
  std::string text = j.dump(2);
  if (below(rng, 5) == 0) text = mutate_bytes(text, rng);
  return text;
}

// ---- cases --------------------------------------------------------------------------------

struct Case {
  std::string format;
  std::vector<std::string> args;
  std::string env;
  std::set<int> allowed;             ///< exit codes of this class
  std::vector<fs::path> inputs;      ///< must be untouched
  std::vector<fs::path> outputs;     ///< must be absent after a failure
  bool outputs_may_remain = false;   ///< evaluate writes its results before refusing rejected maps
};

struct Fixture {
  fs::path root;
  fs::path data;  ///< 4 samples of multi-color-sum, 32×32
  fs::path maps;  ///< saliency maps of it
  json manifest, maps_record, config;
  std::vector<std::string> env_keys, method_keys;
};

/// What went wrong with one case ("" when nothing).
std::string judge(const Case& c, const Outcome& o, const std::map<fs::path, std::map<std::string, std::string>>& before,
                  const fs::path& case_dir) {
  if (o.timed_out) return "hung (killed after 60 s)";
  if (o.code < 0) return "ended by a signal";
  if (o.code == 4) return "exit 4 (internal error)";
  if (!c.allowed.count(o.code)) return "exit " + std::to_string(o.code) + " is not of this case's class";
  std::istringstream lines(o.err);
  std::string line;
  int errors = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("attrlab: error: ", 0) == 0) {
      ++errors;
      const std::string message = line.substr(16);
      if (message.find(": ") == std::string::npos && message.find('=') == std::string::npos &&
          message.find('\'') == std::string::npos && message.find('"') == std::string::npos)
        return "the error names nothing: " + line;
    } else if (line.rfind("attrlab: ", 0) == 0) {
      return "a line of attrlab that is not an error: " + line;
    } else if (line.find(": ") == std::string::npos || line.rfind("libpng", 0) == 0) {
      return "a stray line on stderr: " + line;
    }
  }
  if (o.code != 0 && errors != 1) return std::to_string(errors) + " error lines";
  if (o.code == 0 && errors != 0) return "exit 0 with an error line";
  for (const auto& [path, files] : before)
    if (snapshot(path) != files) return "input changed: " + path.string();
  if (o.code != 0 && !c.outputs_may_remain)
    for (const fs::path& out : c.outputs)
      if (fs::exists(fs::symlink_status(out))) return "partial output left: " + out.string();
  const std::vector<std::string> temps = temporaries(case_dir);
  if (!temps.empty()) return "temporary left: " + temps.front();
  return "";
}

Fixture make_fixture(const fs::path& root) {
  Fixture f;
  f.root = root;
  f.data = root / "data";
  f.maps = root / "maps";
  const auto g = run(root, {"generate", "--env", "multi-color-sum", "-o", "size=32", "--count", "4", "--seed", "5",
                            "--out", f.data.string()});
  REQUIRE(g.code == 0);
  const auto a = run(root, {"attribute", "--data", f.data.string(), "--method", "saliency", "--out", f.maps.string()});
  REQUIRE(a.code == 0);
  f.manifest = json::parse(slurp(f.data / "manifest.json"));
  f.maps_record = json::parse(slurp(f.maps / "maps.json"));
  f.config = {{"extends", "base"},
              {"count", 2},
              {"size", 32},
              {"unit", 2},
              {"models", {{{"label", "m"}, {"env", "multi-color-sum"}, {"options", {{"colors", 4}}}}}},
              {"methods", {{{"label", "S"}, {"name", "saliency"}, {"params", {{"abs", "on"}}}}}},
              {"metrics", {{{"name", "gt"}}}}};
  // The keys each command takes, from the listings.
  spit(root / "list.json", "");
  std::system((quote(binary()) + " envs multi-color-sum --json > " + quote((root / "list.json").string())).c_str());
  const json envs = json::parse(slurp(root / "list.json"), nullptr, false);
  std::function<void(const json&, std::vector<std::string>&)> collect = [&](const json& j, std::vector<std::string>& out) {
    if (j.is_object() && j.contains("name") && j.contains("type") && j["name"].is_string())
      out.push_back(j["name"].get<std::string>());
    if (j.is_object() || j.is_array())
      for (const auto& [k, v] : j.items()) collect(v, out);
  };
  collect(envs, f.env_keys);
  std::system((quote(binary()) + " methods saliency --json > " + quote((root / "list.json").string())).c_str());
  collect(json::parse(slurp(root / "list.json"), nullptr, false), f.method_keys);
  f.env_keys.push_back("colour");
  f.method_keys.push_back("pixels_per_step");
  return f;
}

/// A copy of a fixture directory into the case directory.
fs::path copy_of(const fs::path& dir, const fs::path& case_dir) {
  const fs::path to = case_dir / dir.filename();
  fs::copy(dir, to, fs::copy_options::recursive);
  return to;
}

std::string odd_text(Rng& rng) {
  static const std::vector<std::string> texts = {"", "0", "-1", "1", "2", "3.5", "1e9", "99999999999999999999", "nan",
                                                 "inf", "abc", "on", "off", "auto", "true", "x=y", "\xff\xfe",
                                                 "../x", "4,4", " 7", "7 "};
  return texts[below(rng, texts.size())];
}

Case make_case(const Fixture& f, const fs::path& dir, Rng& rng, size_t kind) {
  Case c;
  const fs::path out_csv = dir / "out.csv";
  const std::vector<std::string> samples = {"000000", "000001", "000002", "000003"};
  const std::string sample = samples[below(rng, samples.size())];
  switch (kind) {
    case 0: {  // PNG
      c.format = "png";
      const fs::path data = copy_of(f.data, dir);
      const fs::path png = data / "images" / (sample + ".png");
      spit(png, mutate_bytes(slurp(png), rng));
      c.args = {"predict", "--data", data.string(), "--out", out_csv.string()};
      c.allowed = {0, 2};
      c.inputs = {data};
      c.outputs = {out_csv};
      break;
    }
    case 1: {  // NPY: a ground truth (read by the gt metric) or a patch map (checked on open)
      c.format = "npy";
      const fs::path data = copy_of(f.data, dir);
      const fs::path npy = data / (below(rng, 2) ? "gt/" + sample + ".npy" : "patches/" + sample + ".npy");
      spit(npy, mutate_bytes(slurp(npy), rng));
      c.args = {"evaluate", "--data", data.string(), "--maps", f.maps.string(), "--metric", "gt", "--out", out_csv.string()};
      c.allowed = {0, 2};
      c.inputs = {data, f.maps};
      c.outputs = {out_csv, dir / "out.json"};
      break;
    }
    case 2: {  // a map file: rejected maps are reported, the others scored
      c.format = "map-npy";
      const fs::path maps = copy_of(f.maps, dir);
      const fs::path npy = maps / (sample + ".npy");
      spit(npy, mutate_bytes(slurp(npy), rng));
      c.args = {"evaluate", "--data", f.data.string(), "--maps", maps.string(), "--metric", "gt", "--out", out_csv.string()};
      c.allowed = {0, 2};
      c.inputs = {f.data, maps};
      c.outputs = {out_csv, dir / "out.json"};
      c.outputs_may_remain = true;
      break;
    }
    case 3: {  // manifest
      c.format = "manifest";
      const fs::path data = copy_of(f.data, dir);
      spit(data / "manifest.json", mutate_json(f.manifest, rng));
      c.args = {"predict", "--data", data.string(), "--out", out_csv.string()};
      c.allowed = {0, 2};
      c.inputs = {data};
      c.outputs = {out_csv};
      break;
    }
    case 4: {  // maps.json
      c.format = "maps.json";
      const fs::path maps = copy_of(f.maps, dir);
      spit(maps / "maps.json", mutate_json(f.maps_record, rng));
      c.args = {"evaluate", "--data", f.data.string(), "--maps", maps.string(), "--metric", "gt", "--out", out_csv.string()};
      c.allowed = {0, 1, 2};  // 1: a well-formed record of other data (another seed, count or fingerprint)
      c.inputs = {f.data, maps};
      c.outputs = {out_csv, dir / "out.json"};
      c.outputs_may_remain = true;
      break;
    }
    case 5: {  // experiment config
      c.format = "config";
      spit(dir / "config.json", mutate_json(f.config, rng));
      c.args = {"run", (dir / "config.json").string(), "--quiet", "--out", (dir / "run").string()};
      c.allowed = {0, 1, 2};
      c.inputs = {dir / "config.json"};
      break;
    }
    case 6: {  // -o values
      c.format = "-o";
      const std::string key = f.env_keys[below(rng, f.env_keys.size())];
      const fs::path out = dir / "gen";
      c.args = {"generate", "--env", "multi-color-sum", "-o", key + "=" + odd_text(rng), "-o", "size=32", "--count", "2",
                "--out", out.string()};
      if (key == "size") c.args.erase(c.args.begin() + 5, c.args.begin() + 7);
      c.allowed = {0, 1};
      c.outputs = {out};
      break;
    }
    case 7: {  // -p values
      c.format = "-p";
      const std::string key = f.method_keys[below(rng, f.method_keys.size())];
      const fs::path out = dir / "maps";
      c.args = {"attribute", "--data", f.data.string(), "--method", "saliency", "-p", key + "=" + odd_text(rng),
                "--limit", "1", "--out", out.string()};
      c.allowed = {0, 1};
      c.inputs = {f.data};
      c.outputs = {out};
      break;
    }
    default: {  // --out targets
      c.format = "--out";
      fs::create_directories(dir / "dir" / "sub");
      spit(dir / "dir" / "keep.txt", "keep");
      spit(dir / "file.txt", "file");
      ::mkfifo((dir / "fifo").c_str(), 0600);
      fs::create_symlink("/dev/null", dir / "to-null");
      fs::create_directory_symlink(dir / "dir", dir / "to-dir");
      const fs::path data = copy_of(f.data, dir);
      const std::vector<fs::path> targets = {"/dev/null", dir / "fifo", dir / "dir", dir / "to-null", dir / "to-dir",
                                             data, data / "manifest.json", data / "images", dir / "file.txt" / "x",
                                             dir / "dir" / "", dir, dir / "new"};
      const fs::path target = targets[below(rng, targets.size())];
      switch (below(rng, 4)) {
        case 0:
          c.args = {"predict", "--data", data.string(), "--out", target.string()};
          break;
        case 1:
          c.args = {"generate", "--env", "multi-color-sum", "-o", "size=32", "--count", "2", "--out", target.string()};
          break;
        case 2:
          c.args = {"attribute", "--data", data.string(), "--method", "saliency", "--out", target.string()};
          break;
        default:
          c.args = {"evaluate", "--data", data.string(), "--maps", f.maps.string(), "--metric", "gt", "--out",
                    (dir / "r.csv").string(), "--curves", target.string()};
          break;
      }
      c.allowed = {0, 1};
      c.inputs = {data, f.maps, dir / "dir", dir / "file.txt"};
      break;
    }
  }
  return c;
}

}  // namespace

TEST_CASE("fuzz: malformed inputs of every format end in one named error, nothing destroyed or left behind") {
  const uint64_t seed = env_number("ATTRLAB_FUZZ_SEED", 20261203);
  const double seconds = static_cast<double>(env_number("ATTRLAB_FUZZ_SECONDS", 60));
  const uint64_t max_cases = env_number("ATTRLAB_FUZZ_COUNT", UINT64_MAX);
  const fs::path root = fs::temp_directory_path() / ("attrlab-fuzz-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  const Fixture f = make_fixture(root);
  Rng rng(seed);
  const auto started = std::chrono::steady_clock::now();
  uint64_t cases = 0, failures = 0;
  std::map<std::string, std::map<int, int>> tally;  // format → exit code → cases
  constexpr size_t kKinds = 9;
  while (cases < max_cases &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() < seconds) {
    const fs::path dir = root / ("case-" + std::to_string(cases));
    fs::create_directories(dir);
    // Round robin over the formats, so that every format gets its share of the time.
    const Case c = make_case(f, dir, rng, cases % kKinds);
    std::map<fs::path, std::map<std::string, std::string>> before;
    for (const fs::path& in : c.inputs) before[in] = snapshot(in);
    const Outcome o = run(dir, c.args, c.env);
    fs::remove(dir / "stderr.txt");
    const std::string problem = judge(c, o, before, dir);
    ++tally[c.format][o.code];
    if (!problem.empty()) {
      ++failures;
      std::string command = "attrlab";
      for (const std::string& a : c.args) command += " " + quote(a);
      MESSAGE("fuzz case " << cases << " (" << c.format << ", seed " << seed << "): " << problem << "\n  " << command
                           << "\n  exit " << o.code << ", stderr: " << o.err << "  (kept in " << dir.string() << ")");
    } else {
      fs::remove_all(dir);
    }
    ++cases;
  }
  std::string summary;
  for (const auto& [format, codes] : tally) {
    summary += "  " + format + ":";
    for (const auto& [code, n] : codes) summary += " exit " + std::to_string(code) + " ×" + std::to_string(n);
    summary += "\n";
  }
  std::printf("fuzz: seed %llu, %llu cases, %llu failures (replay: ATTRLAB_FUZZ_SEED=%llu ATTRLAB_FUZZ_COUNT=%llu)\n%s",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(cases),
              static_cast<unsigned long long>(failures), static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(cases), summary.c_str());
  CHECK(cases >= kKinds);
  CHECK(failures == 0);
  if (failures == 0) fs::remove_all(root);
}
