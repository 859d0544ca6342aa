// The smooth-mask generator of ca0ecf8, with its vectorised loops (per parameter a lookup of E
// by weight class, the forward in bands of `step` mask rows, the backward by parameter rows over
// span-wide accumulators), kept as the reference of BasicSmoothMask's byte identity
// (test_perturbation_extremal_identity.cpp) and as the "before" of its per-call benchmark
// (bench/bench_smooth_mask.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <type_traits>
#include <vector>

#include <opencv2/core.hpp>
#include <tbb/parallel_for.h>

#include "attributions/perturbation.h"
#include "lab/core/simd.h"

namespace smooth_mask_reference {

constexpr double kColdness = 20.0;

// ca0ecf8's vectorised loops, unchanged.
// args = c·p·w − c, the exponent c(a − 1) of a = p·w.
template <typename T>
LAB_VECTOR_CLONES void exponent_args(const T* __restrict w, T cp, T c, T* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = cp * w[i] - c;
}

// den += E, num += (p·w)·E over `rows` patch rows of `cols` values (E looked up by weight class);
// patch rows are `span` apart, mask rows `stride` apart.
template <typename T>
LAB_VECTOR_CLONES void splat_block(const T* __restrict table, const int32_t* __restrict cls, const T* __restrict w, T p,
                                   T* __restrict den, T* __restrict num, int64_t rows, int64_t cols, int64_t span,
                                   int64_t stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* __restrict c = cls + r * span;
    const T* __restrict wr = w + r * span;
    T* __restrict d = den + r * stride;
    T* __restrict m = num + r * stride;
    for (int64_t i = 0; i < cols; ++i) {
      const T e = table[c[i]];
      d[i] += e;
      m[i] += p * wr[i] * e;
    }
  }
}

// acc1 += E·w·H, acc2 += E·w²·G over the same block, lane by lane (column by column).
template <typename T>
LAB_VECTOR_CLONES void gather_block(const T* __restrict table, const int32_t* __restrict cls, const T* __restrict w,
                                    const T* __restrict g, const T* __restrict h, T* __restrict acc1,
                                    T* __restrict acc2, int64_t rows, int64_t cols, int64_t span, int64_t stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* __restrict c = cls + r * span;
    const T* __restrict wr = w + r * span;
    const T* __restrict gr = g + r * stride;
    const T* __restrict hr = h + r * stride;
    for (int64_t i = 0; i < cols; ++i) {
      const T ew = table[c[i]] * wr[i];
      acc1[i] += ew * hr[i];
      acc2[i] += ew * wr[i] * gr[i];
    }
  }
}


// ca0ecf8's BasicSmoothMask, unchanged but for names and the class around it.
template <typename T>
struct Reference {
  int64_t step, grid_h, grid_w, out_h, out_w, padding, side, span, offset;
  std::vector<T> patch, weights;
  std::vector<int32_t> cls;
  std::vector<int64_t> in_rows, in_cols;
  T outside;

  Reference(int64_t height, int64_t width, int64_t step_, double sigma) : step(step_) {
    padding = 1 + static_cast<int64_t>(std::ceil(2.0 * sigma / static_cast<double>(step)));
    const int64_t radius = 1 + static_cast<int64_t>(std::ceil(sigma / static_cast<double>(step)));
    side = 2 * radius + 1;
    span = side * step;
    grid_h = attributions::ceil_div(height, step);
    grid_w = attributions::ceil_div(width, step);
    out_h = step * (grid_h + 2 * padding - side + 1) - step + 1;
    out_w = step * (grid_w + 2 * padding - side + 1) - step + 1;
    offset = step * (padding - side + 1);
    patch.resize(static_cast<size_t>(span * span));
    for (int64_t r = 0; r < span; ++r)
      for (int64_t t = 0; t < span; ++t) {
        const double dy = static_cast<double>(offset + r) - sigma, dx = static_cast<double>(offset + t) - sigma;
        const double z = std::max(std::sqrt(dy * dy + dx * dx) / sigma - 0.5, 0.0);
        patch[static_cast<size_t>(r * span + t)] = static_cast<T>(std::exp(-2.0 * z * z));
      }
    std::map<T, int32_t> classes;
    for (T w : patch) classes.emplace(w, 0);
    for (auto& [w, k] : classes) {
      k = static_cast<int32_t>(weights.size());
      weights.push_back(w);
    }
    cls.resize(patch.size());
    for (size_t i = 0; i < patch.size(); ++i) cls[i] = classes.at(patch[i]);
    auto inside = [&](int64_t u, int64_t grid) {
      const int64_t first = u / step - padding;
      return std::max<int64_t>(0, std::min(first + side, grid) - std::max<int64_t>(first, 0));
    };
    in_rows.resize(static_cast<size_t>(out_h));
    in_cols.resize(static_cast<size_t>(out_w));
    for (int64_t u = 0; u < out_h; ++u) in_rows[static_cast<size_t>(u)] = inside(u, grid_h);
    for (int64_t u = 0; u < out_w; ++u) in_cols[static_cast<size_t>(u)] = inside(u, grid_w);
    outside = static_cast<T>(std::exp(-kColdness));
  }

  void columns(int64_t ix, int64_t& u0, int64_t& t0, int64_t& t1) const {
    u0 = step * ix + offset;
    t0 = std::max<int64_t>(0, -u0);
    t1 = std::min(span, out_w - u0);
  }

  std::vector<T> exponentials(const std::vector<double>& p) const {
    const int64_t classes = static_cast<int64_t>(weights.size());
    std::vector<T> table(p.size() * weights.size());
    const T c = static_cast<T>(kColdness);
    tbb::parallel_for(int64_t{0}, grid_h, [&](int64_t iy) {
      T* row = &table[static_cast<size_t>(iy * grid_w * classes)];
      for (int64_t ix = 0; ix < grid_w; ++ix) {
        exponent_args(weights.data(), c * static_cast<T>(p[static_cast<size_t>(iy * grid_w + ix)]), c, row + ix * classes,
                      classes);
      }
      cv::Mat m(1, static_cast<int>(grid_w * classes), std::is_same_v<T, float> ? CV_32F : CV_64F, row);
      cv::exp(m, m);
    });
    return table;
  }

  // mask, and unclamped and den and table for the backward.
  std::vector<T> generate(const std::vector<double>& p, std::vector<T>& unclamped, std::vector<T>& den,
                          std::vector<T>& table) const {
    const size_t pixels = static_cast<size_t>(out_h * out_w);
    std::vector<T> num(pixels, T(0));
    den.assign(pixels, T(0));
    const int64_t bands = attributions::ceil_div(out_h, step), classes = static_cast<int64_t>(weights.size());
    table = exponentials(p);
    tbb::parallel_for(int64_t{0}, bands, [&](int64_t b) {
      const int64_t uy0 = b * step, rows = std::min(step, out_h - uy0);
      for (int64_t uy = uy0; uy < uy0 + rows; ++uy)
        for (int64_t ux = 0; ux < out_w; ++ux)
          den[static_cast<size_t>(uy * out_w + ux)] =
              static_cast<T>(side * side - in_rows[static_cast<size_t>(uy)] * in_cols[static_cast<size_t>(ux)]) * outside;
      for (int64_t ky = 0; ky < side; ++ky) {
        const int64_t iy = b - padding + ky;
        if (iy < 0 || iy >= grid_h) continue;
        const size_t r0 = static_cast<size_t>(step * (side - 1 - ky) * span);
        for (int64_t ix = 0; ix < grid_w; ++ix) {
          int64_t u0, t0, t1;
          columns(ix, u0, t0, t1);
          const int64_t j = iy * grid_w + ix;
          const T pv = static_cast<T>(p[static_cast<size_t>(j)]);
          const size_t u = static_cast<size_t>(uy0 * out_w + u0 + t0), at = r0 + static_cast<size_t>(t0);
          splat_block(&table[static_cast<size_t>(j * classes)], &cls[at], &patch[at], pv, &den[u], &num[u], rows, t1 - t0,
                      span, out_w);
        }
      }
    });
    std::vector<T> mask(pixels);
    unclamped.resize(pixels);
    for (size_t u = 0; u < pixels; ++u) {
      const T v = num[u] / den[u];
      unclamped[u] = v;
      mask[u] = std::clamp(v, T(0), T(1));
    }
    return mask;
  }

  std::vector<double> backward(const std::vector<double>& p, const std::vector<T>& unclamped, const std::vector<T>& den,
                               const std::vector<T>& table, const std::vector<T>& grad_mask) const {
    const size_t pixels = static_cast<size_t>(out_h * out_w);
    const T c = static_cast<T>(kColdness);
    std::vector<T> g(pixels), h(pixels);
    for (size_t u = 0; u < pixels; ++u) {
      const T v = unclamped[u];
      const bool live = grad_mask[u] != T(0) && v >= T(0) && v <= T(1);
      g[u] = live ? grad_mask[u] / den[u] : T(0);
      h[u] = g[u] * (T(1) - c * v);
    }
    const int64_t bands = attributions::ceil_div(out_h, step), classes = static_cast<int64_t>(weights.size());
    std::vector<double> grad(p.size(), 0.0);
    tbb::parallel_for(int64_t{0}, grid_h, [&](int64_t iy) {
      std::vector<T> acc1(static_cast<size_t>(span)), acc2(static_cast<size_t>(span));
      for (int64_t ix = 0; ix < grid_w; ++ix) {
        const int64_t j = iy * grid_w + ix;
        const T* tab = &table[static_cast<size_t>(j * classes)];
        int64_t u0, t0, t1;
        columns(ix, u0, t0, t1);
        std::fill(acc1.begin(), acc1.end(), T(0));
        std::fill(acc2.begin(), acc2.end(), T(0));
        for (int64_t ky = 0; ky < side; ++ky) {
          const int64_t b = iy + padding - ky;
          if (b < 0 || b >= bands) continue;
          const size_t r0 = static_cast<size_t>(step * (side - 1 - ky) * span);
          const int64_t uy0 = b * step, rows = std::min(step, out_h - uy0);
          const size_t u = static_cast<size_t>(uy0 * out_w + u0 + t0), at = r0 + static_cast<size_t>(t0);
          gather_block(tab, &cls[at], &patch[at], &g[u], &h[u], &acc1[static_cast<size_t>(t0)],
                       &acc2[static_cast<size_t>(t0)], rows, t1 - t0, span, out_w);
        }
        double s1 = 0, s2 = 0;
        for (int64_t t = t0; t < t1; ++t) {
          s1 += static_cast<double>(acc1[static_cast<size_t>(t)]);
          s2 += static_cast<double>(acc2[static_cast<size_t>(t)]);
        }
        grad[static_cast<size_t>(j)] = s1 + kColdness * p[static_cast<size_t>(j)] * s2;
      }
    });
    return grad;
  }
};

}  // namespace smooth_mask_reference
