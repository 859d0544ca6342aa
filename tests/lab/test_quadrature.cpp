// Quadrature rules integrate the polynomials they should integrate exactly.
#include <doctest/doctest.h>

#include <cmath>

#include "lab/core/error.h"
#include "lab/core/quadrature.h"

namespace {
double integrate(const lab::Quadrature& q, int degree) {
  double s = 0;
  for (size_t k = 0; k < q.nodes.size(); ++k) s += q.weights[k] * std::pow(q.nodes[k], degree);
  return s;
}
}  // namespace

TEST_CASE("Gauss-Legendre with n nodes is exact up to degree 2n-1") {
  for (int n : {1, 2, 5, 16}) {
    const auto q = lab::make_quadrature("gauss-legendre", n);
    for (int d = 0; d <= 2 * n - 1; ++d) CHECK(integrate(q, d) == doctest::Approx(1.0 / (d + 1)).epsilon(1e-12));
    if (n <= 5) CHECK(std::abs(integrate(q, 2 * n) - 1.0 / (2 * n + 1)) > 1e-12);  // and no further
  }
}

TEST_CASE("Riemann and trapezoid rules") {
  const auto mid = lab::make_quadrature("riemann-middle", 4);
  CHECK(integrate(mid, 1) == doctest::Approx(0.5));
  const auto left = lab::make_quadrature("riemann-left", 4);
  CHECK(left.nodes.front() == 0.0);
  CHECK(integrate(left, 1) == doctest::Approx(0.375));  // (0 + .25 + .5 + .75) / 4
  const auto right = lab::make_quadrature("riemann-right", 4);
  CHECK(integrate(right, 1) == doctest::Approx(0.625));
  const auto trap = lab::make_quadrature("trapezoid", 5);
  CHECK(integrate(trap, 1) == doctest::Approx(0.5));
  CHECK(integrate(trap, 2) == doctest::Approx(1.0 / 3 + 1.0 / 96));  // error h²/12·(f'(1)-f'(0)) = (1/16)/12·2
  CHECK_THROWS_AS(lab::make_quadrature("simpson", 4), lab::Error);
  CHECK_THROWS_AS(lab::make_quadrature("riemann-left", 0), lab::Error);
}
