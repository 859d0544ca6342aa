#include "networks/traps.h"

#include <cmath>
#include <memory>

#include "lab/core/error.h"

namespace networks {

namespace {

using lab::Tensor;

// A 1×1 convolution in → out with the given weights (out × in) and biases (empty: no bias).
std::shared_ptr<const lab::Layer> conv1x1(int64_t in, int64_t out, std::vector<float> w, std::vector<float> b) {
  lab::Conv2dParams p{.in_channels = in, .out_channels = out};
  Tensor bias = b.empty() ? Tensor() : Tensor({out}, std::move(b));
  return std::make_shared<lab::Conv2d>(p, Tensor({out, in, 1, 1}, std::move(w)), std::move(bias));
}

// One 1-channel kernel of kh×kw with stride kh×kw (no padding), weights `w` (row-major), bias b.
std::shared_ptr<const lab::Layer> window(int64_t kh, int64_t kw, std::vector<float> w, std::vector<float> b) {
  lab::Conv2dParams p{.kernel_h = kh, .kernel_w = kw, .stride_h = kh, .stride_w = kw};
  Tensor bias = b.empty() ? Tensor() : Tensor({1}, std::move(b));
  return std::make_shared<lab::Conv2d>(p, Tensor({1, 1, kh, kw}, std::move(w)), std::move(bias));
}

// The whole side×side map summed with weight `scale` into one value per sample.
std::shared_ptr<const lab::Layer> sum_all(int64_t side, float scale) {
  return window(side, side, std::vector<float>(static_cast<size_t>(side * side), scale), {});
}

// Inference batch-norm of one channel: y = gamma (x - mean) / sqrt(var + eps) + beta.
std::shared_ptr<const lab::Layer> batch_norm(float gamma, float beta, float mean, float var, double eps) {
  return std::make_shared<lab::BatchNorm>(Tensor({1}, {gamma}), Tensor({1}, {beta}), Tensor({1}, {mean}),
                                          Tensor({1}, {var}), eps);
}

void finish(Model& m) { m.add("flatten", std::make_shared<lab::Flatten>(), "the score as a 1-vector"); }

Model residual(int64_t s) {
  Model m(lab::Shape{1, s, s});
  m.add("block1.conv", conv1x1(1, 1, {3.0f}, {}), "3x", {"input"});
  m.add("block1.relu", std::make_shared<lab::ReLU>(), "f1(x) = [3x]");
  m.add("block1.add", std::make_shared<lab::Add>(), "h1 = f1(x) + x = 4x", {"block1.relu", "input"});
  m.add("block2.conv", conv1x1(1, 1, {-1.0f}, {}), "−h1");
  m.add("block2.relu", std::make_shared<lab::ReLU>(), "f2(h1) = [−h1] = 0 (a dead branch)");
  m.add("block2.add", std::make_shared<lab::Add>(), "h2 = f2(h1) + h1 = 4x", {"block2.relu", "block1.add"});
  m.add("sum", sum_all(s, 0.25f), "Σ h2 / 4: the white pixels");
  finish(m);
  return m;
}

Model reused_relu(int64_t s) {
  Model m(lab::Shape{1, s, s});
  const auto relu = std::make_shared<lab::ReLU>();
  m.add("relu.a", relu, "a = R(x) (first application of the shared ReLU)");
  m.add("conv", conv1x1(1, 1, {2.0f}, {-1.0f}), "2a − 1");
  m.add("relu.b", relu, "b = R(2a − 1) (second application; x on binary pixels)");
  m.add("sum", sum_all(s, 1.0f), "Σ b: the white pixels");
  finish(m);
  return m;
}

Model max_pool(int64_t s) {
  Model m(lab::Shape{1, s, s});
  m.add("detector", conv1x1(1, 1, {1.0f}, {0.0f}), "x");
  m.add("detector.relu", std::make_shared<lab::ReLU>(), "d = [x]: 1 on white pixels");
  m.add("pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{}), "1 on 2×2 cells with a white pixel");
  m.add("sum", sum_all(s / 2, 1.0f), "the cells with a white pixel");
  finish(m);
  return m;
}

Model batch_norm_trap(int64_t s) {
  Model m(lab::Shape{1, s, s});
  const double eps = std::ldexp(1.0, -10);
  const float var = 4.0f - std::ldexp(1.0f, -10);  // var + eps = 4 exactly: the scale is γ/2
  m.add("conv", conv1x1(1, 1, {1.0f}, {0.0f}), "c = x");
  m.add("bn1", batch_norm(4.0f, 0.0f, 0.5f, var, eps), "2c − 1");
  m.add("relu", std::make_shared<lab::ReLU>(), "[2x − 1]: x on binary pixels");
  m.add("sum", sum_all(s, 2.0f), "2 × the white pixels");
  m.add("bn2", batch_norm(1.0f, 0.0f, 0.0f, var, eps), "the white pixels");
  finish(m);
  return m;
}

Model saturation(int64_t s) {
  Model m(lab::Shape{1, s, s});
  m.add("ramp", conv1x1(1, 2, {2.0f, 2.0f}, {0.0f, -1.0f}), "(2x, 2x − 1)");
  m.add("ramp.relu", std::make_shared<lab::ReLU>(), "([2x], [2x − 1])");
  m.add("clip", conv1x1(2, 1, {1.0f, -1.0f}, {}), "g = [2x] − [2x − 1] = min(2x, 1): saturated at white pixels");
  m.add("sum", sum_all(s, 1.0f), "Σ g: the white pixels");
  finish(m);
  return m;
}

Model interaction(int64_t s) {
  Model m(lab::Shape{1, s, s});
  m.add("pairs", window(1, 2, {1.0f, 1.0f}, {-1.0f}), "x_{2j} + x_{2j+1} − 1 per horizontal pair");
  m.add("pairs.relu", std::make_shared<lab::ReLU>(), "1 on pairs of two white pixels (AND)");
  lab::Conv2dParams p{.kernel_h = s, .kernel_w = s / 2, .stride_h = s, .stride_w = s / 2};
  m.add("sum",
        std::make_shared<lab::Conv2d>(p, Tensor({1, 1, s, s / 2}, 1.0f), Tensor()),
        "the pairs of two white pixels");
  finish(m);
  return m;
}

Model position(int64_t s) {
  Model m(lab::Shape{1, s, s});
  m.add("detector", conv1x1(1, 1, {1.0f}, {0.0f}), "x");
  m.add("detector.relu", std::make_shared<lab::ReLU>(), "d = [x]: 1 on white pixels");
  std::vector<float> mask(static_cast<size_t>(s * s), 0.0f);
  for (int64_t y = 0; y < s; ++y)
    for (int64_t x = 0; x < s / 2; ++x) mask[static_cast<size_t>(y * s + x)] = 1.0f;
  m.add("sum", window(s, s, std::move(mask), {}), "the white pixels of the left half");
  finish(m);
  return m;
}

}  // namespace

const lab::Schema<TrapParams>& TrapParams::schema() {
  using P = TrapParams;
  static const auto s = lab::Schema<P>()
                            .field("size", &P::size, {.range = lab::between(4, 256), .help = "image side S, even"})
                            .check([](const P& p, const std::string& flag) {
                              if (p.size % 2 != 0)
                                lab::fail_parameter("{} size={}: expected an even image side (2×2 cells, pixel pairs)",
                                                    flag, p.size);
                            });
  return s;
}

const std::vector<std::string>& trap_names() {
  static const std::vector<std::string> names = {"residual",   "reused-relu", "max-pool", "batch-norm",
                                                 "saturation", "interaction", "position"};
  return names;
}

Model make_trap(const std::string& name, const TrapParams& params) {
  TrapParams::schema().validate(params, "-o");
  const int64_t s = params.size;
  if (name == "residual") return residual(s);
  if (name == "reused-relu") return reused_relu(s);
  if (name == "max-pool") return max_pool(s);
  if (name == "batch-norm") return batch_norm_trap(s);
  if (name == "saturation") return saturation(s);
  if (name == "interaction") return interaction(s);
  if (name == "position") return position(s);
  lab::fail_parameter("unknown trap {}", name);
}

std::map<std::string, std::string> trap_paper_layers(const std::string& name) {
  static const std::map<std::string, std::string> layer = {
      {"residual", "block2.add"}, {"reused-relu", "relu.b"},     {"max-pool", "pool"},
      {"batch-norm", "relu"},     {"saturation", "clip"},        {"interaction", "pairs.relu"},
      {"position", "detector.relu"}};
  const std::string& l = layer.at(name);
  return {{"gradcam", l}, {"iba", l}};
}

}  // namespace networks
