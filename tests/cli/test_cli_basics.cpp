// End-to-end behaviour of the attrlab command: version, help, usage errors, exit codes, and the
// data path generate → predict on a small data directory.
#include <doctest/doctest.h>

#include <fstream>

#include "run_cli.h"

using clitest::run;

TEST_CASE("--version and --help exit 0") {
  const auto v = run("--version");
  CHECK(v.code == 0);
  CHECK(v.out.find("attrlab ") != std::string::npos);
  for (const char* cmd : {"--help", "generate --help", "predict --help", "summary --help"}) {
    CAPTURE(cmd);
    CHECK(run(cmd).code == 0);
  }
}

TEST_CASE("usage errors exit 1 with a message") {
  const auto a = run("--no-such-flag");
  CHECK(a.code == 1);
  const auto b = run("summary --env multi-color-sum --bogus");
  CHECK(b.code == 1);
  const auto c = run("");  // a subcommand is required
  CHECK(c.code == 1);
}

TEST_CASE("bad parameters exit 3 naming the option; bad input exits 2 naming the file") {
  const auto env = run("summary --env no-such-env");
  CHECK(env.code == 1);
  CHECK(env.err.find("no-such-env") != std::string::npos);
  const auto opt = run("summary --env multi-color-sum -o colours=4");
  CHECK(opt.code == 1);
  CHECK(opt.err.find("colours") != std::string::npos);
  const auto size = run("summary --env multi-color-sum -o size=17");
  CHECK(size.code == 1);
  const auto missing = run("predict --data " + (clitest::scratch() / "nothing-here").string() + " --out x.csv");
  CHECK(missing.code == 2);
  CHECK(missing.err.find("nothing-here") != std::string::npos);
  CHECK(missing.err.find('\n') == missing.err.size() - 1);  // one line
}

TEST_CASE("generate then predict: every prediction matches its label, output written whole") {
  const auto dir = clitest::scratch() / "data-mcs";
  const auto g = run("generate --env multi-color-sum -o size=32 --count 12 --seed 7 --out " + dir.string());
  REQUIRE(g.code == 0);
  CHECK(std::filesystem::exists(dir / "manifest.json"));
  const auto preds = clitest::scratch() / "preds.csv";
  const auto p = run("predict --data " + dir.string() + " --out " + preds.string());
  REQUIRE(p.code == 0);
  std::ifstream in(preds);
  std::string header, line;
  std::getline(in, header);
  CHECK(header.rfind("id,label,predicted", 0) == 0);
  int rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    // columns: id,label,predicted,...
    const auto c1 = line.find(','), c2 = line.find(',', c1 + 1), c3 = line.find(',', c2 + 1);
    CHECK(line.substr(c1 + 1, c2 - c1 - 1) == line.substr(c2 + 1, c3 - c2 - 1));
  }
  CHECK(rows == 12);
  // Same seed, same bytes.
  const auto dir2 = clitest::scratch() / "data-mcs-2";
  REQUIRE(run("--threads 1 generate --env multi-color-sum -o size=32 --count 12 --seed 7 --out " + dir2.string()).code == 0);
  CHECK(clitest::slurp(dir / "manifest.json") == clitest::slurp(dir2 / "manifest.json"));
  CHECK(clitest::slurp(dir / "gt" / "000003.npy") == clitest::slurp(dir2 / "gt" / "000003.npy"));
}

TEST_CASE("summary prints the model's layers and totals") {
  const auto s = run("summary --env single-color-modulo");
  REQUIRE(s.code == 0);
  CHECK(s.out.find("accumulator.layers.11") != std::string::npos);
  CHECK(s.out.find("modulo.layers.12") != std::string::npos);
}
