// The report in a browser: a small real run of unseen-data-effect (2 models, 8 methods, 2 images
// of 32×32, small budgets), its report.html opened in headless Chromium (Debian's `chromium`,
// installed by scripts/setup.sh). Asserts: the page renders to a PNG; no script error and no
// console error; every figure decoded (non-zero natural size); no Markdown source left in the
// visible text (backticks, "**", table rules such as "|---|"); the table of contents links to
// every section; clicking a column header sorts the table by that column.
// About 20 s on 2 cores (most of it the run).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "run_cli.h"
#include "tests/scratch.h"

namespace fs = std::filesystem;

namespace {

/// Runs a shell command; its exit code (−1 if it did not exit).
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Prepended to <head>: records uncaught errors and console.error calls.
constexpr const char* kRecorder =
    "<script>window.__errors=[];window.addEventListener('error',function(e){__errors.push(String(e.message))});"
    "var __ce=console.error;console.error=function(){__errors.push(Array.prototype.join.call(arguments,' '));"
    "__ce.apply(console,arguments)};</script>";

// Appended before </body>, after the page's own script: writes its findings as JSON into a
// <pre id="attrlab-check"> that --dump-dom prints.
constexpr const char* kCheck = R"(<script>
window.addEventListener('load', function () {
  var out = {errors: window.__errors, images: [], text: '', toc: 0, headings: 0, sorted: null};
  document.querySelectorAll('img').forEach(function (img) {
    out.images.push({w: img.naturalWidth, h: img.naturalHeight, complete: img.complete});
  });
  out.text = document.body.innerText;
  out.toc = document.querySelectorAll('nav#contents a').length;
  out.headings = document.querySelectorAll('h2[id^=section-],h3[id^=section-]').length;
  out.broken_links = 0;
  document.querySelectorAll('nav#contents a').forEach(function (a) {
    if (!document.getElementById(a.getAttribute('href').slice(1))) out.broken_links++;
  });
  // Sort the first table with a numeric second column by it, ascending then descending.
  var tables = document.querySelectorAll('table');
  for (var t = 0; t < tables.length && out.sorted === null; t++) {
    var body = tables[t].tBodies[0];
    if (!body || body.rows.length < 3) continue;
    var values = function () {
      return Array.prototype.map.call(body.rows, function (r) { return parseFloat(r.cells[1].textContent.replace('\u2212', '-')); });
    };
    if (values().some(isNaN)) continue;
    var th = tables[t].tHead.rows[0].cells[1];
    th.click();
    var up = values();
    th.click();
    var down = values();
    var ascending = up.every(function (v, i) { return i === 0 || up[i - 1] <= v; });
    var descending = down.every(function (v, i) { return i === 0 || down[i - 1] >= v; });
    out.sorted = ascending && descending;
  }
  var pre = document.createElement('pre');
  pre.id = 'attrlab-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
)";

}  // namespace

TEST_CASE("report.html of a small real run renders in headless Chromium: figures load, no errors, no raw Markdown") {
  REQUIRE_MESSAGE(shell("command -v chromium >/dev/null 2>&1") == 0, "chromium is not installed (scripts/setup.sh installs it)");
  testdir::Scratch scratch("browser");
  const fs::path run = scratch.dir / "run";
  const clitest::Outcome o = clitest::run(
      "run unseen-data-effect --quiet -o count=2 -o size=32 -o methods.LIME.params.samples=24 "
      "-o methods.ExPerturb.params.iterations=3 -o methods.IG.params.steps=4 -o methods.IBA.params.iterations=2 "
      "-o metrics.3.params.subsets=4 -o metrics.3.params.points=3 --out " +
      run.string());
  REQUIRE_MESSAGE(o.code == 0, o.err);

  // The page with the recorder and the check, beside the original (its SVG links stay valid).
  std::string html = clitest::slurp(run / "report.html");
  const size_t head = html.find("<head>");
  const size_t body_end = html.rfind("</body>");
  REQUIRE(head != std::string::npos);
  REQUIRE(body_end != std::string::npos);
  html.insert(body_end, kCheck);
  html.insert(head + 6, kRecorder);
  const fs::path page = run / "check.html";
  std::ofstream(page) << html;

  const fs::path dom = scratch.dir / "dom.html", log = scratch.dir / "console.txt", png = scratch.dir / "report.png";
  const std::string chromium = "chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
                               "--user-data-dir=" + (scratch.dir / "profile").string() + " --virtual-time-budget=10000 ";
  REQUIRE(shell(chromium + "--enable-logging=stderr --v=0 --dump-dom file://" + page.string() + " >" + dom.string() +
                " 2>" + log.string()) == 0);
  REQUIRE(shell(chromium + "--window-size=1300,3000 --screenshot=" + png.string() + " file://" +
                (run / "report.html").string() + " >/dev/null 2>&1") == 0);
  CHECK(fs::exists(png));
  CHECK(fs::file_size(png) > 10000);

  // Console messages Chromium logs for the page: none may be an error.
  const std::string console = clitest::slurp(log);
  size_t at = 0;
  while ((at = console.find(":CONSOLE(", at)) != std::string::npos) {
    const size_t line_start = console.rfind('\n', at) + 1;
    const std::string line = console.substr(line_start, console.find('\n', at) - line_start);
    CHECK_MESSAGE(line.find("ERROR") == std::string::npos, line);
    ++at;
  }

  const std::string dumped = clitest::slurp(dom);
  const size_t open = dumped.find("<pre id=\"attrlab-check\">");
  REQUIRE_MESSAGE(open != std::string::npos, "the check script did not run; console: " << console);
  const size_t start = open + std::string("<pre id=\"attrlab-check\">").size();
  std::string text = dumped.substr(start, dumped.find("</pre>", start) - start);
  // --dump-dom escapes &, < and > in text.
  for (const auto& [entity, c] : {std::pair{"&lt;", "<"}, std::pair{"&gt;", ">"}, std::pair{"&amp;", "&"}}) {
    for (size_t p = 0; (p = text.find(entity, p)) != std::string::npos; p += 1) text.replace(p, std::string(entity).size(), c);
  }
  const nlohmann::json check = nlohmann::json::parse(text);
  CHECK_MESSAGE(check.at("errors").empty(), check.at("errors").dump());
  // Figures: the Insertion curves of Table 2, per table the curves and Sensitivity-N, the violins
  // are not in this experiment; at least the curve figures and one map grid per family.
  REQUIRE(check.at("images").size() >= 5);
  for (const auto& image : check.at("images")) {
    CAPTURE(image.dump());
    CHECK(image.at("complete") == true);
    CHECK(image.at("w").get<int>() > 0);
    CHECK(image.at("h").get<int>() > 0);
  }
  const std::string visible = check.at("text");
  CHECK(visible.find('`') == std::string::npos);
  CHECK(visible.find("**") == std::string::npos);
  CHECK(visible.find("|---") == std::string::npos);
  CHECK(visible.find("| ---") == std::string::npos);
  CHECK(visible.find("![") == std::string::npos);
  CHECK(visible.find("](") == std::string::npos);
  CHECK(visible.find("\\*") == std::string::npos);  // escapes consumed by the renderer
  CHECK(visible.find("ρ(No) < 0") != std::string::npos);  // … leaving the text as typed
  CHECK(visible.find("Figure 1.") != std::string::npos);
  CHECK(visible.find("95% bootstrap interval") != std::string::npos);
  // The table of contents: one link per section heading, each resolving.
  CHECK(check.at("toc").get<int>() == check.at("headings").get<int>());
  CHECK(check.at("toc").get<int>() >= 4);
  CHECK(check.at("broken_links") == 0);
  CHECK(check.at("sorted") == true);
}
