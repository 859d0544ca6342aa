// Atomic files and staged directories: a failed write leaves the old file and no temporary
// behind; a StagedDir appears under its final name only on commit(), replacing an old one, and
// vanishes when abandoned. Readers name the file in their errors.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>

#include "tests/scratch.h"
#include "lab/core/error.h"
#include "lab/io/files.h"

namespace fs = std::filesystem;

namespace {

struct FilesScratch : testdir::Scratch {
  FilesScratch() : testdir::Scratch("files") {}
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("write_atomic writes the whole file and leaves no temporary") {
  FilesScratch scratch;
  const fs::path path = scratch.dir / "out.txt";
  lab::write_atomic(path, [](std::ostream& out) { out << "first\n" << 42; });
  CHECK(slurp(path) == "first\n42");
  lab::write_text_atomic(path, std::string("sec\0ond", 7));
  CHECK(slurp(path) == std::string("sec\0ond", 7));
  CHECK(entries(scratch.dir) == 1);
}

TEST_CASE("write_atomic leaves the old file untouched when the writer throws") {
  FilesScratch scratch;
  const fs::path path = scratch.dir / "table.csv";
  lab::write_text_atomic(path, "old contents\n");

  SUBCASE("a lab::Error passes through") {
    CHECK_THROWS_AS(lab::write_atomic(path,
                                      [](std::ostream& out) {
                                        out << "half of the new ";
                                        out.flush();
                                        lab::fail("writer gave up");
                                      }),
                    lab::Error);
  }
  SUBCASE("any other exception passes through") {
    CHECK_THROWS_AS(lab::write_atomic(path,
                                      [](std::ostream& out) {
                                        out << std::string(1 << 20, 'x');
                                        throw std::runtime_error("disk on fire");
                                      }),
                    std::runtime_error);
  }
  CHECK(slurp(path) == "old contents\n");
  CHECK(entries(scratch.dir) == 1);
}

TEST_CASE("write_atomic of a new file that fails creates nothing") {
  FilesScratch scratch;
  const fs::path path = scratch.dir / "new.txt";
  CHECK_THROWS_AS(lab::write_atomic(path, [](std::ostream&) { throw std::runtime_error("no"); }), std::runtime_error);
  CHECK(entries(scratch.dir) == 0);
}

TEST_CASE("write_atomic creates missing parent directories and refuses a directory as target") {
  FilesScratch scratch;
  const fs::path path = scratch.dir / "a" / "b" / "c.txt";
  lab::write_text_atomic(path, "deep");
  CHECK(slurp(path) == "deep");

  const std::string message = error_of([&] { lab::write_text_atomic(scratch.dir / "a", "x"); });
  CHECK(message == (scratch.dir / "a").string() + ": is a directory, expected a file");
  CHECK(fs::is_directory(scratch.dir / "a"));
}

TEST_CASE("read_text and read_json name the file in their errors") {
  FilesScratch scratch;
  const fs::path missing = scratch.dir / "missing.json";
  CHECK(error_of([&] { lab::read_text(missing); }) == missing.string() + ": no such file");
  CHECK(error_of([&] { lab::read_json(missing); }) == missing.string() + ": no such file");
  CHECK(error_of([&] { lab::read_text(scratch.dir); }) == scratch.dir.string() + ": is a directory, expected a file");

  const fs::path broken = scratch.dir / "broken.json";
  lab::write_text_atomic(broken, "{\"a\": 1,\n \"b\": }\n");
  const std::string message = error_of([&] { lab::read_json(broken); });
  CAPTURE(message);
  CHECK(message.rfind(broken.string() + ": invalid JSON: ", 0) == 0);
  CHECK(message.find("line 2") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("write_json then read_json round-trips, pretty-printed and newline-terminated") {
  FilesScratch scratch;
  const fs::path path = scratch.dir / "params.json";
  const nlohmann::json value = {{"seed", 1}, {"name", "multi-color-sum"}, {"sizes", {32, 64}}};
  lab::write_json(path, value);
  CHECK(lab::read_json(path) == value);
  CHECK(slurp(path) == "{\n  \"name\": \"multi-color-sum\",\n  \"seed\": 1,\n  \"sizes\": [\n    32,\n    64\n  ]\n}\n");

  const std::string message = error_of([&] { lab::write_json(path, nlohmann::json("bad \xff utf-8")); });
  CHECK(message.rfind(path.string() + ": cannot write JSON", 0) == 0);
  CHECK(lab::read_json(path) == value);
}

TEST_CASE("StagedDir appears under its final name only on commit") {
  FilesScratch scratch;
  const fs::path final_path = scratch.dir / "data";
  {
    lab::StagedDir staged(final_path);
    CHECK(staged.final_path() == final_path);
    CHECK(staged.path() == scratch.dir / ("data.tmp-" + std::to_string(::getpid())));
    CHECK(fs::is_directory(staged.path()));
    lab::write_text_atomic(staged.path() / "a.txt", "A");
    CHECK_FALSE(fs::exists(final_path));
    staged.commit();
    CHECK_FALSE(fs::exists(staged.path()));
  }
  CHECK(slurp(final_path / "a.txt") == "A");
  CHECK(entries(scratch.dir) == 1);

  SUBCASE("commit replaces an existing directory and all its files") {
    {
      lab::StagedDir staged(final_path);
      lab::write_text_atomic(staged.path() / "b.txt", "B");
      staged.commit();
    }
    CHECK(slurp(final_path / "b.txt") == "B");
    CHECK_FALSE(fs::exists(final_path / "a.txt"));
    CHECK(entries(scratch.dir) == 1);
  }
  SUBCASE("abandoned, the temporary is removed and the old directory is kept") {
    {
      lab::StagedDir staged(final_path);
      lab::write_text_atomic(staged.path() / "b.txt", "B");
      fs::create_directories(staged.path() / "sub" / "deeper");
    }
    CHECK(slurp(final_path / "a.txt") == "A");
    CHECK_FALSE(fs::exists(final_path / "b.txt"));
    CHECK(entries(scratch.dir) == 1);
  }
  SUBCASE("abandoned by an exception, the temporary is removed") {
    try {
      lab::StagedDir staged(final_path);
      lab::write_text_atomic(staged.path() / "b.txt", "B");
      throw std::runtime_error("generator failed");
    } catch (const std::runtime_error&) {
    }
    CHECK(entries(scratch.dir) == 1);
    CHECK(slurp(final_path / "a.txt") == "A");
  }
}

TEST_CASE("StagedDir creates missing parents, accepts a trailing slash, and refuses to replace a file") {
  FilesScratch scratch;
  {
    lab::StagedDir staged(scratch.dir / "runs" / "default" / "data" / "");
    CHECK(staged.final_path() == scratch.dir / "runs" / "default" / "data");
    staged.commit();
  }
  CHECK(fs::is_directory(scratch.dir / "runs" / "default" / "data"));

  const fs::path file = scratch.dir / "plain";
  lab::write_text_atomic(file, "keep");
  {
    lab::StagedDir staged(file);
    const std::string message = error_of([&] { staged.commit(); });
    CHECK(message == file.string() + ": exists and is not a directory; refusing to replace it");
  }
  CHECK(slurp(file) == "keep");
  CHECK(entries(scratch.dir) == 2);
}
