// End to end, with real signals to the attrlab process: `evaluate` killed (SIGINT, then SIGTERM)
// and resumed gives byte-identical files and leaves no temporaries; `evaluate --limit` scores
// exactly that many samples; two commands writing the same new --out directory at once — the
// second exits 1 naming it (README "Safety").
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/io/files.h"
#include "run_cli.h"
#include "tests/scratch.h"

using clitest::run;
using clitest::spawn;
using clitest::wait_for;
using clitest::kill_and_wait;
namespace fs = std::filesystem;

namespace {

/// Finished units kept in an evaluation's unit directory.
int64_t done_units(const fs::path& work) {
  int64_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(work / "units", ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->path().extension() == ".done") ++n;
  return n;
}

/// The sample column of a results CSV, without "all".
std::set<std::string> scored_samples(const fs::path& csv) {
  std::set<std::string> samples;
  std::istringstream in(lab::read_text(csv));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t a = line.find(',');
    const std::string sample = line.substr(a + 1, line.find(',', a + 1) - a - 1);
    if (sample != "\"all\"") samples.insert(sample);
  }
  return samples;
}

}  // namespace

TEST_CASE("evaluate killed by SIGINT and by SIGTERM, then resumed: byte-identical results, no temporaries") {
  const fs::path dir = clitest::scratch() / "evaluate-resume";
  fs::create_directories(dir);
  const fs::path data = dir / "data", maps = dir / "maps";
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 40 --seed 3 --out " + data.string()).code == 0);
  REQUIRE(run("attribute --data " + data.string() + " --method saliency --out " + maps.string()).code == 0);
  const std::vector<std::string> request = {"evaluate", "--data", data.string(), "--maps", maps.string(),
                                            "--metric", "deletion", "--metric", "gt", "-p", "pixels-per-step=8",
                                            "--unit", "4", "--quiet"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = request;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  auto command = [&](const std::vector<std::string>& extra) {
    std::string text;
    for (const std::string& a : with(extra)) text += (text.empty() ? "" : " ") + a;
    return text;
  };

  // Uninterrupted.
  const fs::path ref = dir / "ref.csv", ref_curves = dir / "ref-curves.csv";
  const auto whole = run(command({"--out", ref.string(), "--curves", ref_curves.string()}));
  INFO(whole.err);
  REQUIRE(whole.code == 0);
  CHECK_FALSE(fs::exists(dir / "ref.csv.units"));  // removed once every file is written

  // Interrupted twice, then resumed to the end.
  const fs::path out = dir / "out.csv", curves = dir / "out-curves.csv", work = dir / "out.csv.units";
  const std::vector<std::string> outputs = {"--out", out.string(), "--curves", curves.string()};
  const pid_t first = spawn(with(outputs), dir / "log1.txt");
  REQUIRE(wait_for([&] { return done_units(work) >= 2; }, 120));
  CHECK(kill_and_wait(first, SIGINT));
  CHECK(testdir::temporaries_text(dir) == "");
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(curves));
  const int64_t kept = done_units(work);
  CHECK(kept >= 2);
  CHECK(kept < 10);
  CHECK(fs::exists(work / "request.json"));

  // The unit directory is not taken over silently.
  std::string plain_text = command(outputs);
  const auto refused = run(plain_text);
  CHECK(refused.code == 1);
  CHECK(refused.err.find("--resume") != std::string::npos);
  CHECK(refused.err.find(work.string()) != std::string::npos);
  // Nor resumed with another request.
  const auto other = run(command({"--out", out.string(), "--curves", curves.string(), "--seed", "7", "--resume"}));
  CHECK(other.code == 1);
  CHECK(other.err.find("seed") != std::string::npos);
  CHECK(done_units(work) == kept);

  std::vector<std::string> resume = outputs;
  resume.push_back("--resume");
  const pid_t second = spawn(with(resume), dir / "log2.txt");
  REQUIRE(wait_for([&] { return done_units(work) >= kept + 2; }, 120));
  CHECK(kill_and_wait(second, SIGTERM));
  CHECK(testdir::temporaries_text(dir) == "");
  CHECK_FALSE(fs::exists(out));
  const int64_t kept2 = done_units(work);
  CHECK(kept2 >= kept + 2);

  std::string resume_text = command(resume);
  const auto finished = run(resume_text);
  INFO(finished.err);
  REQUIRE(finished.code == 0);
  CHECK(finished.err.find("evaluate: " + std::to_string(kept2) + " of 10 units kept from the interrupted evaluation") !=
        std::string::npos);
  CHECK(lab::read_text(out) == lab::read_text(ref));
  CHECK(lab::read_text(curves) == lab::read_text(ref_curves));
  CHECK(lab::read_text(dir / "out.json") == lab::read_text(dir / "ref.json"));
  CHECK_FALSE(fs::exists(work));
  CHECK(testdir::temporaries_text(dir) == "");
}

TEST_CASE("a second evaluate into the same --out exits 1 naming it") {
  const fs::path dir = clitest::scratch() / "evaluate-locked";
  fs::create_directories(dir);
  const fs::path data = dir / "data", maps = dir / "maps";
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 40 --seed 3 --out " + data.string()).code == 0);
  REQUIRE(run("attribute --data " + data.string() + " --method saliency --out " + maps.string()).code == 0);
  const fs::path out = dir / "out.csv";
  const pid_t first = spawn({"evaluate", "--data", data.string(), "--maps", maps.string(), "--metric", "deletion",
                             "-p", "pixels-per-step=2", "--unit", "2", "--quiet", "--out", out.string()},
                            dir / "log.txt");
  REQUIRE(wait_for([&] { return done_units(dir / "out.csv.units") >= 1; }, 120));
  const auto second = run("evaluate --data " + data.string() + " --maps " + maps.string() +
                          " --metric deletion --resume --quiet --out " + out.string());
  CHECK(second.code == 1);
  CHECK(second.err.find("--out " + out.string()) != std::string::npos);
  CHECK(second.err.find("another attrlab command") != std::string::npos);
  CHECK(kill_and_wait(first, SIGTERM));
  CHECK(testdir::temporaries_text(dir) == "");
}

TEST_CASE("evaluate --limit 4 on a 100-image directory scores exactly 4 samples") {
  const fs::path dir = clitest::scratch() / "evaluate-limit";
  fs::create_directories(dir);
  const fs::path data = dir / "data", maps = dir / "maps";
  REQUIRE(run("generate --env multi-color-sum -o size=16 --count 100 --seed 5 --out " + data.string()).code == 0);
  REQUIRE(run("attribute --data " + data.string() + " --method saliency --out " + maps.string()).code == 0);
  const auto limited = run("evaluate --data " + data.string() + " --maps " + maps.string() +
                           " --metric gt --metric deletion --limit 4 --out " + (dir / "r.csv").string());
  INFO(limited.err);
  REQUIRE(limited.code == 0);
  CHECK(scored_samples(dir / "r.csv") == std::set<std::string>{"\"000000\"", "\"000001\"", "\"000002\"", "\"000003\""});
  const nlohmann::json record = lab::read_json(dir / "r.json");
  CHECK(record["limit"] == 4);
  CHECK(record["methods"][0]["scored"] == 4);
  CHECK(record["data"]["count"] == 100);
}

TEST_CASE("two commands writing the same new --out directory at once: the second exits 1 naming it") {
  const fs::path dir = clitest::scratch() / "concurrent-out";
  fs::create_directories(dir);

  SUBCASE("generate") {
    const fs::path out = dir / "data";
    const pid_t first = spawn({"generate", "--env", "multi-color-sum", "-o", "size=64", "--count", "200000", "--out",
                               out.string()},
                              dir / "log.txt");
    REQUIRE(wait_for([&] { return fs::exists(dir / ("data.tmp-" + std::to_string(first))); }, 60));
    const auto second = run("generate --env multi-color-sum -o size=32 --count 2 --out " + out.string());
    CHECK(second.code == 1);
    CHECK(second.err.find("--out " + out.string() + ": another attrlab command is writing it") != std::string::npos);
    CHECK(second.err.find('\n') == second.err.size() - 1);
    CHECK(kill_and_wait(first, SIGTERM));
    CHECK_FALSE(fs::exists(out));
    CHECK(testdir::temporaries_text(dir) == "");
    CHECK_FALSE(fs::exists(dir / "data.attrlab.lock"));  // the lock went with the killed command
    // Free again: the next generate proceeds.
    CHECK(run("generate --env multi-color-sum -o size=32 --count 2 --out " + out.string()).code == 0);
    CHECK(fs::exists(out / "manifest.json"));
    CHECK_FALSE(fs::exists(dir / "data.attrlab.lock"));
  }
  SUBCASE("attribute") {
    const fs::path data = dir / "slow-data", out = dir / "maps";
    REQUIRE(run("generate --env multi-color-sum -o size=32 --count 200 --out " + data.string()).code == 0);
    const pid_t first = spawn({"attribute", "--data", data.string(), "--method", "integrated-gradients", "-p",
                               "steps=512", "--unit", "2", "--out", out.string()},
                              dir / "log.txt");
    REQUIRE(wait_for([&] { return fs::exists(dir / ("maps.tmp-" + std::to_string(first))); }, 60));
    const auto second = run("attribute --data " + data.string() + " --method saliency --out " + out.string());
    CHECK(second.code == 1);
    CHECK(second.err.find("--out " + out.string() + ": another attrlab command is writing it") != std::string::npos);
    CHECK(kill_and_wait(first, SIGINT));
    CHECK_FALSE(fs::exists(out));
    CHECK(testdir::temporaries_text(dir) == "");
    CHECK_FALSE(fs::exists(dir / "maps.attrlab.lock"));
  }
}
