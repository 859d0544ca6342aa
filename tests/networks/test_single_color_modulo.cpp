// The single-color-modulo model (App. D, E, F): output = (white pixels) mod N exactly over
// generated images at 32, 64 and 224, Propositions 3.1 and 3.2, Table 1's layer count, options.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "images.h"
#include "lab/core/error.h"
#include "networks/single_color_modulo.h"

using networks::SingleColorModuloParams;

TEST_CASE("default model: 17 conv + linear layers as in Table 1, hook layers, parameter count") {
  const SingleColorModuloParams p;
  CHECK(p.size == 224);
  CHECK(p.modulus == 30);
  CHECK(p.accumulator == "nonuniform");
  CHECK(p.max_input() == 4500);
  const networks::Model m = networks::make_single_color_modulo(p);
  const lab::Network& net = m.network;
  CHECK(networks::weight_layer_count(net) == 17);
  CHECK(net.size() == 20 + 1 + 14);
  // Accumulator: 8·(2² + 2² + 2² + 4² + 7²) first-conv weights + 5·8 mixing weights, no biases.
  CHECK(net.parameter_count() == 8 * (4 + 4 + 4 + 16 + 49) + 5 * 8 + 654903);
  CHECK(net.parameter_count() == 655559);
  CHECK(net.shape_after(net.index_of("accumulator.layers.5")) == lab::Shape{1, 8, 56, 56});
  CHECK(net.shape_after(net.index_of("accumulator.layers.11")) == lab::Shape{1, 1, 28, 28});
  CHECK(net.output_shape(3) == lab::Shape{3, 1});
  for (const auto& [method, layer] : networks::single_color_modulo_paper_layers()) CHECK_NOTHROW(net.index_of(layer));
  CHECK(m.roles.size() == net.size());
}

TEST_CASE("max_input: capped at size², 0 means size²") {
  SingleColorModuloParams p;
  p.size = 32;
  CHECK(p.max_input() == 1024);
  p.max_count = 100;
  CHECK(p.max_input() == 100);
  p.size = 224;
  p.max_count = 0;
  CHECK(p.max_input() == 50176);
}

TEST_CASE("the output is the number of white pixels mod N, exactly") {
  struct Run {
    int64_t size, images, batch, max_side;
  };
  std::mt19937_64 rng(99);
  int64_t checked = 0;
  for (const char* accumulator : {"nonuniform", "uniform"}) {
    for (const Run run : {Run{32, 60, 30, 16}, Run{64, 40, 20, 32}, Run{224, 6, 3, 40}}) {
      CAPTURE(accumulator);
      CAPTURE(run.size);
      SingleColorModuloParams p;
      p.size = run.size;
      p.accumulator = accumulator;
      p.seed = static_cast<uint64_t>(run.size) + 1;
      const lab::Network net = networks::build_single_color_modulo(p);
      for (int64_t done = 0; done < run.images; done += run.batch) {
        testimg::GrayBatch b = testimg::gray_batch(run.size, run.batch, 4, run.max_side, rng);
        if (done == 0 && run.size <= 64) {  // the extremes: no white pixel, all white
          std::fill(b.x.sample(0), b.x.sample(0) + b.x.sample_numel(), 0.0f);
          std::fill(b.x.sample(1), b.x.sample(1) + b.x.sample_numel(), 1.0f);
          b.counts[0] = 0, b.counts[1] = run.size * run.size;
        }
        const lab::Tensor y = net.forward(b.x);
        for (int64_t i = 0; i < run.batch; ++i) {
          REQUIRE(b.counts[i] <= p.max_input());
          REQUIRE(y[i] == static_cast<float>(b.counts[i] % p.modulus));
          ++checked;
        }
      }
    }
  }
  CHECK(checked >= 200);
}

TEST_CASE("max_count=0 makes every image exact, for other moduli too") {
  std::mt19937_64 rng(3);
  for (const auto& [size, modulus] : {std::pair<int64_t, int64_t>{64, 30}, {64, 97}, {32, 5}}) {
    CAPTURE(size);
    CAPTURE(modulus);
    SingleColorModuloParams p;
    p.size = size;
    p.modulus = modulus;
    p.max_count = 0;
    const lab::Network net = networks::build_single_color_modulo(p);
    testimg::GrayBatch b = testimg::gray_batch(size, 8, 6, size * 3 / 4, rng);
    std::fill(b.x.sample(0), b.x.sample(0) + b.x.sample_numel(), 1.0f);
    b.counts[0] = size * size;
    const lab::Tensor y = net.forward(b.x);
    for (int64_t i = 0; i < 8; ++i) REQUIRE(y[i] == static_cast<float>(b.counts[i] % modulus));
  }
}

TEST_CASE("Propositions 3.1 and 3.2: removing any white pixel changes the output from r to (r - 1) mod N") {
  std::mt19937_64 rng(8);
  for (const char* accumulator : {"nonuniform", "uniform"}) {
    CAPTURE(accumulator);
    SingleColorModuloParams p;
    p.size = 32;
    p.accumulator = accumulator;
    const lab::Network net = networks::build_single_color_modulo(p);
    const testimg::GrayBatch b = testimg::gray_batch(32, 6, 4, 14, rng);
    for (int64_t i = 0; i < 6; ++i) {
      std::vector<int64_t> white;
      for (int64_t q = 0; q < 32 * 32; ++q)
        if (b.x.sample(i)[q] == 1.0f) white.push_back(q);
      REQUIRE(!white.empty());
      std::shuffle(white.begin(), white.end(), rng);
      white.resize(std::min<size_t>(white.size(), 48));
      const int64_t n = static_cast<int64_t>(white.size());
      lab::Tensor x({n, 1, 32, 32});
      for (int64_t j = 0; j < n; ++j) {
        std::copy(b.x.sample(i), b.x.sample(i) + b.x.sample_numel(), x.sample(j));
        x.sample(j)[white[j]] = 0.0f;
      }
      const lab::Tensor y = net.forward(x);
      const int64_t expected = (b.counts[i] - 1) % p.modulus;
      for (int64_t j = 0; j < n; ++j) REQUIRE(y[j] == static_cast<float>(expected));
      CHECK(expected != b.counts[i] % p.modulus);
    }
  }
}

TEST_CASE("options: parsing, validation and a JSON round trip") {
  lab::Options o = lab::Options::parse(
      {"size=64", "modulus=7", "accumulator=uniform", "seed=5", "max-count=0", "kernels=3"}, "-o");
  const auto& schema = SingleColorModuloParams::schema();
  const SingleColorModuloParams p = schema.read(o);
  CHECK(p.size == 64);
  CHECK(p.modulus == 7);
  CHECK(p.accumulator == "uniform");
  CHECK(p.seed == 5);
  CHECK(p.max_count == 0);
  CHECK(p.kernels == 3);
  CHECK_NOTHROW(o.finish());
  lab::Options back = lab::Options::from_json(schema.to_json(p), "-o");
  CHECK(schema.to_json(schema.read(back)) == schema.to_json(p));

  auto refuse = [](std::vector<std::string> items, const char* text) {
    CAPTURE(text);
    lab::Options bad = lab::Options::parse(items, "-o");
    CHECK_THROWS_WITH_AS(SingleColorModuloParams::schema().read(bad), doctest::Contains(text), lab::Error);
  };
  refuse({"modulus=1"}, "modulus");
  refuse({"max-count=-1"}, "-o max-count=-1: must be an integer ≥ 0");
  refuse({"size=17"}, "size=17");
  refuse({"size=0"}, "size=0");
  refuse({"kernels=100"}, "kernels");
  refuse({"accumulator=x"}, "accumulator");
}
