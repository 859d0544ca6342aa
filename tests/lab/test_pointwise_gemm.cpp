// lab::pointwise_gemm (the pointwise tiles' products) against dnnl_sgemm followed by the bias and
// ReLU loops, byte for byte: every depth 1..64, the networks' channel counts and odd ones (every
// count of rows left below the 6-row blocks, 1 to 5, alone and below blocks), widths
// below, at and off the 16-column blocks, row strides wider than the rows, both operand orders,
// inputs with −0, infinities (∞·0 gives NaN) and NaN.
#include <doctest/doctest.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lab/nn/pointwise_gemm.h"

namespace {

// Calls f() on one thread of an OpenMP parallel region, as the tiles call the products (oneDNN
// then runs the sgemm on the calling thread alone).
template <class F>
void in_parallel(const F& f) {
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    f();
  }
}

struct Case {
  bool trans;
  int64_t m, n, k;
};

// Fills w, x with normal values, some exact zeros and −0 (the designed networks' weights are
// mostly 0 and ±1), and x with a few ±∞ and NaN when `special`; compares the kernel with the
// sgemm for every combination of bias and ReLU. Returns the number of mismatching outputs.
int64_t mismatches(const Case& c, std::mt19937& rng, bool special) {
  const int64_t ldx = c.n + 3, ldy = c.n + 5, ldw = c.trans ? c.m : c.k;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  std::vector<float> w(static_cast<size_t>(c.m * c.k)), x(static_cast<size_t>(c.k * ldx)),
      bias(static_cast<size_t>(c.m));
  for (float& v : w) {
    const int p = pick(rng);
    v = p == 0 ? 0.0f : p == 1 ? -0.0f : p == 2 ? 1.0f : p == 3 ? -1.0f : normal(rng);
  }
  for (float& v : x) {
    const int p = pick(rng);
    v = p == 0 ? -0.0f : p == 1 ? 0.0f : normal(rng);
    if (special && pick(rng) == 0 && pick(rng) < 2) {
      const int q = pick(rng) % 3;
      v = q == 0 ? std::numeric_limits<float>::quiet_NaN()
                 : q == 1 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
    }
  }
  for (float& v : bias) v = pick(rng) == 0 ? -0.0f : normal(rng);
  int64_t bad = 0;
  for (const bool with_bias : {false, true})
    for (const bool relu : {false, true}) {
      std::vector<float> want(static_cast<size_t>(c.m * ldy), 7.0f), got = want;
      bool ok_want = false, ok_got = false;
      in_parallel([&] {
        ok_want = dnnl_sgemm(c.trans ? 'T' : 'N', 'N', c.m, c.n, c.k, 1.0f, w.data(), ldw, x.data(), ldx, 0.0f,
                             want.data(), ldy) == dnnl_success;
        for (int64_t r = 0; r < c.m; ++r) {
          float* row = want.data() + r * ldy;
          if (with_bias)
            for (int64_t i = 0; i < c.n; ++i) row[i] += bias[static_cast<size_t>(r)];
          if (relu)
            for (int64_t i = 0; i < c.n; ++i) row[i] = row[i] > 0.0f ? row[i] : 0.0f;
        }
        ok_got = lab::pointwise_gemm(c.trans, c.m, c.n, c.k, w.data(), ldw, x.data(), ldx, got.data(), ldy,
                                     with_bias ? bias.data() : nullptr, relu);
      });
      REQUIRE(ok_want);
      REQUIRE(ok_got);
      for (size_t i = 0; i < want.size(); ++i) bad += std::memcmp(&want[i], &got[i], sizeof(float)) != 0;
    }
  return bad;
}

}  // namespace

TEST_CASE("pointwise_gemm: the bytes of dnnl_sgemm, bias and ReLU over the tiles' shapes") {
  INFO("kernel in use: " << lab::pointwise_kernel());
  // The kernel reproduces oneDNN's AVX2 sgemm and is used only where that is oneDNN's ISA. The
  // runtime holds oneDNN to AVX2 (lab/core/runtime.h), so on a machine with AVX2 and FMA the kernel
  // is in use, with AVX-512 or without, unless ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA is set.
  // ctest's lab-avx2 sets DNNL_MAX_CPU_ISA=AVX2 (a user's own hold) and ATTRLAB_TEST_AVX2_KERNEL
  // (tests/CMakeLists.txt): the kernel must be in use there too, and the plain run has compared it.
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::getenv("ATTRLAB_TEST_AVX2_KERNEL") != nullptr) {
    REQUIRE(lab::pointwise_kernel());
    MESSAGE("the plain run compared the kernel");
    return;
  }
  if (avx2 && std::getenv("DNNL_MAX_CPU_ISA") == nullptr && std::getenv("ONEDNN_MAX_CPU_ISA") == nullptr) {
    REQUIRE(lab::pointwise_kernel());  // makes the runtime first
    REQUIRE(dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx2);
  }
  std::mt19937 rng(11);
  const std::vector<int64_t> rows{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                  16, 17, 18, 19, 20, 21, 22, 23, 24, 30, 31, 45, 60, 61, 63, 64};
  const std::vector<int64_t> widths{1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 100, 352, 353};
  int64_t bad = 0, cases = 0;
  for (const bool trans : {false, true})
    for (int64_t k = 1; k <= 64; ++k)
      for (const int64_t m : rows)
        for (const int64_t n : widths) {
          const Case c{trans, m, n, k};
          const int64_t b = mismatches(c, rng, (k + m + n) % 3 == 0);
          if (b != 0) MESSAGE("trans " << trans << " m " << m << " n " << n << " k " << k << ": " << b << " outputs differ");
          bad += b;
          ++cases;
        }
  // Wide tiles (several of oneDNN's column blocks) and a depth past the kernel's limit (all sgemm).
  for (const bool trans : {false, true})
    for (const int64_t n : {4033, 5000, 9001})
      for (const Case c : {Case{trans, 60, n, 3}, Case{trans, 30, n, 60}, Case{trans, 15, n, 30},
                           Case{trans, 3, n, 15}, Case{trans, 5, n, 15}, Case{trans, 6, n, 5},
                           Case{trans, 61, n, 7}, Case{trans, 30, n, 65}}) {
        bad += mismatches(c, rng, true);
        ++cases;
      }
  CHECK(cases > 50000);
  CHECK(bad == 0);
}

// The rows left below the blocks of 6 (3, 4 and 5 rows, alone and below 6k rows) with the kernel's
// remainder orders on and off, and the one- and two-row edges off: every switch gives the sgemm's
// bytes, on the detector's shapes and odd ones, special values in every case.
TEST_CASE("pointwise_gemm: the remainder rows, each switch") {
  std::mt19937 rng(13);
  int64_t bad = 0, cases = 0;
  for (const bool remainders : {true, false})
    for (const bool edges : {true, false}) {
      lab::set_pointwise_remainders(remainders);
      lab::set_pointwise_edges(edges);
      CHECK(lab::pointwise_remainders() == remainders);
      CHECK(lab::pointwise_edges() == edges);
      for (const bool trans : {false, true})
        for (const int64_t m : {3, 4, 5, 9, 10, 11, 15, 16, 17, 63})
          for (const int64_t k : {1, 2, 3, 5, 15, 30, 60, 64})
            for (const int64_t n : {16, 17, 33, 352}) {
              bad += mismatches(Case{trans, m, n, k}, rng, true);
              ++cases;
            }
    }
  lab::set_pointwise_remainders(true);
  lab::set_pointwise_edges(true);
  CHECK(cases == 2560);
  CHECK(bad == 0);
}

TEST_CASE("pointwise_gemm: off, it is dnnl_sgemm") {
  const bool saved = lab::pointwise_kernel();
  lab::set_pointwise_kernel(false);
  CHECK_FALSE(lab::pointwise_kernel());
  std::mt19937 rng(12);
  int64_t bad = 0;
  for (const bool trans : {false, true})
    for (const Case c : {Case{trans, 60, 353, 3}, Case{trans, 15, 100, 30}, Case{trans, 7, 17, 60}})
      bad += mismatches(c, rng, true);
  lab::set_pointwise_kernel(true);
  CHECK(lab::pointwise_kernel() == saved);
  CHECK(bad == 0);
}

TEST_CASE("pointwise_gemm with sparse weights: the nonzero weights' chains give the dense kernel's bytes") {
  // sparse_chains keeps the nonzero weights of a product with at most one in 4 nonzero
  // (multi-color-sum's detector: 30×60 with 60, 15×30 with 30, 5×15 with 15, and the backward's
  // transposed products of them); pointwise_gemm
  // then runs its blocks and edges (6-row blocks; two rows' even and odd rounded chains; three
  // rows' even and odd fused chains; four and five rows' one chain) over them on the strips of 16
  // columns whose values allow it, the dense kernel on the others. Against the same call with the
  // dense kernel, byte for byte: every row count 1..24 and 30, 31, 60, 64 (every edge), 19 depths
  // 1..63 odd and even, widths with a lone and a partial last strip; x with zeros, −0, values from
  // 2⁻¹⁴⁹ to 2¹²⁰, ±∞ and NaN in some strips; one strip built so that skipping a step changes the
  // bytes (a weight of 2⁻¹⁰⁰ times −2⁻⁶⁰ rounds to −0, the next zero weight's step makes +0).
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20), pick(0, 15);
  const std::vector<int64_t> rows{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                                  30, 31, 60, 64};
  int64_t cases = 0, sparse_cases = 0, uniform_cases = 0, finite_cases = 0;
  for (const bool trans : {false, true})
  for (const int64_t m : rows)
    for (int64_t k = 1; k <= 64; k += (k < 8 ? 1 : 5))
      for (const int64_t n : {int64_t{16}, int64_t{17}, int64_t{48}, int64_t{100}, int64_t{352}}) {
        CAPTURE(trans);
        CAPTURE(m);
        CAPTURE(k);
        CAPTURE(n);
        const int64_t ldx = n + 3, ldy = n + 5;
        std::vector<float> w(static_cast<size_t>(m * k), 0.0f), bias(static_cast<size_t>(m));
        std::uniform_int_distribution<int64_t> column(0, k - 1);
        // Rows of zero to three nonzero weights; in every third shape each row has the same count,
        // 1 to 4 (SparseChains::uniform: the one-chain rows' unrolled steps), row 0 from column 1.
        const bool uniform = (m + k) % 3 == 0;
        const int64_t count = k >= 16 ? 1 + m % 4 : 1;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t t = 0; t < (uniform ? count : k >= 16 ? 3 : 1); ++t)
            if (uniform) w[static_cast<size_t>(i * k + (1 + 7 * i + 3 * t) % k)] = std::ldexp(unit(rng), exponent(rng));
            else if (pick(rng) < 12) w[static_cast<size_t>(i * k + column(rng))] = std::ldexp(unit(rng), exponent(rng));
        // In every third shape row 0 is built for the −0 case: its weight of 2⁻¹⁰⁰ puts the strip
        // check's lower bound at 2⁻³, so that most strips there take the dense kernel; elsewhere
        // the bound is 2⁻⁸² and the strips of normal values take the sparse chains.
        // In every fifth shape of depth 10 or more, rows of k / 2 − 1 to k / 2 − 3 nonzero weights
        // (the finite-input chains of any count, row_chains).
        if ((m + k) % 5 == 2 && k >= 10)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t t = 0; t < k / 2 - 1 - i % 3; ++t)
              w[static_cast<size_t>(i * k + (i + 2 * t) % k)] = std::ldexp(unit(rng), exponent(rng));
        const bool tiny = (m + k) % 3 == 1 && k >= 3;
        if (tiny) w[1] = std::ldexp(1.0f, -100), w[0] = 0.0f, w[2] = 0.0f;
        for (float& v : bias) v = pick(rng) == 0 ? -0.0f : unit(rng);
        std::vector<float> x(static_cast<size_t>(k * ldx));
        for (float& v : x) {
          const int p = pick(rng);
          v = p == 0 ? -0.0f : p == 1 ? 0.0f : std::ldexp(unit(rng), exponent(rng));
        }
        // Strip 1: tiny and huge values; strip 2: ±∞ and NaN; strip 0's column 3: the −0 case.
        if (n >= 32)
          for (int64_t j = 0; j < k; ++j) x[static_cast<size_t>(j * ldx + 16 + j % 16)] = std::ldexp(1.0f, j % 2 ? -149 : 120);
        if (n >= 48) {
          x[static_cast<size_t>((k - 1) * ldx + 33)] = std::numeric_limits<float>::infinity();
          x[static_cast<size_t>(35)] = std::numeric_limits<float>::quiet_NaN();
        }
        if (tiny) x[static_cast<size_t>(ldx + 3)] = -std::ldexp(1.0f, -60), x[static_cast<size_t>(2 * ldx + 3)] = 5.0f;
        // Transposed: op(w)(i, j) at w[j·m + i] (the backward's dx = weightsᵀ · dy), its chains
        // over w's columns (Conv2d::sparse_transposed).
        if (trans) {
          std::vector<float> t(w.size());
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < k; ++j) t[static_cast<size_t>(j * m + i)] = w[static_cast<size_t>(i * k + j)];
          w = t;
        }
        const int64_t ldw = trans ? m : k;
        const lab::SparseChains sparse =
            trans ? lab::sparse_chains(m, k, w.data(), 1, m, lab::kPointwiseSparseDensity, bias.data())
                  : lab::sparse_chains(m, k, w.data(), k, 1, lab::kPointwiseSparseDensity, bias.data());
        // The chains down to one nonzero weight in 2 (Conv2d::sparse's): with the ReLU and x known
        // finite (`finite`: no check), on x with its ∞ and NaN replaced by 2¹²⁰; elsewhere
        // pointwise_gemm takes them only at one in 4.
        const lab::SparseChains half =
            trans ? lab::sparse_chains(m, k, w.data(), 1, m, lab::kPointwiseFiniteDensity, bias.data())
                  : lab::sparse_chains(m, k, w.data(), k, 1, lab::kPointwiseFiniteDensity, bias.data());
        std::vector<float> finite_x = x;
        for (float& v : finite_x)
          if (!std::isfinite(v)) v = std::ldexp(1.0f, 120);
        for (const bool with_bias : {false, true})
          for (const bool relu : {false, true}) {
            if (half.empty()) break;
            ++finite_cases;
            std::vector<float> want(static_cast<size_t>(m * ldy), 7.0f), got = want, got_checked = want;
            const float* b = with_bias ? bias.data() : nullptr;
            bool ok_want = false, ok_got = false, ok_checked = false;
            in_parallel([&] {
              ok_want = lab::pointwise_gemm(trans, m, n, k, w.data(), ldw, finite_x.data(), ldx, want.data(), ldy, b, relu);
              ok_got = lab::pointwise_gemm(trans, m, n, k, w.data(), ldw, finite_x.data(), ldx, got.data(), ldy, b, relu,
                                           &half, true);
              ok_checked = lab::pointwise_gemm(trans, m, n, k, w.data(), ldw, x.data(), ldx, got_checked.data(), ldy, b,
                                               relu, &half);
            });
            REQUIRE(ok_want);
            REQUIRE(ok_got);
            REQUIRE(ok_checked);
            CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
            std::vector<float> dense_x(static_cast<size_t>(m * ldy), 7.0f);
            in_parallel([&] {
              REQUIRE(lab::pointwise_gemm(trans, m, n, k, w.data(), ldw, x.data(), ldx, dense_x.data(), ldy, b, relu));
            });
            CHECK(std::memcmp(dense_x.data(), got_checked.data(), sizeof(float) * want.size()) == 0);
          }
        ++cases;
        if (sparse.empty()) continue;
        ++sparse_cases;
        uniform_cases += sparse.uniform > 0 ? 1 : 0;
        for (const bool with_bias : {false, true})
          for (const bool relu : {false, true}) {
            std::vector<float> want(static_cast<size_t>(m * ldy), 7.0f), got = want;
            const float* b = with_bias ? bias.data() : nullptr;
            bool ok_want = false, ok_got = false;
            in_parallel([&] {
              ok_want = lab::pointwise_gemm(trans, m, n, k, w.data(), ldw, x.data(), ldx, want.data(), ldy, b, relu);
              ok_got = lab::pointwise_gemm(trans, m, n, k, w.data(), ldw, x.data(), ldx, got.data(), ldy, b, relu,
                                           &sparse);
            });
            REQUIRE(ok_want);
            REQUIRE(ok_got);
            CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
          }
      }
  MESSAGE(sparse_cases << " of " << cases << " shapes sparse, " << uniform_cases << " of them uniform; " << finite_cases
                      << " finite-input calls");
  CHECK(uniform_cases > sparse_cases / 5);
  CHECK(sparse_cases > cases / 2);
  CHECK(finite_cases > 4 * sparse_cases);
  // Dense weights, and weights that are not finite, keep no sparse form.
  std::vector<float> dense(36, 1.0f), inf(36, 0.0f);
  inf[5] = std::numeric_limits<float>::infinity();
  CHECK(lab::sparse_chains(6, 6, dense.data(), 6, 1, lab::kPointwiseSparseDensity).empty());
  CHECK(lab::sparse_chains(6, 6, inf.data(), 6, 1, lab::kPointwiseSparseDensity).empty());
}
