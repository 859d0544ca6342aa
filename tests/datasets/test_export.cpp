// The exported networks (lab/io/export.h) are the runtime's: the ONNX file passes onnx::checker
// and OpenCV's ONNX importer reproduces attrlab's logits and probabilities on generated images
// and on random-colour images (which reach the unseen-data wiring) of multi-color-sum (ude on and
// off, uniform and non-uniform accumulators) and single-color-modulo (both accumulators); the
// PyTorch archive holds the architecture and every weight byte for byte.
#include <doctest/doctest.h>

#include <opencv2/dnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "datasets/environment.h"
#include "datasets/export.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/io/export.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("attrlab-test-export-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::unique_ptr<datasets::Environment> make_env(const std::string& name, const std::vector<std::string>& items) {
  lab::Options o = lab::Options::parse(items, "-o");
  return datasets::make_environment(name, o);
}

/// `generated` samples of the environment, then `noise` images of uniformly random pixel values
/// (every colour, so the unseen-data wires of multi-color-sum carry signal), as network inputs.
lab::Tensor inputs_of(const datasets::Environment& env, int64_t generated, int64_t noise) {
  std::vector<lab::Tensor> xs;
  for (int64_t i = 0; i < generated; ++i) xs.push_back(env.to_input(env.generate(7, i).image).reshaped(
      {1, env.input_shape()[0], env.input_shape()[1], env.input_shape()[2]}));
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pixel(0, 255), bit(0, 1);
  const int side = static_cast<int>(env.image_size());
  for (int64_t i = 0; i < noise; ++i) {
    cv::Mat image(side, side, env.image_channels() == 3 ? CV_8UC3 : CV_8UC1);
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side * env.image_channels(); ++x)
        image.ptr<uint8_t>(y)[x] = static_cast<uint8_t>(env.image_channels() == 3 ? pixel(rng) : 255 * bit(rng));
    xs.push_back(env.to_input(image).reshaped({1, env.input_shape()[0], env.input_shape()[1], env.input_shape()[2]}));
  }
  return lab::Tensor::concat(xs);
}

cv::Mat to_blob(const lab::Tensor& x) {
  std::vector<int> dims(x.shape().begin(), x.shape().end());
  cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F);
  std::memcpy(blob.ptr<float>(), x.data(), x.values().size() * sizeof(float));
  return blob;
}

/// Largest |a - b| over all entries, and the largest |a| (the scale the difference is judged on).
std::pair<double, double> compare(const cv::Mat& got, const lab::Tensor& want) {
  REQUIRE(static_cast<int64_t>(got.total()) == want.numel());
  double diff = 0, scale = 0;
  const float* g = got.ptr<float>();
  for (int64_t i = 0; i < want.numel(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(g[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::abs(want[i])));
  }
  return {diff, scale};
}

struct Setting {
  std::string env;
  std::vector<std::string> options;
};

}  // namespace

TEST_CASE("ONNX export: onnx::checker passes; OpenCV's importer reproduces attrlab's logits to 1e-5") {
  const std::vector<Setting> settings = {
      {"multi-color-sum", {"size=32", "ude=on", "accumulator=nonuniform"}},
      {"multi-color-sum", {"size=32", "ude=off", "accumulator=nonuniform"}},
      {"multi-color-sum", {"size=32", "ude=on", "accumulator=uniform"}},
      {"multi-color-sum", {"size=32", "ude=off", "accumulator=uniform"}},
      {"multi-color-sum", {"size=48", "ude=on", "colors=3", "seed=5"}},
      {"single-color-modulo", {"size=32", "accumulator=nonuniform", "modulus=7"}},
      {"single-color-modulo", {"size=32", "accumulator=uniform"}},
      // The trap zoo (datasets/traps.h): residual sums, a shared ReLU, max-pool, batch-norm.
      {"residual", {"size=32"}},
      {"reused-relu", {"size=32"}},
      {"max-pool", {"size=32"}},
      {"batch-norm", {"size=32"}},
      {"saturation", {"size=32"}},
      {"interaction", {"size=32"}},
      {"position", {"size=32"}},
  };
  int index = 0;
  for (const Setting& s : settings) {
    std::string label = s.env;
    for (const std::string& o : s.options) label += " " + o;
    CAPTURE(label);
    const auto env = make_env(s.env, s.options);
    const lab::Network net = env->build_network();
    const fs::path file = scratch() / ("net" + std::to_string(index++) + ".onnx");
    lab::export_onnx(net, file, {{"env", env->name()}, {"options", env->options()}});
    REQUIRE_NOTHROW(lab::check_onnx(file));

    const lab::Tensor x = inputs_of(*env, 6, 4);
    const bool softmax = net.layer(net.size() - 1).kind() == lab::LayerKind::kSoftmax;
    const size_t body = softmax ? net.size() - 1 : net.size();
    const lab::Tensor logits = net.forward_range(0, body, x);

    cv::dnn::Net onnx = cv::dnn::readNetFromONNX(file.string());
    onnx.setInput(to_blob(x), "input");
    std::vector<cv::Mat> outs;
    const std::vector<std::string> names =
        softmax ? std::vector<std::string>{"logits", "probabilities"} : std::vector<std::string>{"outputs"};
    onnx.forward(outs, names);
    REQUIRE(outs.size() == names.size());
    const auto [diff, scale] = compare(outs[0], logits);
    INFO("max |logit difference| " << diff << " on logits up to " << scale);
    // Tolerance: 1e-5 relative to the logit scale (at least 1).
    CHECK(diff <= 1e-5 * std::max(1.0, scale));
    if (softmax) {
      const lab::Tensor probabilities = net.forward(x);
      CHECK(compare(outs[1], probabilities).first <= 1e-6);
    }
  }
}

TEST_CASE("ONNX export: the file is deterministic and names inputs, outputs and metadata") {
  const auto env = make_env("single-color-modulo", {"size=32"});
  const lab::Network net = env->build_network();
  const std::string a = lab::onnx_model_bytes(net, {{"env", "single-color-modulo"}});
  CHECK(a == lab::onnx_model_bytes(net, {{"env", "single-color-modulo"}}));
  CHECK(a.find("outputs") != std::string::npos);
  CHECK(a.find("probabilities") == std::string::npos);
  CHECK(a.find("accumulator.layers.5") != std::string::npos);
  const fs::path bad = scratch() / "bad.onnx";
  lab::write_text_atomic(bad, "not a model");
  CHECK_THROWS_AS(lab::check_onnx(bad), lab::Error);
}

TEST_CASE("PyTorch archive: architecture.json lists every layer; weights are the runtime's bytes") {
  const auto env = make_env("multi-color-sum", {"size=32"});
  const lab::Network net = env->build_network();
  const nlohmann::json arch = lab::architecture_json(net, {{"env", env->name()}});
  CHECK(arch["format"] == "attrlab-network");
  CHECK(arch["version"] == 1);
  CHECK(arch["input-shape"] == nlohmann::json::array({3, 32, 32}));
  CHECK(arch["output"] == "probabilities");
  REQUIRE(arch["layers"].size() == net.size());
  for (size_t i = 0; i < net.size(); ++i) {
    CHECK(arch["layers"][i]["name"] == net.name(i));
    CHECK(arch["layers"][i]["kind"] == lab::kind_name(net.layer(i).kind()));
  }
  const nlohmann::json& grouped = arch["layers"][net.index_of("accumulator.layers.4")];
  CHECK(grouped["groups"] == 4);
  CHECK(grouped["stride"] == nlohmann::json::array({2, 2}));
  CHECK(grouped["bias"] == false);

  const fs::path file = scratch() / "net.npz";
  lab::export_torch(net, file, {{"env", env->name()}});
  const std::string zip = lab::read_text(file);
  // Every weight array appears whole, byte for byte, as its .npy member.
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::LayerKind kind = net.layer(i).kind();
    if (kind != lab::LayerKind::kConv2d && kind != lab::LayerKind::kLinear) continue;
    const auto& w = static_cast<const lab::AffineLayer&>(net.layer(i)).weights();
    CAPTURE(net.name(i));
    CHECK(zip.find(net.name(i) + ".weight.npy" + lab::npy_bytes(w.weight)) != std::string::npos);
    CHECK((w.bias.numel() == 0) == (zip.find(net.name(i) + ".bias.npy") == std::string::npos));
  }
}

TEST_CASE("export metadata: the image divisor is the environment's own conversion; formats by name") {
  const auto multi = make_env("multi-color-sum", {"size=32"});
  const auto modulo = make_env("single-color-modulo", {"size=32"});
  CHECK(datasets::image_divisor(*multi) == 1.0f);
  CHECK(datasets::image_divisor(*modulo) == 255.0f);
  const nlohmann::json m = datasets::export_metadata(*modulo);
  CHECK(m["env"] == "single-color-modulo");
  CHECK(m["options"] == modulo->options());
  CHECK(datasets::export_format("onnx") == datasets::ExportFormat::kOnnx);
  CHECK(datasets::export_format("torch") == datasets::ExportFormat::kTorch);
  CHECK_THROWS_WITH_AS(datasets::export_format("pdf"), "export format 'pdf' is unknown; expected onnx or torch",
                       lab::Error);
  const fs::path file = scratch() / "modulo.onnx";
  datasets::export_network(*modulo, datasets::ExportFormat::kOnnx, file);
  CHECK(lab::read_text(file) == lab::onnx_model_bytes(modulo->build_network(), m));
}

TEST_CASE("graph export: every node type, a shared module and a final softmax reach ONNX and the archive") {
  std::mt19937 rng(61);
  auto tensor = [&](lab::Shape shape, float lo, float hi) {
    lab::Tensor t(std::move(shape));
    std::uniform_real_distribution<float> u(lo, hi);
    for (float& v : t.values()) v = u(rng);
    return t;
  };
  auto conv = [&](int64_t in, int64_t out) {
    return std::make_shared<lab::Conv2d>(
        lab::Conv2dParams{.in_channels = in, .out_channels = out, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1},
        tensor({out, in, 3, 3}, -1, 1), tensor({out}, -0.1f, 0.1f));
  };
  const auto relu = std::make_shared<lab::ReLU>();
  lab::Network net({2, 8, 8});
  net.add("c1", conv(2, 4));
  net.add("bn", std::make_shared<lab::BatchNorm>(tensor({4}, 0.5f, 2), tensor({4}, -1, 1), tensor({4}, -1, 1),
                                                 tensor({4}, 0.1f, 1), 1e-3));
  net.add("a", relu);
  net.add("c2", conv(4, 4));
  net.add("a2", relu);  // the same ReLU object
  net.add("gated", std::make_shared<lab::Multiply>(), {"a2", "a"});
  net.add("sum3", std::make_shared<lab::Add>(), {"gated", "a", "c1"});
  net.add("sum2", std::make_shared<lab::Add>(), {"sum3", "c2"});
  net.add("pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{}));
  net.add("side", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}),
          {"a"});
  net.add("both", std::make_shared<lab::Concat>(), {"pool", "side"});
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("fc", std::make_shared<lab::Linear>(tensor({3, 128}, -1, 1), tensor({3}, -0.1f, 0.1f)));
  net.add("softmax", std::make_shared<lab::Softmax>());
  REQUIRE_FALSE(net.is_chain());

  const fs::path file = scratch() / "graph.onnx";
  lab::export_onnx(net, file);
  REQUIRE_NOTHROW(lab::check_onnx(file));
  const lab::Tensor x = tensor({5, 2, 8, 8}, -1, 1);
  const lab::Tensor logits = net.forward_range(0, net.size() - 1, x);
  cv::dnn::Net onnx = cv::dnn::readNetFromONNX(file.string());
  onnx.setInput(to_blob(x), "input");
  std::vector<cv::Mat> outs;
  onnx.forward(outs, std::vector<std::string>{"logits", "probabilities"});
  REQUIRE(outs.size() == 2);
  const auto [diff, scale] = compare(outs[0], logits);
  INFO("max |logit difference| " << diff << " on logits up to " << scale);
  CHECK(diff <= 1e-5 * std::max(1.0, scale));
  CHECK(compare(outs[1], net.forward(x)).first <= 1e-6);

  // The archive holds BatchNorm's four tensors (γ, β, running mean and variance, as torch names them).
  lab::export_torch(net, scratch() / "graph.npz");
  lab::write_npy(scratch() / "graph-x.npy", x);
  lab::write_npy(scratch() / "graph-p.npy", net.forward(x));
  CHECK(fs::file_size(scratch() / "graph.npz") > 0);
  const nlohmann::json arch = lab::architecture_json(net);
  const auto& layers = arch["layers"];
  CHECK(layers[5]["inputs"] == nlohmann::json::array({"a2", "a"}));
  CHECK(layers[6]["inputs"] == nlohmann::json::array({"gated", "a", "c1"}));
  CHECK(layers[0]["inputs"] == nlohmann::json::array({"input"}));
  CHECK(layers[4]["shares"] == "a");
  CHECK_FALSE(layers[2].contains("shares"));
  CHECK(layers[1]["kind"] == "batch-norm");
  CHECK(layers[9]["padding"] == nlohmann::json::array({1, 1}));
  // A chain's record has neither field (its archive is unchanged).
  const lab::Network chain = make_env("single-color-modulo", {"size=32"})->build_network();
  const nlohmann::json chain_record = lab::architecture_json(chain);  // a range-for over a temporary's member would dangle
  for (const auto& l : chain_record["layers"]) CHECK_FALSE((l.contains("inputs") || l.contains("shares")));
  // A final softmax that does not read the node before it has no logits to name.
  lab::Network odd({3});
  odd.add("l", std::make_shared<lab::Linear>(tensor({3, 3}, -1, 1), lab::Tensor()));
  odd.add("r", std::make_shared<lab::ReLU>());
  odd.add("softmax", std::make_shared<lab::Softmax>(), {"l"});
  CHECK_THROWS_WITH_AS(lab::onnx_model_bytes(odd), doctest::Contains("must read the node before it"), lab::Error);
}
