// The data directory (datasets/data_dir.h): manifest contents, round trip of every file,
// byte-identical output for any thread count, and malformed directories refused with the file
// named in the message.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>

#include "tests/scratch.h"
#include "datasets/data_dir.h"
#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/core/hash.h"
#include "lab/io/files.h"
#include "lab/io/image.h"
#include "lab/io/npy.h"

namespace fs = std::filesystem;

namespace {

struct TempDir : testdir::Scratch {
  TempDir() : testdir::Scratch("datadir") {}
  const std::filesystem::path& path = dir;
};

std::unique_ptr<datasets::Environment> make(const std::string& name, const std::vector<std::string>& items) {
  lab::Options o = lab::Options::parse(items, "-o");
  return datasets::make_environment(name, o);
}

std::map<std::string, std::string> all_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = lab::read_text(e.path());
  return files;
}

// Copies `good` to a new directory, applies `damage` to it, and returns the error of opening it.
std::string open_error(const fs::path& good, const fs::path& work, const std::function<void(const fs::path&)>& damage) {
  fs::remove_all(work);
  fs::copy(good, work, fs::copy_options::recursive);
  damage(work);
  try {
    datasets::DataDir::open(work);
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

void edit_manifest(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json m = lab::read_json(dir / "manifest.json");
  edit(m);
  lab::write_json(dir / "manifest.json", m);
}

}  // namespace

TEST_CASE("a written data directory holds the contract's files and manifest") {
  TempDir tmp;
  const auto env = make("multi-color-sum", {"size=32"});
  const fs::path dir = tmp.path / "data";
  datasets::write_data_dir(*env, 12, 77, dir);
  CHECK(!fs::exists(tmp.path / ("data.tmp-" + std::to_string(::getpid()))));
  const nlohmann::json m = lab::read_json(dir / "manifest.json");
  CHECK(m["format"] == 1);
  CHECK(m["env"] == "multi-color-sum");
  CHECK(m["seed"] == 77);
  CHECK(m["count"] == 12);
  CHECK(m["version"].is_string());
  CHECK(m["options"] == env->options());
  CHECK(m["image-shape"] == nlohmann::json{3, 32, 32});
  CHECK(m["classes"] == 4);
  CHECK(m["background"] == nlohmann::json{20.0, 20.0, 20.0});
  REQUIRE(m["samples"].size() == 12);
  const nlohmann::json& s3 = m["samples"][3];
  CHECK(s3["id"] == "000003");
  CHECK(s3["image"] == "images/000003.png");
  CHECK(s3["gt"] == "gt/000003.npy");
  CHECK(s3["gt-smooth"] == "gt/000003.smooth.npy");
  CHECK(s3["patches"] == "patches/000003.npy");
  CHECK(s3["layout"].size() == 4);
  CHECK(s3["layout"][2]["class"] == 2);

  const datasets::DataDir data = datasets::DataDir::open(dir);
  CHECK(data.size() == 12);
  CHECK(data.seed() == 77);
  CHECK(data.env().name() == "multi-color-sum");
  for (int64_t i = 0; i < data.size(); ++i) {
    const datasets::Sample s = env->generate(77, i);
    CHECK(data.id(i) == s.id);
    CHECK(data.label(i) == s.label);
    CHECK(data.counts(i) == s.counts);
    CHECK(cv::countNonZero(cv::Mat(data.image(i) != s.image).reshape(1)) == 0);
    CHECK(data.gt(i).values() == s.gt.values());
    CHECK(data.gt(i, true).values() == s.gt_smooth.values());
    CHECK(cv::countNonZero(data.patches(i) != s.patches) == 0);
    CHECK(data.input(i).values() == env->to_input(s.image).values());
  }
  const lab::Tensor batch = data.inputs(2, 5);
  CHECK(batch.shape() == lab::Shape{3, 3, 32, 32});
  CHECK(batch.slice(1, 2).values() == data.input(3).values());
}

TEST_CASE("the fingerprint is the documented hash of the request and the files, and catches a changed file") {
  TempDir tmp;
  const auto env = make("multi-color-sum", {"size=32"});
  const fs::path dir = tmp.path / "data";
  datasets::write_data_dir(*env, 5, 9, dir);
  nlohmann::json m = lab::read_json(dir / "manifest.json");
  // The definition (data_dir.h), computed here from the files.
  uint64_t h = lab::fnv1a(nlohmann::json{{"env", "multi-color-sum"}, {"options", env->options()}, {"seed", 9}, {"count", 5}}.dump());
  for (const nlohmann::json& s : m["samples"]) {
    uint64_t d = lab::fnv1a("sample");
    for (const char* key : {"image", "gt", "gt-smooth", "patches"}) {
      const std::string bytes = lab::read_text(dir / s[key].get<std::string>());
      d = lab::fnv1a(bytes.data(), bytes.size(), d);
    }
    h = lab::fnv1a(&d, sizeof d, h);
  }
  const std::string expected = fmt::format("fnv1a64:{:016x}", h);
  CHECK(m["fingerprint"] == expected);
  CHECK(datasets::DataDir::open(dir).fingerprint() == expected);

  // Other data (seed, count) have other fingerprints.
  datasets::write_data_dir(*env, 5, 10, tmp.path / "seed10");
  datasets::write_data_dir(*env, 4, 9, tmp.path / "count4");
  CHECK(datasets::DataDir::open(tmp.path / "seed10").fingerprint() != expected);
  CHECK(datasets::DataDir::open(tmp.path / "count4").fingerprint() != expected);

  // One changed byte in a file that opening does not otherwise read is caught by the fingerprint.
  const fs::path smooth = dir / m["samples"][2]["gt-smooth"].get<std::string>();
  std::string bytes = lab::read_text(smooth);
  const std::string original = bytes;
  bytes.back() = static_cast<char>(bytes.back() ^ 1);
  std::ofstream(smooth, std::ios::binary | std::ios::trunc) << bytes;
  CHECK_THROWS_WITH_AS(datasets::DataDir::open(dir), doctest::Contains("does not match the files"), lab::Error);
  std::ofstream(smooth, std::ios::binary | std::ios::trunc) << original;

  // A manifest from before the field existed is accepted; the fingerprint is still computed.
  m.erase("fingerprint");
  lab::write_json(dir / "manifest.json", m);
  CHECK(datasets::DataDir::open(dir).fingerprint() == expected);
}

TEST_CASE("the same seed gives byte-identical directories for 1 and 2 threads") {
  TempDir tmp;
  const int before = lab::Runtime::get().threads();
  for (const std::string name : {"multi-color-sum", "single-color-modulo"}) {
    CAPTURE(name);
    const auto env = make(name, {"size=32"});
    lab::Runtime::get().set_threads(1);
    datasets::write_data_dir(*env, 24, 5, tmp.path / "one");
    lab::Runtime::get().set_threads(2);
    datasets::write_data_dir(*env, 24, 5, tmp.path / "two");
    const auto one = all_files(tmp.path / "one"), two = all_files(tmp.path / "two");
    CHECK(one.size() == 1 + 24 * 4);
    CHECK(one == two);
    // A different seed gives different images.
    datasets::write_data_dir(*env, 24, 6, tmp.path / "other");
    CHECK(all_files(tmp.path / "other").at("images/000000.png") != one.at("images/000000.png"));
  }
  lab::Runtime::get().set_threads(before);
}

TEST_CASE("malformed data directories are refused, naming the file and what is wrong") {
  TempDir tmp;
  const fs::path good = tmp.path / "good", bad = tmp.path / "bad";
  datasets::write_data_dir(*make("multi-color-sum", {"size=32"}), 6, 1, good);
  const fs::path manifest = bad / "manifest.json";
  const auto has = [](const std::string& message, const std::string& part) {
    CAPTURE(message);
    CHECK(message.find(part) != std::string::npos);
  };
  CHECK(open_error(good, bad, [](const fs::path&) {}).empty());

  SUBCASE("manifest") {
    has(open_error(good, bad, [](const fs::path& d) { fs::remove(d / "manifest.json"); }), manifest.string());
    has(open_error(good, bad, [](const fs::path& d) { lab::write_text_atomic(d / "manifest.json", "{\"env\": "); }),
        manifest.string());
    CHECK_THROWS_WITH_AS(datasets::DataDir::open(tmp.path / "nowhere"),
                         doctest::Contains(((tmp.path / "nowhere").string() + ": no such data directory").c_str()), lab::Error);
  }
  SUBCASE("manifest fields") {
    const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
        {[](nlohmann::json& m) { m.erase("env"); }, "the manifest has no field \"env\""},
        {[](nlohmann::json& m) { m["env"] = "nonexistent"; }, "unknown environment"},
        {[](nlohmann::json& m) { m["format"] = 2; }, "format 2 is not supported; expected 1"},
        {[](nlohmann::json& m) { m["seed"] = -1; }, "seed must be a non-negative integer, got -1"},
        {[](nlohmann::json& m) { m["options"]["patch-max"] = 30; }, "cannot always fit"},
        {[](nlohmann::json& m) { m["options"]["mystery"] = 1; }, "unknown option -o mystery=1"},
        {[](nlohmann::json& m) { m["image-shape"] = {3, 64, 64}; }, "image-shape [3, 64, 64] does not match"},
        {[](nlohmann::json& m) { m["count"] = 5; }, "count = 5 but samples lists 6"},
        {[](nlohmann::json& m) { m["samples"] = nlohmann::json::array(); }, "samples must be a non-empty list"},
        {[](nlohmann::json& m) { m["samples"][2]["label"] = "one"; }, "samples[2].label must be an integer"},
        {[](nlohmann::json& m) { m["samples"][2]["label"] = 4; }, "samples[2].label = 4 is outside 0..3"},
        {[](nlohmann::json& m) { m["samples"][1]["counts"] = {1, 2}; }, "samples[1].counts has 2 entries; expected 4"},
        {[](nlohmann::json& m) { m["samples"][1]["id"] = "000000"; }, "id \"000000\" appears twice"},
        {[](nlohmann::json& m) { m["samples"][1]["image"] = "../elsewhere.png"; }, "must be a path relative to"},
        {[](nlohmann::json& m) { m["samples"][1]["gt"] = "/etc/passwd"; }, "must be a path relative to"},
        {[](nlohmann::json& m) { m["samples"][4].erase("patches"); }, "samples[4] has no field \"patches\""},
        // Fields nobody would read, and lax types, are refused by name.
        {[](nlohmann::json& m) { m["colour"] = 1; }, "the manifest has an unknown field \"colour\""},
        {[](nlohmann::json& m) { m["samples"][3]["gt_smooth"] = "gt/x.npy"; }, "samples[3] has an unknown field \"gt_smooth\""},
        {[](nlohmann::json& m) { m["version"] = 1; }, "version must be a string, got 1"},
        {[](nlohmann::json& m) { m["background"] = "white"; }, "background must be a list of numbers"},
        {[](nlohmann::json& m) { m["background"][0] = 12345.5; }, "does not match the options'"},
        {[](nlohmann::json& m) { m["samples"][0]["layout"] = 3; }, "samples[0].layout must be a list of patches"},
        {[](nlohmann::json& m) { m["samples"][0]["layout"][0]["size"] = "7"; }, "samples[0].layout[0].size must be an integer"},
        {[](nlohmann::json& m) { m["samples"][0]["layout"][0]["box"] = {1, 2}; }, "samples[0].layout[0].box must be [x, y, width, height]"},
        {[](nlohmann::json& m) { m["samples"][0]["layout"][0]["area"] = 9; }, "samples[0].layout[0] has an unknown field \"area\""},
        {[](nlohmann::json& m) { m["count"] = 6.0; }, "count must be an integer, got 6.0"},
    };
    for (const auto& [edit, expected] : cases) {
      const std::string message = open_error(good, bad, [&](const fs::path& d) { edit_manifest(d, edit); });
      CAPTURE(expected);
      has(message, manifest.string());
      has(message, expected);
    }
  }
  SUBCASE("labels and counts that do not follow from the image") {
    const nlohmann::json m = lab::read_json(good / "manifest.json");
    const int64_t label = m["samples"][2]["label"].get<int64_t>();
    const std::string image = (bad / "images" / "000002.png").string();
    std::string message = open_error(good, bad, [&](const fs::path& d) {
      edit_manifest(d, [&](nlohmann::json& j) { j["samples"][2]["label"] = (label + 1) % 4; });
    });
    has(message, image);
    has(message, fmt::format("the pixels give label {}, the manifest says {}", label, (label + 1) % 4));
    message = open_error(good, bad, [&](const fs::path& d) {
      edit_manifest(d, [&](nlohmann::json& j) { j["samples"][2]["counts"][0] = j["samples"][2]["counts"][0].get<int>() + 1; });
    });
    has(message, image);
    has(message, "differ from the manifest's counts");
  }
  SUBCASE("images") {
    const std::string image = (bad / "images" / "000003.png").string();
    has(open_error(good, bad, [](const fs::path& d) { fs::remove(d / "images" / "000003.png"); }), image);
    has(open_error(good, bad, [](const fs::path& d) { lab::write_text_atomic(d / "images" / "000003.png", "not a png"); }),
        image);
    std::string message = open_error(good, bad, [](const fs::path& d) {
      lab::write_png(d / "images" / "000003.png", cv::Mat(32, 32, CV_8UC1, cv::Scalar(0)));
    });
    has(message, image);
    has(message, "channels");
    message = open_error(good, bad, [](const fs::path& d) {
      lab::write_png(d / "images" / "000003.png", cv::Mat(31, 32, CV_8UC3, cv::Scalar(20, 20, 20)));
    });
    has(message, image);
    has(message, "image is 32x31");
    message = open_error(good, bad, [](const fs::path& d) {
      cv::Mat img = lab::read_png(d / "images" / "000003.png", 3);
      img.at<cv::Vec3b>(4, 9) = cv::Vec3b(21, 20, 20);
      lab::write_png(d / "images" / "000003.png", img);
    });
    has(message, image);
    has(message, "pixel (x=9, y=4) has colour (21, 20, 20)");
  }
  SUBCASE("ground truth and patch files") {
    const std::string gt = (bad / "gt" / "000001.npy").string();
    std::string message = open_error(good, bad, [](const fs::path& d) {
      lab::write_npy(d / "gt" / "000001.npy", lab::Tensor({32, 31}));
    });
    has(message, gt);
    has(message, "expected dtype <f4 of shape [32, 32]");
    message = open_error(good, bad, [](const fs::path& d) {
      lab::write_npy_u8(d / "gt" / "000001.npy", std::vector<uint8_t>(32 * 32, 0), {32, 32});
    });
    has(message, gt);
    has(message, "dtype |u1");
    has(open_error(good, bad, [](const fs::path& d) { fs::remove(d / "gt" / "000001.smooth.npy"); }),
        (bad / "gt" / "000001.smooth.npy").string());
    message = open_error(good, bad, [](const fs::path& d) {
      lab::write_npy(d / "patches" / "000001.npy", lab::Tensor({32, 32}));
    });
    has(message, (bad / "patches" / "000001.npy").string());
    has(message, "expected dtype |u1");
  }
  SUBCASE("values checked on loading") {
    fs::remove_all(bad);
    fs::copy(good, bad, fs::copy_options::recursive);
    lab::Tensor gt = lab::read_npy(bad / "gt" / "000000.npy");
    const int64_t j = std::find_if(gt.values().begin(), gt.values().end(), [](float v) { return v != 0; }) - gt.values().begin();
    gt[j] = -gt[j];
    lab::write_npy(bad / "gt" / "000000.npy", gt);
    lab::Tensor smooth = lab::read_npy(bad / "gt" / "000000.smooth.npy");
    smooth[0] = 0.5f;
    lab::write_npy(bad / "gt" / "000000.smooth.npy", smooth);
    lab::Shape shape;
    std::vector<uint8_t> patches = lab::read_npy_u8(bad / "patches" / "000001.npy", shape);
    for (uint8_t& v : patches) v = v == 0 ? 0 : static_cast<uint8_t>(v % 4 + 1);
    lab::write_npy_u8(bad / "patches" / "000001.npy", patches, shape);
    // Opening refuses these files by the fingerprint; without one (an older manifest) the values
    // are still checked when loaded.
    CHECK_THROWS_WITH_AS(datasets::DataDir::open(bad), doctest::Contains("does not match the files"), lab::Error);
    nlohmann::json older = lab::read_json(bad / "manifest.json");
    older.erase("fingerprint");
    lab::write_json(bad / "manifest.json", older);
    const datasets::DataDir data = datasets::DataDir::open(bad);
    CHECK_THROWS_WITH_AS(data.gt(0), doctest::Contains(((bad / "gt" / "000000.npy").string()).c_str()), lab::Error);
    CHECK_THROWS_WITH_AS(data.gt(0), doctest::Contains("differs from the pixel ground truth"), lab::Error);
    CHECK_THROWS_WITH_AS(data.gt(0, true), doctest::Contains("value 0.5 at (x=0, y=0) differs from the smooth"), lab::Error);
    CHECK_THROWS_WITH_AS(data.patches(1), doctest::Contains(((bad / "patches" / "000001.npy").string()).c_str()), lab::Error);
    CHECK_THROWS_WITH_AS(data.patches(1), doctest::Contains("in patch"), lab::Error);
    CHECK_NOTHROW(data.gt(1));
    CHECK_THROWS_WITH_AS(data.image(6), doctest::Contains("sample index 6 is outside 0..5"), lab::Error);
  }
}
