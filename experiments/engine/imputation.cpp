#include "experiments/engine/imputation.h"

#include <cmath>
#include <numbers>

#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>

#include "lab/core/error.h"

namespace experiments {

const lab::Schema<ImputationParams>& ImputationParams::schema() {
  static const auto s =
      lab::Schema<ImputationParams>()
          .field("noise", &ImputationParams::noise,
                 {.range = lab::at_least(0),
                  .help = "noisy linear imputation: standard deviation of the noise on imputed pixels (network units)",
                  .source = "Rong et al. 2022, Sec. 4 (noise 0.01 on [0, 1] inputs)",
                  .derived = "0.01 x the input maximum: 2.55 RGB, 0.01 modulo"})
          .field("seed", &ImputationParams::seed,
                 {.range = lab::at_least(0), .help = "random stream of the imputation noise, combined with each sample's seed"});
  return s;
}

void ImputationParams::resolve(const MetricSetup& setup) {
  if (!noise && setup.input_max) noise = *setup.input_max / 100.0;  // 0.01 x the maximum, correctly rounded
}

double ImputationParams::sigma(const Context& context) const {
  return noise.value_or(static_cast<double>(context.input_max) / 100.0);
}

double road_weight(int dy, int dx) {
  LAB_CHECK(std::abs(dy) <= 1 && std::abs(dx) <= 1 && (dy != 0 || dx != 0), "offset ({}, {})", dy, dx);
  return dy != 0 && dx != 0 ? 1.0 / 12.0 : 1.0 / 6.0;
}

double standard_normal(lab::Rng& rng) {
  const double u1 = 1.0 - rng.uniform();  // (0, 1]: the logarithm stays finite
  const double u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

lab::Tensor impute_linear(const lab::Tensor& x, const std::vector<uint8_t>& removed) {
  const lab::Shape shape = x.rank() == 4 ? x.sample_shape() : x.shape();
  LAB_CHECK(shape.size() == 3, "imputation of {}", lab::to_string(x.shape()));
  const int64_t c = shape[0], h = shape[1], w = shape[2], hw = h * w;
  LAB_CHECK(static_cast<int64_t>(removed.size()) == hw, "{} removal flags for {} pixels", removed.size(), hw);
  lab::Tensor out = x.reshaped(shape);

  // Unknown number of each removed pixel.
  std::vector<int64_t> unknown(static_cast<size_t>(hw), -1);
  int64_t n = 0;
  for (int64_t p = 0; p < hw; ++p)
    if (removed[static_cast<size_t>(p)]) unknown[static_cast<size_t>(p)] = n++;
  if (n == 0) return out;
  if (n == hw) lab::fail("noisy linear imputation needs at least one kept pixel; all {} pixels are removed", hw);

  std::vector<Eigen::Triplet<double>> entries;
  entries.reserve(static_cast<size_t>(n) * 9);
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(n, c);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t xx = 0; xx < w; ++xx) {
      const int64_t i = unknown[static_cast<size_t>(y * w + xx)];
      if (i < 0) continue;
      double diagonal = 0.0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          if (dy == 0 && dx == 0) continue;
          const int64_t ny = y + dy, nx = xx + dx;
          if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;  // outside: no weight (ROAD)
          const double weight = road_weight(dy, dx);
          diagonal += weight;
          const int64_t q = ny * w + nx;
          const int64_t j = unknown[static_cast<size_t>(q)];
          if (j >= 0) {
            entries.emplace_back(static_cast<int>(i), static_cast<int>(j), -weight);
          } else {
            for (int64_t ch = 0; ch < c; ++ch) b(i, ch) += weight * static_cast<double>(out[ch * hw + q]);
          }
        }
      entries.emplace_back(static_cast<int>(i), static_cast<int>(i), diagonal);
    }
  Eigen::SparseMatrix<double> m(n, n);
  m.setFromTriplets(entries.begin(), entries.end());
  const Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> solver(m);
  LAB_CHECK(solver.info() == Eigen::Success, "imputation system of {} unknowns is not positive definite", n);
  const Eigen::MatrixXd solution = solver.solve(b);
  for (int64_t p = 0; p < hw; ++p) {
    const int64_t i = unknown[static_cast<size_t>(p)];
    if (i < 0) continue;
    for (int64_t ch = 0; ch < c; ++ch) out[ch * hw + p] = static_cast<float>(solution(i, ch));
  }
  return out;
}

lab::Tensor impute_noisy_linear(const lab::Tensor& x, const std::vector<uint8_t>& removed, double sigma,
                                uint64_t seed, uint64_t stream) {
  lab::Tensor out = impute_linear(x, removed);
  if (sigma == 0.0) return out;
  const int64_t c = out.dim(0), hw = out.dim(1) * out.dim(2);
  lab::Rng rng(seed, stream);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t p = 0; p < hw; ++p)
      if (removed[static_cast<size_t>(p)])
        out[ch * hw + p] = static_cast<float>(static_cast<double>(out[ch * hw + p]) + sigma * standard_normal(rng));
  return out;
}

}  // namespace experiments
