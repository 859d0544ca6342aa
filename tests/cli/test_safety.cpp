// End to end, the safety rules of README "Safety": an --out that is a device, a FIFO, an existing
// directory (the data directory included) or a link to one is refused before any work and left
// untouched; outputs that collide with inputs or each other are refused; attrlab's own
// directories are replaced only with --force; a run directory is locked; a killed command leaves
// no temporaries, and those of dead processes are swept; thread counts are bounded; a FIFO input
// is refused at once; every error is one line (libpng prints nothing of its own).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "lab/core/error.h"
#include "lab/io/files.h"
#include "run_cli.h"
#include "tests/scratch.h"

using clitest::run;
using clitest::spawn;
using clitest::wait_for;
namespace fs = std::filesystem;

namespace {

/// A small data directory, generated once per test binary run.
const fs::path& data_dir() {
  static const fs::path dir = [] {
    const fs::path d = clitest::scratch() / "safety-data";
    REQUIRE(run("generate --env multi-color-sum -o size=32 --count 4 --seed 3 --out " + d.string()).code == 0);
    return d;
  }();
  return dir;
}

/// A maps directory of that data, made once.
const fs::path& maps_dir() {
  static const fs::path dir = [] {
    const fs::path d = clitest::scratch() / "safety-maps";
    REQUIRE(run("attribute --data " + data_dir().string() + " --method saliency --out " + d.string()).code == 0);
    return d;
  }();
  return dir;
}

/// Exactly one line on stderr, attrlab's own, naming `named`.
void check_one_error_line(const clitest::Outcome& o, const std::string& named) {
  CAPTURE(o.err);
  CHECK(o.err.rfind("attrlab: error: ", 0) == 0);
  CHECK(o.err.find('\n') == o.err.size() - 1);
  CHECK(o.err.find(named) != std::string::npos);
}

using testdir::temporaries_text;

int exit_of(lab::ErrorKind kind) { return static_cast<int>(kind); }

}  // namespace

TEST_CASE("predict --out onto a device, a FIFO, a directory or a link to one exits 1 and leaves it untouched") {
  const fs::path dir = clitest::scratch() / "out-targets";
  fs::create_directories(dir / "existing" / "sub");
  lab::write_text_atomic(dir / "existing" / "keep.txt", "keep");
  const fs::path fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fs::create_symlink("/dev/null", dir / "to-null");
  fs::create_directory_symlink(dir / "existing", dir / "to-dir");
  for (const fs::path& target : {fs::path("/dev/null"), fifo, dir / "existing", dir / "to-null", dir / "to-dir",
                                 data_dir(), data_dir() / "manifest.json"}) {
    CAPTURE(target);
    const auto o = run("predict --data " + data_dir().string() + " --out " + target.string());
    CHECK(o.code == 1);
    check_one_error_line(o, "--out " + target.string());
  }
  CHECK(fs::is_character_file("/dev/null"));
  CHECK(fs::is_fifo(fifo));
  CHECK(clitest::slurp(dir / "existing" / "keep.txt") == "keep");
  CHECK(fs::is_symlink(dir / "to-null"));
  CHECK(fs::is_symlink(dir / "to-dir"));
  CHECK(fs::exists(data_dir() / "manifest.json"));
  CHECK(fs::exists(data_dir() / "images" / "000000.png"));
  CHECK(temporaries_text(dir) == "");
  // A regular file is what --out may replace.
  lab::write_text_atomic(dir / "old.csv", "old");
  CHECK(run("predict --data " + data_dir().string() + " --out " + (dir / "old.csv").string()).code == 0);
  CHECK(clitest::slurp(dir / "old.csv").rfind("id,label,predicted", 0) == 0);
}

TEST_CASE("generate and attribute replace only their own directories, and only with --force") {
  const fs::path dir = clitest::scratch() / "own-dirs";
  const std::string gen = "generate --env multi-color-sum -o size=32 --count 2 --out ";
  REQUIRE(run(gen + (dir / "data").string()).code == 0);
  const auto again = run(gen + (dir / "data").string());
  CHECK(again.code == 1);
  check_one_error_line(again, "pass --force");
  CHECK(run(gen + (dir / "data").string() + " --force").code == 0);

  lab::write_text_atomic(dir / "home" / "thesis.tex", "years of work");
  const auto foreign = run(gen + (dir / "home").string() + " --force");
  CHECK(foreign.code == 1);
  check_one_error_line(foreign, "did not write");
  CHECK(clitest::slurp(dir / "home" / "thesis.tex") == "years of work");

  // attribute: never into the data directory (nor a data directory given --force), own maps with --force.
  for (const std::string& extra : {std::string(""), std::string(" --force")}) {
    const auto into_data =
        run("attribute --data " + (dir / "data").string() + " --method saliency --out " + (dir / "data").string() + extra);
    CHECK(into_data.code == 1);
    check_one_error_line(into_data, "--data");
  }
  CHECK(fs::exists(dir / "data" / "manifest.json"));
  const std::string att = "attribute --data " + (dir / "data").string() + " --method saliency --out " + (dir / "maps").string();
  REQUIRE(run(att).code == 0);
  CHECK(run(att).code == 1);
  CHECK(run(att + " --force").code == 0);
  const auto over_other_data =
      run("attribute --data " + (dir / "data").string() + " --method saliency --out " + data_dir().string() + " --force");
  CHECK(over_other_data.code == 1);
  check_one_error_line(over_other_data, "no maps.json");
  CHECK(fs::exists(data_dir() / "manifest.json"));
  CHECK(temporaries_text(dir) == "");
}

TEST_CASE("evaluate: outputs colliding with each other or with an input are refused before any work") {
  const fs::path dir = clitest::scratch() / "evaluate-collisions";
  fs::create_directories(dir);
  const std::string base = "evaluate --data " + data_dir().string() + " --maps " + maps_dir().string() + " --metric gt";
  const auto same = run(base + " --out " + (dir / "r.csv").string() + " --curves " + (dir / "r.csv").string());
  CHECK(same.code == 1);
  check_one_error_line(same, "--curves " + (dir / "r.csv").string());
  const auto record = run(base + " --out " + (dir / "r.csv").string() + " --curves " + (dir / "r.json").string());
  CHECK(record.code == 1);
  check_one_error_line(record, "record");
  const auto in_maps = run(base + " --out " + (maps_dir() / "000000.npy").string());
  CHECK(in_maps.code == 1);
  check_one_error_line(in_maps, "--maps");
  CHECK(lab::read_text(maps_dir() / "000000.npy").rfind("\x93NUMPY", 0) == 0);
  CHECK(fs::is_empty(dir));

  // --maps at a data directory scores nothing: an error naming it, not an empty success.
  const auto data_as_maps = run("evaluate --data " + data_dir().string() + " --maps " + data_dir().string() +
                                " --metric gt --out " + (dir / "r.csv").string());
  CHECK(data_as_maps.code == exit_of(lab::ErrorKind::kInput));
  check_one_error_line(data_as_maps, "--maps " + data_dir().string() + ": holds no map");
  CHECK_FALSE(fs::exists(dir / "r.csv"));
}

TEST_CASE("thread counts: bounded and numbers only, from --threads and ATTRLAB_THREADS") {
  for (const std::string& args : {std::string("--threads 100000 summary --env multi-color-sum"),
                                  std::string("--threads abc summary --env multi-color-sum"),
                                  std::string("--threads 0 summary --env multi-color-sum")}) {
    CAPTURE(args);
    const auto o = run(args);
    CHECK(o.code == 1);
    check_one_error_line(o, "--threads");
  }
  for (const std::string value : {"100000", "abc", "4x", "-2", "99999999999999999999"}) {
    CAPTURE(value);
    const auto o = run("summary --env multi-color-sum", "ATTRLAB_THREADS=" + value);
    CHECK(o.code == 1);
    check_one_error_line(o, "ATTRLAB_THREADS=" + value);
  }
  CHECK(run("--threads 2 summary --env multi-color-sum").code == 0);
  CHECK(run("summary --env multi-color-sum", "ATTRLAB_THREADS=1").code == 0);
}

TEST_CASE("a FIFO or a directory where a data file should be is refused at once, naming it") {
  const fs::path dir = clitest::scratch() / "fifo-input";
  fs::copy(data_dir(), dir, fs::copy_options::recursive);
  fs::remove(dir / "gt" / "000001.npy");
  REQUIRE(::mkfifo((dir / "gt" / "000001.npy").c_str(), 0600) == 0);
  const auto o = run("predict --data " + dir.string() + " --out " + (clitest::scratch() / "fifo.csv").string());
  CHECK(o.code == 2);
  check_one_error_line(o, (dir / "gt" / "000001.npy").string() + ": is a FIFO; expected a regular file");
}

TEST_CASE("a corrupt PNG gives attrlab's one line, and nothing from libpng") {
  const fs::path dir = clitest::scratch() / "corrupt-png";
  fs::copy(data_dir(), dir, fs::copy_options::recursive);
  std::string png = lab::read_text(dir / "images" / "000002.png");
  png[40] = static_cast<char>(png[40] ^ 0x55);  // inside IDAT: a CRC error
  lab::write_text_atomic(dir / "images" / "000002.png", png);
  const auto o = run("predict --data " + dir.string() + " --out " + (clitest::scratch() / "png.csv").string());
  CHECK(o.code == 2);
  check_one_error_line(o, (dir / "images" / "000002.png").string() + ": cannot decode PNG");
  CHECK(o.err.find("libpng") == std::string::npos);
}

TEST_CASE("a huge --count or --batch is refused with the estimate and the limit, before any work") {
  const fs::path out = clitest::scratch() / "huge";
  const auto g = run("generate --env multi-color-sum -o size=32 --count 100000000000 --out " + out.string());
  CHECK(g.code == 1);
  check_one_error_line(g, "count 100000000000");
  CHECK(g.err.find("available") != std::string::npos);
  const auto a = run("attribute --data " + data_dir().string() + " --method saliency --batch 1000000000000 --out " +
                     out.string());
  CHECK(a.code == 1);
  check_one_error_line(a, "--batch 1000000000000");
  const auto limited = run("generate --env multi-color-sum -o size=32 --count 1000 --out " + out.string(),
                           "ATTRLAB_MEMORY_LIMIT=1000000");
  CHECK(limited.code == 1);
  check_one_error_line(limited, "allowed by ATTRLAB_MEMORY_LIMIT");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a killed generate leaves no temporary directory; a stale one of a dead process is swept") {
  const fs::path dir = clitest::scratch() / "killed";
  fs::create_directories(dir);
  const fs::path out = dir / "data";
  const pid_t pid = spawn({"generate", "--env", "multi-color-sum", "-o", "size=64", "--count", "200000", "--out",
                           out.string()},
                          dir / "log.txt");
  const fs::path staged = dir / ("data.tmp-" + std::to_string(pid));
  // Killed once it has written some samples.
  REQUIRE(wait_for([&] { return fs::exists(staged / "images" / "000010.png"); }, 60));
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(temporaries_text(dir) == "");
  CHECK_FALSE(fs::exists(out));

  // A temporary of a process that died without cleaning (SIGKILL): swept by the next generate.
  const pid_t killed = spawn({"generate", "--env", "multi-color-sum", "-o", "size=64", "--count", "200000", "--out",
                              out.string()},
                             dir / "log2.txt");
  const fs::path left = dir / ("data.tmp-" + std::to_string(killed));
  REQUIRE(wait_for([&] { return fs::exists(left / "images" / "000010.png"); }, 60));
  ::kill(killed, SIGKILL);
  ::waitpid(killed, &status, 0);
  CHECK(fs::exists(left));
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 2 --out " + out.string()).code == 0);
  CHECK_FALSE(fs::exists(left));
  CHECK(temporaries_text(dir) == "");
}

TEST_CASE("a run directory being written refuses a second run; SIGTERM mid-run leaves no temporaries") {
  const fs::path dir = clitest::scratch() / "locked-run";
  fs::create_directories(dir);
  std::ofstream(dir / "slow.json") << R"({"extends": "base", "count": 400, "size": 32, "unit": 4,
    "models": [{"label": "m", "env": "multi-color-sum"}],
    "methods": [{"label": "IG", "name": "integrated-gradients", "params": {"steps": 64}}],
    "metrics": [{"name": "gt"}]})";
  const fs::path out = dir / "run";
  const pid_t first = spawn({"run", (dir / "slow.json").string(), "--quiet", "--out", out.string()}, dir / "log.txt");
  REQUIRE(wait_for([&] { return fs::exists(out / "config.json"); }, 60));
  const auto second = run("run " + (dir / "slow.json").string() + " --quiet --resume --out " + out.string());
  CHECK(second.code == 1);
  check_one_error_line(second, "--out " + out.string() + ": another attrlab command is writing into it");
  // Killed while it works on its units.
  REQUIRE(wait_for([&] { return fs::exists(out / "units"); }, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(first, SIGTERM);
  int status = 0;
  ::waitpid(first, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(temporaries_text(dir) == "");
  // The lock died with the process: the run can be resumed (here: refused only for being unfinished work of
  // another configuration, which proves the lock is free).
  const auto resumed = run("run " + (dir / "slow.json").string() + " --quiet --resume -o count=8 --out " + out.string());
  CHECK(resumed.err.find("another attrlab command") == std::string::npos);
  CHECK(resumed.err.find("different configuration") != std::string::npos);
}
