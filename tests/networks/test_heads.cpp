// Heads: the modulo unit (eqs. 8–13) on every integer up to U, its layers and parameter count;
// the identity MLP with its logit scale.
#include <doctest/doctest.h>

#include <random>

#include "lab/core/error.h"
#include "networks/heads.h"
#include "networks/model.h"

TEST_CASE("the modulo unit outputs x mod N exactly for the integers 0 <= x <= U") {
  struct Case {
    int64_t n, u;
  };
  for (const Case c : {Case{30, 4500}, Case{30, 900}, Case{7, 100}, Case{2, 51}, Case{13, 1}, Case{500, 50176}}) {
    CAPTURE(c.n);
    CAPTURE(c.u);
    const networks::ModuloParams p{.modulus = c.n, .max_input = c.u};
    const lab::Network net = networks::build_modulo(p);
    // Every integer up to U (for U = 224² the first and last 2,000).
    std::vector<float> xs;
    for (int64_t x = 0; x <= c.u; ++x)
      if (c.u <= 5000 || x <= 2000 || x >= c.u - 2000) xs.push_back(static_cast<float>(x));
    const lab::Tensor y = net.forward(lab::Tensor({static_cast<int64_t>(xs.size()), 1}, xs));
    for (size_t t = 0; t < xs.size(); ++t)
      REQUIRE(y[static_cast<int64_t>(t)] == static_cast<float>(static_cast<int64_t>(xs[t]) % c.n));
  }
}

TEST_CASE("the modulo unit is seven linear layers with the designed widths and 29K'^2 + 16K' + 3 parameters") {
  const networks::ModuloParams p{.modulus = 30, .max_input = 4500};
  const int64_t k = p.entries();
  CHECK(k == 150);
  const lab::Network net = networks::build_modulo(p);
  REQUIRE(net.size() == 14);
  CHECK(networks::weight_layer_count(net) == 7);
  const int64_t widths[7] = {k + 1, k, 5 * k, 3 * k, 2 * k, k, 1};
  for (size_t i = 0; i < 7; ++i) {
    CHECK(net.layer(2 * i).kind() == lab::LayerKind::kLinear);
    CHECK(net.layer(2 * i + 1).kind() == lab::LayerKind::kReLU);
    CHECK(net.shape_after(2 * i) == lab::Shape{1, widths[i]});
    CHECK(net.name(2 * i) == fmt::format("modulo.layers.{}", 2 * i));
  }
  CHECK(net.parameter_count() == 29 * k * k + 16 * k + 3);
  CHECK(net.parameter_count() == 654903);
}

TEST_CASE("f2 holds N, ..., N, x mod N, 0, ... and f4 keeps only x mod N (eqs. 9, 11)") {
  const lab::Network net = networks::build_modulo({.modulus = 5, .max_input = 20});
  const lab::Trace t = net.trace(lab::Tensor({1, 1}, std::vector<float>{13.0f}));
  CHECK(t.after(3).values() == std::vector<float>{5, 5, 3, 0});
  CHECK(t.after(9).values() == std::vector<float>{5, 1, 5, 1, 3, 0, 0, 0});  // x_j, I_N(x_j)
  CHECK(t.after(11).values() == std::vector<float>{0, 0, 3, 0});
  CHECK(t.output().values() == std::vector<float>{3});
}

TEST_CASE("modulo parameters are checked") {
  CHECK_THROWS_WITH_AS(networks::build_modulo({.modulus = 1}), doctest::Contains("modulus"), lab::Error);
  CHECK_THROWS_WITH_AS(networks::build_modulo({.modulus = 30, .max_input = 0}), doctest::Contains("max-count"),
                       lab::Error);
}

TEST_CASE("the identity MLP outputs logit_scale times its input, exactly") {
  std::mt19937_64 rng(2);
  for (double scale : {1.0, 0.00390625, 0.0625, 16.0}) {
    CAPTURE(scale);
    networks::Model model(lab::Shape{4});
    networks::append_identity_mlp(model, "mlp", 4, scale);
    REQUIRE(model.network.size() == 3);
    CHECK(model.network.name(2) == "mlp.layers.2");
    lab::Tensor x({32, 4});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng() % 50177);
    const lab::Tensor y = model.network.forward(x);
    for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(y[i] == static_cast<float>(x[i] * scale));
  }
  for (double bad : {0.0, -0.25, 0.01, 3.0, 32.0, std::ldexp(1.0, -21)}) {
    CAPTURE(bad);
    networks::Model model(lab::Shape{4});
    CHECK_THROWS_WITH_AS(networks::append_identity_mlp(model, "mlp", 4, bad), doctest::Contains("logit-scale"),
                         lab::Error);
  }
}
