// The designed networks predict every generated label (datasets/predict.h): 100% at sizes 32 and
// 64 for both environments; logits are the pre-softmax counts; batching never changes a result;
// the CSV has the documented columns.
#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <unistd.h>

#include "tests/scratch.h"
#include "datasets/data_dir.h"
#include "datasets/multi_color_sum.h"
#include "datasets/predict.h"
#include "lab/core/error.h"
#include "lab/io/files.h"

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace {

struct TempDir : testdir::Scratch {
  TempDir() : testdir::Scratch("predict") {}
  const std::filesystem::path& path = dir;
};

datasets::DataDir generate(const fs::path& dir, const std::string& name, const std::vector<std::string>& items,
                           int64_t count) {
  lab::Options o = lab::Options::parse(items, "-o");
  const auto env = datasets::make_environment(name, o);
  datasets::write_data_dir(*env, count, 2024, dir);
  return datasets::DataDir::open(dir);
}

}  // namespace

TEST_CASE("multi-color-sum: every prediction equals the label; logits are logit_scale x counts") {
  TempDir tmp;
  // 200 samples at 32, 100 at 64 (the detector's many channels make 64×64 the costly size).
  for (const auto& [size, count] : {std::pair<int64_t, int64_t>{32, 200}, {64, 100}}) {
    CAPTURE(size);
    const datasets::DataDir data = generate(tmp.path / ("multi" + std::to_string(size)), "multi-color-sum",
                                            {"size=" + std::to_string(size)}, count);
    const datasets::Predictions p = datasets::predict(data, 16);
    REQUIRE(p.softmax);
    CHECK(p.logits.shape() == lab::Shape{count, 4});
    CHECK(p.probabilities.shape() == lab::Shape{count, 4});
    CHECK(p.accuracy() == 1.0);
    const double scale = static_cast<const datasets::MultiColorSumEnvironment&>(data.env()).params().model.logit_scale;
    for (int64_t i = 0; i < data.size(); ++i) {
      CAPTURE(i);
      CHECK(p.predicted[static_cast<size_t>(i)] == data.label(i));
      const std::vector<int64_t> counts = data.counts(i);
      double total = 0;
      for (int64_t c = 0; c < 4; ++c) {
        CHECK(p.logits.sample(i)[c] == static_cast<float>(scale * static_cast<double>(counts[static_cast<size_t>(c)])));
        total += p.probabilities.sample(i)[c];
      }
      CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
    }
  }
}

TEST_CASE("single-color-modulo: every prediction equals the label; the output is count mod N") {
  TempDir tmp;
  for (int64_t size : {32, 64}) {
    CAPTURE(size);
    const datasets::DataDir data = generate(tmp.path / ("modulo" + std::to_string(size)), "single-color-modulo",
                                            {"size=" + std::to_string(size), "modulus=7"}, 200);
    const datasets::Predictions p = datasets::predict(data, 16);
    CHECK_FALSE(p.softmax);
    CHECK(p.logits.shape() == lab::Shape{200, 1});
    CHECK(p.accuracy() == 1.0);
    for (int64_t i = 0; i < data.size(); ++i)
      CHECK(p.logits.sample(i)[0] == static_cast<float>(data.counts(i)[0] % 7));
  }
}

TEST_CASE("the batch size never changes a prediction, logit or probability") {
  TempDir tmp;
  const datasets::DataDir data = generate(tmp.path / "d", "multi-color-sum", {"size=32", "ude=off"}, 23);
  const datasets::Predictions a = datasets::predict(data, 1), b = datasets::predict(data, 7), c = datasets::predict(data, 64);
  CHECK(a.logits.values() == b.logits.values());
  CHECK(a.logits.values() == c.logits.values());
  CHECK(a.probabilities.values() == c.probabilities.values());
  CHECK(a.predicted == c.predicted);
  CHECK_THROWS_AS(datasets::predict(data, 0), lab::Error);
}

TEST_CASE("predictions CSV: the documented header and one row per sample") {
  TempDir tmp;
  const datasets::DataDir multi = generate(tmp.path / "m", "multi-color-sum", {"size=32"}, 5);
  datasets::write_predictions_csv(multi, datasets::predict(multi), tmp.path / "m.csv");
  std::istringstream text(lab::read_text(tmp.path / "m.csv"));
  std::string line;
  std::getline(text, line);
  CHECK(line == "id,label,predicted,logit_0,logit_1,logit_2,logit_3,prob_0,prob_1,prob_2,prob_3");
  int rows = 0;
  while (std::getline(text, line)) {
    CHECK(line.rfind(multi.id(rows) + "," + std::to_string(multi.label(rows)) + "," + std::to_string(multi.label(rows)) + ",", 0) == 0);
    CHECK(std::count(line.begin(), line.end(), ',') == 10);
    ++rows;
  }
  CHECK(rows == 5);

  const datasets::DataDir modulo = generate(tmp.path / "s", "single-color-modulo", {"size=32"}, 3);
  datasets::write_predictions_csv(modulo, datasets::predict(modulo), tmp.path / "s.csv");
  const std::string csv = lab::read_text(tmp.path / "s.csv");
  CHECK(csv.rfind("id,label,predicted,output_0\n", 0) == 0);
  CHECK(csv.find(fmt::format("000002,{},{},{}\n", modulo.label(2), modulo.label(2), modulo.label(2))) != std::string::npos);
}
