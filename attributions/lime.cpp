#include "attributions/lime.h"

#include <cmath>

#include <Eigen/Dense>

#include "attributions/perturbation.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

constexpr uint64_t kLimeStream = 0x4c494d45;  // "LIME"

}  // namespace

const lab::Schema<Lime::Params>& Lime::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .nested(&Params::segmentation, SegmentationParams::schema())
          .field("samples", &Params::samples,
                 {.range = lab::at_least(2),
                  .help = "coalitions per sample, the first being the image itself",
                  .source = "lime_image num_samples"})
          .field("kernel-width", &Params::kernel_width,
                 {.range = lab::above(0),
                  .help = "width of the kernel sqrt(exp(-d²/width²)) on cosine distance",
                  .source = "lime_image kernel_width"})
          .field("alpha", &Params::alpha,
                 {.range = lab::at_least(0),
                  .help = "ridge penalty, intercept unpenalised",
                  .source = "scikit-learn Ridge default, as lime_image"})
          .with(baseline_param(&Params::baseline, "value of switched-off superpixels", "Captum's default: zero"))
          .with(output_param(&Params::output, "Ribeiro et al. 2016: LIME explains class probabilities"));
  return s;
}

Lime::Lime(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

std::vector<double> weighted_ridge(const std::vector<uint8_t>& z, int64_t features, const std::vector<double>& y,
                                   const std::vector<double>& w, double alpha, double* intercept) {
  const int64_t count = static_cast<int64_t>(y.size());
  LAB_CHECK(static_cast<int64_t>(z.size()) == count * features && w.size() == y.size() && count >= 1,
            "ridge data of inconsistent sizes");
  Eigen::MatrixXd zm(count, features);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t k = 0; k < features; ++k) zm(i, k) = z[static_cast<size_t>(i * features + k)];
  const Eigen::Map<const Eigen::VectorXd> yv(y.data(), count);
  const Eigen::Map<const Eigen::VectorXd> wv(w.data(), count);
  const double wsum = wv.sum();
  LAB_CHECK(wsum > 0, "ridge weights sum to {}", wsum);
  // With the intercept unpenalised, centring by the weighted means removes it exactly.
  const Eigen::RowVectorXd zmean = (wv.transpose() * zm) / wsum;
  const double ymean = wv.dot(yv) / wsum;
  const Eigen::MatrixXd zc = zm.rowwise() - zmean;
  const Eigen::VectorXd yc = yv.array() - ymean;
  Eigen::MatrixXd a = zc.transpose() * wv.asDiagonal() * zc;
  a.diagonal().array() += alpha;
  const Eigen::VectorXd b = zc.transpose() * (wv.asDiagonal() * yc);
  // With a penalty the system is positive definite (Cholesky); without one it may be singular
  // (a superpixel never switched), and the minimum-norm solution is taken.
  const Eigen::VectorXd beta = alpha > 0 ? Eigen::VectorXd(a.llt().solve(b))
                                         : Eigen::VectorXd(a.completeOrthogonalDecomposition().solve(b));
  if (intercept) *intercept = ymean - zmean.dot(beta);
  return std::vector<double>(beta.data(), beta.data() + features);
}

Result Lime::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, true);
  const lab::Tensor& x = batch.x;
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor baseline = params_.baseline.resolve(context, x.sample_shape());
  const int64_t n = x.batch();
  const std::vector<Segments> segments = segment_batch(params_.segmentation, x, batch.segments);

  std::vector<Coalitions> coalitions(static_cast<size_t>(n));
  parallel_items(0, n, [&](int64_t s) {
    const int64_t m = segments[s].count;
    Coalitions& c = coalitions[s];
    c.features = m;
    c.z.assign(static_cast<size_t>(params_.samples * m), 1);
    Draws draws(lab::Rng(batch.seeds[s], kLimeStream).engine());
    for (size_t i = static_cast<size_t>(m); i < c.z.size(); ++i) c.z[i] = draws.bernoulli(0.5);
  });
  Result r;
  const auto f = evaluate_coalitions(net, x, baseline, segments, coalitions, batch.target, context.batch,
                                     r.evaluations);

  std::vector<std::vector<double>> beta(static_cast<size_t>(n));
  parallel_items(0, n, [&](int64_t s) {
    const Coalitions& c = coalitions[s];
    const double m = static_cast<double>(c.features);
    std::vector<double> weight(static_cast<size_t>(c.count()));
    for (int64_t i = 0; i < c.count(); ++i) {
      double on = 0;
      for (int64_t k = 0; k < c.features; ++k) on += c.row(i)[k];
      const double d = 1.0 - std::sqrt(on / m);
      weight[static_cast<size_t>(i)] = std::sqrt(std::exp(-d * d / (params_.kernel_width * params_.kernel_width)));
    }
    beta[s] = weighted_ridge(c.z, c.features, f[s], weight, params_.alpha);
  });
  r.attr = spread_over_channels(superpixel_maps(segments, beta), x.dim(1));
  return r;
}

MethodInfo Lime::info() {
  return method_info<Lime>("lime", "weighted ridge surrogate over superpixels switched on/off (Ribeiro et al. 2016)");
}

}  // namespace attributions
