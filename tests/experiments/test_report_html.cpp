// report.md → report.html (experiments/report/html.h): CommonMark rendering by cmark-gfm, the
// table of contents, numbered figures inlined as data URIs with their captions, summary rows in
// <tfoot>, and escaping that leaves labels such as "IG*" as typed.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "experiments/report/html.h"
#include "experiments/report/report.h"
#include "experiments/table.h"
#include "tests/scratch.h"

namespace fs = std::filesystem;
using namespace experiments;

TEST_CASE("report HTML: headings with ids and contents, tables with tfoot, figures inlined with captions") {
  testdir::Scratch scratch("html");
  fs::create_directories(scratch.dir / "figures");
  const std::string png = "\x89PNG fake bytes";
  std::ofstream(scratch.dir / "figures" / "a.png", std::ios::binary) << png;

  Table t;
  t.title = "Rankings of IG* and IG";
  t.caption = "Ranks; ρ is *Spearman's*.";
  t.columns = {"Method", "Rank"};
  t.add({"IG*", "1"});
  t.add({"IG", "2"});
  t.add({"Spearman ρ", "0.5"});
  t.footer_rows = 1;
  const std::string md = "# Report: x\n\nRun with `attrlab run x`, see " + markdown_escape("maps/<model>/ and a_b*c") +
                         ".\n\n## Study one\n\n" + to_markdown(t) + "\n![a](figures/a.png)\n\n" +
                         markdown_escape("Curves of IG* (mean).") + " ([SVG](figures/a.svg))\n\n## Settings\n\nDone.\n";
  HtmlPage page;
  page.title = "Report: x";
  page.base = scratch.dir;
  page.footer_rows = {1};
  const std::string html = markdown_to_html(md, page);
  CAPTURE(html);
  CHECK(html.find("<code>attrlab run x</code>") != std::string::npos);  // a real code span
  CHECK(html.find("maps/&lt;model&gt;/ and a_b*c") != std::string::npos);  // escapes consumed
  CHECK(html.find("<h2 id=\"section-1\">Study one</h2>") != std::string::npos);
  CHECK(html.find("<h3 id=\"section-2\">Rankings of IG* and IG</h3>") != std::string::npos);
  CHECK(html.find("<h2 id=\"section-3\">Settings</h2>") != std::string::npos);
  CHECK(html.find("<a href=\"#section-2\">Rankings of IG* and IG</a>") != std::string::npos);
  // The contents follow the first paragraph, before the first section.
  CHECK(html.find("<nav id=\"contents\">") > html.find("</code>"));
  CHECK(html.find("<nav id=\"contents\">") < html.find("<h2 id=\"section-1\">"));
  // The table: IG* as typed, two body rows, the ρ row in the footer.
  CHECK(html.find("<td>IG*</td>") != std::string::npos);
  const size_t tbody = html.find("<tbody>"), tfoot = html.find("<tfoot>");
  REQUIRE(tbody != std::string::npos);
  REQUIRE(tfoot != std::string::npos);
  CHECK(html.find("<td>IG</td>") < tfoot);
  CHECK(html.find("<td>Spearman ρ</td>") > tfoot);
  CHECK(html.find("<em>Spearman's</em>") == std::string::npos);  // the caption's '*' stays text
  // The figure: numbered, inlined, its caption rendered as Markdown, the SVG linked.
  CHECK(html.find("<figure id=\"figure-1\"><img alt=\"a\" src=\"data:image/png;base64," + base64(png) + "\">") !=
        std::string::npos);
  CHECK(html.find("<figcaption><b>Figure 1.</b> Curves of IG* (mean). (<a href=\"figures/a.svg\">SVG</a>)</figcaption>") !=
        std::string::npos);
  CHECK(html.find("src=\"figures/") == std::string::npos);
  CHECK(html.find("<p><img") == std::string::npos);
  // The sorting script is inline; no external resource is referenced.
  CHECK(html.find("<script>") != std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
}

TEST_CASE("report HTML: raw HTML in the Markdown is not passed through; a missing figure is an error") {
  testdir::Scratch scratch("html-safe");
  HtmlPage page;
  page.base = scratch.dir;
  const std::string html = markdown_to_html("# T\n\nText.\n\n<script>alert(1)</script>\n", page);
  CHECK(html.find("alert(1)") == std::string::npos);
  CHECK_THROWS(markdown_to_html("# T\n\n![f](figures/missing.png)\n\ncaption\n", page));
}
