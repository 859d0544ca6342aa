// Layers against naive reference loops (forward) and finite differences (backward-data).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lab/core/error.h"
#include "random_nets.h"

using lab::Shape;
using lab::Tensor;

namespace {

// Naive direct convolution, double accumulation: the definition oneDNN must match.
Tensor naive_conv(const lab::Conv2d& conv, const Tensor& x) {
  const auto& p = conv.params();
  const auto& w = conv.weights();
  Tensor y(conv.output_shape(x.shape()));
  const int64_t icg = p.in_channels / p.groups, ocg = p.out_channels / p.groups;
  for (int64_t n = 0; n < y.dim(0); ++n)
    for (int64_t o = 0; o < p.out_channels; ++o)
      for (int64_t oh = 0; oh < y.dim(2); ++oh)
        for (int64_t ow = 0; ow < y.dim(3); ++ow) {
          double acc = w.bias.empty() ? 0.0 : w.bias[o];
          const int64_t g = o / ocg;
          for (int64_t c = 0; c < icg; ++c)
            for (int64_t kh = 0; kh < p.kernel_h; ++kh)
              for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
                const int64_t ih = oh * p.stride_h - p.pad_h + kh, iw = ow * p.stride_w - p.pad_w + kw;
                if (ih < 0 || iw < 0 || ih >= x.dim(2) || iw >= x.dim(3)) continue;
                acc += double(w.weight[((o * icg + c) * p.kernel_h + kh) * p.kernel_w + kw]) *
                       x.at(n, g * icg + c, ih, iw);
              }
          y.at(n, o, oh, ow) = static_cast<float>(acc);
        }
  return y;
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += double(a[i]) * b[i];
  return s;
}

// Checks <dx, v> = d/dh <dy, f(x + h v)> by central differences.
void check_backward(const lab::Layer& layer, const Tensor& x, std::mt19937& rng, double h, double tol) {
  const Tensor y = layer.forward(x);
  const Tensor dy = testnets::random_tensor(y.shape(), rng);
  const Tensor dx = layer.backward_data(x, y, dy);
  REQUIRE(dx.shape() == x.shape());
  for (int trial = 0; trial < 3; ++trial) {
    const Tensor v = testnets::random_tensor(x.shape(), rng);
    Tensor xp = x, xm = x;
    for (int64_t i = 0; i < x.numel(); ++i) {
      xp[i] += float(h * v[i]);
      xm[i] -= float(h * v[i]);
    }
    const double numeric = (dot(dy, layer.forward(xp)) - dot(dy, layer.forward(xm))) / (2 * h);
    const double analytic = dot(dx, v);
    CAPTURE(layer.describe());
    CHECK(analytic == doctest::Approx(numeric).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("conv2d forward matches the direct definition for strides, padding and groups") {
  std::mt19937 rng(1);
  struct Case { lab::Conv2dParams p; Shape in; };
  const Case cases[] = {
      {{.in_channels = 3, .out_channels = 5, .kernel_h = 1, .kernel_w = 1}, {2, 3, 7, 6}},
      {{.in_channels = 2, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, {3, 2, 9, 9}},
      {{.in_channels = 4, .out_channels = 6, .kernel_h = 2, .kernel_w = 3, .stride_h = 2, .stride_w = 3, .groups = 2}, {2, 4, 8, 9}},
      {{.in_channels = 2, .out_channels = 2, .kernel_h = 4, .kernel_w = 4, .stride_h = 4, .stride_w = 4}, {1, 2, 16, 16}},
      {{.in_channels = 1, .out_channels = 3, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, {2, 1, 8, 8}},
  };
  for (const Case& c : cases) {
    for (bool bias : {true, false}) {
      auto conv = testnets::random_conv(c.p, rng, bias);
      const Tensor x = testnets::random_tensor(c.in, rng);
      const Tensor y = conv->forward(x);
      const Tensor ref = naive_conv(*conv, x);
      REQUIRE(y.shape() == ref.shape());
      for (int64_t i = 0; i < y.numel(); ++i) REQUIRE(y[i] == doctest::Approx(ref[i]).epsilon(1e-5));
    }
  }
}

TEST_CASE("linear forward is W x + b") {
  std::mt19937 rng(2);
  auto lin = testnets::random_linear(5, 3, rng);
  const Tensor x = testnets::random_tensor({4, 5}, rng);
  const Tensor y = lin->forward(x);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t o = 0; o < 3; ++o) {
      double acc = lin->weights().bias[o];
      for (int64_t i = 0; i < 5; ++i) acc += double(lin->weights().weight[o * 5 + i]) * x[n * 5 + i];
      CHECK(y[n * 3 + o] == doctest::Approx(acc).epsilon(1e-6));
    }
}

TEST_CASE("every layer's backward-data agrees with finite differences") {
  std::mt19937 rng(3);
  SUBCASE("conv2d") {
    auto conv = testnets::random_conv({.in_channels = 4, .out_channels = 6, .kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 0, .groups = 2}, rng);
    check_backward(*conv, testnets::random_tensor({2, 4, 7, 6}, rng), rng, 1e-2, 1e-3);
  }
  SUBCASE("linear") {
    auto lin = testnets::random_linear(7, 4, rng);
    check_backward(*lin, testnets::random_tensor({3, 7}, rng), rng, 1e-2, 1e-3);
  }
  SUBCASE("relu away from its kink") {
    Tensor x = testnets::random_tensor({2, 3, 4, 4}, rng);
    for (float& v : x.values()) v = v >= 0 ? v + 0.2f : v - 0.2f;  // |x| ≥ 0.2 ≫ h
    check_backward(lab::ReLU(), x, rng, 1e-3, 1e-3);
  }
  SUBCASE("softmax") { check_backward(lab::Softmax(), testnets::random_tensor({3, 5}, rng, -2, 2), rng, 1e-3, 1e-3); }
  SUBCASE("flatten") { check_backward(lab::Flatten(), testnets::random_tensor({2, 3, 2, 2}, rng), rng, 1e-2, 1e-4); }
}

TEST_CASE("layers refuse inputs of the wrong shape with a clear error") {
  std::mt19937 rng(4);
  auto conv = testnets::random_conv({.in_channels = 3, .out_channels = 2}, rng);
  CHECK_THROWS_WITH_AS(conv->forward(Tensor({1, 2, 4, 4})), doctest::Contains("conv2d expects N×3×H×W"), lab::Error);
  auto lin = testnets::random_linear(4, 2, rng);
  CHECK_THROWS_AS(lin->forward(Tensor({1, 5})), lab::Error);
  CHECK_THROWS_AS(lab::Conv2d({.in_channels = 3, .out_channels = 2, .kernel_h = 2, .kernel_w = 2}, Tensor({2, 3, 1, 1}), Tensor()),
                  lab::Error);
  CHECK_THROWS_AS(lab::Conv2dParams({.in_channels = 3, .out_channels = 2, .groups = 2}).validate(), lab::Error);
}

TEST_CASE("a pass runs its steps in order; layers of one geometry share primitives, not weights") {
  std::mt19937 rng(5);
  const lab::Conv2dParams p{.in_channels = 2, .out_channels = 2, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1};
  auto a = testnets::random_conv(p, rng), b = testnets::random_conv(p, rng);
  const Tensor x = testnets::random_tensor({2, 2, 5, 5}, rng);
  // Reference: one call at a time, the host negating in between.
  Tensor expected_mid = a->forward(x);
  for (float& v : expected_mid.values()) v = -v;
  const Tensor expected = b->forward(lab::ReLU().forward(expected_mid));
  // The same as one pass: conv, host step, relu, conv (the relu reads what the host wrote).
  Tensor mid(x.shape()), clipped(x.shape()), y(x.shape());
  lab::Pass pass;
  a->add_forward(pass, x.shape(), x.data(), mid.data());
  pass.add_host([&] {
    for (float& v : mid.values()) v = -v;
  });
  lab::ReLU().add_forward(pass, x.shape(), mid.data(), clipped.data());
  b->add_forward(pass, x.shape(), clipped.data(), y.data());
  pass.run();
  CHECK(mid.values() == expected_mid.values());
  CHECK(y.values() == expected.values());
  CHECK(y.values() != a->forward(clipped).values());  // b ran with its own weights
}

TEST_CASE("softmax keeps tiny probabilities (denormal floats) instead of flushing them to 0") {
  // Logits 0, −97, −100, −120 and −200: the probabilities e^{−97}/Σ ≈ 7.47e-43 and e^{−100}/Σ
  // ≈ 3.72e-44 are float32 denormals (below 1.18e-38), e^{−120} and e^{−200} underflow even
  // there (the smallest denormal is 1.4e-45) and are 0.
  const Tensor x({2, 5}, {0.0f, -97.0f, -100.0f, -120.0f, -200.0f, -97.0f, 0.0f, 0.0f, -100.0f, 3.0f});
  const Tensor y = lab::Softmax().forward(x);
  for (int64_t n = 0; n < 2; ++n) {
    double top = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < 5; ++j) top = std::max(top, double(x[n * 5 + j]));
    for (int64_t j = 0; j < 5; ++j) sum += std::exp(double(x[n * 5 + j]) - top);
    for (int64_t j = 0; j < 5; ++j) {
      const double expected = std::exp(double(x[n * 5 + j]) - top) / sum;
      CAPTURE(n);
      CAPTURE(j);
      // The float nearest the exact value, denormals included: exact up to the half-ulp of
      // rounding (1.4e-45 absolute below 1.18e-38, 2^-24 relative above).
      CHECK(y[n * 5 + j] == static_cast<float>(expected));
    }
  }
  CHECK(y[1] > 7.4e-43f);
  CHECK(y[1] < 7.5e-43f);
  CHECK(y[2] > 0.0f);
  // The gradient through a tiny probability is kept too: ∂p_1/∂z_1 = p_1 (1 − p_1) ≈ p_1.
  Tensor dy({2, 5}, 0.0f);
  dy[1] = 1.0f;
  const Tensor dx = lab::Softmax().backward_data(x, y, dy);
  CHECK(dx[1] == doctest::Approx(double(y[1])).epsilon(1e-2));
  CHECK(dx[1] > 0.0f);
}

TEST_CASE("small ReLUs and flatten copies on the host give the bytes of oneDNN's primitives") {
  // A ReLU or flatten of at most 2^16 floats runs as a host step (lab/nn/layers.cpp), a larger
  // one as oneDNN's eltwise or reorder: the same values placed in a small tensor and at the start
  // of a large one give the same bytes forward and backward, with −0, +0, ±∞, NaN, denormals and
  // random values, x and the signal both (a NaN input passes the signal backward, as oneDNN's).
  std::mt19937 rng(21);
  const int64_t small = 1000, large = (int64_t{1} << 16) + 8;
  const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-40f, -1e-40f, 1.0f, -1.0f};
  Tensor xs = testnets::random_tensor({small, 1}, rng), dys = testnets::random_tensor({small, 1}, rng);
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t j = 0; j < 10; ++j) {
      xs[i * 10 + j] = special[i];
      dys[i * 10 + j] = special[j];
    }
  Tensor xl = testnets::random_tensor({large, 1}, rng), dyl = testnets::random_tensor({large, 1}, rng);
  std::copy(xs.values().begin(), xs.values().end(), xl.values().begin());
  std::copy(dys.values().begin(), dys.values().end(), dyl.values().begin());
  const auto same_start = [&](const Tensor& a, const Tensor& b) {
    return std::memcmp(a.data(), b.data(), sizeof(float) * small) == 0;
  };
  const lab::ReLU relu;
  const Tensor ys = relu.forward(xs), yl = relu.forward(xl);
  CHECK(same_start(ys, yl));
  CHECK(same_start(relu.backward_data(xs, ys, dys), relu.backward_data(xl, yl, dyl)));
  CHECK(std::signbit(ys[10]) == false);  // −0 → +0
  CHECK(ys[40] == 0.0f);                 // NaN → +0
  const lab::Flatten flatten;
  const Tensor xs4 = xs.reshaped({small / 10, 10, 1, 1}), xl4 = xl.reshaped({large / 8, 8, 1, 1});
  CHECK(same_start(flatten.forward(xs4), flatten.forward(xl4)));
  CHECK(same_start(flatten.backward_data(xs4, flatten.forward(xs4), dys.reshaped({small / 10, 10})),
                   flatten.backward_data(xl4, flatten.forward(xl4), dyl.reshaped({large / 8, 8}))));
}
