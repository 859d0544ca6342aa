// Network: shapes, names, traces, partial forward, backward to a layer, batching and threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/nn/gradient_trace.h"
#include "lab/nn/patch_run.h"
#include "lab/nn/pointwise_gemm.h"
#include "forward_paths.h"
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

TEST_CASE("sub-batches: a batch of 37 gives the bytes of 37 single-image calls (forward, trace, backward)") {
  // A chain with a max-pool (its workspace keeps the trace on the whole batch), a graph with a
  // residual sum, a chain with a softmax, and random_convnet with its Linear head (lab::linear_chain:
  // one chain per element, so the head too gives each image the bytes it gets alone). Cache
  // budgets that split every layer into sub-batches of one sample per thread or of 5 (37 = 7·5 +
  // 2), only the larger layers, none, and the default.
  std::mt19937 rng(5);
  using P = lab::Conv2dParams;
  std::vector<lab::Network> nets;
  {
    lab::Network pooled({2, 8, 8});
    pooled.add("c0", testnets::random_conv(P{.in_channels = 2, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng));
    pooled.add("r0", std::make_shared<lab::ReLU>());
    pooled.add("pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{}));
    pooled.add("c1", testnets::random_conv(P{.in_channels = 4, .out_channels = 3, .kernel_h = 4, .kernel_w = 4}, rng));
    pooled.add("flat", std::make_shared<lab::Flatten>());
    nets.push_back(pooled);
    lab::Network graph({2, 8, 8});
    graph.add("c0", testnets::random_conv(P{.in_channels = 2, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng));
    graph.add("r0", std::make_shared<lab::ReLU>());
    graph.add("c1", testnets::random_conv(P{.in_channels = 4, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng));
    graph.add("sum", std::make_shared<lab::Add>(), {"c1", "r0"});
    graph.add("r1", std::make_shared<lab::ReLU>());
    graph.add("c2", testnets::random_conv(P{.in_channels = 4, .out_channels = 3, .kernel_h = 8, .kernel_w = 8}, rng));
    graph.add("flat", std::make_shared<lab::Flatten>());
    nets.push_back(graph);
    lab::Network chain({2, 8, 8});
    chain.add("c0", testnets::random_conv(P{.in_channels = 2, .out_channels = 4, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng));
    chain.add("r0", std::make_shared<lab::ReLU>());
    chain.add("c1", testnets::random_conv(P{.in_channels = 4, .out_channels = 4, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .groups = 2}, rng));
    chain.add("r1", std::make_shared<lab::ReLU>());
    chain.add("c2", testnets::random_conv(P{.in_channels = 4, .out_channels = 3, .kernel_h = 4, .kernel_w = 4}, rng));
    chain.add("flat", std::make_shared<lab::Flatten>());
    chain.add("softmax", std::make_shared<lab::Softmax>());
    nets.push_back(chain);
  }
  nets.push_back(testnets::random_convnet(5, true, true));
  const int64_t batch = 37;
  const Tensor x = testnets::random_tensor({batch, 2, 8, 8}, rng);
  // Per sample: input 2×8×8 and the first layer's 4×8×8 output.
  const int64_t first_layer = static_cast<int64_t>(sizeof(float)) * (128 + 256);
  const auto same = [](const float* a, const float* b, int64_t n) { return std::memcmp(a, b, sizeof(float) * n) == 0; };
  for (size_t k = 0; k < nets.size(); ++k) {
    CAPTURE(k);
    const lab::Network& net = nets[k];
    const Tensor seed = testnets::random_tensor(net.output_shape(batch), rng);
    const auto lrp = lab::prepare(net, lab::make_composite("lrp-epsilon-plus"));
    struct Result {
      Tensor forward;
      lab::Trace trace;
      Tensor gradient, relevance;
    };
    const auto run = [&](const Tensor& in, const Tensor& s) {
      Result r{net.forward(in), net.trace(in), {}, {}};
      r.gradient = net.gradient(r.trace, s);
      r.relevance = net.backward(r.trace, s, lrp);
      return r;
    };
    lab::set_sub_batch_budget(0);
    std::vector<Result> singles;
    for (int64_t n = 0; n < batch; ++n) singles.push_back(run(x.slice(n, n + 1), seed.slice(n, n + 1)));
    for (const int64_t budget : std::vector<int64_t>{1, 5 * first_layer, 20000, 0, -1}) {
      CAPTURE(budget);
      lab::set_sub_batch_budget(budget);
      const Result all = run(x, seed);
      for (int64_t n = 0; n < batch; ++n) {
        const Result& one = singles[static_cast<size_t>(n)];
        REQUIRE(same(one.forward.data(), all.forward.sample(n), one.forward.numel()));
        for (size_t a = 0; a < one.trace.acts.size(); ++a)
          REQUIRE(same(one.trace.acts[a].data(), all.trace.acts[a].sample(n), one.trace.acts[a].numel()));
        REQUIRE(same(one.gradient.data(), all.gradient.sample(n), one.gradient.numel()));
        REQUIRE(same(one.relevance.data(), all.relevance.sample(n), one.relevance.numel()));
      }
    }
    lab::set_sub_batch_budget(-1);
  }
  CHECK(lab::sub_batch_budget() > 0);
}

namespace {

lab::Conv2dParams one_by_one(int64_t in, int64_t out) { return lab::Conv2dParams{.in_channels = in, .out_channels = out}; }

// Runs of 1×1 convolutions and ReLUs of every kind add_pointwise_run handles: a leading ReLU,
// two ReLUs in a row, a convolution without bias, one to a single channel, one over 300
// in-channels; 70×61 pixels (several tiles and a remainder at any L2 size), cut by a 3×3
// convolution and followed by a Linear head (ReLU post-op on inner product).
lab::Network pointwise_net(std::mt19937& rng) {
  using P = lab::Conv2dParams;
  const auto one = one_by_one;
  lab::Network net({3, 70, 61});
  net.add("r0", std::make_shared<lab::ReLU>());
  net.add("c0", testnets::random_conv(one(3, 300), rng));
  net.add("r1", std::make_shared<lab::ReLU>());
  net.add("r2", std::make_shared<lab::ReLU>());
  net.add("c1", testnets::random_conv(one(300, 7), rng, false));
  net.add("c2", testnets::random_conv(one(7, 1), rng));
  net.add("r3", std::make_shared<lab::ReLU>());
  net.add("c3", testnets::random_conv(P{.in_channels = 1, .out_channels = 5, .kernel_h = 3, .kernel_w = 3}, rng));
  net.add("c4", testnets::random_conv(one(5, 4), rng));
  net.add("r4", std::make_shared<lab::ReLU>());
  net.add("pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{.kernel_h = 4, .kernel_w = 4, .stride_h = 4, .stride_w = 4}));
  net.add("flat", std::make_shared<lab::Flatten>());
  net.add("fc", testnets::random_linear(4 * 17 * 14, 6, rng));
  net.add("r5", std::make_shared<lab::ReLU>());
  net.add("out", testnets::random_linear(6, 3, rng));
  return net;
}

// A chain whose grouped 1×1 convolution of two outputs per group (per pixel, but no step of a
// run: lab::is_run_pointwise) cuts a run: pointwise runs c0 r0 and r1 c2 r2 c3.
lab::Network grouped_net(std::mt19937& rng) {
  lab::Network grouped({4, 33, 35});
  grouped.add("c0", testnets::random_conv(one_by_one(4, 6), rng));
  grouped.add("r0", std::make_shared<lab::ReLU>());
  grouped.add("g1", testnets::random_conv(lab::Conv2dParams{.in_channels = 6, .out_channels = 6, .groups = 3}, rng));
  grouped.add("r1", std::make_shared<lab::ReLU>());
  grouped.add("c2", testnets::random_conv(one_by_one(6, 8), rng));
  grouped.add("r2", std::make_shared<lab::ReLU>());
  grouped.add("c3", testnets::random_conv(one_by_one(8, 2), rng, false));
  grouped.add("flat", std::make_shared<lab::Flatten>());
  return grouped;
}

// A chain whose grouped 1×1 convolutions of one output per group (multi-color-sum's sums) are
// steps of its run (lab::is_run_pointwise): c0 r0 g1 r1 c2 r2 g3, the last without a bias.
lab::Network summed_net(std::mt19937& rng) {
  lab::Network summed({4, 31, 37});
  summed.add("c0", testnets::random_conv(one_by_one(4, 6), rng));
  summed.add("r0", std::make_shared<lab::ReLU>());
  summed.add("g1", testnets::random_conv(lab::Conv2dParams{.in_channels = 6, .out_channels = 3, .groups = 3}, rng));
  summed.add("r1", std::make_shared<lab::ReLU>());
  summed.add("c2", testnets::random_conv(one_by_one(3, 8), rng));
  summed.add("r2", std::make_shared<lab::ReLU>());
  summed.add("g3", testnets::random_conv(lab::Conv2dParams{.in_channels = 8, .out_channels = 2, .groups = 2}, rng, false));
  summed.add("flat", std::make_shared<lab::Flatten>());
  return summed;
}

// The chains of the backprop-tile tests: pointwise_net, grouped_net, summed_net.
std::vector<lab::Network> tile_chains(std::mt19937& rng) {
  std::vector<lab::Network> nets{pointwise_net(rng)};
  nets.push_back(grouped_net(rng));
  nets.push_back(summed_net(rng));
  return nets;
}

// Each rule's backward of `seed` on `trace` to the input, then to the output of every layer but
// the last.
std::vector<std::vector<Tensor>> backward_to_every_layer(const lab::Network& net, const lab::Trace& trace,
                                                         const Tensor& seed, const std::vector<lab::PreparedRules>& rules,
                                                         const lab::Trace& reference) {
  std::vector<std::vector<Tensor>> out(rules.size());
  for (size_t r = 0; r < rules.size(); ++r) {
    out[r].push_back(net.backward(trace, seed, rules[r], std::nullopt, &reference));
    for (size_t l = 0; l + 1 < net.size(); ++l) out[r].push_back(net.backward(trace, seed, rules[r], l, &reference));
  }
  return out;
}

using testnets::at_threads_and_budgets;

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

// A batch of 4 inputs of `net` in [-3, 3), with a +0 and a −0.
Tensor signed_zero_batch(const lab::Network& net, std::mt19937& rng) {
  lab::Shape shape{4};
  shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
  Tensor x = testnets::random_tensor(shape, rng, -3.0f, 3.0f);
  x[7] = 0.0f;
  x[8] = -0.0f;
  return x;
}

}  // namespace

TEST_CASE("forward paths: pointwise tiles, ReLU post-ops and inference primitives give the plain forward's bytes") {
  std::mt19937 rng(11);
  const auto one = one_by_one;
  const lab::Network net = pointwise_net(rng);
  Tensor x = testnets::random_tensor({5, 3, 70, 61}, rng, -3.0f, 3.0f);
  x[7] = 0.0f;
  x[8] = -0.0f;
  const lab::ForwardPath saved = lab::forward_path();
  lab::set_forward_path(testnets::kPlainPath);
  const Tensor plain = net.forward(x);
  const lab::Trace trace = net.trace(x);
  REQUIRE(std::memcmp(plain.data(), trace.output().data(), sizeof(float) * plain.numel()) == 0);
  testnets::for_each_forward_path([&] {
    const Tensor y = net.forward(x);
    CHECK(std::memcmp(y.data(), plain.data(), sizeof(float) * y.numel()) == 0);
    // Every layer's output from every cut, with and without sub-batches.
    for (const int64_t budget : {int64_t{0}, int64_t{-1}}) {
      lab::set_sub_batch_budget(budget);
      for (size_t from = 0; from < net.size(); from += 3) {
        CAPTURE(from);
        const Tensor part = net.forward_range(from, net.size() - 2, trace.acts[from]);
        const Tensor& want = trace.acts[net.size() - 2];
        CHECK(std::memcmp(part.data(), want.data(), sizeof(float) * want.numel()) == 0);
      }
    }
    lab::set_sub_batch_budget(-1);
  });
  // Signed zeros: oneDNN's ReLU primitive maps every x <= 0 (−0 included) to +0, as the tiles do
  // (x >= 0 ? x : 0 would keep a −0 and fail here). oneDNN's ReLU post-op maps a negative x to
  // x·0 = −0 (c1's −2 here): relu_post_op gives the same values, but zeros may carry the other
  // sign (which a later affine layer with a bias or another input erases), so it is off by default.
  lab::Network zeros({3, 9, 9});
  zeros.add("c0", std::make_shared<lab::Conv2d>(one(3, 4), Tensor({4, 3, 1, 1}, -1.0f), Tensor()));
  zeros.add("r0", std::make_shared<lab::ReLU>());
  zeros.add("c1", std::make_shared<lab::Conv2d>(one(4, 2), Tensor({2, 4, 1, 1}, -0.5f), Tensor()));
  zeros.add("r1", std::make_shared<lab::ReLU>());
  Tensor z({2, 3, 9, 9}, 0.0f);
  z[5] = -1.0f;
  lab::set_forward_path(testnets::kPlainPath);
  const lab::Trace zt = zeros.trace(z);
  for (const bool tiles : {true, false}) {
    CAPTURE(tiles);
    lab::set_forward_path(tiles ? lab::ForwardPath{.tiles = true} : lab::ForwardPath{.tiles = false, .relu_post_op = true});
    for (size_t end = 1; end <= zeros.size(); ++end) {
      CAPTURE(end);
      const Tensor part = zeros.forward_range(0, end, z);
      const Tensor& want = zt.acts[end];
      if (tiles) {
        CHECK(std::memcmp(part.data(), want.data(), sizeof(float) * part.numel()) == 0);
        continue;
      }
      for (int64_t i = 0; i < part.numel(); ++i) {
        CAPTURE(i);
        REQUIRE(part[i] == want[i]);  // bytes differ at most in the sign of a zero
        if (std::memcmp(part.data() + i, want.data() + i, sizeof(float)) != 0) REQUIRE(part[i] == 0.0f);
      }
    }
  }
  lab::set_forward_path(saved);
}

TEST_CASE("forward paths: sparse pointwise runs unchecked where their input bounds them give the plain bytes") {
  // A tiled run bounds its steps' inputs from its input's largest magnitude (run_tile); a sparse
  // step with the ReLU whose input is then finite runs its nonzero weights' chains unchecked, row
  // by row, down to one nonzero weight in 2 (the 3 → 24 step). Rows of 1 to 3 nonzero weights in
  // every shape pointwise_gemm splits them into (blocks of 6 with 3, 2 or 5 rows left below, a
  // lone last row), one weight of 2⁻¹⁰⁰ (its chain's −0 case under tiny inputs), a step without
  // the ReLU (checked strip by strip). Inputs: ordinary values with zeros, −0 and values down to
  // 2⁻¹⁴⁹; the same with ±∞ and NaN (no bound: every strip checked); with 10³⁸ (a bound beyond
  // the largest float after a step: its later steps checked). Where two or more such steps follow
  // each other (c0 to c3 here, p0 to p2), a SparseProgram runs them on the tiles of a multiple of
  // 16 pixels, on those bounded inputs only.
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-3, 3);
  const auto sparse_conv = [&](int64_t in, int64_t out, int nonzero, bool tiny) {
    Tensor w({out, in, 1, 1}, 0.0f), b({out});
    std::uniform_int_distribution<int64_t> column(0, in - 1);
    for (int64_t r = 0; r < out; ++r) {
      for (int t = 0; t < 1 + (nonzero > 1 ? static_cast<int>(r % nonzero) : 0); ++t)
        w[r * in + column(rng)] = std::ldexp(unit(rng), exponent(rng));
      b[r] = r % 4 == 0 ? 0.0f : unit(rng);
    }
    if (tiny) w[0] = 0.0f, w[1] = std::ldexp(1.0f, -100);
    return std::make_shared<lab::Conv2d>(one_by_one(in, out), w, b);
  };
  lab::Network net({3, 50, 37});
  net.add("c0", sparse_conv(3, 24, 1, false));
  net.add("r0", std::make_shared<lab::ReLU>());
  net.add("c1", sparse_conv(24, 15, 2, true));
  net.add("r1", std::make_shared<lab::ReLU>());
  net.add("c2", sparse_conv(15, 14, 3, false));
  net.add("r2", std::make_shared<lab::ReLU>());
  net.add("c3", sparse_conv(14, 5, 3, false));
  net.add("r3", std::make_shared<lab::ReLU>());
  net.add("c4", sparse_conv(5, 7, 2, false));
  net.add("r4", std::make_shared<lab::ReLU>());
  net.add("c5", sparse_conv(7, 6, 1, false));
  REQUIRE_FALSE(static_cast<const lab::Conv2d&>(net.layer(0)).sparse().empty());
  // A patch run: a 2×2 patch convolution (weights up to 4: 10³⁸ overflows there), then sparse steps;
  // 32 × 19 windows, so that every tile is a multiple of 16 pixels (where a SparseProgram runs).
  lab::Network patch({3, 64, 38});
  Tensor pw = testnets::random_tensor({10, 3, 2, 2}, rng, -4.0f, 4.0f);
  for (int64_t i = 0; i < pw.numel(); ++i)
    if (i % 5 < 3) pw[i] = 0.0f;  // 2 of 5 nonzero: the head's chains for finite inputs (Conv2d::sparse)
  patch.add("p0", std::make_shared<lab::Conv2d>(
                      lab::Conv2dParams{.in_channels = 3, .out_channels = 10, .kernel_h = 2, .kernel_w = 2,
                                        .stride_h = 2, .stride_w = 2},
                      pw, testnets::random_tensor({10}, rng)));
  patch.add("q0", std::make_shared<lab::ReLU>());
  patch.add("p1", sparse_conv(10, 12, 2, false));
  patch.add("q1", std::make_shared<lab::ReLU>());
  patch.add("p2", sparse_conv(12, 5, 3, false));
  patch.add("q2", std::make_shared<lab::ReLU>());
  REQUIRE(lab::is_patch_conv(patch.layer(0), {1, 3, 64, 38}));
  REQUIRE_FALSE(static_cast<const lab::Conv2d&>(patch.layer(0)).sparse().empty());
  // Sparse steps with grouped 1×1 convolutions of one output per group between them, and a patch
  // run of a sparse head then such a sum (multi-color-sum's): the steps of one SparseProgram each
  // (lab/nn/sparse_program.h), a group's row its group's weights (a zero among them), its bias or
  // none.
  const auto sum_conv = [&](int64_t in, int64_t groups, bool bias) {
    Tensor w = testnets::random_tensor({groups, in / groups, 1, 1}, rng, -2.0f, 2.0f);
    w[1] = 0.0f;
    return std::make_shared<lab::Conv2d>(lab::Conv2dParams{.in_channels = in, .out_channels = groups, .groups = groups},
                                         w, bias ? testnets::random_tensor({groups}, rng) : Tensor());
  };
  lab::Network summed({3, 50, 37});
  summed.add("c0", sparse_conv(3, 24, 1, false));
  summed.add("r0", std::make_shared<lab::ReLU>());
  summed.add("g1", sum_conv(24, 4, true));
  summed.add("r1", std::make_shared<lab::ReLU>());
  summed.add("c2", sparse_conv(4, 12, 2, false));
  summed.add("r2", std::make_shared<lab::ReLU>());
  summed.add("g3", sum_conv(12, 3, false));
  summed.add("r3", std::make_shared<lab::ReLU>());
  lab::Network patch_sum({3, 64, 38});
  patch_sum.add("p0", std::make_shared<lab::Conv2d>(
                          lab::Conv2dParams{.in_channels = 3, .out_channels = 10, .kernel_h = 2, .kernel_w = 2,
                                            .stride_h = 2, .stride_w = 2},
                          pw, testnets::random_tensor({10}, rng)));
  patch_sum.add("q0", std::make_shared<lab::ReLU>());
  patch_sum.add("g1", sum_conv(10, 2, true));
  patch_sum.add("q1", std::make_shared<lab::ReLU>());
  // A sparse pointwise run into a patch run (multi-color-sum's detector into its accumulator), one
  // run of a tiled sequence (lab::tiled_folds): the patch run gathers the pointwise run's input
  // and runs its steps (a SparseProgram on bounded inputs) on each window position's rows, on 32 ×
  // 19 windows and on 25 × 18 (the image's last tile padded).
  Tensor pw6 = testnets::random_tensor({10, 6, 2, 2}, rng, -4.0f, 4.0f);
  for (int64_t i = 0; i < pw6.numel(); ++i)
    if (i % 5 < 3) pw6[i] = 0.0f;
  const auto folded = [&](int64_t h, int64_t w) {
    lab::Network f({3, h, w});
    f.add("c0", sparse_conv(3, 8, 1, false));
    f.add("r0", std::make_shared<lab::ReLU>());
    f.add("c1", sparse_conv(8, 6, 2, false));
    f.add("r1", std::make_shared<lab::ReLU>());
    f.add("p2", std::make_shared<lab::Conv2d>(
                    lab::Conv2dParams{.in_channels = 6, .out_channels = 10, .kernel_h = 2, .kernel_w = 2,
                                      .stride_h = 2, .stride_w = 2},
                    pw6, testnets::random_tensor({10}, rng)));
    f.add("q2", std::make_shared<lab::ReLU>());
    f.add("g3", sum_conv(10, 2, true));
    f.add("q3", std::make_shared<lab::ReLU>());
    return f;
  };
  const lab::Network folded_even = folded(64, 38), folded_odd = folded(50, 37);
  Tensor ordinary = testnets::random_tensor({3, 3, 50, 37}, rng, -3.0f, 3.0f);
  for (int64_t i = 0; i < ordinary.numel(); i += 11)
    ordinary[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? -0.0f : std::ldexp(1.0f, -149 + static_cast<int>(i % 40));
  Tensor special = ordinary, huge = ordinary;
  special[100] = std::numeric_limits<float>::infinity();
  special[3000] = -std::numeric_limits<float>::infinity();
  special[9000] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < huge.numel(); i += 97) huge[i] = 1e38f;
  // The forward to each end, and the gradient of the outputs' sum through the gradient's trace
  // (whose pointwise and patch runs bound their input too) and through the full trace, against the
  // plain path's, and against the same path's with the dense chains. The ∞, NaN and 10³⁸ inputs
  // give NaN inputs to ReLUs (∞ · 0 in the dense products), where oneDNN's ReLU backward passes
  // the signal (x <= 0 ? 0 : 1): the tiled backward's rule and its sign bits do the same, and a
  // product takes the ReLU after it in its store only where its output is bounded.
  const auto same_bytes = [](const lab::Network& n, const Tensor& x, const std::vector<size_t>& ends) {
    const lab::ForwardPath saved = lab::forward_path();
    lab::set_forward_path(testnets::kPlainPath);
    const lab::Trace plain = n.trace(x);
    const Tensor seed(plain.output().shape(), 1.0f);
    const Tensor plain_gradient = n.gradient(plain, seed);
    const lab::PreparedRules guided = lab::prepare(n, lab::make_composite("guided-backprop"));
    const Tensor plain_guided = n.backward(plain, seed, guided);
    lab::set_forward_path(saved);
    testnets::for_each_forward_path([&] {
      // ReLU post-ops without tiles may give zeros of the other sign (the test above).
      if (!lab::forward_path().tiles && lab::forward_path().relu_post_op) return;
      for (const size_t end : ends) {
        CAPTURE(end);
        const Tensor y = n.forward_range(0, end, x);
        CHECK(std::memcmp(y.data(), plain.acts[end].data(), sizeof(float) * y.numel()) == 0);
      }
      const Tensor g = n.gradient(lab::trace_for_gradient(n, x), seed);
      CHECK(std::memcmp(g.data(), plain_gradient.data(), sizeof(float) * g.numel()) == 0);
      // From the full trace: the tiled backward reads the ReLUs' inputs themselves; and the guided
      // rule, whose clip then product is that of the gradient rule.
      const lab::Trace full = n.trace(x);
      const Tensor from_full = n.gradient(full, seed);
      CHECK(std::memcmp(from_full.data(), plain_gradient.data(), sizeof(float) * from_full.numel()) == 0);
      const Tensor guided_full = n.backward(full, seed, guided);
      CHECK(std::memcmp(guided_full.data(), plain_guided.data(), sizeof(float) * guided_full.numel()) == 0);
      const Tensor guided_signs = n.backward(lab::trace_for_gradient(n, x), seed, guided);
      CHECK(std::memcmp(guided_signs.data(), plain_guided.data(), sizeof(float) * guided_signs.numel()) == 0);
      // On every input, the same path with the dense chains (lab::set_sparse_weights(false)).
      lab::set_sparse_weights(false);
      const Tensor dense = n.gradient(lab::trace_for_gradient(n, x), seed);
      lab::set_sparse_weights(true);
      CHECK(std::memcmp(g.data(), dense.data(), sizeof(float) * g.numel()) == 0);
    });
  };
  for (const Tensor* x : {&ordinary, &special, &huge}) {
    const int input = x == &ordinary ? 0 : x == &special ? 1 : 2;  // ordinary, special, huge
    CAPTURE(input);
    same_bytes(net, *x, {2, 4, 6, 8, 10, net.size()});
    Tensor even({3, 3, 64, 38});
    for (int64_t i = 0; i < even.numel(); ++i) even[i] = (*x)[i % x->numel()];
    same_bytes(patch, even, {2, 4, patch.size()});
    same_bytes(summed, *x, {2, 4, 6, summed.size()});
    same_bytes(patch_sum, even, {2, patch_sum.size()});
    same_bytes(folded_even, even, {4, 6, folded_even.size()});
    same_bytes(folded_odd, *x, {4, 6, folded_odd.size()});
  }
}

TEST_CASE("forward paths: grouped 1×1 convolutions of one output per group are steps of the forward's tiled runs") {
  // is_run_pointwise: a grouped 1×1 convolution of one output channel per group (and at most 64
  // inputs per group) joins the forward's pointwise and patch runs, one product per group; the
  // plain path runs it as oneDNN's grouped gemm convolution. A pointwise run (3 → 8, then 8 → 4 in
  // 4 groups, 4 → 6, 6 → 3 in 3 groups without a ReLU), a grouped convolution of two outputs per
  // group (3 → 6 in 3 groups: no step) and a run after it (6 → 2 in 2 groups); a patch run (2×2
  // patches 3 → 8, then 8 → 2 and 2 → 2 in 2 groups); images of 37×29 and 50×38 pixels (tiles
  // not a multiple of 16 at the image's end), batches of 1 and 5, inputs with −0, ±∞ and NaN;
  // the forward to each end against the plain path's bytes, every path, 1 and 2 threads.
  std::mt19937 rng(31);
  const auto one = one_by_one;
  const auto grouped = [&](int64_t in, int64_t out, int64_t groups, bool bias = true) {
    return testnets::random_conv(lab::Conv2dParams{.in_channels = in, .out_channels = out, .groups = groups}, rng,
                                 bias);
  };
  lab::Network run({3, 37, 29});
  run.add("c0", testnets::random_conv(one(3, 8), rng));
  run.add("r0", std::make_shared<lab::ReLU>());
  run.add("g1", grouped(8, 4, 4));
  run.add("r1", std::make_shared<lab::ReLU>());
  run.add("c2", testnets::random_conv(one(4, 6), rng));
  run.add("r2", std::make_shared<lab::ReLU>());
  run.add("g3", grouped(6, 3, 3, false));
  run.add("g4", grouped(3, 6, 3));  // two outputs per group: not a step (no ReLU: see the test above)
  run.add("g5", grouped(6, 2, 2));
  run.add("r5", std::make_shared<lab::ReLU>());
  lab::Network patch({3, 50, 38});
  patch.add("p0", testnets::random_conv(lab::Conv2dParams{.in_channels = 3, .out_channels = 8, .kernel_h = 2,
                                                          .kernel_w = 2, .stride_h = 2, .stride_w = 2},
                                        rng));
  patch.add("q0", std::make_shared<lab::ReLU>());
  patch.add("g1", grouped(8, 2, 2));
  patch.add("q1", std::make_shared<lab::ReLU>());
  patch.add("g2", grouped(2, 2, 2));
  patch.add("q2", std::make_shared<lab::ReLU>());
  REQUIRE(lab::is_run_pointwise(run.layer(2)));
  REQUIRE_FALSE(lab::is_pointwise(run.layer(2)));
  REQUIRE_FALSE(lab::is_run_pointwise(run.layer(7)));
  REQUIRE(lab::is_run_pointwise(run.layer(8)));
  REQUIRE(lab::is_run_pointwise(patch.layer(4)));
  for (const lab::Network* n : {&run, &patch}) {
    for (const int64_t batch : {1, 5}) {
      for (const bool special : {false, true}) {
        CAPTURE(n == &run);
        CAPTURE(batch);
        CAPTURE(special);
        lab::Shape shape{batch};
        shape.insert(shape.end(), n->input_shape().begin(), n->input_shape().end());
        Tensor x = testnets::random_tensor(shape, rng, -3.0f, 3.0f);
        x[7] = -0.0f;
        for (int64_t i = 40; special && i < x.numel(); i += 211) {
          const float inf = std::numeric_limits<float>::infinity();
          x[i] = i % 3 == 0 ? inf : i % 3 == 1 ? -inf : std::numeric_limits<float>::quiet_NaN();
        }
        const lab::ForwardPath saved = lab::forward_path();
        lab::set_forward_path(testnets::kPlainPath);
        const lab::Trace plain = n->trace(x);
        lab::set_forward_path(saved);
        testnets::for_each_forward_path([&] {
          // ReLU post-ops without tiles may give zeros of the other sign (the test above).
          if (!lab::forward_path().tiles && lab::forward_path().relu_post_op) return;
          for (size_t end = 1; end <= n->size(); ++end) {
            CAPTURE(end);
            const Tensor y = n->forward_range(0, end, x);
            CHECK(same_bytes(y, plain.acts[end]));
          }
        });
      }
    }
  }
}

namespace {

// The shape of a batch of `batch` inputs of `net`.
lab::Shape batch_shape(const lab::Network& net, int64_t batch) {
  lab::Shape shape{batch};
  shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
  return shape;
}

// A convolution with integer weights in [-3, 3] and (if bias) an integer bias in [-2, 2].
std::shared_ptr<lab::Conv2d> integer_conv(lab::Conv2dParams p, std::mt19937& rng, bool bias = true) {
  std::uniform_int_distribution<int> w(-3, 3), c(-2, 2);
  Tensor weight({p.out_channels, p.in_channels / p.groups, p.kernel_h, p.kernel_w});
  for (float& v : weight.values()) v = static_cast<float>(w(rng));
  Tensor b = bias ? Tensor({p.out_channels}) : Tensor();
  for (float& v : b.values()) v = static_cast<float>(c(rng));
  return std::make_shared<lab::Conv2d>(p, std::move(weight), std::move(b));
}

// Patch convolutions (lab/nn/patch_run.h) of 3, 4 and 1 input channels: a 2×3 kernel on 71×58
// (rows and columns left over), then a ReLU, a 1×1 convolution and a ReLU; a 4×4 kernel without
// bias on 4 channels (64 column rows) followed by a 1×1 convolution
// without a ReLU between; a 2×2 kernel followed by nothing pointwise; then on one channel the
// modulo accumulator's 7×7 blocks, down to one pixel per image (one column per tile). `conv`
// makes each convolution.
template <class MakeConv>
std::vector<lab::Network> patch_nets(std::mt19937& rng, const MakeConv& conv) {
  using P = lab::Conv2dParams;
  lab::Network net({3, 71, 58});
  net.add("p0", conv(P{.in_channels = 3, .out_channels = 10, .kernel_h = 2, .kernel_w = 3, .stride_h = 2, .stride_w = 3}, rng, true));
  net.add("r0", std::make_shared<lab::ReLU>());
  net.add("c1", conv(one_by_one(10, 4), rng, true));
  net.add("r1", std::make_shared<lab::ReLU>());
  net.add("p2", conv(P{.in_channels = 4, .out_channels = 7, .kernel_h = 4, .kernel_w = 4, .stride_h = 4, .stride_w = 4}, rng, false));
  net.add("c3", conv(one_by_one(7, 3), rng, true));
  net.add("r3", std::make_shared<lab::ReLU>());
  net.add("p4", conv(P{.in_channels = 3, .out_channels = 5, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2}, rng, true));
  lab::Network gray({1, 49, 53});
  gray.add("p0", conv(P{.in_channels = 1, .out_channels = 8, .kernel_h = 7, .kernel_w = 7, .stride_h = 7, .stride_w = 7}, rng, false));
  gray.add("r0", std::make_shared<lab::ReLU>());
  gray.add("c1", conv(one_by_one(8, 1), rng, false));
  gray.add("r1", std::make_shared<lab::ReLU>());
  gray.add("p2", conv(P{.in_channels = 1, .out_channels = 8, .kernel_h = 7, .kernel_w = 7, .stride_h = 7, .stride_w = 7}, rng, true));
  gray.add("r2", std::make_shared<lab::ReLU>());
  gray.add("c3", conv(one_by_one(8, 1), rng, true));
  return {net, gray};
}

// Patch convolutions of several groups (lab::is_forward_patch_conv), as multi-color-sum's
// accumulator blocks: 2×2 patches of 2 channels to 8 per group (blocks of 6 and 2 rows in each
// group's product), a grouped 1×1 convolution of one output per group, 3×3 patches of one channel
// to 3 per group, 2×2 patches of 3 channels to 1 per group; on 38×45 (a row and a column left over).
template <class MakeConv>
lab::Network grouped_patch_net(std::mt19937& rng, const MakeConv& conv) {
  using P = lab::Conv2dParams;
  lab::Network net({4, 38, 45});
  net.add("p0", conv(P{.in_channels = 4, .out_channels = 16, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .groups = 2}, rng, true));
  net.add("r0", std::make_shared<lab::ReLU>());
  net.add("g1", conv(P{.in_channels = 16, .out_channels = 4, .groups = 4}, rng, true));
  net.add("r1", std::make_shared<lab::ReLU>());
  net.add("p2", conv(P{.in_channels = 4, .out_channels = 12, .kernel_h = 3, .kernel_w = 3, .stride_h = 3, .stride_w = 3, .groups = 4}, rng, false));
  net.add("r2", std::make_shared<lab::ReLU>());
  net.add("p3", conv(P{.in_channels = 12, .out_channels = 4, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .groups = 4}, rng, true));
  return net;
}

}  // namespace

// A deep patch convolution (more than 64 column rows, lab::chain_gemm) by its definition
// (lab/nn/patch_run.h): each output element is acc = +0, then acc = fma(weight, window value, acc)
// over the window in the weights' order (c, kh, kw), then acc + bias; with weights w, the bias if
// use_bias.
Tensor patch_by_definition(const lab::Conv2d& conv, const lab::Weights& w, const Tensor& x, bool use_bias) {
  const lab::Conv2dParams& p = conv.params();
  Tensor y(conv.output_shape(x.shape()));
  const int64_t h = x.dim(2), wd = x.dim(3), oh = y.dim(2), ow = y.dim(3);
  for (int64_t n = 0; n < x.dim(0); ++n)
    for (int64_t o = 0; o < p.out_channels; ++o)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          float acc = 0.0f;
          for (int64_t c = 0; c < p.in_channels; ++c)
            for (int64_t i = 0; i < p.kernel_h; ++i)
              for (int64_t j = 0; j < p.kernel_w; ++j)
                acc = std::fma(w.weight[((o * p.in_channels + c) * p.kernel_h + i) * p.kernel_w + j],
                               x[((n * p.in_channels + c) * h + oy * p.kernel_h + i) * wd + ox * p.kernel_w + j], acc);
          if (use_bias && !w.bias.empty()) acc = acc + w.bias[o];
          y[((n * p.out_channels + o) * oh + oy) * ow + ox] = acc;
        }
  return y;
}

// Rows [y0, y1) and columns [x0, x1) of every channel of an N×C×H×W tensor.
Tensor crop(const Tensor& x, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  Tensor out({x.dim(0), x.dim(1), y1 - y0, x1 - x0});
  for (int64_t nc = 0; nc < x.dim(0) * x.dim(1); ++nc)
    for (int64_t i = y0; i < y1; ++i)
      std::memcpy(out.data() + (nc * (y1 - y0) + i - y0) * (x1 - x0), x.data() + (nc * x.dim(2) + i) * x.dim(3) + x0,
                  sizeof(float) * (x1 - x0));
  return out;
}

TEST_CASE("patch convolutions: each pixel computed alike wherever it sits, in every path and batch") {
  std::mt19937 rng(13);
  using P = lab::Conv2dParams;
  const lab::ForwardPath saved = lab::forward_path();
  // The layers taken as patch convolutions (and not a 1×1 one or a padded one; 130 column rows
  // are one).
  const auto random = [](P p, std::mt19937& r, bool bias) { return testnets::random_conv(p, r, bias); };
  std::vector<lab::Network> floats = patch_nets(rng, random);
  floats.push_back(grouped_patch_net(rng, random));
  const lab::Network& net = floats[0];
  const lab::Network& grouped = floats[2];
  for (const size_t i : {0, 4, 6}) {
    CAPTURE(i);
    const lab::Shape in = i == 0 ? lab::Shape{1, 4, 38, 45} : grouped.shape_after(i - 1);
    CHECK(lab::is_forward_patch_conv(grouped.layer(i), in));
    CHECK_FALSE(lab::is_patch_conv(grouped.layer(i), in));
  }
  CHECK_FALSE(lab::is_forward_patch_conv(grouped.layer(2), grouped.shape_after(1)));
  CHECK(lab::is_patch_conv(net.layer(0), {1, 3, 71, 58}));
  CHECK(lab::is_patch_conv(net.layer(4), net.shape_after(3)));
  CHECK(lab::is_patch_conv(net.layer(7), net.shape_after(6)));
  CHECK(lab::is_patch_conv(floats[1].layer(4), floats[1].shape_after(3)));
  CHECK_FALSE(lab::is_patch_conv(net.layer(2), net.shape_after(1)));
  CHECK_FALSE(lab::is_patch_conv(*testnets::random_conv(P{.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1}, rng), {1, 1, 8, 8}));
  CHECK(lab::is_patch_conv(*testnets::random_conv(P{.in_channels = 65, .kernel_h = 1, .kernel_w = 2, .stride_h = 1, .stride_w = 2}, rng), {1, 65, 8, 8}));
  // Integer weights, biases and inputs: every partial sum is exact, so the values are those of
  // oneDNN's gemm convolution (lab::set_onednn_forward(true)): every activation, from the input and
  // from every cut, at an odd batch, on the tiles' path (patch runs) and the plain one, at 1 and
  // 2 threads, with and without sub-batches (a wrong window, weight or channel order would change
  // values).
  std::vector<lab::Network> integers = patch_nets(rng, integer_conv);
  integers.push_back(grouped_patch_net(rng, integer_conv));
  for (const lab::Network& n : integers) {
    Tensor x(batch_shape(n, 5));
    std::uniform_int_distribution<int> pixel(-4, 4);
    for (float& v : x.values()) v = static_cast<float>(pixel(rng));
    lab::set_forward_path(testnets::kPlainPath);
    lab::set_onednn_forward(true);
    const lab::Trace onednn = n.trace(x);
    lab::set_onednn_forward(false);
    int64_t compared = 0;
    for (const lab::ForwardPath path : {lab::ForwardPath{.tiles = true}, testnets::kPlainPath}) {
      lab::set_forward_path(path);
      at_threads_and_budgets([&] {
        for (size_t from = 0; from < n.size(); ++from)
          for (size_t end = from + 1; end <= n.size(); ++end) {
            CAPTURE(from);
            CAPTURE(end);
            CHECK(same_bytes(n.forward_range(from, end, onednn.acts[from]), onednn.acts[end]));
            ++compared;
          }
      });
    }
    CHECK(compared == 8 * static_cast<int64_t>(n.size() * (n.size() + 1) / 2));
  }
  // A deep patch convolution (130 column rows: lab::chain_gemm) on random real data with signed
  // zeros: the bytes of its definition, with its own and other weights, with and without the bias.
  {
    const auto deep = testnets::random_conv(P{.in_channels = 65, .out_channels = 9, .kernel_h = 1, .kernel_w = 2, .stride_h = 1, .stride_w = 2}, rng);
    Tensor x = testnets::random_tensor({3, 65, 5, 38}, rng, -3.0f, 3.0f);
    x[3] = -0.0f;
    const lab::Weights other{testnets::random_tensor(deep->weights().weight.shape(), rng, -1.0f, 1.0f),
                             testnets::random_tensor({9}, rng, -1.0f, 1.0f)};
    at_threads_and_budgets([&] {
      CHECK(same_bytes(deep->forward(x), patch_by_definition(*deep, deep->weights(), x, true)));
      for (const bool bias : {true, false})
        CHECK(same_bytes(deep->apply(other, x, bias), patch_by_definition(*deep, other, x, bias)));
    });
  }
  // Random real data with signed zeros: every patch convolution computes each output pixel alike
  // wherever it sits: on a crop of its input (a window of whole kernels, as the incremental
  // engine's) the output is the same bytes as that window of the whole output, also with other
  // weights with and without the bias (the LRP rules' z = W'x); the forward of the tiles (patch
  // runs) to every layer and the trace give the same bytes (not from every cut: a lone 1×1
  // convolution on one-pixel maps, oneDNN's, differs in the last bits from the same layer in a
  // tile run, found here, not a patch convolution); an image gives the same bytes alone
  // and in a batch of 5, at every activation; at 1 and 2 threads, with and without sub-batches.
  for (const lab::Network& n : floats) {
    Tensor x = testnets::random_tensor(batch_shape(n, 5), rng, -3.0f, 3.0f);
    x[7] = 0.0f;
    x[8] = -0.0f;
    for (const lab::ForwardPath path : {lab::ForwardPath{.tiles = true}, testnets::kPlainPath}) {
      lab::set_forward_path(path);
      at_threads_and_budgets([&] {
        const lab::Trace trace = n.trace(x);
        int64_t patches = 0;
        for (size_t i = 0; i < n.size(); ++i) {
          CAPTURE(i);
          if (!lab::is_forward_patch_conv(n.layer(i), trace.acts[i].shape())) continue;
          ++patches;
          const auto& conv = static_cast<const lab::Conv2d&>(n.layer(i));
          const lab::Conv2dParams& p = conv.params();
          const Tensor& in = trace.acts[i];
          const Tensor& out = trace.acts[i + 1];
          // Output rows [oy0, oh) and columns [ox0, ox1): all but the first row and column and
          // the last column where there are more than 2.
          const int64_t oh = out.dim(2), ow = out.dim(3);
          const int64_t oy0 = oh > 2 ? 1 : 0, ox0 = ow > 2 ? 1 : 0, ox1 = ow > 2 ? ow - 1 : ow;
          const Tensor part = crop(in, oy0 * p.kernel_h, oh * p.kernel_h, ox0 * p.kernel_w, ox1 * p.kernel_w);
          CHECK(same_bytes(conv.forward(part), crop(out, oy0, oh, ox0, ox1)));
          const lab::Weights other{testnets::random_tensor(conv.weights().weight.shape(), rng, -1.0f, 1.0f),
                                   testnets::random_tensor({p.out_channels}, rng, -1.0f, 1.0f)};
          for (const bool bias : {true, false})
            CHECK(same_bytes(conv.apply(other, part, bias), crop(conv.apply(other, in, bias), oy0, oh, ox0, ox1)));
        }
        CHECK(patches >= 2);
        for (size_t end = 1; end <= n.size(); ++end) {
          CAPTURE(end);
          CHECK(same_bytes(n.forward_range(0, end, trace.acts[0]), trace.acts[end]));
        }
        for (int64_t i = 0; i < 5; ++i) {
          CAPTURE(i);
          const lab::Trace alone = n.trace(x.slice(i, i + 1));
          for (size_t a = 1; a < trace.acts.size(); ++a) {
            CAPTURE(a);
            const int64_t per = trace.acts[a].sample_numel();
            CHECK(std::memcmp(alone.acts[a].data(), trace.acts[a].sample(i), sizeof(float) * per) == 0);
          }
        }
      });
    }
  }
  lab::set_forward_path(saved);
}

TEST_CASE("patch convolutions' transposed products: the bytes of oneDNN's gemm backward-data") {
  std::mt19937 rng(29);
  using P = lab::Conv2dParams;
  std::vector<lab::Network> nets = patch_nets(rng, [](P p, std::mt19937& r, bool bias) {
    return testnets::random_conv(p, r, bias);
  });
  // 130 column rows (beyond pointwise_gemm's kernel: dnnl_sgemm), and kernels that leave pixels
  // no window covers (71 × 58 under 2 × 3, 49 × 53 under 7 × 7, 9 × 11 under 4 × 2).
  lab::Network deep({65, 5, 38});
  deep.add("p", testnets::random_conv(P{.in_channels = 65, .out_channels = 9, .kernel_h = 1, .kernel_w = 2, .stride_h = 1, .stride_w = 2}, rng));
  lab::Network odd({2, 9, 11});
  odd.add("p", testnets::random_conv(P{.in_channels = 2, .out_channels = 33, .kernel_h = 4, .kernel_w = 2, .stride_h = 4, .stride_w = 2}, rng));
  nets.push_back(deep);
  nets.push_back(odd);
  // Outputs of a multiple of 16 pixels (112 × 113, 160 × 160) and products that split by columns
  // alike (24 and 4 column rows): by tiles of several per image where L2 is 1 MiB.
  for (const auto& [c, oc, h, w] : std::vector<std::array<int64_t, 4>>{{6, 32, 225, 226}, {1, 8, 321, 320}}) {
    lab::Network tiled({c, h, w});
    tiled.add("p", testnets::random_conv(P{.in_channels = c, .out_channels = oc, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2}, rng));
    nets.push_back(tiled);
  }
  int64_t compared = 0;
  for (const lab::Network& n : nets)
    for (const int64_t batch : {1, 3}) {
      std::vector<lab::Shape> shapes{batch_shape(n, batch)};
      for (size_t i = 0; i < n.size(); ++i) shapes.push_back(n.layer(i).output_shape(shapes.back()));
      for (size_t i = 0; i < n.size(); ++i) {
        if (!lab::is_patch_conv(n.layer(i), shapes[i])) continue;
        CAPTURE(i);
        CAPTURE(batch);
        const auto& conv = static_cast<const lab::Conv2d&>(n.layer(i));
        // A signal with signed zeros, ∞ and NaN among its values, and columns of zeros; the
        // layer's weights and others (a rule's).
        Tensor s = testnets::random_tensor(shapes[i + 1], rng, -3.0f, 3.0f);
        std::uniform_int_distribution<int64_t> at(0, s.numel() - 1);
        for (int k = 0; k < 6; ++k) s[at(rng)] = k % 2 ? -0.0f : 0.0f;
        if (s.numel() > 40) {
          s[at(rng)] = std::numeric_limits<float>::infinity();
          s[at(rng)] = std::numeric_limits<float>::quiet_NaN();
        }
        for (int64_t p = 0; p + 1 < s.numel(); p += 17) s[p] = -0.0f;
        const lab::Weights other{testnets::random_tensor(conv.weights().weight.shape(), rng, -1.0f, 1.0f), Tensor()};
        // Into a buffer of other values (the pixels no window covers must be written too).
        const auto transposed = [&](const lab::Weights& w) {
          Tensor c(shapes[i], 7.0f);
          lab::Pass pass;
          conv.add_apply_transpose(pass, w, shapes[i], s.data(), c.data());
          pass.run();
          return c;
        };
        // oneDNN's at one thread: at two, its gemm convolution splits an image's pixels between
        // the threads, and where a split is not a multiple of 16 pixels its sgemm sums them in
        // another order (6→32 channels at 225 × 226: 286 of 6 × 225 × 226 values differ).
        for (const lab::Weights* w : {&conv.weights(), &other}) {
          const int threads = lab::Runtime::get().threads();
          lab::Runtime::get().set_threads(1);
          lab::set_onednn_forward(true);
          const Tensor want = transposed(*w);
          lab::set_onednn_forward(false);
          lab::Runtime::get().set_threads(threads);
          at_threads_and_budgets([&] { CHECK(same_bytes(transposed(*w), want)); });
          ++compared;
        }
      }
    }
  CHECK(compared == 2 * 2 * 9);
}

TEST_CASE("tiled sequences: one parallel region per forward gives the bytes of one run at a time") {
  std::mt19937 rng(17);
  using P = lab::Conv2dParams;
  const lab::ForwardPath saved = lab::forward_path();
  std::vector<lab::Network> nets = patch_nets(rng, [](P p, std::mt19937& r, bool bias) {
    return testnets::random_conv(p, r, bias);
  });
  // A pointwise run, then a patch run: a sequence of both kinds, 8 channels into the patch (two
  // rows below the kernel's 6) and one out of a 1×1 convolution (a product of one row).
  lab::Network mixed({3, 45, 38});
  mixed.add("c0", testnets::random_conv(one_by_one(3, 6), rng));
  mixed.add("r0", std::make_shared<lab::ReLU>());
  mixed.add("c1", testnets::random_conv(one_by_one(6, 8), rng));
  mixed.add("r1", std::make_shared<lab::ReLU>());
  mixed.add("p2", testnets::random_conv(P{.in_channels = 8, .out_channels = 8, .kernel_h = 3, .kernel_w = 2, .stride_h = 3, .stride_w = 2}, rng));
  mixed.add("r2", std::make_shared<lab::ReLU>());
  mixed.add("c3", testnets::random_conv(one_by_one(8, 1), rng));
  mixed.add("r3", std::make_shared<lab::ReLU>());
  nets.push_back(mixed);
  lab::set_forward_path(lab::ForwardPath{.tiles = true});
  int64_t compared = 0;
  for (const lab::Network& n : nets) {
    // 9 and 16 images: whole images per thread (at least 4 per thread); 1 and 5 at 2 threads: the
    // runs in turn, their tiles over the threads.
    for (const int64_t batch : {1, 5, 9, 16}) {
      CAPTURE(batch);
      Tensor x = testnets::random_tensor(batch_shape(n, batch), rng, -3.0f, 3.0f);
      x[7] = 0.0f;
      x[8] = -0.0f;
      // The reference: one region per run (and per sub-batch), dnnl_sgemm on the products' edges.
      lab::set_tiled_sequences(false);
      lab::set_pointwise_edges(false);
      const lab::Trace trace = n.trace(x);
      std::vector<std::vector<Tensor>> want(n.size());
      for (size_t from = 0; from < n.size(); ++from)
        for (size_t end = from + 1; end <= n.size(); ++end) want[from].push_back(n.forward_range(from, end, trace.acts[from]));
      lab::set_tiled_sequences(true);
      lab::set_pointwise_edges(true);
      at_threads_and_budgets([&] {
        for (size_t from = 0; from < n.size(); ++from)
          for (size_t end = from + 1; end <= n.size(); ++end) {
            CAPTURE(from);
            CAPTURE(end);
            CHECK(same_bytes(n.forward_range(from, end, trace.acts[from]), want[from][end - from - 1]));
            ++compared;
          }
        // Each image alone: the bytes of its slice of the batch.
        const Tensor all = n.forward(x);
        for (int64_t i = 0; i < batch; ++i) {
          CAPTURE(i);
          const Tensor alone = n.forward(x.slice(i, i + 1));
          CHECK(std::memcmp(alone.data(), all.sample(i), sizeof(float) * alone.numel()) == 0);
        }
      });
    }
  }
  CHECK(compared > 1000);
  lab::set_forward_path(saved);
}

TEST_CASE("backprop tiles: trace and backward give the bytes of the layer-by-layer passes") {
  // The pointwise net, and a chain whose grouped 1×1 convolution (per pixel, but not a pointwise
  // layer) cuts a run; the gradient, guided backprop (a clip at every ReLU: runs of a convolution
  // and the ReLU after it) and DeepLIFT (rescale at the ReLUs: no runs), from the output to the
  // input and to the output of every layer; signed zeros in the input, and the same with ±∞ and
  // NaN (NaN inputs to ReLUs, which pass the signal in oneDNN's backward); 1 and 2 threads, with
  // and without sub-batches; the tiled backward on the tiled trace and on the plain one.
  std::mt19937 rng(23);
  const std::vector<lab::Network> nets = tile_chains(rng);
  const lab::ForwardPath saved = lab::forward_path();
  const auto same = same_bytes;
  int64_t compared = 0;
  for (const lab::Network& net : nets) for (const bool special : {false, true}) {
    CAPTURE(net.input_shape()[0]);
    CAPTURE(special);
    Tensor x = signed_zero_batch(net, rng);
    for (int64_t i = 40; special && i < x.numel(); i += 211) {
      const float inf = std::numeric_limits<float>::infinity();
      x[i] = i % 3 == 0 ? inf : i % 3 == 1 ? -inf : std::numeric_limits<float>::quiet_NaN();
    }
    const Tensor reference_x = testnets::random_tensor(x.shape(), rng, -1.0f, 1.0f);
    const Tensor seed = testnets::random_tensor(net.output_shape(4), rng);
    std::vector<lab::PreparedRules> rules;
    for (const char* name : {"gradient", "guided-backprop", "deeplift-rescale", "deconvnet"})
      rules.push_back(lab::prepare(net, lab::make_composite(name)));
    // Everything on the layer-by-layer passes first.
    lab::set_forward_path(lab::ForwardPath{.tiles = true, .backprop_tiles = false});
    const lab::Trace plain = net.trace(x);
    const lab::Trace plain_ref = net.trace(reference_x);
    const std::vector<std::vector<Tensor>> want = backward_to_every_layer(net, plain, seed, rules, plain_ref);
    lab::set_forward_path(lab::ForwardPath{.tiles = true, .backprop_tiles = true});
    at_threads_and_budgets([&] {
      const lab::Trace trace = net.trace(x);
      const lab::Trace ref = net.trace(reference_x);
      for (size_t a = 0; a < trace.acts.size(); ++a) {
        CAPTURE(a);
        REQUIRE(same(trace.acts[a], plain.acts[a]));
        REQUIRE(same(ref.acts[a], plain_ref.acts[a]));
      }
      for (size_t r = 0; r < rules.size(); ++r) {
        CAPTURE(r);
        CHECK(same(net.backward(trace, seed, rules[r], std::nullopt, &ref), want[r][0]));
        CHECK(same(net.backward(plain, seed, rules[r], std::nullopt, &plain_ref), want[r][0]));
        for (size_t l = 0; l + 1 < net.size(); ++l) {
          CAPTURE(l);
          CHECK(same(net.backward(trace, seed, rules[r], l, &ref), want[r][l + 1]));
        }
        ++compared;
      }
    });
  }
  lab::set_forward_path(saved);
  CHECK(compared == 3 * 2 * 2 * 2 * 4);
}

TEST_CASE("gradient traces: the inner activations of pointwise runs left out, the backward's bytes unchanged") {
  // trace_for_gradient omits exactly the outputs of the layers inside a pointwise run (not its
  // last), except the layers it is told to keep; every other activation is the full trace's bytes.
  // The gradient (tile by tile, from the ReLUs' signs), guided backprop and DeepLIFT (whose rules
  // cut the runs: the omitted activations they read are recomputed) to the input and to every
  // layer's output (that layer kept, and not) give the full trace's bytes, as does deconvnet
  // (which reads no activation); 1 and 2 threads, with and without sub-batches.
  std::mt19937 rng(29);
  struct Case {
    lab::Network net;
    std::vector<size_t> omitted;  // acts indices
    // Whether the trace without backprop tiles is the same bytes: not on one channel, whose last
    // 1×1 convolution on one-pixel maps is oneDNN's there, other bits than in a tile run ("patch
    // convolutions: each pixel computed alike ...").
    bool untiled_same = true;
  };
  // pointwise_net: runs r0 c0 r1 r2 c1 c2 r3 (layers 0-6) and c4 r4 (8-9); grouped_net: c0 r0
  // (0-1) and r1 c2 r2 c3 (3-6); summed_net: c0 r0 g1 r1 c2 r2 g3 (0-6); patch_nets, patch runs (a patch convolution first): p0 r0 c1 r1
  // (0-3) and p2 c3 r3 (4-6), its last patch convolution alone; and p0 r0 c1 r1 (0-3) and p2 r2
  // c3 (4-6) on one channel.
  std::vector<lab::Network> patches = patch_nets(rng, [](lab::Conv2dParams p, std::mt19937& r, bool bias) {
    return testnets::random_conv(p, r, bias);
  });
  // joined: patch runs whose outputs' pixels are multiples of 16 (80 × 65 and 40 × 32), so that
  // the backward takes each patch convolution into the run above it (lab::patch_backward_joins;
  // the first in two tiles where L2 is 1 MiB), on inputs whose last row or column no window
  // covers: p0 r0 c1 r1 (0-3), p2 r2 c3 r3 (4-7).
  lab::Network joined({2, 161, 131});
  joined.add("p0", testnets::random_conv(lab::Conv2dParams{.in_channels = 2, .out_channels = 6, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2}, rng));
  joined.add("r0", std::make_shared<lab::ReLU>());
  joined.add("c1", testnets::random_conv(one_by_one(6, 3), rng));
  joined.add("r1", std::make_shared<lab::ReLU>());
  joined.add("p2", testnets::random_conv(lab::Conv2dParams{.in_channels = 3, .out_channels = 8, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2}, rng));
  joined.add("r2", std::make_shared<lab::ReLU>());
  joined.add("c3", testnets::random_conv(one_by_one(8, 1), rng));
  joined.add("r3", std::make_shared<lab::ReLU>());
  CHECK(lab::patch_backward_joins(static_cast<const lab::Conv2d&>(joined.layer(0)), {1, 2, 161, 131}));
  CHECK(lab::patch_backward_joins(static_cast<const lab::Conv2d&>(joined.layer(4)), joined.shape_after(3)));
  CHECK_FALSE(lab::patch_backward_joins(static_cast<const lab::Conv2d&>(patches[0].layer(0)), {1, 3, 71, 58}));
  std::vector<Case> cases{{pointwise_net(rng), {1, 2, 3, 4, 5, 6, 9}},
                          {grouped_net(rng), {1, 4, 5, 6}},
                          {summed_net(rng), {1, 2, 3, 4, 5, 6}},
                          {patches[0], {1, 2, 3, 5, 6}},
                          {patches[1], {1, 2, 3, 5, 6}, false},
                          {joined, {1, 2, 3, 5, 6, 7}}};
  const lab::ForwardPath saved = lab::forward_path();
  lab::set_forward_path(lab::ForwardPath{});
  const auto same = same_bytes;
  int64_t compared = 0;
  for (const Case& c : cases) {
    const lab::Network& net = c.net;
    CAPTURE(net.input_shape()[0]);
    const Tensor x = signed_zero_batch(net, rng);
    const lab::Trace reference = net.trace(testnets::random_tensor(x.shape(), rng, -1.0f, 1.0f));
    const Tensor seed = testnets::random_tensor(net.output_shape(4), rng);
    std::vector<lab::PreparedRules> rules;
    for (const char* name : {"gradient", "guided-backprop", "deeplift-rescale", "deconvnet"})
      rules.push_back(lab::prepare(net, lab::make_composite(name)));
    const lab::Trace full = net.trace(x);
    const std::vector<std::vector<Tensor>> want = backward_to_every_layer(net, full, seed, rules, reference);
    at_threads_and_budgets([&] {
      const lab::Trace lean = lab::trace_for_gradient(net, x);
      for (size_t a = 0; a < lean.acts.size(); ++a) {
        CAPTURE(a);
        if (std::find(c.omitted.begin(), c.omitted.end(), a) != c.omitted.end()) {
          CHECK(lean.acts[a].empty());
          // A ReLU reading it keeps its signs: bit p % 8 of byte p / 8 of each (n, c) row, x > 0.
          if (a < net.size() && net.layer(a).kind() == lab::LayerKind::kReLU) {
            const Tensor& v = full.acts[a];
            const int64_t pixels = v.dim(2) * v.dim(3), stride = lab::sign_row_bytes(pixels);
            REQUIRE(static_cast<int64_t>(lean.workspaces[a].size()) * 4 >= v.dim(0) * v.dim(1) * stride);
            const auto* bytes = reinterpret_cast<const uint8_t*>(lean.workspaces[a].data());
            int64_t wrong = 0;
            for (int64_t row = 0; row < v.dim(0) * v.dim(1); ++row)
              for (int64_t p = 0; p < 8 * stride; ++p)  // the bits past the row's pixels 0
                wrong += ((bytes[row * stride + p / 8] >> (p % 8)) & 1) !=
                         (p < pixels && v[row * pixels + p] > 0.0f ? 1 : 0);
            CHECK(wrong == 0);
          }
        } else {
          REQUIRE(same(lean.acts[a], full.acts[a]));
        }
      }
      for (size_t r = 0; r < rules.size(); ++r) {
        CAPTURE(r);
        CHECK(same(net.backward(lean, seed, rules[r], std::nullopt, &reference), want[r][0]));
        for (size_t l = 0; l + 1 < net.size(); ++l) {
          CAPTURE(l);
          CHECK(same(net.backward(lean, seed, rules[r], l, &reference), want[r][l + 1]));
        }
        ++compared;
      }
      // A kept layer inside a run: its output is there, the run's other inner ones are not.
      for (size_t l = 0; l + 1 < net.size(); ++l) {
        CAPTURE(l);
        const lab::Trace kept = lab::trace_for_gradient(net, x, {l});
        for (size_t a = 0; a < kept.acts.size(); ++a) {
          CAPTURE(a);
          const bool omitted = a != l + 1 && std::find(c.omitted.begin(), c.omitted.end(), a) != c.omitted.end();
          if (omitted)
            CHECK(kept.acts[a].empty());
          else
            REQUIRE(same(kept.acts[a], full.acts[a]));
        }
        CHECK(same(net.gradient(kept, seed, l), want[0][l + 1]));
        CHECK(same(net.gradient(kept, seed), want[0][0]));
      }
    });
    // Off (set_gradient_traces_lean(false)) or without backprop tiles: the full trace.
    lab::set_gradient_traces_lean(false);
    const lab::Trace off = lab::trace_for_gradient(net, x);
    lab::set_gradient_traces_lean(true);
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = false});
    const lab::Trace untiled = lab::trace_for_gradient(net, x);
    lab::set_forward_path(lab::ForwardPath{});
    for (size_t a = 0; a < full.acts.size(); ++a) {
      CAPTURE(a);
      CHECK(same(off.acts[a], full.acts[a]));
      if (c.untiled_same) CHECK(same(untiled.acts[a], full.acts[a]));
    }
  }
  lab::set_forward_path(saved);
  CHECK(compared == 6 * 2 * 2 * 4);
}

namespace {

// The backward of a chain under the gradient, guided and deconv rules one layer at a time, as
// Network::backward carried the guided and deconv rules before they were steps of its tiled runs:
// the guided rule clips the signal (std::max(v, 0.0f)), then the layer's backward-data (a ReLU:
// oneDNN's backward-data); the deconv rule clips, and nothing more; the gradient: backward-data.
Tensor clip_then_backward_data(const lab::Network& net, const lab::Trace& full, Tensor s,
                               const lab::PreparedRules& rules, size_t stop) {
  for (size_t i = net.size(); i-- > stop;) {
    const lab::RuleKind kind = rules.layers[i].rule.kind;
    REQUIRE((kind == lab::RuleKind::kGradient || kind == lab::RuleKind::kGuided || kind == lab::RuleKind::kDeconv));
    if (kind != lab::RuleKind::kGradient)
      for (float& v : s.values()) v = std::max(v, 0.0f);
    if (kind != lab::RuleKind::kDeconv) s = net.layer(i).backward_data(full.acts[i], full.acts[i + 1], s);
  }
  return s;
}

// A chain that is one pointwise run ending in a ReLU, so that a seed's −0 meets the guided and
// deconv clips directly (from the trace's signs, in AVX2 vectors and a scalar tail of 9×11 pixels).
lab::Network run_net(std::mt19937& rng) {
  lab::Network net({2, 9, 11});
  net.add("c0", testnets::random_conv(one_by_one(2, 5), rng));
  net.add("r0", std::make_shared<lab::ReLU>());
  net.add("c1", testnets::random_conv(one_by_one(5, 4), rng));
  net.add("r1", std::make_shared<lab::ReLU>());
  return net;
}

// Checks that each rule's backward of `seed`, to the input and to the output of every layer but the
// last, on trace_for_gradient's trace of x and on the full one, is the bytes of want[r] (as
// backward_to_every_layer lays them out); returns the number of (trace, rules) pairs compared.
int64_t check_on_both_traces(const lab::Network& net, const Tensor& x, const Tensor& seed,
                             const std::vector<lab::PreparedRules>& rules, const std::vector<std::vector<Tensor>>& want) {
  int64_t compared = 0;
  for (const bool lean : {true, false}) {
    CAPTURE(lean);
    const lab::Trace trace = lean ? lab::trace_for_gradient(net, x) : net.trace(x);
    for (size_t r = 0; r < rules.size(); ++r) {
      CAPTURE(r);
      CHECK(same_bytes(net.backward(trace, seed, rules[r]), want[r][0]));
      for (size_t l = 0; l + 1 < net.size(); ++l) {
        CAPTURE(l);
        CHECK(same_bytes(net.backward(trace, seed, rules[r], l), want[r][l + 1]));
      }
      ++compared;
    }
  }
  return compared;
}

}  // namespace

TEST_CASE("guided and deconv rules in the tiled backward: the bytes of the clip and backward-data layer by layer") {
  // Network::backward carries a guided or deconv ReLU as a step of its chain (inside a pointwise
  // run, from the trace's values or the gradient trace's signs; a lone ReLU, such as r5 after a
  // Linear, as a run of one ReLU): each map, to the input and to the output of every layer, is
  // the bytes of clipping the whole signal and running each layer's backward-data
  // (clip_then_backward_data), on the full trace and on trace_for_gradient's, with backprop tiles
  // and without, at 1 and 2 threads, with and without sub-batches. The seed holds +0, −0 and
  // negative values and a NaN (the clip keeps −0 and NaN: std::max(v, 0.0f) returns v unless
  // v < 0), which run_net's last ReLU clips (a NaN then reaches the input; a −0 only to_layer).
  std::mt19937 rng(31);
  std::vector<lab::Network> nets = tile_chains(rng);
  nets.push_back(run_net(rng));
  const lab::ForwardPath saved = lab::forward_path();
  int64_t compared = 0;
  for (const lab::Network& net : nets) {
    CAPTURE(net.input_shape()[0]);
    const Tensor x = signed_zero_batch(net, rng);
    Tensor seed = testnets::random_tensor(net.output_shape(4), rng);
    for (int64_t i = 0; i < seed.numel(); i += 3) seed[i] = i % 2 == 0 ? -0.0f : 0.0f;
    seed[1] = -std::abs(seed[1]) - 0.5f;
    seed[4] = std::numeric_limits<float>::quiet_NaN();
    std::vector<lab::PreparedRules> rules;
    for (const char* name : {"guided-backprop", "deconvnet", "gradient"})
      rules.push_back(lab::prepare(net, lab::make_composite(name)));
    CHECK(lab::reads_only_signs(rules[0]));
    CHECK(lab::reads_only_signs(rules[1]));
    lab::set_forward_path(lab::ForwardPath{});
    const lab::Trace full = net.trace(x);
    std::vector<std::vector<Tensor>> want(rules.size());
    for (size_t r = 0; r < rules.size(); ++r)
      for (size_t stop = 0; stop < net.size(); ++stop) want[r].push_back(clip_then_backward_data(net, full, seed, rules[r], stop));
    for (const bool tiles : {true, false}) {
      CAPTURE(tiles);
      lab::set_forward_path(lab::ForwardPath{.backprop_tiles = tiles});
      at_threads_and_budgets([&] {
        compared += check_on_both_traces(net, x, seed, rules, want);
      });
    }
  }
  lab::set_forward_path(saved);
  CHECK(compared == 4 * 2 * 4 * 2 * 3);
  // LRP and rescale read the activations themselves.
  std::mt19937 rng2(5);
  const lab::Network net = grouped_net(rng2);
  for (const char* name : {"lrp-epsilon", "lrp-zplus", "deeplift-rescale"}) {
    CAPTURE(name);
    CHECK_FALSE(lab::reads_only_signs(lab::prepare(net, lab::make_composite(name))));
  }
}

TEST_CASE("LRP-epsilon in the tiled backward: the bytes of lrp() layer by layer") {
  // Network::backward takes LRP-ε through a pointwise run (1×1 convolutions under LRP-ε, ReLUs
  // under the pass rule) tile by tile with backprop tiles (add_lrp_run); every LRP composite's
  // map, to the input and to the output of every layer, is the bytes of the layer-by-layer
  // backward (lrp() per convolution) without them: pointwise_net's run with a leading ReLU, two
  // ReLUs in a row, a convolution without bias, one over 300 channels (sgemm past the kernel's
  // depths), grouped_net's runs cut by a grouped convolution, run_net; the seed with +0 and −0;
  // on the full trace and on trace_for_gradient's (its omitted activations recomputed); 1 and 2
  // threads, with and without sub-batches.
  std::mt19937 rng(37);
  std::vector<lab::Network> nets = tile_chains(rng);
  nets.push_back(run_net(rng));
  const lab::ForwardPath saved = lab::forward_path();
  const std::vector<const char*> names{"lrp-epsilon", "lrp-zplus", "lrp-alpha-beta", "lrp-epsilon-plus"};
  int64_t compared = 0;
  for (const lab::Network& net : nets) {
    CAPTURE(net.input_shape()[0]);
    const Tensor x = signed_zero_batch(net, rng);
    Tensor seed = testnets::random_tensor(net.output_shape(4), rng);
    for (int64_t i = 0; i < seed.numel(); i += 5) seed[i] = i % 2 == 0 ? -0.0f : 0.0f;
    std::vector<lab::PreparedRules> rules;
    for (const char* name : names) rules.push_back(lab::prepare(net, lab::make_composite(name)));
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = false});
    const lab::Trace full = net.trace(x);
    const std::vector<std::vector<Tensor>> want = backward_to_every_layer(net, full, seed, rules, full);
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = true});
    at_threads_and_budgets([&] {
      compared += check_on_both_traces(net, x, seed, rules, want);
    });
  }
  lab::set_forward_path(saved);
  CHECK(compared == 4 * 4 * 2 * 4);
}
