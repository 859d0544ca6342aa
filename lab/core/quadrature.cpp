#include "lab/core/quadrature.h"

#include <Eigen/Eigenvalues>

#include <cmath>

#include "lab/core/error.h"

namespace lab {

const std::vector<std::string>& quadrature_names() {
  static const std::vector<std::string> names{"riemann-left", "riemann-right", "riemann-middle", "trapezoid",
                                              "gauss-legendre"};
  return names;
}

Quadrature make_quadrature(const std::string& rule, int n) {
  if (n < 1) fail_parameter("quadrature steps must be at least 1, got {}", n);
  Quadrature q;
  const double h = 1.0 / n;
  if (rule == "riemann-left" || rule == "riemann-right" || rule == "riemann-middle") {
    const double shift = rule == "riemann-left" ? 0.0 : rule == "riemann-right" ? 1.0 : 0.5;
    for (int k = 0; k < n; ++k) {
      q.nodes.push_back((k + shift) * h);
      q.weights.push_back(h);
    }
  } else if (rule == "trapezoid") {
    if (n < 2) fail_parameter("trapezoid quadrature needs at least 2 steps, got {}", n);
    const double d = 1.0 / (n - 1);
    for (int k = 0; k < n; ++k) {
      q.nodes.push_back(k * d);
      q.weights.push_back((k == 0 || k == n - 1) ? d / 2 : d);
    }
  } else if (rule == "gauss-legendre") {
    // Golub–Welsch: the nodes on [-1, 1] are the eigenvalues of the symmetric tridiagonal Jacobi
    // matrix with off-diagonal k / sqrt(4k² − 1); the weights are 2·v₀² of the unit eigenvectors.
    Eigen::MatrixXd jacobi = Eigen::MatrixXd::Zero(n, n);
    for (int k = 1; k < n; ++k) {
      const double b = k / std::sqrt(4.0 * k * k - 1.0);
      jacobi(k, k - 1) = b;
      jacobi(k - 1, k) = b;
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(jacobi);
    for (int k = 0; k < n; ++k) {
      q.nodes.push_back((solver.eigenvalues()(k) + 1.0) / 2.0);
      const double v0 = solver.eigenvectors()(0, k);
      q.weights.push_back(v0 * v0);  // 2·v0² on [-1, 1], halved for [0, 1]
    }
  } else {
    std::string list;
    for (const auto& name : quadrature_names()) list += (list.empty() ? "" : "|") + name;
    fail_parameter("unknown quadrature rule '{}': expected one of {}", rule, list);
  }
  return q;
}

}  // namespace lab
