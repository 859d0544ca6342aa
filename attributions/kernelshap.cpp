#include "attributions/kernelshap.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Dense>

#include "attributions/lime.h"
#include "attributions/perturbation.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

constexpr uint64_t kShapStream = 0x4b53484150;  // "KSHAP"

/// C(m, k), exact in double for the m <= 40 that are ever enumerated.
double binomial(int64_t m, int64_t k) {
  double c = 1;
  for (int64_t i = 1; i <= k; ++i) c = c * static_cast<double>(m - k + i) / static_cast<double>(i);
  return c;
}

double shapley_kernel(int64_t m, int64_t size) {
  return static_cast<double>(m - 1) / (binomial(m, size) * static_cast<double>(size) * static_cast<double>(m - size));
}

bool enumerable(int64_t m, int64_t samples) { return m <= 40 && (int64_t{1} << m) - 2 <= samples; }

}  // namespace

const lab::Schema<KernelShap::Params>& KernelShap::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .nested(&Params::segmentation, SegmentationParams::schema())
          .field("samples", &Params::samples,
                 {.range = lab::at_least(2),
                  .help = "proper coalitions per sample; all 2^M-2 are enumerated (exact Shapley) when they fit",
                  .source = "shap KernelExplainer nsamples = 2·M + 2048"})
          .field("paired", &Params::paired,
                 {.help = "on: each sampled coalition is followed by its complement",
                  .source = "shap KernelExplainer (paired sampling)"})
          .with(baseline_param(&Params::baseline, "value of switched-off superpixels", "Captum's default: zero"))
          .with(output_param(&Params::output, "Lundberg & Lee 2017: the model's output, class probabilities"));
  return s;
}

KernelShap::KernelShap(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

std::vector<double> shapley_regression(const std::vector<uint8_t>& coalitions, int64_t features,
                                       const std::vector<double>& v, const std::vector<double>& w, double v_empty,
                                       double v_full) {
  const int64_t m = features;
  const double delta = v_full - v_empty;
  if (m == 1) return {delta};
  const int64_t count = static_cast<int64_t>(v.size());
  LAB_CHECK(static_cast<int64_t>(coalitions.size()) == count * m && w.size() == v.size(),
            "Shapley regression data of inconsistent sizes");
  // Substituting φ_M = Δ − Σ_{k<M} φ_k: v(z) − v(∅) − z_M Δ = Σ_{k<M} φ_k (z_k − z_M).
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(m - 1, m - 1);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(m - 1);
  Eigen::VectorXd row(m - 1);
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* z = coalitions.data() + i * m;
    for (int64_t k = 0; k + 1 < m; ++k) row[k] = static_cast<double>(z[k]) - static_cast<double>(z[m - 1]);
    const double target = v[static_cast<size_t>(i)] - v_empty - z[m - 1] * delta;
    const double wi = w[static_cast<size_t>(i)];
    a.selfadjointView<Eigen::Lower>().rankUpdate(row, wi);
    b += wi * target * row;
  }
  a.triangularView<Eigen::StrictlyUpper>() = a.transpose();
  const Eigen::VectorXd phi = a.completeOrthogonalDecomposition().solve(b);
  std::vector<double> out(phi.data(), phi.data() + m - 1);
  out.push_back(delta - phi.sum());
  return out;
}

Result KernelShap::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, true);
  const lab::Tensor& x = batch.x;
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor baseline = params_.baseline.resolve(context, x.sample_shape());
  const int64_t n = x.batch();
  const std::vector<Segments> segments = segment_batch(params_.segmentation, x, batch.segments);

  // Row 0 is the full coalition, row 1 the empty one, then the proper coalitions; weight[s][i]
  // is the regression weight of proper coalition i.
  std::vector<Coalitions> coalitions(static_cast<size_t>(n));
  std::vector<std::vector<double>> weight(static_cast<size_t>(n));
  parallel_items(0, n, [&](int64_t s) {
    const int64_t m = segments[s].count;
    Coalitions& c = coalitions[s];
    c.features = m;
    c.push(std::vector<uint8_t>(static_cast<size_t>(m), 1));
    c.push(std::vector<uint8_t>(static_cast<size_t>(m), 0));
    if (m == 1) return;
    std::vector<uint8_t> z(static_cast<size_t>(m));
    if (enumerable(m, params_.samples)) {
      for (uint64_t bits = 1; bits + 1 < (uint64_t{1} << m); ++bits) {
        int64_t size = 0;
        for (int64_t k = 0; k < m; ++k) size += (z[static_cast<size_t>(k)] = (bits >> k) & 1u);
        c.push(z);
        weight[s].push_back(shapley_kernel(m, size));
      }
      return;
    }
    // Size s ∈ [1, M−1] with probability ∝ 1/(s(M−s)), by inversion of the cumulative sum.
    std::vector<double> cumulative;
    double total = 0;
    for (int64_t size = 1; size < m; ++size) cumulative.push_back(total += 1.0 / (size * (m - size)));
    Draws draws(lab::Rng(batch.seeds[s], kShapStream).engine());
    std::vector<int64_t> order(static_cast<size_t>(m));
    while (c.count() - 2 < params_.samples) {
      const double u = draws.uniform() * total;
      const int64_t size =
          std::min(m - 1, 1 + (std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin()));
      // A uniform subset of that size: the first `size` entries of a partial Fisher–Yates shuffle.
      for (int64_t k = 0; k < m; ++k) order[static_cast<size_t>(k)] = k;
      std::fill(z.begin(), z.end(), 0);
      for (int64_t k = 0; k < size; ++k) {
        const int64_t j = k + static_cast<int64_t>(draws.below(static_cast<uint64_t>(m - k)));
        std::swap(order[static_cast<size_t>(k)], order[static_cast<size_t>(j)]);
        z[static_cast<size_t>(order[static_cast<size_t>(k)])] = 1;
      }
      c.push(z);
      weight[s].push_back(1.0);
      if (params_.paired && c.count() - 2 < params_.samples) {
        for (uint8_t& b : z) b = 1 - b;
        c.push(z);
        weight[s].push_back(1.0);
      }
    }
  });
  Result r;
  const auto f = evaluate_coalitions(net, x, baseline, segments, coalitions, batch.target, context.batch,
                                     r.evaluations);

  std::vector<std::vector<double>> phi(static_cast<size_t>(n));
  parallel_items(0, n, [&](int64_t s) {
    const Coalitions& c = coalitions[s];
    const std::vector<uint8_t> proper(c.z.begin() + 2 * c.features, c.z.end());
    const std::vector<double> v(f[s].begin() + 2, f[s].end());
    phi[s] = shapley_regression(proper, c.features, v, weight[s], f[s][1], f[s][0]);
  });
  r.attr = spread_over_channels(superpixel_maps(segments, phi), x.dim(1));
  return r;
}

MethodInfo KernelShap::info() {
  return method_info<KernelShap>("kernelshap",
                                 "Shapley values of superpixels by the Shapley-kernel regression (Lundberg & Lee 2017)");
}

}  // namespace attributions
