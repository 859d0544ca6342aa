#include "attributions/linear_regions.h"

#include <algorithm>
#include <limits>

#include "lab/core/error.h"
#include "lab/nn/layers.h"

namespace attributions {

void require_piecewise_linear(const lab::Network& net, const char* what) {
  if (!net.is_chain()) lab::fail_parameter("{}: needs a chain of layers, not a graph network", what);
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::LayerKind kind = net.layer(i).kind();
    if (kind != lab::LayerKind::kConv2d && kind != lab::LayerKind::kLinear && kind != lab::LayerKind::kReLU &&
        kind != lab::LayerKind::kFlatten)
      lab::fail_parameter("{}: needs a network of conv2d, linear, relu and flatten layers (then a final softmax), "
                          "but layer '{}' is {}",
                          what, net.name(i), lab::kind_name(kind));
  }
}

RegionStep next_region(const lab::Network& net, const lab::Tensor& base, const lab::Tensor& x,
                       const std::vector<double>& alpha) {
  const int64_t n = x.batch(), m = x.sample_numel();
  LAB_CHECK(base.numel() == m && static_cast<int64_t>(alpha.size()) == n, "next_region: base, x and alpha disagree");
  // The primal p(α) and its tangent dp/dα = x − base.
  lab::Tensor a(x.shape()), tangent(x.shape());
  for (int64_t s = 0; s < n; ++s) {
    point_on_path(base.data(), x.sample(s), static_cast<float>(alpha[static_cast<size_t>(s)]), a.sample(s), m);
    const float* xs = x.sample(s);
    float* d = tangent.sample(s);
    for (int64_t j = 0; j < m; ++j) d[j] = xs[j] - base[j];
  }
  // Distance in α to the first ReLU switch, per sample.
  std::vector<double> step(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::Layer& layer = net.layer(i);
    switch (layer.kind()) {
      case lab::LayerKind::kConv2d:
      case lab::LayerKind::kLinear: {
        const auto& affine = static_cast<const lab::AffineLayer&>(layer);
        a = affine.forward(a);
        tangent = affine.apply(affine.weights(), tangent, false);
        break;
      }
      case lab::LayerKind::kFlatten:
        a = layer.forward(a);
        tangent = layer.forward(tangent);
        break;
      case lab::LayerKind::kReLU: {
        const int64_t k = a.sample_numel();
        for (int64_t s = 0; s < n; ++s) {
          float* z = a.sample(s);
          float* dz = tangent.sample(s);
          double nearest = step[static_cast<size_t>(s)];
          for (int64_t j = 0; j < k; ++j) {
            const double zj = z[j], dj = dz[j];
            const bool on = zj > 0 || (zj == 0 && dj > 0);
            if (zj > 0 && dj < 0) nearest = std::min(nearest, zj / -dj);
            if (zj < 0 && dj > 0) nearest = std::min(nearest, -zj / dj);
            if (!on) {
              z[j] = 0.0f;
              dz[j] = 0.0f;
            }
          }
          step[static_cast<size_t>(s)] = nearest;
        }
        break;
      }
      default:
        require_piecewise_linear(net, "next_region");
        break;
    }
  }
  RegionStep r;
  r.end.resize(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    // A hair past the switch, so that rounding in the next evaluation cannot leave the unit on
    // the old side and make an empty region; the width skipped is a 1e-6 fraction of the region.
    const double d = step[static_cast<size_t>(s)];
    const double end = alpha[static_cast<size_t>(s)] + d * (1.0 + 1e-6) + 1e-12;
    r.end[static_cast<size_t>(s)] = std::min(1.0, end);
  }
  r.output_tangent = std::move(tangent);
  return r;
}

}  // namespace attributions
