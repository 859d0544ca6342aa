// Number checker (App. C.1, eqs. 6, 7): exhaustive integer checks, the real-valued ramp and hat,
// the literal layer structure, and banks against single checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "lab/core/error.h"
#include "networks/number_checker.h"

using networks::CheckItem;
using networks::NumberCheckerParams;

namespace {

lab::Tensor column(const std::vector<float>& v) { return lab::Tensor({static_cast<int64_t>(v.size()), 1}, v); }

}  // namespace

TEST_CASE("I_{>i} is 1 exactly on the integers above i (eq. 6)") {
  for (int64_t i : {-3, 0, 5, 19, 20, 127, 254, 255}) {
    CAPTURE(i);
    const lab::Network net = networks::build_number_checker({.kind = "greater", .value = i});
    CHECK(net.size() == 4);  // Linear, ReLU, Linear, ReLU (Fig. 10)
    std::vector<float> xs;
    for (int x = -5; x <= 300; ++x) xs.push_back(static_cast<float>(x));
    const lab::Tensor y = net.forward(column(xs));
    for (size_t t = 0; t < xs.size(); ++t) REQUIRE(y[static_cast<int64_t>(t)] == (xs[t] > i ? 1.0f : 0.0f));
  }
}

TEST_CASE("I_N is 1 exactly on N among the integers (eq. 7)") {
  for (int64_t n : {0, 1, 5, 20, 30, 128, 255}) {
    CAPTURE(n);
    const lab::Network net = networks::build_number_checker({.kind = "equal", .value = n});
    CHECK(net.size() == 6);  // three Linear + ReLU (Fig. 11)
    CHECK(net.layer(0).parameter_count() == 4 + 4);  // x−(N−1), x−N, x−N, x−N−1
    std::vector<float> xs;
    for (int x = -5; x <= 300; ++x) xs.push_back(static_cast<float>(x));
    const lab::Tensor y = net.forward(column(xs));
    for (size_t t = 0; t < xs.size(); ++t) REQUIRE(y[static_cast<int64_t>(t)] == (xs[t] == n ? 1.0f : 0.0f));
  }
}

TEST_CASE("for real inputs I_{>i} is the ramp clamp(x − i, 0, 1) and I_N the hat max(0, 1 − |x − N|)") {
  const lab::Network greater = networks::build_number_checker({.kind = "greater", .value = 5});
  const lab::Network equal = networks::build_number_checker({.kind = "equal", .value = 5});
  std::vector<float> xs;
  for (int q = 0; q <= 64; ++q) xs.push_back(3.0f + static_cast<float>(q) / 16.0f);  // 3..7 in sixteenths
  const lab::Tensor g = greater.forward(column(xs));
  const lab::Tensor e = equal.forward(column(xs));
  for (size_t t = 0; t < xs.size(); ++t) {
    CAPTURE(xs[t]);
    CHECK(g[static_cast<int64_t>(t)] == std::clamp(xs[t] - 5.0f, 0.0f, 1.0f));
    CHECK(e[static_cast<int64_t>(t)] == std::max(0.0f, 1.0f - std::fabs(xs[t] - 5.0f)));
  }
}

TEST_CASE("a bank evaluates its checks side by side and carries channels unchanged") {
  // Inputs (a, b); outputs a, I_7(a), I_{>2}(b), b.
  const std::vector<CheckItem> items = {{CheckItem::Kind::kCarry, 0, 0},
                                        {CheckItem::Kind::kEqual, 0, 7},
                                        {CheckItem::Kind::kGreater, 1, 2},
                                        {CheckItem::Kind::kCarry, 1, 0}};
  const auto stages = networks::checker_bank(2, items, {});
  REQUIRE(stages.size() == 3);
  CHECK(stages[0].out == 1 + 4 + 2 + 1);
  CHECK(stages[1].out == 1 + 2 + 1 + 1);
  CHECK(stages[2].out == 4);
  networks::Model model(lab::Shape{2});
  networks::append_stages(model, "bank", stages, networks::StageForm::kLinear);
  std::vector<float> v;
  std::vector<std::array<float, 4>> expected;
  for (int a = 0; a <= 10; ++a)
    for (int b = 0; b <= 5; ++b) {
      v.push_back(static_cast<float>(a)), v.push_back(static_cast<float>(b));
      expected.push_back({float(a), a == 7 ? 1.0f : 0.0f, b > 2 ? 1.0f : 0.0f, float(b)});
    }
  const lab::Tensor y = model.network.forward(lab::Tensor({static_cast<int64_t>(expected.size()), 2}, v));
  for (size_t t = 0; t < expected.size(); ++t)
    for (int64_t o = 0; o < 4; ++o) REQUIRE(y[static_cast<int64_t>(t) * 4 + o] == expected[t][static_cast<size_t>(o)]);
}

TEST_CASE("number checker parameters are validated and read from options") {
  CHECK_THROWS_AS(networks::build_number_checker({.kind = "less", .value = 1}), lab::Error);
  CHECK_THROWS_AS(networks::build_number_checker({.kind = "equal", .value = int64_t{1} << 21}), lab::Error);
  lab::Options o = lab::Options::parse({"kind=greater", "value=9"}, "-o");
  const NumberCheckerParams p = NumberCheckerParams::schema().read(o);
  CHECK(p.kind == "greater");
  CHECK(p.value == 9);
  CHECK(NumberCheckerParams::schema().to_json(p) == nlohmann::json{{"kind", "greater"}, {"value", 9}});
  lab::Options far = lab::Options::parse({"value=1048577"}, "-o");
  CHECK_THROWS_WITH_AS(NumberCheckerParams::schema().read(far), doctest::Contains("-o value=1048577"), lab::Error);
}
