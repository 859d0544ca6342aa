// End to end: `attrlab run trap-zoo` at a tiny scale writes the trap-zoo study: the table method ×
// trap with its cells coloured in report.html (green: the promise held on every image, red: it
// broke, grey: no promise), the table of violations and the figure of one map per cell.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "lab/io/files.h"
#include "run_cli.h"

using clitest::run;
namespace fs = std::filesystem;

namespace {

/// The cells of the Markdown table row whose first cell is `method`.
std::string table_row(const std::string& md, const std::string& method) {
  const size_t at = md.find("| " + method + " ");
  if (at == std::string::npos) return "";
  return md.substr(at, md.find('\n', at) - at);
}

}  // namespace

TEST_CASE("attrlab run trap-zoo: the coloured table method x trap, the violations, one map per cell") {
  const fs::path out = clitest::scratch() / "trap-zoo";
  const auto ran = run("run trap-zoo -o count=2 -o size=16 -o unit=2 -o reference=2 "
                       "-o methods.DeepSHAP.params.baselines=data:2 --quiet --out " +
                       out.string());
  INFO(ran.err);
  REQUIRE(ran.code == 0);
  const std::string md = lab::read_text(out / "tables" / "study1-trap-zoo.md");
  // Columns: method, promise, then the seven traps in the study's order.
  CHECK(md.find("| residual ") != std::string::npos);
  CHECK(md.find("| position ") != std::string::npos);
  // DeepLIFT keeps summation-to-delta on every trap; LRP-ε conserves on the bias-free residual
  // trap and breaks on reused-relu (2a − 1: the bias); Saliency promises nothing.
  const std::string deeplift = table_row(md, "DeepLIFT");
  CHECK(deeplift.find("summation-to-delta") != std::string::npos);
  CHECK(deeplift.find("✗") == std::string::npos);
  CHECK(deeplift.find("✓") != std::string::npos);
  const std::string lrp = table_row(md, "LRP-eps");
  CHECK(lrp.find("✓") != std::string::npos);
  CHECK(lrp.find("✗") != std::string::npos);
  const std::string saliency = table_row(md, "Saliency");
  CHECK(saliency.find("n/a") != std::string::npos);
  CHECK(saliency.find("✓") == std::string::npos);
  CHECK(fs::exists(out / "tables" / "study1-trap-zoo-violations.csv"));
  CHECK(fs::exists(out / "figures" / "study1-trap-zoo-maps.png"));
  // report.html colours the cells.
  const std::string html = lab::read_text(out / "report.html");
  CHECK(html.find("td.pass{") != std::string::npos);
  CHECK(html.find("<td class=\"pass\"") != std::string::npos);
  CHECK(html.find("<td class=\"fail\"") != std::string::npos);
  CHECK(html.find("<td class=\"na\"") != std::string::npos);
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
}
