// lab::linear_rows and linear_rows_transpose (lab/nn/linear_product.h): every element the chain of
// fused multiply-adds from +0 that the test computes with std::fma, byte for byte, for the
// networks' shapes and odd ones, on signals with exact zeros and −0, in batches of 1, 5 and 64.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

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
