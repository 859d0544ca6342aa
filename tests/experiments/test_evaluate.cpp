// Scoring maps of any origin against a data directory (experiments/evaluate.h): the
// layout (H×W and C×H×W maps, maps.json optional), rejected maps reported by file and not
// scored, the tidy CSVs and the .json record.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/scratch.h"
#include "datasets/data_dir.h"
#include "experiments/evaluate.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace fs = std::filesystem;
using namespace experiments;

namespace {

struct TempDir : testdir::Scratch {
  TempDir() : testdir::Scratch("evaluate") {}
  const std::filesystem::path& path = dir;
};

/// Three multi-color-sum samples at 16×16.
fs::path make_data(const fs::path& root) {
  lab::Options options = lab::Options::parse({"size=16"}, "-o");
  const auto env = datasets::make_environment("multi-color-sum", options);
  const fs::path dir = root / "data";
  datasets::write_data_dir(*env, 3, 11, dir);
  return dir;
}

std::map<std::string, double> summary(const Evaluation& e, const std::string& method, const std::string& metric) {
  std::map<std::string, double> out;
  for (const ResultRow& r : e.rows)
    if (r.method == method && r.metric == metric && r.sample == kAllSamples) out[r.variant] = r.value;
  return out;
}

/// A maps directory holding the ground truth of the first `count` samples as their maps.
fs::path gt_maps(const fs::path& dir, const datasets::DataDir& data, int64_t count) {
  fs::create_directories(dir);
  for (int64_t i = 0; i < count; ++i) lab::write_npy(dir / (data.id(i) + ".npy"), data.gt(i));
  return dir;
}

/// Writes `t` as a .npy of dtype "<f8" (float64) or "<f2" (float16; values must be exact halves)
/// with the given shape, as numpy would.
void write_other_dtype(const fs::path& path, const lab::Tensor& t, const lab::Shape& shape, bool half) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  std::string dict = "{'descr': '" + std::string(half ? "<f2" : "<f8") + "', 'fortran_order': False, 'shape': (" +
                     dims + "), }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(dict.size() & 0xFF);
  bytes += static_cast<char>(dict.size() >> 8);
  bytes += dict;
  for (float v : t.values()) {
    if (half) {
      // Exact halves only: 0, ±1, ±0.5 (the ground truth's values here).
      uint16_t h = v == 0.0f ? 0 : static_cast<uint16_t>((v < 0 ? 0x8000 : 0) | (std::abs(v) == 1.0f ? 0x3C00 : 0x3800));
      REQUIRE((v == 0.0f || std::abs(v) == 1.0f || std::abs(v) == 0.5f));
      bytes.append(reinterpret_cast<const char*>(&h), 2);
    } else {
      const double d = v;
      bytes.append(reinterpret_cast<const char*>(&d), 8);
    }
  }
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("evaluate: maps of any origin, rejected files reported, tidy CSVs and the record") {
  TempDir tmp;
  const fs::path data_dir = make_data(tmp.path);
  const datasets::DataDir data = datasets::DataDir::open(data_dir);

  // gtmap: the ground truth itself as H×W maps, no maps.json (method = directory name).
  const fs::path gtmap = gt_maps(tmp.path / "gtmap", data, 3);
  // constant: C×H×W maps with a maps.json naming the method and the targets.
  const fs::path constant = tmp.path / "const-maps";
  fs::create_directories(constant);
  nlohmann::json samples = nlohmann::json::array();
  for (int64_t i = 0; i < 3; ++i) {
    lab::write_npy(constant / (data.id(i) + ".npy"), lab::Tensor({3, 16, 16}, 0.25f));
    samples.push_back({{"id", data.id(i)}, {"target", data.label(i)}});
  }
  lab::write_json(constant / "maps.json", {{"method", "constant"}, {"params", {{"value", 0.25}}}, {"samples", samples}});
  // bad: one good map, one of the wrong shape, one with NaN, one not a sample id.
  const fs::path bad = tmp.path / "bad";
  fs::create_directories(bad);
  lab::write_npy(bad / (data.id(0) + ".npy"), data.gt(0));
  lab::write_npy(bad / (data.id(1) + ".npy"), lab::Tensor({15, 16}, 1.0f));
  lab::Tensor nan_map({1, 16, 16}, 1.0f);
  nan_map[17] = std::numeric_limits<float>::quiet_NaN();
  lab::write_npy(bad / (data.id(2) + ".npy"), nan_map);
  lab::write_npy(bad / "999999.npy", lab::Tensor({16, 16}, 1.0f));

  EvaluateRequest request;
  request.data = data_dir;
  request.maps = {gtmap, constant, bad};
  request.metrics = {"gt", "faithfulness-test", "deletion"};
  request.params = {"pixels-per-step=32", "gamma=0.6"};
  request.unit = 2;
  const fs::path results = tmp.path / "out" / "results.csv";
  const fs::path curves = tmp.path / "out" / "curves.csv";
  fs::create_directories(results.parent_path());
  const Evaluation e = run_evaluate(request, results, curves);

  {  // scores
    auto gt = summary(e, "gtmap", "gt");
    CHECK(gt["f1-overall"] == 1.0);
    CHECK(gt["f1-positive"] == 1.0);
    CHECK(summary(e, "gtmap", "faithfulness-test")["pass-overall"] == 1.0);
    // The constant map: overall recall 1, precision = |GT| / (H·W) per sample.
    double precision = 0.0;
    for (int64_t i = 0; i < 3; ++i) {
      const lab::Tensor g = data.gt(i);
      precision += static_cast<double>(std::count_if(g.values().begin(), g.values().end(), [](float v) { return v != 0.0f; })) / 256.0;
    }
    CHECK(summary(e, "constant", "gt")["recall-overall"] == 1.0);
    CHECK(summary(e, "constant", "gt")["precision-overall"] == doctest::Approx(precision / 3.0).epsilon(1e-12));
    // Only the one good map of `bad` was scored.
    const auto bad_rows = std::count_if(e.rows.begin(), e.rows.end(), [](const ResultRow& r) {
      return r.method == "bad" && r.metric == "deletion" && r.sample != kAllSamples;
    });
    CHECK(bad_rows == 1);
  }
  {  // rejected maps, by file
    REQUIRE(e.rejected.size() == 3);
    std::map<std::string, std::string> reason;
    for (const RejectedMap& r : e.rejected) {
      CHECK(r.method == "bad");
      reason[r.file.filename().string()] = r.reason;
    }
    CHECK(reason["999999.npy"].find("not a sample id") != std::string::npos);
    CHECK(reason[data.id(1) + ".npy"].find("shape [15, 16]") != std::string::npos);
    CHECK(reason[data.id(2) + ".npy"].find("NaN") != std::string::npos);
  }
  {  // results CSV
    const std::vector<std::string> lines = lines_of(results);
    REQUIRE(lines.size() == e.rows.size() + 1);
    CHECK(lines[0] == "model,sample,method,metric,variant,value");
    CHECK(lines[1] == "\"multi-color-sum\",\"" + data.id(0) + "\",\"gtmap\",\"gt\",\"precision-positive\",1");
    // Per method and metric: samples in data order, then the "all" rows.
    const std::vector<std::string> f = csv_split(lines.back());
    CHECK(f[1] == "all");
    CHECK(f[2] == "bad");
    CHECK(f[3] == "deletion");
  }
  {  // curves CSV: 16×16 / 32 pixels per step = 9 points per curve
    const std::vector<std::string> lines = lines_of(curves);
    CHECK(lines[0] == "model,sample,method,metric,variant,x,y");
    CHECK(lines.size() == 1 + 9 * (3 + 3 + 1));
    CHECK(csv_split(lines[9])[5] == "1");  // the last point of the first curve is at x = 1
  }
  {  // record
    const nlohmann::json record = lab::read_json(record_path(results));
    CHECK(record_path(results).filename() == "results.json");
    CHECK(record["data"]["env"] == "multi-color-sum");
    CHECK(record["metrics"][1]["params"]["gamma"] == 0.6);
    CHECK(record["metrics"][2]["variants"][0]["direction"] == "lower-is-better");
    CHECK(record["methods"][1]["method"] == "constant");
    CHECK(record["methods"][1]["params"]["value"] == 0.25);
    CHECK(record["methods"][2]["scored"] == 1);
    CHECK(record["rejected"].size() == 3);
  }
}

TEST_CASE("evaluate: float64 H×W and float16 H×W×C maps score as their float32 copies; integer maps are refused") {
  TempDir tmp;
  const fs::path data_dir = make_data(tmp.path);
  const datasets::DataDir data = datasets::DataDir::open(data_dir);
  const fs::path plain = gt_maps(tmp.path / "plain", data, 3);
  const fs::path doubles = tmp.path / "doubles";
  const fs::path halves = tmp.path / "halves";
  const fs::path integers = tmp.path / "integers";
  for (const fs::path& d : {doubles, halves, integers}) fs::create_directories(d);
  for (int64_t i = 0; i < 3; ++i) {
    const lab::Tensor g = data.gt(i);
    write_other_dtype(doubles / (data.id(i) + ".npy"), g, {16, 16}, false);
    // H×W×3 with the map in channel 1 only: the channel sum is the map.
    lab::Tensor hwc({16, 16, 3}, 0.0f);
    for (int64_t j = 0; j < 256; ++j) hwc[j * 3 + 1] = g[j];
    write_other_dtype(halves / (data.id(i) + ".npy"), hwc, {16, 16, 3}, true);
  }
  lab::write_npy_u8(integers / (data.id(0) + ".npy"), std::vector<uint8_t>(256, 1), {16, 16});

  EvaluateRequest request;
  request.data = data_dir;
  request.maps = {plain, doubles, halves, integers};
  request.metrics = {"gt", "deletion"};
  request.params = {"pixels-per-step=32"};
  const Evaluation e = evaluate_maps(request, nullptr);
  for (const char* metric : {"gt", "deletion"}) {
    CAPTURE(metric);
    CHECK(summary(e, "doubles", metric) == summary(e, "plain", metric));
    CHECK(summary(e, "halves", metric) == summary(e, "plain", metric));
  }
  REQUIRE(e.conversions.size() == 2);
  CHECK(e.conversions[0].dtype == "float64");
  CHECK(e.conversions[0].files == 3);
  CHECK(e.conversions[1].dtype == "float16");
  REQUIRE(e.rejected.size() == 1);
  CHECK(e.rejected[0].reason.find("'|u1' (uint8); expected floating point") != std::string::npos);
}

TEST_CASE("evaluate refuses maps made for other data, by fingerprint, before scoring") {
  TempDir tmp;
  const fs::path data_dir = make_data(tmp.path);
  const datasets::DataDir data = datasets::DataDir::open(data_dir);
  const fs::path maps = gt_maps(tmp.path / "maps", data, 3);
  EvaluateRequest request;
  request.data = data_dir;
  request.maps = {maps};
  request.metrics = {"gt"};

  SUBCASE("the same fingerprint: scored, and checked") {
    lab::write_json(maps / "maps.json", {{"method", "x"}, {"data-manifest", {{"env", "multi-color-sum"}, {"fingerprint", data.fingerprint()}}}});
    const Evaluation e = evaluate_maps(request, nullptr);
    CHECK(e.unfingerprinted.empty());
    CHECK(e.record["methods"][0]["fingerprint-checked"] == true);
  }
  SUBCASE("data of another seed: another fingerprint, refused naming both") {
    lab::Options options = lab::Options::parse({"size=16"}, "-o");
    datasets::write_data_dir(*datasets::make_environment("multi-color-sum", options), 3, 12, tmp.path / "other");
    const datasets::DataDir other = datasets::DataDir::open(tmp.path / "other");
    CHECK(other.fingerprint() != data.fingerprint());
    lab::write_json(maps / "maps.json", {{"method", "x"}, {"data-manifest", {{"env", "multi-color-sum"}, {"fingerprint", other.fingerprint()}}}});
    try {
      evaluate_maps(request, nullptr);
      FAIL("maps of other data were scored");
    } catch (const lab::Error& err) {
      const std::string message = err.what();
      CHECK(message.find(other.fingerprint()) != std::string::npos);
      CHECK(message.find(data.fingerprint()) != std::string::npos);
      CHECK(err.kind() == lab::ErrorKind::kParameter);
    }
  }
  SUBCASE("a record without a fingerprint is checked by seed and count") {
    lab::write_json(maps / "maps.json", {{"method", "x"}, {"data-manifest", {{"env", "multi-color-sum"}, {"seed", 12}, {"count", 3}}}});
    CHECK_THROWS_WITH_AS(evaluate_maps(request, nullptr), doctest::Contains("seed 12"), lab::Error);
  }
  SUBCASE("no maps.json: scored, and said to be unchecked") {
    const Evaluation e = evaluate_maps(request, nullptr);
    REQUIRE(e.unfingerprinted.size() == 1);
    CHECK(e.unfingerprinted[0] == maps);
  }
}

TEST_CASE("evaluate refuses bad requests before scoring") {
  TempDir tmp;
  const fs::path data_dir = make_data(tmp.path);
  const datasets::DataDir data = datasets::DataDir::open(data_dir);
  const fs::path maps = gt_maps(tmp.path / "maps", data, 1);
  EvaluateRequest request;
  request.data = data_dir;
  request.maps = {maps};
  request.metrics = {"gt"};

  SUBCASE("a -p key that no chosen metric knows") {
    request.params = {"pixels-per-step=4"};
    CHECK_THROWS_AS(evaluate_maps(request, nullptr), lab::Error);
  }
  SUBCASE("an unknown metric") {
    request.metrics = {"accuracy"};
    CHECK_THROWS_AS(evaluate_maps(request, nullptr), lab::Error);
  }
  SUBCASE("maps made for another environment") {
    lab::write_json(maps / "maps.json", {{"method", "x"}, {"data-manifest", {{"env", "single-color-modulo"}}}});
    CHECK_THROWS_AS(evaluate_maps(request, nullptr), lab::Error);
  }
  SUBCASE("maps.json fields that would be ignored are refused by name") {
    lab::write_json(maps / "maps.json", {{"samples", {{{"id", data.id(0)}, {"map", "other.npy"}}}}});
    CHECK_THROWS_WITH_AS(evaluate_maps(request, nullptr), doctest::Contains("map = \"other.npy\""), lab::Error);
    lab::write_json(maps / "maps.json", {{"samples", {{{"id", data.id(0)}, {"target", "2"}}}}});
    CHECK_THROWS_WITH_AS(evaluate_maps(request, nullptr), doctest::Contains("target = \"2\""), lab::Error);
    lab::write_json(maps / "maps.json", {{"samples", {{"id", data.id(0)}}}});
    CHECK_THROWS_WITH_AS(evaluate_maps(request, nullptr), doctest::Contains("expected a list"), lab::Error);
    // The name attrlab writes is accepted.
    lab::write_json(maps / "maps.json", {{"samples", {{{"id", data.id(0)}, {"map", data.id(0) + ".npy"}}}}});
    CHECK(evaluate_maps(request, nullptr).rejected.empty());
  }
  SUBCASE("a directory without maps (the data directory) is an error, not zero rows") {
    request.maps = {data_dir};
    CHECK_THROWS_WITH_AS(evaluate_maps(request, nullptr), doctest::Contains("holds no map of the data's samples"),
                         lab::Error);
  }
  SUBCASE("maps.json lists a sample without a file") {
    lab::write_json(maps / "maps.json", {{"method", "x"}, {"samples", {{{"id", data.id(0)}}, {{"id", data.id(1)}}}}});
    const Evaluation e = evaluate_maps(request, nullptr);
    REQUIRE(e.rejected.size() == 1);
    CHECK(e.rejected[0].reason.find("missing") != std::string::npos);
    CHECK(summary(e, "x", "gt")["f1-overall"] == 1.0);
  }
  SUBCASE("two directories of the same method are told apart by their names") {
    const fs::path other = gt_maps(tmp.path / "other", data, 1);
    for (const fs::path& d : {maps, other}) lab::write_json(d / "maps.json", {{"method", "integrated-gradients"}});
    request.maps = {maps, other};
    const Evaluation e = evaluate_maps(request, nullptr);
    CHECK(summary(e, "maps", "gt").size() == 9);
    CHECK(summary(e, "other", "gt").size() == 9);
  }
}
