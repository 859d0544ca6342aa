// lab::linear_rows and linear_rows_transpose (lab/nn/linear_product.h), the products of a Linear
// layer with other weights and of every backward through it: every element the chain of fused
// multiply-adds from +0 that the test computes with std::fma, byte for byte, for the networks'
// shapes and odd ones, on signals with exact zeros and −0; so each image's row is the same bytes
// alone and in a batch of 5 or 64 at any position, at 1 and 2 threads, through the layer too.
// (oneDNN's inner-product backward-data, which the transposed map used before, gave
// single-color-modulo's 35→175 layer an image's row alone and in a batch one or two elements apart
// by 1–2 ulp, on random signals.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lab/core/runtime.h"
#include "lab/nn/layers.h"
#include "lab/nn/linear_product.h"

namespace {

// Normal values with some exact zeros and −0.
std::vector<float> values(int64_t count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 9);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& f : v) {
    const int p = pick(rng);
    f = p == 0 ? 0.0f : p == 1 ? -0.0f : normal(rng);
  }
  return v;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

}  // namespace

TEST_CASE("linear_rows and linear_rows_transpose are the chains of std::fma from +0, row by row") {
  std::mt19937 rng(5);
  struct Shape3 {
    int64_t in, out;
  };
  for (const Shape3 s : {Shape3{1, 36}, Shape3{36, 35}, Shape3{35, 175}, Shape3{175, 105}, Shape3{4, 4},
                         Shape3{137, 685}, Shape3{7, 1}, Shape3{17, 23}}) {
    CAPTURE(s.in);
    CAPTURE(s.out);
    const std::vector<float> w = values(s.in * s.out, rng), bias = values(s.out, rng);
    for (const int64_t n : {int64_t{1}, int64_t{5}, int64_t{64}}) {
      CAPTURE(n);
      const std::vector<float> x = values(n * s.in, rng), sig = values(n * s.out, rng);
      // The references, element by element.
      std::vector<float> want_y(static_cast<size_t>(n * s.out)), want_yb(want_y.size());
      std::vector<float> want_c(static_cast<size_t>(n * s.in));
      for (int64_t p = 0; p < n; ++p) {
        for (int64_t o = 0; o < s.out; ++o) {
          float acc = 0.0f;
          for (int64_t j = 0; j < s.in; ++j) acc = std::fma(x[static_cast<size_t>(p * s.in + j)], w[static_cast<size_t>(o * s.in + j)], acc);
          want_y[static_cast<size_t>(p * s.out + o)] = acc;
          want_yb[static_cast<size_t>(p * s.out + o)] = acc + bias[static_cast<size_t>(o)];
        }
        for (int64_t j = 0; j < s.in; ++j) {
          float acc = 0.0f;
          for (int64_t o = 0; o < s.out; ++o) acc = std::fma(sig[static_cast<size_t>(p * s.out + o)], w[static_cast<size_t>(o * s.in + j)], acc);
          want_c[static_cast<size_t>(p * s.in + j)] = acc;
        }
      }
      std::vector<float> y(want_y.size()), yb(want_y.size()), c(want_c.size());
      lab::linear_rows(n, s.in, s.out, x.data(), w.data(), nullptr, y.data());
      lab::linear_rows(n, s.in, s.out, x.data(), w.data(), bias.data(), yb.data());
      lab::linear_rows_transpose(n, s.in, s.out, sig.data(), w.data(), c.data());
      CHECK(same(y, want_y));
      CHECK(same(yb, want_yb));
      CHECK(same(c, want_c));
    }
  }
}

TEST_CASE("a Linear layer's products with other weights and its backward-data give each row the same bytes alone and in a batch") {
  std::mt19937 rng(6);
  const int threads = lab::Runtime::get().threads();
  for (const auto& [in, out] : {std::pair<int64_t, int64_t>{35, 175}, {137, 685}, {4, 4}, {70, 35}}) {
    CAPTURE(in);
    CAPTURE(out);
    const std::vector<float> wv = values(in * out, rng), bv = values(out, rng);
    const lab::Linear layer(lab::Tensor({out, in}, wv), lab::Tensor({out}, bv));
    lab::Weights positive{layer.weights().weight, layer.weights().bias};
    for (float& v : positive.weight.values()) v = std::max(v, 0.0f);
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      for (const int64_t n : {int64_t{5}, int64_t{64}}) {
        CAPTURE(n);
        const lab::Tensor x({n, in}, values(n * in, rng)), s({n, out}, values(n * out, rng));
        const lab::Tensor z = layer.apply(positive, x, true), zn = layer.apply(positive, x, false);
        const lab::Tensor c = layer.backward_data(x, layer.forward(x), s);
        const lab::Tensor cp = layer.apply_transpose(positive, s, x.shape());
        for (int64_t p = 0; p < n; ++p) {
          CAPTURE(p);
          const lab::Tensor xp = x.slice(p, p + 1), sp = s.slice(p, p + 1);
          const auto row = [](const lab::Tensor& batch, int64_t i, const lab::Tensor& alone) {
            return std::memcmp(batch.sample(i), alone.data(), sizeof(float) * alone.numel()) == 0;
          };
          CHECK(row(z, p, layer.apply(positive, xp, true)));
          CHECK(row(zn, p, layer.apply(positive, xp, false)));
          CHECK(row(c, p, layer.backward_data(xp, layer.forward(xp), sp)));
          CHECK(row(cp, p, layer.apply_transpose(positive, sp, xp.shape())));
        }
        // The values: W⁺x + b⁺ and Wᵀs against sums in double.
        for (int64_t p = 0; p < n; p += 7) {
          for (int64_t o = 0; o < out; o += 3) {
            double acc = positive.bias[o];
            for (int64_t j = 0; j < in; ++j) acc += double(positive.weight[o * in + j]) * x[p * in + j];
            CHECK(z[p * out + o] == doctest::Approx(acc).epsilon(1e-5).scale(10.0));
          }
          for (int64_t j = 0; j < in; j += 3) {
            double acc = 0.0;
            for (int64_t o = 0; o < out; ++o) acc += double(wv[static_cast<size_t>(o * in + j)]) * s[p * out + o];
            CHECK(c[p * in + j] == doctest::Approx(acc).epsilon(1e-5).scale(10.0));
          }
        }
      }
    }
  }
  lab::Runtime::get().set_threads(threads);
}

TEST_CASE("a Linear layer's forward is the chain of std::fma from +0, + bias, for each row alone and in any batch") {
  // lab::linear_chain on the layer's packed weights: single-color-modulo's head (1→151 … 150→1),
  // depths past one block of the summed index (256: the chains resume through y) and odd shapes;
  // batches of 1, 5 (a few rows: the columns split over the threads), 13 and 64 (blocks of 6 rows
  // and a remainder) and 200 (groups of 12 row blocks and a shorter last group), 1 and 2 threads; the forward with its ReLU fused (Network::forward's
  // relu_post_op path) gives the ReLU layer's bytes.
  std::mt19937 rng(7);
  const int threads = lab::Runtime::get().threads();
  struct Shape3 {
    int64_t in, out;
  };
  for (const Shape3 s : {Shape3{1, 151}, Shape3{151, 150}, Shape3{150, 750}, Shape3{750, 450}, Shape3{450, 300},
                         Shape3{150, 1}, Shape3{1000, 20}, Shape3{17, 23}, Shape3{513, 33}}) {
    CAPTURE(s.in);
    CAPTURE(s.out);
    const std::vector<float> wv = values(s.in * s.out, rng), bv = values(s.out, rng);
    const lab::Linear layer(lab::Tensor({s.out, s.in}, wv), lab::Tensor({s.out}, bv));
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      for (const int64_t n : {int64_t{1}, int64_t{5}, int64_t{13}, int64_t{64}, int64_t{200}}) {
        CAPTURE(n);
        const lab::Tensor x({n, s.in}, values(n * s.in, rng));
        const lab::Tensor y = layer.forward(x);
        lab::Tensor yr({n, s.out});
        lab::Pass pass;
        layer.add_forward_variant(pass, x.shape(), x.data(), yr.data(), lab::ForwardVariant{.relu = true});
        pass.run();
        std::vector<float> want(static_cast<size_t>(n * s.out)), want_relu(want.size());
        for (int64_t p = 0; p < n; ++p)
          for (int64_t o = 0; o < s.out; ++o) {
            float acc = 0.0f;
            for (int64_t j = 0; j < s.in; ++j)
              acc = std::fma(x[p * s.in + j], wv[static_cast<size_t>(o * s.in + j)], acc);
            acc = acc + bv[static_cast<size_t>(o)];
            want[static_cast<size_t>(p * s.out + o)] = acc;
            want_relu[static_cast<size_t>(p * s.out + o)] = acc > 0.0f ? acc : 0.0f;
          }
        CHECK(same(std::vector<float>(y.values().begin(), y.values().end()), want));
        CHECK(same(std::vector<float>(yr.values().begin(), yr.values().end()), want_relu));
      }
    }
  }
  lab::Runtime::get().set_threads(threads);
}

TEST_CASE("sparse weights: the nonzero weights' chains give the full chains' bytes, rows that do not allow them the dense ones") {
  // lab::prepare_linear_weights keeps the nonzero weights of a matrix with at most one in 16
  // nonzero (single-color-modulo's f2, f3 and f4 layers: 1–2 per row), and linear_chain and
  // linear_rows_transpose skip the zeros' steps on rows whose values allow it (linear_product.h).
  // References: the full chains of std::fma from +0, byte for byte. The rows: normal values with
  // zeros and −0; values from 2⁻¹⁴⁹ to 2¹²⁰; one with ∞ and NaN; and one built so that skipping a
  // step would change the bytes: a weight of 2⁻¹⁰⁰ times −2⁻⁶⁰ rounds to −0, and the full chain's
  // next step, 5 times a zero weight, turns it into +0.
  std::mt19937 rng(8);
  const int threads = lab::Runtime::get().threads();
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-40, 40);
  struct Shape3 {
    int64_t in, out;
  };
  for (const Shape3 s : {Shape3{151, 150}, Shape3{150, 750}, Shape3{300, 150}, Shape3{40, 33}}) {
    CAPTURE(s.in);
    CAPTURE(s.out);
    std::vector<float> w(static_cast<size_t>(s.in * s.out), 0.0f);
    std::uniform_int_distribution<int64_t> column(0, s.in - 1);
    for (int64_t o = 0; o < s.out; ++o)
      for (int k = 0; k < 2; ++k)
        w[static_cast<size_t>(o * s.in + column(rng))] = std::ldexp(unit(rng), exponent(rng));
    std::fill(w.begin(), w.begin() + s.in, 0.0f);
    w[1] = std::ldexp(1.0f, -100);  // output 0: 2⁻¹⁰⁰·x[1] alone, then zero weights (x[2] = 5 in row 3)
    if (s.out > 3) std::fill(w.begin() + 3 * s.in, w.begin() + 4 * s.in, 0.0f);  // output 3: no weight at all
    const std::vector<float> bias = values(s.out, rng);
    const lab::LinearWeights prepared = lab::prepare_linear_weights(s.in, s.out, w.data());
    REQUIRE(!prepared.rows.empty());
    REQUIRE(!prepared.cols.empty());
    // 53 rows: the special ones in the first block of 16 (row by row), two blocks of rows that
    // allow the sparse chains (each a strip of 16 columns; the weight 2⁻¹⁰⁰ makes the bound 2⁻³:
    // values 0, −0 and at least 1 in magnitude) and 5 rows past them.
    const int64_t n = 53;
    std::vector<float> x = values(n * s.in, rng), sig = values(n * s.out, rng);
    for (std::vector<float>* v : {&x, &sig})
      for (auto f = v->begin() + 16 * (v->size() / n); f != v->begin() + 48 * (v->size() / n); ++f)
        if (*f != 0.0f) *f = std::copysign(1.0f + std::fabs(*f), *f);
    for (int64_t j = 0; j < s.in; ++j) x[static_cast<size_t>(s.in + j)] = std::ldexp(unit(rng), exponent(rng) * 3);
    x[static_cast<size_t>(2 * s.in + 5)] = std::numeric_limits<float>::infinity();
    x[static_cast<size_t>(2 * s.in + 7)] = std::numeric_limits<float>::quiet_NaN();
    x[static_cast<size_t>(3 * s.in + 1)] = -std::ldexp(1.0f, -60), x[static_cast<size_t>(3 * s.in + 2)] = 5.0f;
    sig[static_cast<size_t>(4 * s.out + 1)] = std::numeric_limits<float>::infinity();
    for (int64_t o = 0; o < s.out; ++o) sig[static_cast<size_t>(5 * s.out + o)] = std::ldexp(unit(rng), exponent(rng) * 3);
    std::vector<float> want(static_cast<size_t>(n * s.out)), want_c(static_cast<size_t>(n * s.in));
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t o = 0; o < s.out; ++o) {
        float acc = 0.0f;
        for (int64_t j = 0; j < s.in; ++j)
          acc = std::fma(x[static_cast<size_t>(p * s.in + j)], w[static_cast<size_t>(o * s.in + j)], acc);
        want[static_cast<size_t>(p * s.out + o)] = acc + bias[static_cast<size_t>(o)];
      }
      for (int64_t j = 0; j < s.in; ++j) {
        float acc = 0.0f;
        for (int64_t o = 0; o < s.out; ++o)
          acc = std::fma(sig[static_cast<size_t>(p * s.out + o)], w[static_cast<size_t>(o * s.in + j)], acc);
        want_c[static_cast<size_t>(p * s.in + j)] = acc;
      }
    }
    // The case built to differ: the full chain ends at +0 + bias, so without the bias −0 and +0.
    CHECK(std::signbit(std::fma(x[static_cast<size_t>(3 * s.in + 1)], w[1], 0.0f)));
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      std::vector<float> y(want.size()), c(want_c.size()), c_own(want_c.size()), y0(want.size());
      lab::linear_chain(n, s.in, s.out, x.data(), prepared, bias.data(), false, y.data());
      lab::linear_rows_transpose(n, s.in, s.out, sig.data(), w.data(), c.data(), &prepared);
      lab::linear_rows_transpose(n, s.in, s.out, sig.data(), w.data(), c_own.data());
      CHECK(same(y, want));
      CHECK(same(c, want_c));
      CHECK(same(c_own, want_c));
      // Without the bias the −0 row shows: the full chain's +0.
      lab::linear_chain(n, s.in, s.out, x.data(), prepared, nullptr, false, y0.data());
      CHECK(!std::signbit(y0[static_cast<size_t>(3 * s.out)]));
      CHECK(y0[static_cast<size_t>(3 * s.out)] == 0.0f);
      // Each row alone: the same bytes.
      for (int64_t p = 0; p < n; ++p) {
        std::vector<float> row(static_cast<size_t>(s.out));
        lab::linear_chain(1, s.in, s.out, x.data() + p * s.in, prepared, bias.data(), false, row.data());
        CHECK(std::memcmp(row.data(), y.data() + p * s.out, sizeof(float) * static_cast<size_t>(s.out)) == 0);
      }
    }
  }
  lab::Runtime::get().set_threads(threads);
  // Dense weights, and weights that are not finite, keep no sparse chains.
  std::vector<float> dense(static_cast<size_t>(16 * 16), 1.0f), nan(dense.size(), 0.0f);
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(lab::prepare_linear_weights(16, 16, dense.data()).rows.empty());
  CHECK(lab::prepare_linear_weights(16, 16, nan.data()).rows.empty());
}

TEST_CASE("a run of Linear layers gives the bytes of each layer's linear_chain in turn") {
  // lab::linear_run: strips of 16 rows through every layer, in columns through the sparse layers
  // whose values allow their chains and in rows otherwise, the rows past the strips layer by
  // layer. Layers: dense 7→151 with its ReLU, sparse 151→150 and 150→60 with their ReLUs, sparse
  // 60→75 (a weight 2⁻¹⁰⁰ makes values below 2⁻³ in magnitude leave the columns), dense 75→9 with
  // its ReLU. Rows: the first strip with ∞, NaN and tiny values, the next two ordinary values, then
  // 5 rows past the strips.
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-10, 10);
  struct Layer {
    int64_t in, out;
    bool sparse, relu;
  };
  const std::vector<Layer> shapes{
      {7, 151, false, true}, {151, 150, true, true}, {150, 60, true, true}, {60, 75, true, false}, {75, 9, false, true}};
  std::vector<std::vector<float>> weights, biases;
  std::vector<lab::LinearWeights> prepared;
  for (const Layer& l : shapes) {
    std::vector<float> w = values(l.in * l.out, rng);
    if (l.sparse) {
      std::fill(w.begin(), w.end(), 0.0f);
      std::uniform_int_distribution<int64_t> column(0, l.in - 1);
      for (int64_t o = 0; o < l.out; ++o)
        for (int k = 0; k < 2; ++k) w[static_cast<size_t>(o * l.in + column(rng))] = std::ldexp(unit(rng), exponent(rng));
    }
    if (l.out == 75) w[5] = std::ldexp(1.0f, -100);
    weights.push_back(w);
    biases.push_back(values(l.out, rng));
    prepared.push_back(lab::prepare_linear_weights(l.in, l.out, weights.back().data()));
    CHECK(prepared.back().rows.empty() == !l.sparse);
  }
  const int64_t n = 53;
  std::vector<float> x = values(n * 7, rng);
  x[2 * 7 + 1] = std::numeric_limits<float>::infinity();
  x[2 * 7 + 3] = std::numeric_limits<float>::quiet_NaN();
  x[3 * 7 + 4] = std::ldexp(1.0f, -120);
  const int threads = lab::Runtime::get().threads();
  const auto check = [&](const std::vector<lab::LinearRunStep>& steps, const std::vector<float>& input,
                         const std::vector<float>& want, int64_t rows_in) {
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      for (const int64_t rows : {rows_in, int64_t{16}, int64_t{5}}) {
        CAPTURE(rows);
        std::vector<float> y(static_cast<size_t>(rows * steps.back().out), 7.0f);
        lab::linear_run(rows, steps, input.data(), y.data());
        CHECK(std::memcmp(y.data(), want.data(), sizeof(float) * y.size()) == 0);
      }
    }
    lab::Runtime::get().set_threads(threads);
  };
  // All five layers, and the first three (a run that ends in columns).
  for (const size_t count : {shapes.size(), size_t{3}}) {
    CAPTURE(count);
    std::vector<lab::LinearRunStep> steps;
    std::vector<float> want = x;  // each layer in turn
    for (size_t k = 0; k < count; ++k) {
      steps.push_back({shapes[k].in, shapes[k].out, &prepared[k], biases[k].data(), shapes[k].relu});
      std::vector<float> next(static_cast<size_t>(n * shapes[k].out));
      lab::linear_chain(n, shapes[k].in, shapes[k].out, want.data(), prepared[k], biases[k].data(), shapes[k].relu,
                        next.data());
      want = std::move(next);
    }
    check(steps, x, want, n);
  }
  // A strip whose values do not allow the chains of a layer without bias or ReLU: 2⁻¹⁰⁰ times
  // −2⁻⁶⁰ rounds to −0, and the full chain's next step, 5 times a zero weight, turns it into +0.
  constexpr int64_t kIn = 120;
  std::vector<float> w(static_cast<size_t>(6 * kIn), 0.0f);
  for (int64_t o = 1; o < 6; ++o) w[static_cast<size_t>(o * kIn + 7 * o + 3)] = std::ldexp(unit(rng), exponent(rng));
  w[1] = std::ldexp(1.0f, -100);
  const lab::LinearWeights trap = lab::prepare_linear_weights(kIn, 6, w.data());
  REQUIRE(!trap.rows.empty());
  std::vector<float> rows = values(16 * kIn, rng);
  for (float& v : rows) v = v == 0.0f ? v : std::copysign(1.0f + std::fabs(v), v);
  rows[3 * kIn + 1] = -std::ldexp(1.0f, -60), rows[3 * kIn + 2] = 5.0f;
  std::vector<float> want(16 * 6);
  lab::linear_chain(16, kIn, 6, rows.data(), trap, nullptr, false, want.data());
  CHECK(!std::signbit(want[3 * 6]));
  check({{kIn, 6, &trap, nullptr, false}}, rows, want, 16);
}

TEST_CASE("the forward's Linear runs: sparse layers and small dense ones, not large dense ones") {
  // lab::linear_run_end: a dense layer of more than kLinearRunDenseWeights weights stays a step of
  // its own (a run would read its weights once per strip of 16 rows).
  std::mt19937 rng(10);
  const auto linear = [&](int64_t in, int64_t out, bool sparse) {
    std::vector<float> w = values(in * out, rng);
    if (sparse) {
      std::fill(w.begin(), w.end(), 0.0f);
      for (int64_t o = 0; o < out; ++o) w[static_cast<size_t>(o * in + o % in)] = 1.5f;
    }
    return std::make_shared<const lab::Linear>(lab::Tensor({out, in}, std::move(w)), lab::Tensor());
  };
  const auto relu = std::make_shared<const lab::ReLU>();
  const std::vector<std::shared_ptr<const lab::Layer>> layers{
      linear(300, 300, false), relu, linear(300, 20, false), relu, linear(20, 400, true), linear(400, 200, true), relu,
      linear(200, 400, false)};
  REQUIRE(300 * 300 > lab::kLinearRunDenseWeights);
  REQUIRE(200 * 400 > lab::kLinearRunDenseWeights);
  CHECK(lab::linear_run_end(layers, 0, layers.size()) == 0);  // the large dense layer alone
  CHECK(lab::linear_run_end(layers, 2, layers.size()) == 7);  // small dense, sparse, sparse and its ReLU
  CHECK(lab::linear_run_end(layers, 5, layers.size()) == 5);  // one layer before the large dense one
  // Sparse layers as dense ones: 20×400 is small enough, 400×200 is not.
  lab::set_sparse_weights(false);
  CHECK(lab::linear_run_end(layers, 2, layers.size()) == 5);
  lab::set_sparse_weights(true);
}
