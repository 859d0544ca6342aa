// What attrlab may write or replace (lab/io/outputs.h): only missing paths and regular files as
// output files; only empty directories, or with --force its own directories, as output
// directories; outputs distinct from each other and from the inputs; inputs only from regular
// files; stale temporaries of dead processes swept, live ones kept; one lock holder per directory;
// memory refused before a huge allocation. Each refusal is checked to change nothing.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>

#include "tests/scratch.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"
#include "lab/io/outputs.h"

namespace fs = std::filesystem;

namespace {

struct Scratch : testdir::Scratch {
  Scratch() : testdir::Scratch("outputs") {}
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The message of the lab::Error thrown by `call` ("" if none); its kind must be `kind`.
std::string error_of(const std::function<void()>& call, lab::ErrorKind kind = lab::ErrorKind::kUsage) {
  try {
    call();
  } catch (const lab::Error& e) {
    CHECK(static_cast<int>(e.kind()) == static_cast<int>(kind));
    return e.what();
  }
  return "";
}

/// The pid of a process that has ended (a child reaped at once).
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<long>(child);
}

}  // namespace

TEST_CASE("check_output_file accepts a new path or a regular file and refuses everything else untouched") {
  Scratch s;
  CHECK(error_of([&] { lab::check_output_file({"--out", s.dir / "new.csv"}); }).empty());
  CHECK(error_of([&] { lab::check_output_file({"--out", s.dir / "deeper" / "new.csv"}); }).empty());
  lab::write_text_atomic(s.dir / "old.csv", "old");
  CHECK(error_of([&] { lab::check_output_file({"--out", s.dir / "old.csv"}); }).empty());

  const fs::path dir = s.dir / "dir";
  fs::create_directories(dir / "inside");
  CHECK(error_of([&] { lab::check_output_file({"--out", dir}); }) ==
        "--out " + dir.string() + ": is a directory; expected a new path or a regular file to replace");
  const fs::path fifo = s.dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(error_of([&] { lab::check_output_file({"--out", fifo}); }) ==
        "--out " + fifo.string() + ": is a FIFO; expected a new path or a regular file to replace");
  CHECK(error_of([&] { lab::check_output_file({"--curves", "/dev/null"}); }) ==
        "--curves /dev/null: is a character device; expected a new path or a regular file to replace");
  const fs::path link = s.dir / "link";
  fs::create_symlink("/dev/null", link);
  CHECK(error_of([&] { lab::check_output_file({"--out", link}); }) ==
        "--out " + link.string() + ": is a symbolic link (to a character device); expected a new path or a regular "
        "file to replace");
  CHECK(error_of([&] { lab::check_output_file({"--out", s.dir / "old.csv" / "x.csv"}); })
            .find("is a regular file, so nothing can be created below it") != std::string::npos);
  CHECK(error_of([&] { lab::check_output_file({"--out", s.dir / "dir" / ""}); }).find("expected the path of a file") !=
        std::string::npos);
  // Nothing was changed by the refusals.
  CHECK(fs::is_directory(dir / "inside"));
  CHECK(fs::is_fifo(fifo));
  CHECK(fs::is_symlink(link));
  CHECK(slurp(s.dir / "old.csv") == "old");
}

TEST_CASE("write_atomic itself never replaces a FIFO, a device or a symbolic link") {
  Scratch s;
  const fs::path fifo = s.dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(error_of([&] { lab::write_text_atomic(fifo, "x"); }, lab::ErrorKind::kInput) ==
        fifo.string() + ": is a FIFO; refusing to replace it with a file");
  CHECK(fs::is_fifo(fifo));
  const fs::path link = s.dir / "link";
  fs::create_symlink("/dev/null", link);
  CHECK(error_of([&] { lab::write_text_atomic(link, "x"); }, lab::ErrorKind::kInput).find("symbolic link") !=
        std::string::npos);
  CHECK(fs::is_symlink(link));
  CHECK(std::distance(fs::directory_iterator(s.dir), fs::directory_iterator()) == 2);  // no temporary left
}

TEST_CASE("check_output_dir: new, empty, or attrlab's own with --force; a foreign directory never") {
  Scratch s;
  CHECK(error_of([&] { lab::check_output_dir({"--out", s.dir / "new"}, "manifest.json", false); }).empty());
  fs::create_directories(s.dir / "empty");
  CHECK(error_of([&] { lab::check_output_dir({"--out", s.dir / "empty"}, "manifest.json", false); }).empty());

  const fs::path own = s.dir / "own";
  lab::write_text_atomic(own / "manifest.json", "{}");
  CHECK(error_of([&] { lab::check_output_dir({"--out", own}, "manifest.json", false); }) ==
        "--out " + own.string() + ": already exists; pass --force to replace it, or choose a new path");
  CHECK(error_of([&] { lab::check_output_dir({"--out", own}, "manifest.json", true); }).empty());
  // A maps directory is not a data directory: its marker differs.
  CHECK(error_of([&] { lab::check_output_dir({"--out", own}, "maps.json", true); }) ==
        "--out " + own.string() +
            ": is a directory that attrlab did not write (it has files but no maps.json); refusing to replace it, "
            "choose a new path");

  const fs::path foreign = s.dir / "home";
  lab::write_text_atomic(foreign / "thesis.tex", "years of work");
  CHECK(!error_of([&] { lab::check_output_dir({"--out", foreign}, "manifest.json", true); }).empty());
  CHECK(slurp(foreign / "thesis.tex") == "years of work");
  lab::write_text_atomic(s.dir / "file", "f");
  CHECK(error_of([&] { lab::check_output_dir({"--out", s.dir / "file"}, "manifest.json", true); }) ==
        "--out " + (s.dir / "file").string() + ": is a regular file; expected a new path or a directory attrlab wrote");
  fs::create_directory_symlink(own, s.dir / "link");
  CHECK(error_of([&] { lab::check_output_dir({"--out", s.dir / "link"}, "manifest.json", true); })
            .find("is a symbolic link (to a directory)") != std::string::npos);
  CHECK(error_of([&] { lab::check_output_dir({"--out", "."}, "manifest.json", true); })
            .find("expected the path of a directory") != std::string::npos);
  CHECK(fs::exists(own / "manifest.json"));
}

TEST_CASE("check_distinct refuses outputs that collide with each other or with an input") {
  Scratch s;
  const fs::path data = s.dir / "data";
  lab::write_text_atomic(data / "manifest.json", "{}");
  const lab::NamedPath in{"--data", data};
  CHECK(error_of([&] { lab::check_distinct({{"--out", s.dir / "a.csv"}, {"--curves", s.dir / "b.csv"}}, {in}); })
            .empty());
  CHECK(error_of([&] { lab::check_distinct({{"--out", s.dir / "a.csv"}, {"--curves", s.dir / "x" / ".." / "a.csv"}}, {in}); }) ==
        "--curves " + (s.dir / "x" / ".." / "a.csv").string() + ": is also the output --out " +
            (s.dir / "a.csv").string() + "; each output needs its own path");
  CHECK(error_of([&] { lab::check_distinct({{"--out", data / ""}}, {in}); }) ==
        "--out " + (data / "").string() + ": is the input --data " + data.string() + "; writing it would destroy the input");
  CHECK(error_of([&] { lab::check_distinct({{"--out", s.dir}}, {in}); }) ==
        "--out " + s.dir.string() + ": contains the input --data " + data.string() + "; writing it would destroy the input");
  CHECK(error_of([&] { lab::check_distinct({{"--out", data / "manifest.json"}}, {in}); }) ==
        "--out " + (data / "manifest.json").string() + ": lies inside the input --data " + data.string() +
            "; choose a path outside it");
  // Through a symbolic link too.
  fs::create_directory_symlink(data, s.dir / "alias");
  CHECK(error_of([&] { lab::check_distinct({{"--out", s.dir / "alias"}}, {in}); }).find("is the input --data") !=
        std::string::npos);
}

TEST_CASE("inputs are read only from regular files: a FIFO is refused at once, never opened") {
  Scratch s;
  const fs::path fifo = s.dir / "gt.npy";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening a FIFO for reading would block until a writer comes: the check must not open it.
  CHECK(error_of([&] { lab::read_npy(fifo); }, lab::ErrorKind::kInput) == fifo.string() + ": is a FIFO; expected a regular file");
  CHECK(error_of([&] { lab::read_text(fifo); }, lab::ErrorKind::kInput) == fifo.string() + ": is a FIFO; expected a regular file");
  CHECK(error_of([&] { lab::read_text("/dev/zero"); }, lab::ErrorKind::kInput) ==
        "/dev/zero: is a character device; expected a regular file");
  CHECK(error_of([&] { lab::check_input_file(s.dir / "none"); }, lab::ErrorKind::kInput) ==
        (s.dir / "none").string() + ": no such file");
}

TEST_CASE("sweep_stale_temps removes the temporaries of dead processes only") {
  Scratch s;
  const long dead = dead_pid();
  const std::string d = std::to_string(dead), me = std::to_string(::getpid());
  lab::write_text_atomic(s.dir / ("results.csv." + d + "-0.tmp"), "stale");
  lab::write_text_atomic(s.dir / ("results.csv." + me + "-0.tmp"), "being written");
  lab::write_text_atomic(s.dir / ("other.csv." + d + "-3.tmp"), "stale, another name");
  lab::write_text_atomic(s.dir / "notes.tmp", "not ours");
  lab::write_text_atomic(s.dir / ("data.tmp-" + d) / "images" / "000000.png", "stale");
  fs::create_directories(s.dir / ("data.old-" + d));
  lab::write_text_atomic(s.dir / "sub" / ("maps.json." + d + "-1.tmp"), "stale, deeper");

  CHECK(lab::sweep_stale_temps(s.dir, false, "results.csv") == 1);
  CHECK_FALSE(fs::exists(s.dir / ("results.csv." + d + "-0.tmp")));
  CHECK(fs::exists(s.dir / ("other.csv." + d + "-3.tmp")));
  CHECK(lab::sweep_stale_temps(s.dir, false) == 3);
  CHECK(fs::exists(s.dir / "sub" / ("maps.json." + d + "-1.tmp")));
  CHECK(lab::sweep_stale_temps(s.dir, true) == 1);
  CHECK(fs::exists(s.dir / ("results.csv." + me + "-0.tmp")));  // this process is alive
  CHECK(fs::exists(s.dir / "notes.tmp"));

  SUBCASE("a StagedDir sweeps the stale temporaries of its directory") {
    lab::write_text_atomic(s.dir / ("data.tmp-" + d) / "x", "stale");
    lab::StagedDir staged(s.dir / "data");
    CHECK_FALSE(fs::exists(s.dir / ("data.tmp-" + d)));
  }
}

TEST_CASE("a temporary is created under the interrupt's lock, so that an interrupt never misses it") {
  // Created after the registration but outside the lock, a temporary could appear just after the
  // interrupt's cleanup had looked for it, and outlive the process.
  Scratch s;
  const fs::path temp = s.dir / "made.tmp";
  std::atomic<bool> paused{false};
  std::thread other;
  {
    const lab::TempRegistration registration(temp, [&] {
      other = std::thread([&] {
        const lab::CleanupPause pause;  // what the interrupt's cleanup takes first
        paused = true;
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      CHECK_FALSE(paused.load());  // held while the path is created
      std::ofstream(temp) << "x";
    });
    other.join();
    CHECK(paused.load());
    CHECK(fs::exists(temp));
  }
}

TEST_CASE("DirLock: one holder at a time, named in the refusal") {
  Scratch s;
  {
    const lab::DirLock first(s.dir, "--out");
    CHECK(fs::exists(s.dir / lab::DirLock::kFileName));
    CHECK(error_of([&] { lab::DirLock second(s.dir, "--out"); }) ==
          "--out " + s.dir.string() + ": another attrlab command is writing into it (it holds " +
              (s.dir / lab::DirLock::kFileName).string() + "); wait for it to end or choose another --out");
  }
  CHECK(error_of([&] { lab::DirLock again(s.dir, "--out"); }).empty());
}

TEST_CASE("PathLock: a new output path locked beside it, one holder at a time, the lock file removed after") {
  Scratch s;
  const fs::path out = s.dir / "new" / "data";  // neither exists yet
  const fs::path file = s.dir / "new" / "data.attrlab.lock";
  CHECK(lab::PathLock::file_of(out) == file);
  CHECK(lab::PathLock::file_of(fs::path(out.string() + "/")) == file);
  {
    const lab::PathLock first({"--out", out});
    CHECK(fs::is_regular_file(file));
    CHECK_FALSE(fs::exists(out));
    CHECK(error_of([&] { lab::PathLock second({"--out", out}); }) ==
          "--out " + out.string() + ": another attrlab command is writing it (it holds " + file.string() +
              "); wait for it to end or choose another --out");
    CHECK(fs::is_regular_file(file));  // the refused one leaves the holder's file alone
    // lock_output_dir: the lock first, then the output checked again.
    CHECK(error_of([&] { auto lock = lab::lock_output_dir({"--out", out}, "manifest.json", false); })
              .find("another attrlab command") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(file));
  fs::create_directories(out);
  std::ofstream(out / "manifest.json") << "{}";
  CHECK(error_of([&] { auto lock = lab::lock_output_dir({"--out", out}, "manifest.json", false); }) ==
        "--out " + out.string() + ": already exists; pass --force to replace it, or choose a new path");
  CHECK_FALSE(fs::exists(file));
  CHECK(error_of([&] { auto lock = lab::lock_output_dir({"--out", out}, "manifest.json", true); }).empty());
}

TEST_CASE("check_memory refuses an estimate above the limit, naming both") {
  ::setenv("ATTRLAB_MEMORY_LIMIT", "1048576", 1);
  CHECK(error_of([] { lab::check_memory(1048576, "--count 1"); }).empty());
  CHECK(error_of([] { lab::check_memory(3u << 30, "--count 9 images"); }) ==
        "--count 9 images: needs about 3.0 GiB of memory, more than the 1.0 MiB allowed by ATTRLAB_MEMORY_LIMIT");
  ::setenv("ATTRLAB_MEMORY_LIMIT", "lots", 1);
  CHECK(error_of([] { lab::check_memory(1, "x"); }) == "ATTRLAB_MEMORY_LIMIT=lots: expected a number of bytes");
  ::unsetenv("ATTRLAB_MEMORY_LIMIT");
  CHECK(lab::available_memory() > 0);
  CHECK(error_of([] { lab::check_memory(uint64_t{1} << 62, "everything"); }).find("available (MemAvailable") !=
        std::string::npos);
}
