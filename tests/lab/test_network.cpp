// Network: shapes, names, traces, partial forward, backward to a layer, batching and threads.
#include <doctest/doctest.h>

#include <cstring>

#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "random_nets.h"

using lab::Tensor;

TEST_CASE("shapes, names and parameter count") {
  const lab::Network net = testnets::random_convnet(1);
  CHECK(net.size() == 8);
  CHECK(net.index_of("head.0") == 5);
  CHECK(net.shape_after(0, 2) == lab::Shape{2, 4, 8, 8});
  CHECK(net.shape_after(2, 2) == lab::Shape{2, 4, 4, 4});
  CHECK(net.output_shape(5) == lab::Shape{5, 3});
  CHECK(net.parameter_count() == (4 * 2 * 9 + 4) + (4 * 2 * 4 + 4) + (64 * 16 + 16) + (16 * 3 + 3));
  CHECK_THROWS_WITH_AS(net.index_of("head.9"), doctest::Contains("no layer named 'head.9'"), lab::Error);
  CHECK_THROWS_WITH_AS(net.forward(Tensor({1, 3, 8, 8})), doctest::Contains("does not match"), lab::Error);
}

TEST_CASE("trace, forward_from and backward to a named layer agree with the full pass") {
  const lab::Network net = testnets::random_convnet(2, true, true);
  std::mt19937 rng(2);
  const Tensor x = testnets::random_tensor({3, 2, 8, 8}, rng);
  const lab::Trace t = net.trace(x);
  CHECK(t.output().values() == net.forward(x).values());
  const size_t mid = net.index_of("features.3");
  CHECK(net.forward_from("features.3", t.after(mid)).values() == t.output().values());
  // Gradient at the layer, pushed on to the input, equals the gradient at the input.
  Tensor seed(t.output().shape(), 0.0f);
  for (int64_t n = 0; n < 3; ++n) seed[n * 3 + 1] = 1.0f;
  const Tensor g_mid = net.gradient(t, seed, mid);
  CHECK(g_mid.shape() == t.after(mid).shape());
  const Tensor g_in = net.gradient(t, seed);
  // Chain the first four layers by hand from g_mid.
  Tensor s = g_mid;
  for (size_t i = mid + 1; i-- > 0;) s = net.layer(i).backward_data(t.acts[i], t.acts[i + 1], s);
  CHECK(s.values() == g_in.values());
}

TEST_CASE("a batch of N gives the same results as N single calls") {
  const lab::Network net = testnets::random_convnet(3, true, true);
  std::mt19937 rng(3);
  const Tensor x = testnets::random_tensor({6, 2, 8, 8}, rng);
  const lab::Trace batch = net.trace(x);
  Tensor seed(batch.output().shape(), 0.0f);
  for (int64_t n = 0; n < 6; ++n) seed[n * 3] = 1.0f;
  const Tensor g = net.gradient(batch, seed);
  for (int64_t n = 0; n < 6; ++n) {
    const lab::Trace single = net.trace(x.slice(n, n + 1));
    const Tensor gs = net.gradient(single, seed.slice(n, n + 1));
    for (int64_t j = 0; j < 3; ++j) CHECK(single.output()[j] == doctest::Approx(batch.output()[n * 3 + j]).epsilon(1e-6));
    for (int64_t j = 0; j < gs.numel(); ++j) REQUIRE(gs[j] == doctest::Approx(g.sample(n)[j]).epsilon(1e-5));
  }
}

TEST_CASE("1 thread and 2 threads give identical bytes") {
  const lab::Network net = testnets::random_convnet(4, true, true);
  std::mt19937 rng(4);
  const Tensor x = testnets::random_tensor({8, 2, 8, 8}, rng);
  auto run = [&] {
    const lab::Trace t = net.trace(x);
    Tensor seed(t.output().shape(), 1.0f);
    Tensor g = net.gradient(t, seed);
    const auto lrp = lab::prepare(net, lab::make_composite("lrp-epsilon-plus"));
    Tensor r = net.backward(t, t.output(), lrp);
    return std::vector<Tensor>{t.output(), g, r};
  };
  const int before = lab::Runtime::get().threads();
  lab::Runtime::get().set_threads(1);
  const auto one = run();
  lab::Runtime::get().set_threads(2);
  const auto two = run();
  lab::Runtime::get().set_threads(before);
  for (size_t i = 0; i < one.size(); ++i) {
    REQUIRE(one[i].numel() == two[i].numel());
    CHECK(std::memcmp(one[i].data(), two[i].data(), sizeof(float) * one[i].numel()) == 0);
  }
}
