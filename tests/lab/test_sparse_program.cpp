// lab::SparseProgram against its steps computed one after the other by lab::pointwise_gemm (the
// sparse chains, `finite`, the ReLU), byte for byte: random programs of 2 to 5 steps of 1 to 64
// rows (every count of rows left below pointwise_gemm's 6-row blocks that its kernel computes:
// one chain, the two and three rows' even and odd chains), rows of 0 to 9 nonzero weights, rows
// read once (computed where they are read), several times or never, weights ±1, small integers and
// normal values, with and without biases (−0 among them), inputs with −0 and zeros, widths of 16
// to 736 columns (the strips of 128, 64 and 16 columns), row strides wider than the rows; each with
// the programs' machine code (lab/nn/program_code.h) and their AVX-512 kernels (where the processor
// has AVX-512), and with their AVX2 ones.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "lab/nn/pointwise_gemm.h"
#include "lab/nn/program_code.h"
#include "lab/nn/sparse_program.h"

namespace {

struct Step {
  int64_t in = 0, out = 0;
  std::vector<float> w, bias;  // bias empty: none
  lab::SparseChains chains;
};

// Row counts pointwise_gemm's kernel computes whole (finite_row_chains: not 7, 13, ...), weighted
// towards the designed networks' (60, 30, 15, 5, 6) and every count of rows left below the blocks.
int64_t pick_rows(std::mt19937& rng) {
  static const int64_t counts[] = {1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 30, 32, 60, 64};
  return counts[std::uniform_int_distribution<size_t>(0, std::size(counts) - 1)(rng)];
}

// A step of `in` inputs and `out` rows: each row 0 to 9 nonzero weights (mostly 1 to 3) on
// distinct inputs.
Step random_step(int64_t in, int64_t out, std::mt19937& rng) {
  Step s{in, out, std::vector<float>(static_cast<size_t>(in * out), 0.0f), {}, {}};
  std::uniform_int_distribution<int> pick(0, 15);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<int64_t> order(static_cast<size_t>(in));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t r = 0; r < out; ++r) {
    const int p = pick(rng);
    const int64_t count = std::min<int64_t>(in, p == 0 ? 0 : p < 5 ? 1 : p < 10 ? 2 : p < 13 ? 3 : 4 + pick(rng) % 6);
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t t = 0; t < count; ++t) {
      const int q = pick(rng);
      s.w[static_cast<size_t>(r * in + order[static_cast<size_t>(t)])] =
          q < 4 ? 1.0f : q < 6 ? -1.0f : q < 9 ? static_cast<float>(pick(rng) - 7) + 0.5f : normal(rng);
    }
  }
  if (pick(rng) >= 4) {
    s.bias.resize(static_cast<size_t>(out));
    for (float& b : s.bias) b = pick(rng) == 0 ? -0.0f : pick(rng) < 4 ? 0.0f : normal(rng);
  }
  s.chains = lab::sparse_chains(out, in, s.w.data(), in, 1, 1, s.bias.empty() ? nullptr : s.bias.data());
  return s;
}

std::vector<lab::SparseStep> program_steps(const std::vector<Step>& steps) {
  std::vector<lab::SparseStep> out;
  for (const Step& s : steps) out.push_back({s.in, s.out, &s.chains, s.bias.empty() ? nullptr : s.bias.data()});
  return out;
}

// The inputs: normal values, zeros and −0, and the designed networks' integers.
std::vector<float> random_input(int64_t rows, int64_t ld, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(rows * ld));
  std::uniform_int_distribution<int> pick(0, 15);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (float& v : x) {
    const int p = pick(rng);
    v = p == 0 ? -0.0f : p == 1 ? 0.0f : p < 4 ? static_cast<float>(pick(rng) * 17) : normal(rng);
  }
  return x;
}

// The steps one after the other by pointwise_gemm, as a tiled run computes them.
std::vector<float> by_steps(const std::vector<Step>& steps, int64_t width, const std::vector<float>& x, int64_t ldx) {
  std::vector<float> a(x), b;
  int64_t lda = ldx;
  for (const Step& s : steps) {
    b.assign(static_cast<size_t>(s.out * width), 1.0f);
    REQUIRE(lab::pointwise_gemm(false, s.out, width, s.in, s.w.data(), s.in, a.data(), lda, b.data(), width,
                                s.bias.empty() ? nullptr : s.bias.data(), true, &s.chains, true));
    std::swap(a, b);
    lda = width;
  }
  return a;
}

// Runs f with the programs' machine code and with their AVX-512 kernels (where the processor has
// AVX-512), and with their AVX2 kernels.
void for_each_isa(const std::function<void()>& f) {
  for (const int mode : {0, 1, 2}) {
    const bool wide = mode < 2, code = mode == 0;
    CAPTURE(wide);
    CAPTURE(code);
    lab::set_avx512_kernels(wide);
    lab::set_program_code(code);
    f();
  }
  lab::set_avx512_kernels(true);
  lab::set_program_code(true);
}

// Where the processor has AVX-512, a program has its machine code (so the tests run it).
bool has_code(const lab::SparseProgram& program) {
  return !__builtin_cpu_supports("avx512f") || program.code_size() > 0;
}

}  // namespace

TEST_CASE("sparse programs: the bytes of their steps one after the other") {
  REQUIRE(lab::pointwise_kernel());
  std::mt19937 rng(20261206);
  int64_t programs = 0, inline_rows = 0, mismatches = 0, by_vectors = 0, by_rows = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t depth = 2 + trial % 4;
    std::vector<Step> steps;
    int64_t channels = pick_rows(rng);
    for (int64_t l = 0; l < depth; ++l) {
      steps.push_back(random_step(channels, pick_rows(rng), rng));
      channels = steps.back().out;
    }
    const auto program = lab::SparseProgram::build(program_steps(steps));
    REQUIRE(program != nullptr);
    REQUIRE(program->current());
    REQUIRE(has_code(*program));
    ++programs;
    inline_rows += program->inline_rows();
    by_vectors += program->code_columns() == 16 ? 1 : 0;
    by_rows += program->code_columns() == 128 ? 1 : 0;
    static const int64_t widths[] = {16, 48, 64, 80, 144, 192, 736};
    const int64_t width = widths[trial % 7], ldx = width + 40, ldy = width + 24;
    const std::vector<float> x = random_input(steps.front().in, ldx, rng);
    const std::vector<float> expected = by_steps(steps, width, x, ldx);
    for_each_isa([&] {
      std::vector<float> y(static_cast<size_t>(steps.back().out * ldy), 7.0f);
      program->run(width, x.data(), ldx, y.data(), ldy);
      for (int64_t r = 0; r < steps.back().out; ++r) {
        const bool same = std::memcmp(y.data() + r * ldy, expected.data() + r * width, sizeof(float) * width) == 0;
        mismatches += same ? 0 : 1;
        // The columns past the width are not written.
        for (int64_t p = width; p < ldy; ++p) mismatches += y[static_cast<size_t>(r * ldy + p)] == 7.0f ? 0 : 1;
      }
    });
  }
  CHECK(mismatches == 0);
  CHECK(programs == 400);
  CHECK(inline_rows > 1000);  // most programs compute some rows where they are read
  if (__builtin_cpu_supports("avx512f")) {
    // Both kinds of code: by vectors (every value in registers) and by rows (too many live values).
    CHECK(by_vectors > 100);
    CHECK(by_rows > 20);
  }
}

TEST_CASE("sparse programs: multi-color-sum's detector") {
  // Its five 1×1 steps of 60, 30, 15, 5 and 6 rows: each row of the first read once by the second,
  // of the third once by the fourth, the fourth's five by the fifth (several times); the third's
  // last three rows pointwise_gemm's three rows left below its blocks (even and odd fused chains).
  std::mt19937 rng(5);
  std::vector<Step> steps;
  const int64_t sizes[] = {3, 60, 30, 15, 5, 6};
  for (int l = 0; l < 5; ++l) {
    Step s{sizes[l], sizes[l + 1], std::vector<float>(static_cast<size_t>(sizes[l] * sizes[l + 1]), 0.0f), {}, {}};
    for (int64_t r = 0; r < s.out; ++r) {
      const int64_t reads = l == 0 ? 1 : l < 3 ? 2 : l == 3 ? 3 : 2 + r % 2;
      for (int64_t t = 0; t < reads; ++t) {
        const int64_t j = l == 0 ? r % 3 : l < 4 ? r * reads + t : (r + t) % 5;
        s.w[static_cast<size_t>(r * s.in + j)] = t % 2 == 0 ? 1.0f : -1.0f;
      }
    }
    s.bias.resize(static_cast<size_t>(s.out));
    for (float& b : s.bias) b = static_cast<float>(static_cast<int>(rng() % 401) - 200);
    s.chains = lab::sparse_chains(s.out, s.in, s.w.data(), s.in, 1, 1, s.bias.data());
    steps.push_back(std::move(s));
  }
  const auto program = lab::SparseProgram::build(program_steps(steps));
  REQUIRE(program != nullptr);
  REQUIRE(has_code(*program));
  // Computed where read: the first step's 60 rows and the third's 12 rows of one chain.
  CHECK(program->inline_rows() == 72);
  CHECK(program->stored_rows() == 30 + 3 + 5 + 6);
  for (const int64_t width : {64, 736, 50176 % 736 + 736}) {
    std::vector<float> x(static_cast<size_t>(3 * width));
    for (size_t i = 0; i < x.size(); ++i) x[i] = i % 7 == 0 ? 255.0f : static_cast<float>(i % 256);
    const std::vector<float> expected = by_steps(steps, width, x, width);
    for_each_isa([&] {
      std::vector<float> y(static_cast<size_t>(6 * width));
      program->run(width, x.data(), width, y.data(), width);
      CHECK(std::memcmp(y.data(), expected.data(), sizeof(float) * y.size()) == 0);
    });
  }
}

TEST_CASE("sparse programs: grouped steps of one output per group") {
  // A grouped 1×1 convolution of one output per group, as a tiled run computes it: one
  // pointwise_gemm row per group (its dense chain over the group's inputs, a zero weight among
  // them); in a program, its groups' weights as one product's chains (row g on group g's inputs).
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int64_t mismatches = 0, tried = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t groups = 1 + trial % 6, per = 1 + (trial * 7) % 9, width = trial % 2 == 0 ? 80 : 736;
    const std::vector<Step> first = {random_step(1 + trial % 5, groups * per, rng)};
    if (!lab::SparseProgram::takes(program_steps(first)[0])) continue;  // 7, 13, ... rows
    ++tried;
    std::vector<float> gw(static_cast<size_t>(groups * per)), bias(static_cast<size_t>(groups));
    for (float& v : gw) v = normal(rng);
    gw[0] = 0.0f;
    for (float& v : bias) v = normal(rng);
    std::vector<float> block(static_cast<size_t>(groups * groups * per), 0.0f);  // the groups as one product
    for (int64_t g = 0; g < groups; ++g)
      std::copy(gw.begin() + g * per, gw.begin() + (g + 1) * per, block.begin() + g * groups * per + g * per);
    const lab::SparseChains chains =
        lab::sparse_chains(groups, groups * per, block.data(), groups * per, 1, 1, bias.data());
    std::vector<lab::SparseStep> steps = program_steps(first);
    steps.push_back({groups * per, groups, &chains, bias.data(), groups});
    const auto program = lab::SparseProgram::build(steps);
    REQUIRE(program != nullptr);
    REQUIRE(has_code(*program));
    const std::vector<float> x = random_input(first[0].in, width, rng);
    const std::vector<float> mid = by_steps(first, width, x, width);
    std::vector<float> expected(static_cast<size_t>(groups * width));
    for (int64_t g = 0; g < groups; ++g)
      REQUIRE(lab::pointwise_gemm(false, 1, width, per, gw.data() + g * per, per, mid.data() + g * per * width, width,
                                  expected.data() + g * width, width, bias.data() + g, true, nullptr, true));
    for_each_isa([&] {
      std::vector<float> y(expected.size());
      program->run(width, x.data(), width, y.data(), width);
      mismatches += std::memcmp(y.data(), expected.data(), sizeof(float) * y.size()) == 0 ? 0 : 1;
    });
  }
  CHECK(mismatches == 0);
  CHECK(tried >= 50);
}

TEST_CASE("sparse programs: where they do not apply") {
  std::mt19937 rng(3);
  // 7 rows: pointwise_gemm leaves one row below a block and runs dnnl_sgemm on the last 7.
  const std::vector<Step> seven = {random_step(4, 7, rng), random_step(7, 4, rng)};
  CHECK(lab::SparseProgram::build(program_steps(seven)) == nullptr);
  // Steps that do not chain, chains of other shapes, a step without chains.
  std::vector<Step> steps = {random_step(4, 6, rng), random_step(6, 5, rng)};
  auto broken = program_steps(steps);
  broken[1].in = 5;
  CHECK(lab::SparseProgram::build(broken) == nullptr);
  broken = program_steps(steps);
  broken[0].out = 5;
  CHECK(lab::SparseProgram::build(broken) == nullptr);
  broken = program_steps(steps);
  broken[1].chains = nullptr;
  CHECK(lab::SparseProgram::build(broken) == nullptr);
  CHECK_FALSE(lab::SparseProgram::takes(broken[1]));
  CHECK_FALSE(lab::SparseProgram::takes(program_steps(seven)[0]));
  CHECK(lab::SparseProgram::takes(program_steps(seven)[1]));
  // Groups of more than one output: not a program's.
  broken = program_steps(steps);
  broken[0].groups = 3;
  CHECK_FALSE(lab::SparseProgram::takes(broken[0]));
  // Built with pointwise_gemm's switches as they are: no longer current once one changes (the
  // rows' shapes may change), nor without sparse weights.
  const auto program = lab::SparseProgram::build(program_steps(steps));
  REQUIRE(program != nullptr);
  CHECK(program->current());
  lab::set_pointwise_remainders(false);
  CHECK(!program->current());
  lab::set_pointwise_remainders(true);
  lab::set_sparse_weights(false);
  CHECK(!program->current());
  lab::set_sparse_weights(true);
  CHECK(program->current());
}

TEST_CASE("sparse programs: shared by equal steps") {
  std::mt19937 rng(17);
  std::vector<Step> steps = {random_step(3, 12, rng), random_step(12, 4, rng)};
  steps[0].bias.assign(12, 0.25f);
  const auto a = lab::SparseProgram::shared(program_steps(steps));
  REQUIRE(a != nullptr);
  // The same steps, and a copy of them elsewhere in memory: the same program.
  CHECK(lab::SparseProgram::shared(program_steps(steps)) == a);
  const std::vector<Step> copy = steps;
  CHECK(lab::SparseProgram::shared(program_steps(copy)) == a);
  // One weight, one bias, a bias left out: another program, of its own bytes.
  std::vector<Step> other = steps;
  other[1].chains.value[0] += 1.0f;
  const auto b = lab::SparseProgram::shared(program_steps(other));
  REQUIRE(b != nullptr);
  CHECK(b != a);
  other = steps;
  other[0].bias[3] = 0.5f;
  CHECK(lab::SparseProgram::shared(program_steps(other)) != a);
  other[0].bias.clear();
  const auto none = lab::SparseProgram::shared(program_steps(other));
  REQUIRE(none != nullptr);
  CHECK(none != a);
  // Under other row shapes (pointwise_gemm.h's switches): another program.
  lab::set_pointwise_edges(false);
  const auto c = lab::SparseProgram::shared(program_steps(steps));
  lab::set_pointwise_edges(true);
  CHECK(c != a);
  CHECK(lab::SparseProgram::shared(program_steps(steps)) == a);
  // Its bytes are those of its own steps.
  const int64_t width = 192;
  const std::vector<float> x = random_input(3, width, rng);
  const std::vector<float> expected = by_steps(other, width, x, width);
  std::vector<float> y(static_cast<size_t>(4 * width));
  none->run(width, x.data(), width, y.data(), width);
  CHECK(std::memcmp(y.data(), expected.data(), sizeof(float) * y.size()) == 0);
}
