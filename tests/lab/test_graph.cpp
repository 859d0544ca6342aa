// The graph runtime: residual sums, shared modules, max-pool with its workspace, batch-norm,
// concat and multiply; every rule across them, and the batch-norm canonizer.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "lab/core/error.h"
#include "lab/nn/canonize.h"
#include "random_nets.h"

using lab::Tensor;

namespace {

std::shared_ptr<lab::Conv2d> conv3x3(int64_t in, int64_t out, std::mt19937& rng, bool bias) {
  return testnets::random_conv({.in_channels = in, .out_channels = out, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1},
                               rng, bias);
}

/// input 2×6×6 → c1 conv 2→4 → a relu → c2 conv 4→4 → sum = c2 + a → r relu → (c3 conv 4→4 → sum2 = c3 + r)
/// → flatten → fc linear 144→3: two residual blocks y = f(x) + x.
lab::Network residual_net(unsigned seed, bool bias) {
  std::mt19937 rng(seed);
  lab::Network net({2, 6, 6});
  net.add("c1", conv3x3(2, 4, rng, bias));
  net.add("a", std::make_shared<lab::ReLU>());
  net.add("c2", conv3x3(4, 4, rng, bias));
  net.add("sum", std::make_shared<lab::Add>(), {"c2", "a"});
  net.add("r", std::make_shared<lab::ReLU>());
  net.add("c3", conv3x3(4, 4, rng, bias));
  net.add("sum2", std::make_shared<lab::Add>(), {"c3", "r"});
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("fc", testnets::random_linear(144, 3, rng, bias));
  return net;
}

/// input 8 → l1 linear 8→6 → relu R → l2 linear 6→6 → R again (the same object) → l3 linear 6→3.
lab::Network reused_relu_net(unsigned seed, bool shared) {
  std::mt19937 rng(seed);
  lab::Network net({8});
  const auto relu = std::make_shared<lab::ReLU>();
  net.add("l1", testnets::random_linear(8, 6, rng));
  net.add("relu.0", relu);
  net.add("l2", testnets::random_linear(6, 6, rng));
  net.add("relu.1", shared ? relu : std::make_shared<lab::ReLU>());
  net.add("l3", testnets::random_linear(6, 3, rng));
  return net;
}

Tensor one_hot_seed(const Tensor& out, int64_t unit, bool times_output) {
  Tensor s(out.shape(), 0.0f);
  const int64_t k = out.sample_numel();
  for (int64_t n = 0; n < out.batch(); ++n) s[n * k + unit] = times_output ? out[n * k + unit] : 1.0f;
  return s;
}

double sample_sum(const Tensor& t, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < t.sample_numel(); ++j) s += t.sample(n)[j];
  return s;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

}  // namespace

TEST_CASE("a graph is built from named inputs and refuses what does not fit") {
  const lab::Network net = residual_net(1, true);
  CHECK_FALSE(net.is_chain());
  CHECK(net.inputs(3) == std::vector<size_t>{3, 2});  // sum reads c2 (acts[3]) and a (acts[2])
  CHECK(net.shape_after(3, 2) == lab::Shape{2, 4, 6, 6});
  CHECK(net.output_shape(5) == lab::Shape{5, 3});
  CHECK(net.is_cut(0));
  CHECK(net.is_cut(2));   // a: everything after reads only a
  CHECK_FALSE(net.is_cut(3));  // c2's output: sum still reads a
  CHECK(net.is_cut(5));   // r
  lab::Network bad({2, 6, 6});
  bad.add("c", conv3x3(2, 4, *std::make_unique<std::mt19937>(1), true));
  CHECK_THROWS_WITH_AS(bad.add("s", std::make_shared<lab::Add>(), {"c", "input"}), doctest::Contains("one shape"), lab::Error);
  CHECK_THROWS_WITH_AS(bad.add("s", std::make_shared<lab::Add>(), {"c", "nope"}), doctest::Contains("'nope' is not an earlier node"),
                       lab::Error);
  CHECK_THROWS_WITH_AS(bad.add("s", std::make_shared<lab::Add>(), {"c"}), doctest::Contains("takes 2 or more inputs"), lab::Error);
  CHECK_THROWS_AS(bad.add("s", std::make_shared<lab::Add>()), lab::Error);
  CHECK_THROWS_AS(bad.add("input", std::make_shared<lab::ReLU>(), {"c"}), lab::Error);
  // A network built with named inputs that happen to form a chain is a chain.
  lab::Network chain({2, 6, 6});
  chain.add("c", conv3x3(2, 4, *std::make_unique<std::mt19937>(1), true), {"input"});
  chain.add("r", std::make_shared<lab::ReLU>(), {"c"});
  CHECK(chain.is_chain());
}

TEST_CASE("graph forward and gradient agree with the layers run by hand") {
  const lab::Network net = residual_net(2, true);
  std::mt19937 rng(2);
  const Tensor x = testnets::random_tensor({3, 2, 6, 6}, rng);
  const lab::Trace t = net.trace(x);
  CHECK(same_bytes(t.output(), net.forward(x)));
  // Forward by hand.
  const Tensor c1 = net.layer(0).forward(x), a = net.layer(1).forward(c1), c2 = net.layer(2).forward(a);
  const Tensor sum = static_cast<const lab::Merge&>(net.layer(3)).forward({c2, a});
  CHECK(same_bytes(sum, t.acts[4]));
  for (int64_t k = 0; k < sum.numel(); ++k) REQUIRE(sum[k] == c2[k] + a[k]);
  // Continue from a cut; refuse a non-cut.
  CHECK(same_bytes(net.forward_range(5, net.size(), t.acts[5]), t.output()));
  CHECK_THROWS_WITH_AS(net.forward_range(3, net.size(), t.acts[3]), doctest::Contains("cannot be continued from 'c2'"),
                       lab::Error);
  // Gradient at 'a' (consumed by c2 and by the sum) is the sum of both paths, computed by hand.
  const Tensor seed = one_hot_seed(t.output(), 1, false);
  Tensor g = seed;
  for (size_t i = net.size(); i-- > 7;) g = net.layer(i).backward_data(t.acts[i], t.acts[i + 1], g);  // fc, flatten
  // sum2 = c3 + r: r gets g directly and through c3.
  Tensor g_r = g;
  const Tensor g_c3 = net.layer(5).backward_data(t.acts[5], t.acts[6], g);
  for (int64_t k = 0; k < g_r.numel(); ++k) g_r[k] += g_c3[k];
  const Tensor g_sum = net.layer(4).backward_data(t.acts[4], t.acts[5], g_r);
  Tensor g_a = g_sum;
  const Tensor g_c2 = net.layer(2).backward_data(t.acts[2], t.acts[3], g_sum);
  for (int64_t k = 0; k < g_a.numel(); ++k) g_a[k] += g_c2[k];
  CHECK(same_bytes(net.gradient(t, seed, net.index_of("a")), g_a));
  const Tensor g_x = net.layer(0).backward_data(x, t.acts[1], net.layer(1).backward_data(t.acts[1], t.acts[2], g_a));
  CHECK(same_bytes(net.gradient(t, seed), g_x));
  // And the gradient matches central differences (the network is piecewise linear).
  const float h = 1e-3f;
  for (int64_t j : {0, 17, 40, 71}) {
    Tensor xp = x, xm = x;
    xp[j] += h;
    xm[j] -= h;
    const double fd = (double(net.forward(xp)[1]) - net.forward(xm)[1]) / (2.0 * h);
    CHECK(g_x[j] == doctest::Approx(fd).epsilon(2e-2));
  }
}

TEST_CASE("LRP conserves relevance across residual sums (the proportional split)") {
  for (unsigned seed : {3u, 4u, 5u, 6u}) {
    const lab::Network net = residual_net(seed, /*bias=*/false);
    std::mt19937 rng(seed);
    const Tensor x = testnets::random_tensor({4, 2, 6, 6}, rng);
    const lab::Trace t = net.trace(x);
    lab::CompositeParams params;
    params.epsilon = 1e-9;
    const auto rules = lab::prepare(net, lab::make_composite("lrp-epsilon", params));
    for (int64_t unit : {0, 2}) {
      const Tensor r_in = net.backward(t, one_hot_seed(t.output(), unit, true), rules);
      for (int64_t n = 0; n < 4; ++n) {
        const double f = t.output()[n * 3 + unit];
        CAPTURE(seed);
        CHECK(std::abs(sample_sum(r_in, n) - f) <= 1e-5 * std::max(std::abs(f), 1.0));
        // The relevance at the residual sum's output splits: Σ R at c2 + Σ R at a = Σ R at sum.
      }
      const Tensor r_sum = net.backward(t, one_hot_seed(t.output(), unit, true), rules, net.index_of("sum"));
      const Tensor r_a = net.backward(t, one_hot_seed(t.output(), unit, true), rules, net.index_of("a"));
      for (int64_t n = 0; n < 4; ++n) CHECK(std::abs(sample_sum(r_a, n) - sample_sum(r_sum, n)) <= 1e-5 * std::max(std::abs(sample_sum(r_sum, n)), 1.0));
    }
    // z⁺ on a graph: runs; 'pass' on a sum is refused (it would double relevance).
    CHECK(net.backward(t, one_hot_seed(t.output(), 0, true), lab::prepare(net, lab::make_composite("lrp-zplus"))).all_finite());
    lab::Composite doubling = lab::make_composite("lrp-epsilon");
    doubling.by_kind[lab::LayerKind::kAdd] = lab::Rule::pass();
    CHECK_THROWS_WITH_AS(lab::prepare(net, doubling), doctest::Contains("copy the whole signal"), lab::Error);
  }
}

TEST_CASE("DeepLIFT on a reused ReLU takes each application's own multipliers") {
  for (unsigned seed : {7u, 8u, 9u}) {
    const lab::Network shared = reused_relu_net(seed, true), separate = reused_relu_net(seed, false);
    REQUIRE(shared.layer_ptr(1) == shared.layer_ptr(3));
    std::mt19937 rng(seed);
    const Tensor x = testnets::random_tensor({5, 8}, rng, -2.0f, 2.0f);
    const Tensor ref = testnets::random_tensor({1, 8}, rng, -0.5f, 0.5f);
    const auto rules = lab::prepare(shared, lab::make_composite("deeplift-rescale"));
    const lab::Trace t = shared.trace(x), tr = shared.trace(ref);
    const Tensor m = shared.backward(t, one_hot_seed(t.output(), 1, false), rules, std::nullopt, &tr);
    for (int64_t n = 0; n < 5; ++n) {
      double sum = 0;
      for (int64_t j = 0; j < 8; ++j) sum += double(m.sample(n)[j]) * (x.sample(n)[j] - ref[j]);
      const double delta = double(t.output()[n * 3 + 1]) - tr.output()[1];
      CAPTURE(seed);
      CHECK(std::abs(sum - delta) <= 1e-5 * std::max(std::abs(delta), 1.0));
    }
    // The same bytes as with two ReLU objects: nothing is kept per object.
    const lab::Trace t2 = separate.trace(x), tr2 = separate.trace(ref);
    CHECK(same_bytes(m, separate.backward(t2, one_hot_seed(t2.output(), 1, false),
                                          lab::prepare(separate, lab::make_composite("deeplift-rescale")), std::nullopt, &tr2)));
  }
}

TEST_CASE("max-pool routes the gradient to the first maximum of each window, kept in the workspace") {
  // Integer inputs in 0..3: many ties. Overlapping windows, padding, and 8 rows for kernel 3 stride 2
  // (the last row is in no window).
  for (auto [k, st, pad] : {std::tuple{2, 2, 0}, std::tuple{3, 2, 0}, std::tuple{3, 1, 1}}) {
    const lab::MaxPool2d pool({.kernel_h = k, .kernel_w = k, .stride_h = st, .stride_w = st, .pad_h = pad, .pad_w = pad});
    std::mt19937 rng(10 + k + st);
    Tensor x({2, 3, 8, 7});
    for (float& v : x.values()) v = static_cast<float>(rng() % 4);
    const lab::Shape out = pool.output_shape(x.shape());
    Tensor dy(out);
    for (float& v : dy.values()) v = static_cast<float>(rng() % 7) + 1.0f;
    Tensor want_y(out), want_dx(x.shape(), 0.0f);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < out[2]; ++i)
          for (int64_t j = 0; j < out[3]; ++j) {
            // The first maximum in the window's row-major order.
            int64_t best_a = -1, best_b = -1;
            for (int64_t a = i * st - pad; a < i * st - pad + k; ++a)
              for (int64_t b = j * st - pad; b < j * st - pad + k; ++b) {
                if (a < 0 || a >= 8 || b < 0 || b >= 7) continue;
                if (best_a < 0 || x.at(n, c, a, b) > x.at(n, c, best_a, best_b)) best_a = a, best_b = b;
              }
            want_y.at(n, c, i, j) = x.at(n, c, best_a, best_b);
            want_dx.at(n, c, best_a, best_b) += dy.at(n, c, i, j);
          }
    CAPTURE(k);
    CAPTURE(st);
    const Tensor y = pool.forward(x);
    CHECK(same_bytes(y, want_y));
    CHECK(same_bytes(pool.backward_data(x, y, dy), want_dx));
    // In a network: the trace keeps the workspace; a hand-made trace without it gives the same.
    lab::Network net({3, 8, 7});
    net.add("pool", std::make_shared<lab::MaxPool2d>(pool));
    const lab::Trace t = net.trace(x);
    REQUIRE(t.workspaces[0].size() > 0);
    CHECK(same_bytes(net.gradient(t, dy), want_dx));
    lab::Trace bare;
    bare.acts = t.acts;
    CHECK(same_bytes(net.gradient(bare, dy), want_dx));
    // LRP passes relevance to the winners only (winner takes all), conserving it.
    const Tensor r = net.backward(t, dy, lab::prepare(net, lab::make_composite("lrp-epsilon")));
    CHECK(same_bytes(r, want_dx));
  }
}

TEST_CASE("DeepLIFT sums to delta across max-pool, multiply, concat, batch-norm and sums") {
  for (unsigned seed : {21u, 22u, 23u}) {
    std::mt19937 rng(seed);
    lab::Network net({2, 6, 6});
    net.add("c1", conv3x3(2, 4, rng, true));
    net.add("bn", std::make_shared<lab::BatchNorm>(testnets::random_tensor({4}, rng, 0.5f, 2.0f),
                                                   testnets::random_tensor({4}, rng), testnets::random_tensor({4}, rng),
                                                   testnets::random_tensor({4}, rng, 0.1f, 1.0f)));
    net.add("a", std::make_shared<lab::ReLU>());
    net.add("gate.conv", conv3x3(4, 4, rng, true), {"a"});
    net.add("gate", std::make_shared<lab::ReLU>());
    net.add("gated", std::make_shared<lab::Multiply>(), {"a", "gate"});
    net.add("sum", std::make_shared<lab::Add>(), {"gated", "a", "c1"});
    net.add("pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{}));
    net.add("side", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}),
            {"a"});
    net.add("side.c", conv3x3(4, 2, rng, true));
    net.add("side.pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{.kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1}), {"side.c"});
    net.add("both", std::make_shared<lab::Concat>(), {"pool", "side.pool"});
    net.add("flatten", std::make_shared<lab::Flatten>());
    net.add("fc", testnets::random_linear(6 * 3 * 3, 3, rng));
    const Tensor x = testnets::random_tensor({4, 2, 6, 6}, rng);
    const Tensor ref = testnets::random_tensor({1, 2, 6, 6}, rng, -0.3f, 0.3f);
    const lab::Trace t = net.trace(x), tr = net.trace(ref);
    const auto rules = lab::prepare(net, lab::make_composite("deeplift-rescale"));
    const Tensor m = net.backward(t, one_hot_seed(t.output(), 0, false), rules, std::nullopt, &tr);
    for (int64_t n = 0; n < 4; ++n) {
      double sum = 0;
      for (int64_t j = 0; j < m.sample_numel(); ++j) sum += double(m.sample(n)[j]) * (x.sample(n)[j] - ref[j]);
      const double delta = double(t.output()[n * 3]) - tr.output()[0];
      CAPTURE(seed);
      CHECK(std::abs(sum - delta) <= 1e-5 * std::max(std::abs(delta), 1e-2));
    }
    // Every composite runs on the graph, and the gradient matches central differences.
    for (const std::string& name : lab::composite_names())
      CHECK(net.backward(t, one_hot_seed(t.output(), 0, false), lab::prepare(net, lab::make_composite(name)), std::nullopt, &tr)
                .all_finite());
    const Tensor g = net.gradient(t, one_hot_seed(t.output(), 0, false));
    for (int64_t j : {3, 30, 51}) {
      Tensor xp = x.slice(0, 1), xm = x.slice(0, 1);
      const float h = 1e-3f;
      xp[j] += h;
      xm[j] -= h;
      const double fd = (double(net.forward(xp)[0]) - net.forward(xm)[0]) / (2.0 * h);
      CHECK(g[j] == doctest::Approx(fd).epsilon(5e-2).scale(0.05));  // float differences: ~1e-3 absolute
    }
  }
}

TEST_CASE("merge layers' backward-data agrees with the definition") {
  std::mt19937 rng(31);
  const Tensor a = testnets::random_tensor({2, 3, 2, 2}, rng), b = testnets::random_tensor({2, 1, 2, 2}, rng);
  const Tensor dy = testnets::random_tensor({2, 4, 2, 2}, rng);
  const lab::Concat concat;
  const Tensor y = concat.forward({a, b});
  CHECK(y.at(1, 3, 1, 0) == b.at(1, 0, 1, 0));
  CHECK(y.at(1, 2, 0, 1) == a.at(1, 2, 0, 1));
  const auto d = concat.backward_data({a, b}, dy);
  CHECK(d[0].at(1, 2, 0, 1) == dy.at(1, 2, 0, 1));
  CHECK(d[1].at(0, 0, 1, 1) == dy.at(0, 3, 1, 1));
  const lab::Multiply mul;
  const Tensor c = testnets::random_tensor({2, 3, 2, 2}, rng), dz = testnets::random_tensor({2, 3, 2, 2}, rng);
  const auto dm = mul.backward_data({a, c}, dz);
  for (int64_t k = 0; k < a.numel(); ++k) {
    CHECK(dm[0][k] == dz[k] * c[k]);
    CHECK(dm[1][k] == dz[k] * a[k]);
  }
  CHECK_THROWS_AS(mul.merged_shape({a.shape(), a.shape(), a.shape()}), lab::Error);
  CHECK_THROWS_AS(concat.merged_shape({a.shape(), lab::Shape{2, 1, 3, 2}}), lab::Error);
}

TEST_CASE("batch-norm computes the inference formula; the canonizer folds it and keeps the outputs") {
  std::mt19937 rng(41);
  const Tensor gamma = testnets::random_tensor({4}, rng, -2.0f, 2.0f), beta = testnets::random_tensor({4}, rng);
  const Tensor mean = testnets::random_tensor({4}, rng), var = testnets::random_tensor({4}, rng, 0.1f, 2.0f);
  const auto bn = std::make_shared<lab::BatchNorm>(gamma, beta, mean, var, 1e-3);
  const Tensor x = testnets::random_tensor({2, 4, 3, 3}, rng);
  const Tensor y = bn->forward(x);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t i = 0; i < 9; ++i) {
        const double want = gamma[c] * (x.at(n, c, i / 3, i % 3) - mean[c]) / std::sqrt(var[c] + 1e-3) + beta[c];
        REQUIRE(y.at(n, c, i / 3, i % 3) == doctest::Approx(want).epsilon(1e-6));
      }
  CHECK_THROWS_AS(lab::BatchNorm(gamma, beta, mean, Tensor({4}, -1.0f)), lab::Error);
  CHECK_THROWS_AS(lab::BatchNorm(gamma, Tensor({3}), mean, var), lab::Error);

  for (unsigned seed : {42u, 43u}) {
    std::mt19937 r(seed);
    lab::Network net({2, 6, 6});
    net.add("c1", conv3x3(2, 4, r, seed == 42));
    net.add("bn1", std::make_shared<lab::BatchNorm>(testnets::random_tensor({4}, r, -2.0f, 2.0f), testnets::random_tensor({4}, r),
                                                    testnets::random_tensor({4}, r), testnets::random_tensor({4}, r, 0.1f, 2.0f)));
    net.add("a", std::make_shared<lab::ReLU>());
    net.add("c2", conv3x3(4, 4, r, true));
    net.add("bn2", std::make_shared<lab::BatchNorm>(testnets::random_tensor({4}, r, 0.5f, 2.0f), testnets::random_tensor({4}, r),
                                                    testnets::random_tensor({4}, r), testnets::random_tensor({4}, r, 0.1f, 2.0f)));
    net.add("sum", std::make_shared<lab::Add>(), {"bn2", "a"});
    net.add("skip.bn", std::make_shared<lab::BatchNorm>(testnets::random_tensor({4}, r), testnets::random_tensor({4}, r),
                                                        testnets::random_tensor({4}, r), testnets::random_tensor({4}, r, 0.1f, 2.0f)),
            {"a"});  // after a ReLU: stays
    net.add("both", std::make_shared<lab::Add>(), {"sum", "skip.bn"});
    net.add("flatten", std::make_shared<lab::Flatten>());
    net.add("fc", testnets::random_linear(144, 4, r));
    net.add("bn3", std::make_shared<lab::BatchNorm>(testnets::random_tensor({4}, r, 0.5f, 2.0f), testnets::random_tensor({4}, r),
                                                    testnets::random_tensor({4}, r), testnets::random_tensor({4}, r, 0.1f, 2.0f)));
    const lab::Network canon = lab::merge_batch_norm(net);
    REQUIRE(canon.size() == net.size() - 3);
    for (size_t i = 0; i < canon.size(); ++i) CHECK(canon.name(i) != "bn1");
    CHECK(canon.layer(canon.index_of("skip.bn")).kind() == lab::LayerKind::kBatchNorm);
    CHECK(canon.layer(canon.index_of("c1")).kind() == lab::LayerKind::kConv2d);
    const Tensor in = testnets::random_tensor({3, 2, 6, 6}, r);
    const Tensor out = net.forward(in), out_c = canon.forward(in);
    for (int64_t k = 0; k < out.numel(); ++k) REQUIRE(out_c[k] == doctest::Approx(out[k]).epsilon(1e-5).scale(1.0));
    // The gradient is that of the same function; LRP-ε agrees on both forms (ε → 0).
    const lab::Trace t = net.trace(in), tc = canon.trace(in);
    const Tensor g = net.gradient(t, one_hot_seed(t.output(), 2, false));
    const Tensor gc = canon.gradient(tc, one_hot_seed(tc.output(), 2, false));
    for (int64_t k = 0; k < g.numel(); ++k) REQUIRE(gc[k] == doctest::Approx(g[k]).epsilon(1e-4).scale(1e-3));
    lab::CompositeParams p;
    p.epsilon = 1e-9;
    const Tensor r_bn = net.backward(t, one_hot_seed(t.output(), 2, true), lab::prepare(net, lab::make_composite("lrp-epsilon", p)));
    const Tensor r_c =
        canon.backward(tc, one_hot_seed(tc.output(), 2, true), lab::prepare(canon, lab::make_composite("lrp-epsilon", p)));
    double total = 0, total_c = 0, scale = 0;
    for (int64_t k = 0; k < r_bn.numel(); ++k) {
      total += r_bn[k];
      total_c += r_c[k];
      scale = std::max(scale, double(std::abs(r_bn[k])));
    }
    for (int64_t k = 0; k < r_bn.numel(); ++k) REQUIRE(std::abs(r_c[k] - r_bn[k]) <= 1e-4 * std::max(scale, 1.0));
    CHECK(total_c == doctest::Approx(total).epsilon(1e-4));
    // z⁺ runs on either form.
    CHECK(net.backward(t, one_hot_seed(t.output(), 2, true), lab::prepare(net, lab::make_composite("lrp-zplus"))).all_finite());
    CHECK(canon.backward(tc, one_hot_seed(tc.output(), 2, true), lab::prepare(canon, lab::make_composite("lrp-zplus"))).all_finite());
  }
}

TEST_CASE("a chain with max-pool and batch-norm takes the chain path with the same results as a graph") {
  std::mt19937 rng(51);
  auto build = [&](bool as_graph) {
    std::mt19937 r(51);
    lab::Network net({2, 6, 6});
    net.add("c1", conv3x3(2, 4, r, true));
    net.add("bn", std::make_shared<lab::BatchNorm>(testnets::random_tensor({4}, r, 0.5f, 2.0f), testnets::random_tensor({4}, r),
                                                   testnets::random_tensor({4}, r), testnets::random_tensor({4}, r, 0.1f, 2.0f)));
    net.add("a", std::make_shared<lab::ReLU>());
    net.add("pool", std::make_shared<lab::MaxPool2d>(lab::MaxPool2dParams{}));
    net.add("flatten", std::make_shared<lab::Flatten>());
    net.add("fc", testnets::random_linear(36, 3, r));
    if (as_graph) {  // an extra branch nobody reads makes it a graph
      net.add("unused", std::make_shared<lab::ReLU>(), {"c1"});
      net.add("out", std::make_shared<lab::Add>(), {"fc", "fc"});
    } else {
      net.add("out", std::make_shared<lab::Linear>(Tensor({3, 3}, {2, 0, 0, 0, 2, 0, 0, 0, 2}), Tensor()));
    }
    return net;
  };
  const lab::Network chain = build(false), graph = build(true);
  REQUIRE(chain.is_chain());
  REQUIRE_FALSE(graph.is_chain());
  const Tensor x = testnets::random_tensor({3, 2, 6, 6}, rng), ref = testnets::random_tensor({1, 2, 6, 6}, rng);
  const lab::Trace tc = chain.trace(x), tg = graph.trace(x), rc = chain.trace(ref), rg = graph.trace(ref);
  CHECK(same_bytes(tc.output(), tg.output()));
  for (const char* name : {"gradient", "guided-backprop", "deconvnet", "deeplift-rescale"}) {
    const Tensor a = chain.backward(tc, one_hot_seed(tc.output(), 1, false), lab::prepare(chain, lab::make_composite(name)),
                                    std::nullopt, &rc);
    const Tensor b = graph.backward(tg, one_hot_seed(tg.output(), 1, false), lab::prepare(graph, lab::make_composite(name)),
                                    std::nullopt, &rg);
    CAPTURE(name);
    for (int64_t k = 0; k < a.numel(); ++k) REQUIRE(b[k] == doctest::Approx(a[k]).epsilon(1e-5).scale(1e-6));
  }
}
