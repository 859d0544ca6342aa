// What the attrlab command loads at start-up (README "Start-up cost"): the dynamic loader's own
// account (LD_DEBUG=files, printed on stderr) of `attrlab methods` names no library that only
// some commands need — OpenCV's image codecs and what they drag in (GDAL), OpenCV's ximgproc —
// and the program runs once (libgomp initialised once, after the executable has handed over to
// libattrlab_cli.so, so that the spin count it sets is the one libgomp reads). LIME with the
// SLIC and Felzenszwalb segmentations then loads libattrlab_ximgproc.so on first use.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "run_cli.h"

using clitest::run;

namespace {

/// The loader's lines "file=NAME [0];  needed by …" / "… dynamically loaded by …", in order.
std::vector<std::string> loaded_files(const std::string& ld_debug) {
  std::vector<std::string> lines;
  std::istringstream in(ld_debug);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("file=");
    if (at != std::string::npos &&
        (line.find("needed by") != std::string::npos || line.find("dynamically loaded by") != std::string::npos))
      lines.push_back(line.substr(at + 5));
  }
  return lines;
}

/// Index of the first line naming `name`, or -1.
int first(const std::vector<std::string>& lines, const std::string& name) {
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find(name) != std::string::npos) return static_cast<int>(i);
  return -1;
}

}  // namespace

TEST_CASE("attrlab starts without the libraries only some commands need, and runs once") {
  const auto listed = run("methods", "LD_DEBUG=files");
  REQUIRE(listed.code == 0);
  CHECK(listed.out.find("saliency") != std::string::npos);
  const std::vector<std::string> files = loaded_files(listed.err);
  for (const std::string absent : {"libopencv_imgcodecs", "libgdal", "libopencv_ximgproc", "libattrlab_ximgproc"}) {
    CAPTURE(absent);
    CHECK(first(files, absent) == -1);
  }
  // One execution: libgomp is initialised once (a second execution would load everything again).
  int gomp_inits = 0;
  std::istringstream in(listed.err);
  for (std::string line; std::getline(in, line);)
    if (line.find("calling init: ") != std::string::npos && line.find("libgomp.so") != std::string::npos) ++gomp_inits;
  CHECK(gomp_inits == 1);
  REQUIRE(first(files, "libattrlab_cli.so") >= 0);
  CHECK(files[static_cast<size_t>(first(files, "libattrlab_cli.so"))].find("dynamically loaded by") != std::string::npos);
  // libgomp arrives with the command's libraries, not with the executable.
  REQUIRE(first(files, "libgomp.so") >= 0);
  CHECK(first(files, "libgomp.so") > first(files, "libattrlab_cli.so"));
}

TEST_CASE("LIME with slic and felzenszwalb loads OpenCV's segmentations on first use") {
  const auto dir = clitest::scratch();
  const std::string data = (dir / "startup-data").string();
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 1 --out " + data).code == 0);
  for (const std::string algorithm : {"slic", "felzenszwalb"}) {
    CAPTURE(algorithm);
    const std::string maps = (dir / ("startup-maps-" + algorithm)).string();
    const auto lime = run("attribute --data " + data + " --method lime -p segmentation=" + algorithm +
                              " -p samples=50 --out " + maps,
                          "LD_DEBUG=files");
    CHECK(lime.code == 0);
    CHECK(first(loaded_files(lime.err), "libattrlab_ximgproc.so") >= 0);
    CHECK(first(loaded_files(lime.err), "libopencv_ximgproc") >= 0);
  }
}
