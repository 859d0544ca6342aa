#include "attributions/gradcam.h"

#include <algorithm>

#include "lab/core/error.h"

namespace attributions {

const lab::Schema<GradCam::Params>& GradCam::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .with(layer_param(&Params::layer, "layer whose output A is used", "gradcam", "accumulator.layers.5"))
          .field("relu", &Params::relu,
                 {.help = "on: keep positive evidence only (the original); off: the signed map",
                  .source = "Selvaraju et al. 2017, eq. 2"})
          .with(output_param(&Params::output, "Selvaraju et al. 2017: the class score before the softmax"));
  return s;
}

std::vector<double> gradcam_map(const float* activations, const float* gradients, int64_t channels, int64_t plane,
                                bool plus_plus) {
  std::vector<double> map(static_cast<size_t>(plane), 0.0);
  for (int64_t k = 0; k < channels; ++k) {
    const float* a = activations + k * plane;
    const float* g = gradients + k * plane;
    double alpha = 0;
    if (!plus_plus) {
      for (int64_t j = 0; j < plane; ++j) alpha += g[j];
      alpha /= static_cast<double>(plane);
    } else {
      double sum_a = 0;
      for (int64_t j = 0; j < plane; ++j) sum_a += a[j];
      for (int64_t j = 0; j < plane; ++j) {
        const double g1 = g[j];
        if (g1 == 0) continue;
        const double g2 = g1 * g1;
        const double denominator = 2 * g2 + sum_a * g2 * g1;
        if (denominator == 0) continue;
        alpha += (g2 / denominator) * std::max(g1, 0.0);
      }
    }
    if (alpha == 0) continue;
    for (int64_t j = 0; j < plane; ++j) map[static_cast<size_t>(j)] += alpha * a[j];
  }
  return map;
}

Result GradCam::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  std::string layer = params_.layer;
  if (layer.empty()) {
    auto it = context.layers.find("gradcam");
    if (it == context.layers.end())
      lab::fail_parameter("{}: no layer given (-p layer=NAME) and the context names no gradcam layer", name());
    layer = it->second;
  }
  const lab::Network net = explained_network(*context.net, params_.output);
  const size_t index = net.index_of(layer);
  const lab::Shape shape = net.shape_after(index, 1);
  if (shape.size() != 4)
    lab::fail_parameter("{}: layer '{}' outputs {} per batch, expected N×K×h×w feature maps", name(), layer,
                        lab::to_string(shape));
  const int64_t channels = shape[1], h = shape[2], w = shape[3];
  const lab::Tensor& x = batch.x;
  const int64_t n = x.batch();
  lab::Tensor coarse({n, h, w});
  Backprop bp{.net = &net, .to_layer = index};
  Result r;
  r.evaluations = run_backprop(
      bp, n, context.batch, [&](int64_t b, int64_t e) { return x.slice(b, e); },
      [&](int64_t i) { return batch.target[static_cast<size_t>(i)]; },
      [&](int64_t begin, const lab::Trace& trace, const lab::Tensor& grad) {
        const lab::Tensor& acts = trace.after(index);
        for (int64_t k = 0; k < grad.batch(); ++k) {
          const std::vector<double> map = gradcam_map(acts.sample(k), grad.sample(k), channels, h * w, plus_plus_);
          float* out = coarse.sample(begin + k);
          for (int64_t j = 0; j < h * w; ++j) {
            const double v = map[static_cast<size_t>(j)];
            out[j] = static_cast<float>(params_.relu ? std::max(v, 0.0) : v);
          }
        }
      });
  r.attr = spread_over_channels(upsample_bilinear(coarse, x.dim(2), x.dim(3)), x.dim(1));
  return r;
}

MethodInfo GradCam::gradcam_info() {
  return method_info<GradCam>(
      "gradcam", "GradCAM: layer activations weighted by their mean gradient, upsampled bilinearly (Selvaraju et al. 2017)",
      [](Params p) -> std::unique_ptr<Method> { return std::make_unique<GradCam>(std::move(p), false); });
}

MethodInfo GradCam::gradcam_plus_plus_info() {
  return method_info<GradCam>(
      "gradcam-plus-plus",
      "GradCAM++: activations weighted by positive gradients with pixel-wise coefficients (Chattopadhyay et al. 2018)",
      [](Params p) -> std::unique_ptr<Method> { return std::make_unique<GradCam>(std::move(p), true); });
}

}  // namespace attributions
