// End to end: attrlab export writes the network of a data directory (or of --env -o) as ONNX or
// as a PyTorch archive, deterministically; attrlab predict --inputs gives the logits of any .npy
// batch, equal to predict --data's on the directory's own images in every layout and dtype; bad
// flags exit 1, bad files exit 2, each with one line.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "lab/io/files.h"
#include "lab/io/image.h"
#include "lab/io/npy.h"
#include "run_cli.h"

using clitest::run;
using clitest::scratch;
using clitest::slurp;

namespace {

/// The CSV's lines with their first `skip` columns removed.
std::vector<std::string> columns_after(const std::string& csv, int skip) {
  std::vector<std::string> rows;
  size_t start = 0;
  while (start < csv.size()) {
    size_t end = csv.find('\n', start);
    if (end == std::string::npos) end = csv.size();
    std::string line = csv.substr(start, end - start);
    size_t at = 0;
    for (int i = 0; i < skip; ++i) at = line.find(',', at) + 1;
    rows.push_back(line.substr(at));
    start = end + 1;
  }
  return rows;
}

bool one_line(const std::string& err) { return !err.empty() && err.find('\n') == err.size() - 1; }

}  // namespace

TEST_CASE("attrlab export: ONNX and PyTorch files from --data or --env, byte-identical") {
  const auto dir = scratch() / "export";
  std::filesystem::create_directories(dir);
  const std::string data = (dir / "m32").string();
  REQUIRE(run("generate --env multi-color-sum -o size=32 -o ude=off --count 3 --out " + data).code == 0);
  const auto onnx = run("export --data " + data + " --format onnx --out " + (dir / "a.onnx").string());
  REQUIRE(onnx.code == 0);
  CHECK(onnx.err.find("as ONNX opset 13 to") != std::string::npos);
  REQUIRE(run("export --env multi-color-sum -o size=32 -o ude=off --format onnx --out " + (dir / "b.onnx").string())
              .code == 0);
  CHECK(lab::read_text(dir / "a.onnx") == lab::read_text(dir / "b.onnx"));
  REQUIRE(run("export --env multi-color-sum -o size=32 --format onnx --out " + (dir / "c.onnx").string()).code == 0);
  CHECK(lab::read_text(dir / "a.onnx") != lab::read_text(dir / "c.onnx"));  // ude=on wires more weights

  REQUIRE(run("export --data " + data + " --format torch --out " + (dir / "a.npz").string()).code == 0);
  const std::string npz = lab::read_text(dir / "a.npz");
  CHECK(npz.rfind("PK\x03\x04", 0) == 0);
  for (const char* member : {"architecture.json", "detector.layers.0.weight.npy", "mlp.layers.2.bias.npy",
                             "\"image-divisor\": 1.0", "\"ude\": false"})
    CHECK(npz.find(member) != std::string::npos);
  REQUIRE(run("export --env single-color-modulo -o size=32 --format torch --out " + (dir / "m.npz").string()).code ==
          0);
  CHECK(lab::read_text(dir / "m.npz").find("\"image-divisor\": 255.0") != std::string::npos);
}

TEST_CASE("attrlab export: bad flags exit 1, a bad data directory exits 2") {
  const auto out = (scratch() / "never.onnx").string();
  const auto format = run("export --env multi-color-sum --format pdf --out " + out);
  CHECK(format.code == 1);
  CHECK(format.err.find("pdf") != std::string::npos);
  CHECK(run("export --format onnx --out " + out).code == 1);
  CHECK(run("export --data x --env multi-color-sum --format onnx --out " + out).code == 1);
  CHECK(run("export --data x -o size=32 --format onnx --out " + out).code == 1);
  const auto missing = run("export --data " + (scratch() / "no-such-dir").string() + " --format onnx --out " + out);
  CHECK(missing.code == 2);
  CHECK(one_line(missing.err));
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("attrlab predict --inputs: the directory's own images in every layout give predict --data's logits") {
  const auto dir = scratch() / "predict-inputs";
  std::filesystem::create_directories(dir);
  const std::string data = (dir / "m32").string();
  REQUIRE(run("generate --env multi-color-sum -o size=32 --count 4 --seed 9 --out " + data).code == 0);
  REQUIRE(run("predict --data " + data + " --out " + (dir / "ref.csv").string()).code == 0);
  const std::vector<std::string> want = columns_after(slurp(dir / "ref.csv"), 2);  // drop id,label

  // The images as uint8 N×H×W×C and as float32 N×C×H×W network inputs (RGB values as they are).
  const int64_t n = 4, side = 32;
  std::vector<uint8_t> u8;
  lab::Tensor x({n, 3, side, side});
  for (int64_t i = 0; i < n; ++i) {
    const cv::Mat image = lab::read_png(dir / "m32" / "images" / ("00000" + std::to_string(i) + ".png"), 3);
    for (int64_t y = 0; y < side; ++y)
      for (int64_t xx = 0; xx < side; ++xx)
        for (int64_t k = 0; k < 3; ++k) {
          const uint8_t v = image.ptr<uint8_t>(static_cast<int>(y))[xx * 3 + k];
          u8.push_back(v);
          x[((i * 3 + k) * side + y) * side + xx] = v;
        }
  }
  lab::write_npy_u8(dir / "images.npy", u8, {n, side, side, 3});
  lab::write_npy(dir / "inputs.npy", x);
  for (const std::string& source : {"--data " + data, std::string("--env multi-color-sum -o size=32")})
    for (const char* file : {"images.npy", "inputs.npy"}) {
      CAPTURE(source);
      CAPTURE(file);
      const auto out = dir / "got.csv";
      const auto r = run("predict --inputs " + (dir / file).string() + " " + source + " --out " + out.string());
      REQUIRE(r.code == 0);
      const std::string csv = slurp(out);
      CHECK(csv.rfind("index,predicted,logit_0,", 0) == 0);
      CHECK(columns_after(csv, 1) == want);  // drop index
    }

  // A shape that fits the network in neither layout: exit 2, one line naming the file and shape.
  lab::write_npy(dir / "wrong.npy", lab::Tensor({2, 3, 16, 16}));
  const auto wrong = run("predict --inputs " + (dir / "wrong.npy").string() + " --data " + data + " --out " +
                         (dir / "w.csv").string());
  CHECK(wrong.code == 2);
  CHECK(one_line(wrong.err));
  CHECK(wrong.err.find("wrong.npy: shape [2, 3, 16, 16] does not fit") != std::string::npos);
  CHECK(!std::filesystem::exists(dir / "w.csv"));
  // --env and -o only with --inputs; --inputs needs a network.
  CHECK(run("predict --env multi-color-sum --out " + (dir / "w.csv").string()).code == 1);
  CHECK(run("predict --inputs " + (dir / "inputs.npy").string() + " --out " + (dir / "w.csv").string()).code == 1);
  CHECK(run("predict --data " + data + " -o size=32 --out " + (dir / "w.csv").string()).code == 1);
}
