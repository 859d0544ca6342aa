#include "attributions/extremal_perturbation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <tbb/parallel_for.h>

#include "attributions/perturbation.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

constexpr double kColdness = 20.0;  // of the smooth max (TorchRay's MaskGenerator)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The blur pyramid of one C×H×W image: level l (l = 0..L−1) blurred with σ_l = σ(1 − l/(L−1)).
std::vector<std::vector<float>> blur_pyramid(const float* x, int64_t channels, int64_t height, int64_t width,
                                             int64_t levels, double sigma) {
  const int64_t plane = height * width;
  std::vector<std::vector<float>> pyramid(static_cast<size_t>(levels), std::vector<float>(x, x + channels * plane));
  for (int64_t l = 0; l + 1 < levels; ++l) {
    const double s = sigma * (1.0 - static_cast<double>(l) / static_cast<double>(levels - 1));
    for (int64_t c = 0; c < channels; ++c) {
      const cv::Mat src(static_cast<int>(height), static_cast<int>(width), CV_32F, const_cast<float*>(x + c * plane));
      cv::Mat dst(static_cast<int>(height), static_cast<int>(width), CV_32F, pyramid[static_cast<size_t>(l)].data() + c * plane);
      cv::GaussianBlur(src, dst, cv::Size(0, 0), s, s, cv::BORDER_REFLECT_101);
    }
  }
  return pyramid;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Smooth masks

SmoothMask::SmoothMask(int64_t height, int64_t width, int64_t step, double sigma)
    : height_(height), width_(width), step_(step) {
  // Layout of TorchRay's MaskGenerator: parameter j sits at pixel margin + step·j of the full
  // mask; pixel u sees the (2r+1)² parameters around ⌊u/step⌋ − padding + (0..2r).
  padding_ = 1 + static_cast<int64_t>(std::ceil(2.0 * sigma / static_cast<double>(step)));
  const int64_t radius = 1 + static_cast<int64_t>(std::ceil(sigma / static_cast<double>(step)));
  side_ = 2 * radius + 1;
  const int64_t side = side_, padding = padding_;
  grid_h_ = ceil_div(height, step);
  grid_w_ = ceil_div(width, step);
  out_h_ = step * (grid_h_ + 2 * padding - side + 1) - step + 1;
  out_w_ = step * (grid_w_ + 2 * padding - side + 1) - step + 1;
  margin_ = static_cast<int64_t>(std::lround(sigma));
  if (out_h_ < margin_ + height || out_w_ < margin_ + width)
    lab::fail_parameter("extremal-perturbation: mask-sigma {} is too small for step {} (need about mask-sigma >= 3·step)",
                        sigma, step);
  taps_ = side * side;
  // Pixel u's offset to its tap's centre depends only on u mod step: one table per phase.
  weights_.resize(static_cast<size_t>(step * step * taps_));
  for (int64_t py = 0; py < step; ++py)
    for (int64_t px = 0; px < step; ++px)
      for (int64_t ky = 0; ky < side; ++ky)
        for (int64_t kx = 0; kx < side; ++kx) {
          const double dy = static_cast<double>(py - step * (ky - padding)) - sigma;
          const double dx = static_cast<double>(px - step * (kx - padding)) - sigma;
          const double z = std::max(std::sqrt(dy * dy + dx * dx) / sigma - 0.5, 0.0);
          weights_[static_cast<size_t>((py * step + px) * taps_ + ky * side + kx)] = std::exp(-2.0 * z * z);
        }
}

void SmoothMask::row_taps(const std::vector<double>& p, int64_t uy, RowTaps& row) const {
  // The `step` pixels of a column block share their taps' parameters; only the kernel weights
  // differ, by the pixel's phase.
  const int64_t blocks = ceil_div(out_w_, step_);
  row.index.resize(static_cast<size_t>(blocks * taps_));
  row.value.resize(static_cast<size_t>(blocks * taps_));
  const int64_t iy0 = uy / step_ - padding_;
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t* index = &row.index[static_cast<size_t>(b * taps_)];
    double* value = &row.value[static_cast<size_t>(b * taps_)];
    for (int64_t ky = 0, k = 0; ky < side_; ++ky) {
      const int64_t iy = iy0 + ky;
      for (int64_t kx = 0; kx < side_; ++kx, ++k) {
        const int64_t ix = b - padding_ + kx;
        const bool inside = iy >= 0 && iy < grid_h_ && ix >= 0 && ix < grid_w_;
        index[k] = inside ? iy * grid_w_ + ix : -1;
        value[k] = inside ? p[static_cast<size_t>(index[k])] : 0.0;
      }
    }
  }
  const size_t n = static_cast<size_t>(out_w_ * taps_);
  row.a.resize(n);
  row.e.resize(n);
  for (int64_t ux = 0; ux < out_w_; ++ux) {
    const double* weight = &weights_[static_cast<size_t>(((uy % step_) * step_ + ux % step_) * taps_)];
    const double* value = &row.value[static_cast<size_t>((ux / step_) * taps_)];
    double* a = &row.a[static_cast<size_t>(ux * taps_)];
    double* e = &row.e[static_cast<size_t>(ux * taps_)];
    double top = 0;
    for (int64_t k = 0; k < taps_; ++k) {
      a[k] = weight[k] * value[k];
      top = std::max(top, a[k]);
    }
    for (int64_t k = 0; k < taps_; ++k) e[k] = kColdness * (a[k] - top);
  }
  cv::Mat m(1, static_cast<int>(n), CV_64F, row.e.data());
  cv::exp(m, m);
}

std::vector<double> SmoothMask::generate(const std::vector<double>& p, std::vector<double>* unclamped) const {
  LAB_CHECK(static_cast<int64_t>(p.size()) == grid_h_ * grid_w_, "{} mask parameters", p.size());
  std::vector<double> mask(static_cast<size_t>(out_h_ * out_w_));
  if (unclamped) unclamped->resize(mask.size());
  tbb::parallel_for(int64_t{0}, out_h_, [&](int64_t uy) {
    RowTaps row;
    row_taps(p, uy, row);
    for (int64_t ux = 0; ux < out_w_; ++ux) {
      const double* a = &row.a[static_cast<size_t>(ux * taps_)];
      const double* e = &row.e[static_cast<size_t>(ux * taps_)];
      double num = 0, den = 0;
      for (int64_t k = 0; k < taps_; ++k) {
        num += a[k] * e[k];
        den += e[k];
      }
      const double v = num / den;
      const size_t u = static_cast<size_t>(uy * out_w_ + ux);
      if (unclamped) (*unclamped)[u] = v;
      mask[u] = std::clamp(v, 0.0, 1.0);
    }
  });
  return mask;
}

std::vector<double> SmoothMask::backward(const std::vector<double>& p, const std::vector<double>& unclamped,
                                         const std::vector<double>& grad_mask) const {
  const size_t np = p.size();
  // Rows of the full mask in bands of `step` (fixed, whatever the thread count); each band sums
  // into its own vector, and the bands are added in order, so the result is deterministic.
  const int64_t bands = ceil_div(out_h_, step_);
  std::vector<std::vector<double>> partial(static_cast<size_t>(bands), std::vector<double>(np, 0.0));
  tbb::parallel_for(int64_t{0}, bands, [&](int64_t band) {
    std::vector<double>& g = partial[static_cast<size_t>(band)];
    RowTaps row;
    std::vector<double> block(static_cast<size_t>(taps_));
    auto live = [&](size_t u) { return grad_mask[u] != 0.0 && unclamped[u] >= 0.0 && unclamped[u] <= 1.0; };
    for (int64_t uy = band * step_; uy < std::min(out_h_, (band + 1) * step_); ++uy) {
      bool any = false;
      for (int64_t ux = 0; ux < out_w_ && !any; ++ux) any = live(static_cast<size_t>(uy * out_w_ + ux));
      if (!any) continue;
      row_taps(p, uy, row);
      // ∂ smax / ∂ a_k = softmax_k · (1 + coldness · (a_k − smax)), times ∂a_k/∂p_j = w_k; the
      // pixels of a column block are summed per tap, then scattered to their parameters once.
      for (int64_t b = 0; b * step_ < out_w_; ++b) {
        std::fill(block.begin(), block.end(), 0.0);
        bool used = false;
        for (int64_t ux = b * step_; ux < std::min(out_w_, (b + 1) * step_); ++ux) {
          const size_t u = static_cast<size_t>(uy * out_w_ + ux);
          if (!live(u)) continue;
          used = true;
          const double* weight = &weights_[static_cast<size_t>(((uy % step_) * step_ + ux % step_) * taps_)];
          const double* a = &row.a[static_cast<size_t>(ux * taps_)];
          const double* e = &row.e[static_cast<size_t>(ux * taps_)];
          double den = 0;
          for (int64_t k = 0; k < taps_; ++k) den += e[k];
          const double scale = grad_mask[u] / den, s_value = unclamped[u];
          for (int64_t k = 0; k < taps_; ++k)
            block[static_cast<size_t>(k)] += scale * e[k] * (1.0 + kColdness * (a[k] - s_value)) * weight[k];
        }
        if (!used) continue;
        const int64_t* index = &row.index[static_cast<size_t>(b * taps_)];
        for (int64_t k = 0; k < taps_; ++k)
          if (index[k] >= 0) g[static_cast<size_t>(index[k])] += block[static_cast<size_t>(k)];
      }
    }
  });
  std::vector<double> grad(np, 0.0);
  for (const auto& g : partial)
    for (size_t j = 0; j < np; ++j) grad[j] += g[j];
  return grad;
}

double area_loss(const std::vector<double>& mask, double area, std::vector<double>* grad) {
  const size_t n = mask.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mask[a] < mask[b]; });
  const size_t zeros = static_cast<size_t>(static_cast<double>(n) * (1.0 - area));
  if (grad) grad->assign(n, 0.0);
  double loss = 0;
  for (size_t rank = 0; rank < n; ++rank) {
    const double d = mask[order[rank]] - (rank < zeros ? 0.0 : 1.0);
    loss += d * d;
    if (grad) (*grad)[order[rank]] = 2.0 * d / static_cast<double>(n);
  }
  return loss / static_cast<double>(n);
}

// ---------------------------------------------------------------------------------------------
// The method

void ExtremalPerturbation::Params::validate() const {
  lab::require(area > 0 && area < 1, "area", "in (0, 1)", std::to_string(area));
  lab::require(blur_sigma > 0, "blur-sigma", "> 0", std::to_string(blur_sigma));
  lab::require(levels >= 2, "levels", ">= 2", std::to_string(levels));
  lab::require(step >= 1, "step", ">= 1", std::to_string(step));
  lab::require(mask_sigma > 0, "mask-sigma", "> 0", std::to_string(mask_sigma));
  lab::require(iterations >= 1, "iterations", ">= 1", std::to_string(iterations));
  lab::require(lr > 0, "lr", "> 0", std::to_string(lr));
  lab::require(momentum >= 0 && momentum < 1, "momentum", "in [0, 1)", std::to_string(momentum));
  lab::require(area_weight > 0, "area-weight", "> 0", std::to_string(area_weight));
  lab::require(area_weight_growth >= 1, "area-weight-growth", ">= 1", std::to_string(area_weight_growth));
}

ExtremalPerturbation::Params ExtremalPerturbation::Params::from_options(lab::Options& options) {
  Params p;
  p.area = options.get_double("area", p.area);
  p.blur_sigma = options.get_double("blur-sigma", p.blur_sigma);
  p.levels = options.get_int("levels", p.levels);
  p.step = options.get_int("step", p.step);
  p.mask_sigma = options.get_double("mask-sigma", p.mask_sigma);
  p.iterations = options.get_int("iterations", p.iterations);
  p.lr = options.get_double("lr", p.lr);
  p.momentum = options.get_double("momentum", p.momentum);
  p.area_weight = options.get_double("area-weight", p.area_weight);
  p.area_weight_growth = options.get_double("area-weight-growth", p.area_weight_growth);
  p.jitter = options.get_bool("jitter", p.jitter);
  p.output = read_output(options, p.output);
  p.validate();
  return p;
}

nlohmann::json ExtremalPerturbation::Params::to_json() const {
  return {{"area", area},
          {"blur-sigma", blur_sigma},
          {"levels", levels},
          {"step", step},
          {"mask-sigma", mask_sigma},
          {"iterations", iterations},
          {"lr", lr},
          {"momentum", momentum},
          {"area-weight", area_weight},
          {"area-weight-growth", area_weight_growth},
          {"jitter", jitter},
          {"output", output_name(output)}};
}

ExtremalPerturbation::ExtremalPerturbation(Params params) : params_(std::move(params)) { params_.validate(); }

Result ExtremalPerturbation::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const lab::Tensor& x = batch.x;
  if (x.rank() != 4)
    lab::fail_parameter("extremal-perturbation needs C×H×W inputs, got {}", lab::to_string(x.sample_shape()));
  const lab::Network net = explained_network(*context.net, params_.output);
  const int64_t n = x.batch(), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  const int64_t plane = height * width, numel = x.sample_numel(), levels = params_.levels;
  const SmoothMask generator(height, width, params_.step, params_.mask_sigma);
  const int64_t margin = generator.margin(), out_w = generator.out_w();

  std::vector<std::vector<std::vector<float>>> pyramid(static_cast<size_t>(n));
  parallel_items(0, n, [&](int64_t s) {
    pyramid[s] = blur_pyramid(x.sample(s), channels, height, width, levels, params_.blur_sigma);
  });
  const size_t np = static_cast<size_t>(generator.grid_h() * generator.grid_w());
  std::vector<std::vector<double>> p(static_cast<size_t>(n), std::vector<double>(np, 1.0));
  std::vector<Sgd> sgd(static_cast<size_t>(n), Sgd(np, params_.lr, params_.momentum, params_.momentum));
  std::vector<std::vector<double>> crop(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(plane)));
  std::vector<std::vector<double>> full(static_cast<size_t>(n)), unclamped(static_cast<size_t>(n));
  lab::Tensor inputs(x.shape());
  Backprop bp{.net = &net};
  double lambda = params_.area_weight;
  Result r;

  // Pixel i of sample s at mask value m: level k = ⌊m(L−1)⌋ and k1 = min(k+1, L−1), weight w.
  auto levels_of = [&](double m, int64_t& k, int64_t& k1, double& w) {
    const double level = m * static_cast<double>(levels - 1);
    k = std::min(static_cast<int64_t>(std::floor(level)), levels - 1);
    k1 = std::min(k + 1, levels - 1);
    w = level - static_cast<double>(k);
  };
  for (int64_t t = 0; t < params_.iterations; ++t) {
    const bool flip = params_.jitter && t % 2 == 0;
    for (int64_t s = 0; s < n; ++s) {
      full[s] = generator.generate(p[s], &unclamped[s]);
      for (int64_t y = 0; y < height; ++y)
        for (int64_t xx = 0; xx < width; ++xx)
          crop[s][static_cast<size_t>(y * width + xx)] = full[s][static_cast<size_t>((y + margin) * out_w + xx + margin)];
    }
    parallel_items(0, n * height, [&](int64_t row) {
      const int64_t s = row / height, y = row % height;
      const auto& pyr = pyramid[s];
      float* dst = inputs.sample(s);
      for (int64_t xx = 0; xx < width; ++xx) {
        int64_t k, k1;
        double w;
        levels_of(crop[s][static_cast<size_t>(y * width + xx)], k, k1, w);
        const int64_t to = y * width + (flip ? width - 1 - xx : xx);
        for (int64_t c = 0; c < channels; ++c) {
          const size_t i = static_cast<size_t>(c * plane + y * width + xx);
          dst[c * plane + to] = static_cast<float>((1.0 - w) * pyr[k][i] + w * pyr[k1][i]);
        }
      }
    });
    lab::Tensor grad(x.shape());
    r.evaluations += run_backprop(
        bp, n, context.chunk, [&](int64_t b, int64_t e) { return inputs.slice(b, e); },
        [&](int64_t i) { return batch.target[static_cast<size_t>(i)]; },
        [&](int64_t begin, const lab::Trace&, const lab::Tensor& signal) {
          std::copy(signal.values().begin(), signal.values().end(), grad.data() + begin * numel);
        });
    parallel_items(0, n, [&](int64_t s) {
      // ∂E/∂m = −∂f/∂m + λ ∂R/∂m on the full mask; the image occupies its centre.
      std::vector<double> g_full;
      area_loss(full[s], params_.area, &g_full);
      for (double& v : g_full) v *= lambda;
      const float* g = grad.sample(s);
      const auto& pyr = pyramid[s];
      for (int64_t y = 0; y < height; ++y)
        for (int64_t xx = 0; xx < width; ++xx) {
          int64_t k, k1;
          double w;
          levels_of(crop[s][static_cast<size_t>(y * width + xx)], k, k1, w);
          const int64_t from = y * width + (flip ? width - 1 - xx : xx);
          double df_dm = 0;
          for (int64_t c = 0; c < channels; ++c) {
            const size_t i = static_cast<size_t>(c * plane + y * width + xx);
            df_dm += g[c * plane + from] * static_cast<double>(pyr[k1][i] - pyr[k][i]);
          }
          g_full[static_cast<size_t>((y + margin) * out_w + xx + margin)] -= df_dm * static_cast<double>(levels - 1);
        }
      const std::vector<double> g_p = generator.backward(p[s], unclamped[s], g_full);
      sgd[s].step(p[s], g_p);
      for (double& v : p[s]) v = std::clamp(v, 0.0, 1.0);
    });
    lambda *= params_.area_weight_growth;
  }

  lab::Tensor maps({n, height, width});
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < plane; ++i) maps[s * plane + i] = static_cast<float>(crop[s][static_cast<size_t>(i)]);
  r.attr = spread_over_channels(maps, channels);
  return r;
}

MethodInfo ExtremalPerturbation::info() {
  return make_info<ExtremalPerturbation>(
      "extremal-perturbation",
      "smooth mask of fixed area that best preserves the output under blur (Fong et al. 2019)",
      {{"area", "preserved fraction a of the mask (App. F.2: 0.1)"},
       {"blur-sigma", "σ of the strongest Gaussian blur (App. F.2: 21)"},
       {"levels", "blur pyramid levels, interpolated linearly"},
       {"step", "mask parameter grid step in pixels"},
       {"mask-sigma", "smoothing σ of the mask in pixels"},
       {"iterations", "optimisation steps (TorchRay: 800)"},
       {"lr", "SGD learning rate on the mask parameters (TorchRay: 0.01)"},
       {"momentum", "SGD momentum, also its dampening (TorchRay: 0.9)"},
       {"area-weight", "λ of the area loss at the first iteration (TorchRay: 300)"},
       {"area-weight-growth", "factor applied to λ after every iteration (TorchRay: 1.0035)"},
       {"jitter", "on: flip the perturbed input horizontally on even iterations"},
       {"output", "logit (before the softmax) | probability"}});
}

}  // namespace attributions
