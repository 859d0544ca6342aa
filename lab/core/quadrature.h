/// @file quadrature.h
/// @brief Quadrature rules on [0, 1]: nodes t_k and weights w_k with ∫₀¹ f ≈ Σ w_k f(t_k).
///
/// Used wherever an integral along a path is approximated: Integrated Gradients (Sundararajan
/// et al. 2017, eq. 3: the Riemann sum over `steps` points), and the average-Jacobian form of
/// DeepLIFT's rescale rule on softmax. Rules: riemann-left, riemann-right, riemann-middle,
/// trapezoid, gauss-legendre (Golub–Welsch: eigenvalues of the Jacobi matrix, via Eigen).
/// test_quadrature.cpp checks exactness on polynomials of the degree each rule integrates exactly.
#pragma once

#include <string>
#include <vector>

namespace lab {

struct Quadrature {
  std::vector<double> nodes;
  std::vector<double> weights;
};

/// The rule names above.
const std::vector<std::string>& quadrature_names();
/// `n` points of the named rule on [0, 1]; n ≥ 1 (≥ 2 for trapezoid). Bad input throws lab::Error.
Quadrature make_quadrature(const std::string& rule, int n);

}  // namespace lab
