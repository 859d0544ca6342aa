// Table reporters: the Markdown writer against a stored golden file, CSV quoting and parsing of
// results rows, number formatting, base64 for the HTML report, and the progress bar's text.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/progress.h"
#include "experiments/report/report.h"
#include "experiments/table.h"
#include "lab/core/error.h"

namespace fs = std::filesystem;
using namespace experiments;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A table exercising every feature of the writer: alignments, ties, "n/a", a '|' inside a
/// cell, non-ASCII text (padded by code points), an empty cell, title and caption.
Table sample_table() {
  Table t;
  t.id = "golden";
  t.title = "Rankings on with-ude (1 = best)";
  t.caption = "Ranks follow each metric's direction.";
  t.columns = {"Method", "F1 (ours)", "F1 (paper)", "Note", "ρ vs F1"};
  t.align = {Align::kLeft, Align::kRight, Align::kRight, Align::kCenter};  // last column: default left
  t.add({"GradCAM", "8", "8", "", "—"});
  t.add({"IG*", "2.5", "1", "a | b", fixed(0.4651, 2)});
  t.add({"LIME (oracle)", "1", fixed(std::nan(""), 2), "γ = 0.5 ✓", fixed(-0.0249, 2)});
  return t;
}

}  // namespace

TEST_CASE("Markdown table writer matches the golden file") {
  // ctest sets ATTRLAB_SOURCE_DIR; __FILE__ may be relative to the build directory (Ninja with
  // ccache's base_dir), not to the test's working directory.
  const char* source = std::getenv("ATTRLAB_SOURCE_DIR");
  const fs::path golden = (source ? fs::path(source) / "tests" / "experiments" : fs::path(__FILE__).parent_path()) /
                          "golden" / "table.md";
  CHECK(to_markdown(sample_table()) == read_file(golden));
}

TEST_CASE("Markdown table: columns padded to equal width, separators carry the alignment") {
  Table t;
  t.columns = {"a", "bb"};
  t.align = {Align::kRight, Align::kLeft};
  t.add({"xyz", "1"});
  CHECK(to_markdown(t) == "|   a | bb  |\n| --: | --- |\n| xyz | 1   |\n");
}

TEST_CASE("CSV: every cell quoted, inner quotes doubled, and split back") {
  Table t;
  t.columns = {"method", "note"};
  t.add({"LIME (slic)", "said \"hi\", twice"});
  CHECK(to_csv(t) == "\"method\",\"note\"\n\"LIME (slic)\",\"said \"\"hi\"\", twice\"\n");
  CHECK(csv_split("\"LIME (slic)\",\"said \"\"hi\"\", twice\",3") ==
        std::vector<std::string>{"LIME (slic)", "said \"hi\", twice", "3"});
}

TEST_CASE("results.csv rows: fixed columns, round trip, malformed lines named") {
  const ResultRow row{"with-ude", "000003", "IG*", "gt", "f1-positive", 0.123456789012};
  const std::string line = to_csv_line(row);
  CHECK(line == "\"with-ude\",\"000003\",\"IG*\",\"gt\",\"f1-positive\",0.123456789012\n");
  const auto parsed = parse_result_csv(result_csv_header() + line, "r.csv");
  REQUIRE(parsed.size() == 1);
  CHECK(parsed[0].method == "IG*");
  CHECK(parsed[0].value == 0.123456789012);  // reads back exactly
  const CurveRow curve{"m", "000001", "LIME, oracle", "insertion", "auc", 0.5, -1e-7};
  const auto curves = parse_curve_csv(curve_csv_header() + to_csv_line(curve), "c.csv");
  REQUIRE(curves.size() == 1);
  CHECK(curves[0].method == "LIME, oracle");
  CHECK(curves[0].y == -1e-7);
  CHECK_THROWS_WITH_AS(parse_result_csv(result_csv_header() + "\"a\",\"b\"\n", "r.csv"), doctest::Contains("r.csv:2"),
                       lab::Error);
  CHECK_THROWS_AS(parse_result_csv("sample,value\n", "r.csv"), lab::Error);
  CHECK_THROWS_AS(parse_result_csv(result_csv_header() + "\"m\",\"s\",\"x\",\"gt\",\"f1\",abc\n", "r.csv"), lab::Error);
}

TEST_CASE("number formatting") {
  // Data files: the shortest decimal that reads back to the same double.
  CHECK(exact_number(0.1) == "0.1");
  CHECK(exact_number(1.0 / 3.0) == "0.3333333333333333");
  CHECK(std::stod(exact_number(1.0 / 3.0)) == 1.0 / 3.0);
  CHECK(exact_number(-1e-7) == "-1e-07");
  CHECK(exact_number(2.0) == "2");
  CHECK(fixed(0.125, 2) == "0.12");  // round half to even in binary: 0.125 is exact
  CHECK(fixed(-0.001, 2) == "0.00");
  CHECK(fixed(std::nan(""), 2) == "n/a");
  CHECK(signed_fixed(0.4, 2) == "+0.40");
  CHECK(signed_fixed(-0.4, 2) == "-0.40");
  CHECK(signed_fixed(0.0001, 2) == "0.00");
}

TEST_CASE("base64 follows RFC 4648's test vectors") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foob") == "Zm9vYg==");
  CHECK(base64("fooba") == "Zm9vYmE=");
  CHECK(base64("foobar") == "Zm9vYmFy");
  CHECK(base64(std::string("\xff\x00\x10", 3)) == "/wAQ");
}

TEST_CASE("progress bar text: units, rate, time left") {
  CHECK(render_progress(12, 30, 12, 10.0, "IG*", 20) ==
        "[########............] 12/30 units  1.20 units/s  ETA 0:15  IG*");
  CHECK(render_progress(3, 10, 2, 20.0, "", 10) == "[###.......]  3/10 units  10.0 s/unit  ETA 1:10");
  CHECK(render_progress(0, 4, 0, 0.0, "", 4) == "[....] 0/4 units  ETA --:--");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(62) == "1:02");
  CHECK(format_duration(-1) == "--:--");
}

TEST_CASE("progress bar off a terminal: one line per tenth, a final line, nothing when quiet") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  {
    Progress p(20, true, f);
    for (int i = 0; i < 20; ++i) {
      p.start("unit");
      p.advance();
    }
    p.finish();
  }
  std::rewind(f);
  std::string text;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, f)) text += buffer;
  std::fclose(f);
  int lines = 0;
  for (char c : text) lines += c == '\n';
  CHECK(lines == 11);  // the start (0/20), tenths 1..9, and the final line
  CHECK(text.find("20/20 units") != std::string::npos);
  CHECK(text.find("done in") != std::string::npos);

  std::FILE* g = std::tmpfile();
  {
    Progress quiet(5, false, g);
    quiet.advance();
    quiet.finish();
  }
  CHECK(std::ftell(g) == 0);
  std::fclose(g);
}
