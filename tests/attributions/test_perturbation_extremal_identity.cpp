// Extremal perturbations: the smooth-mask generator is byte-identical to its implementation at
// ca0ecf8 (kept below as the reference: per parameter a lookup of E by weight class, the forward
// in bands of `step` mask rows, the backward by parameter rows over span-wide accumulators),
// masks, Σ E, the unclamped mask and the parameters' gradient, at the experiment's default-scale
// (64×64, step 2, σ 6) and paper-scale (224×224, step 7, σ 21) settings and on odd sizes, in
// float and double, with 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <type_traits>
#include <vector>

#include <opencv2/core.hpp>
#include <tbb/parallel_for.h>

#include "attributions/perturbation.h"
#include "attributions/extremal_perturbation.h"
#include "lab/core/runtime.h"

namespace {

constexpr double kColdness = 20.0;

// The generator of ca0ecf8, unchanged but for names and the class around it.
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
        const T cp = c * static_cast<T>(p[static_cast<size_t>(iy * grid_w + ix)]);
        for (int64_t i = 0; i < classes; ++i) row[ix * classes + i] = cp * weights[static_cast<size_t>(i)] - c;
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
          const T* tab = &table[static_cast<size_t>(j * classes)];
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t t = t0; t < t1; ++t) {
              const size_t at = r0 + static_cast<size_t>(r * span + t);
              const size_t u = static_cast<size_t>((uy0 + r) * out_w + u0 + t);
              const T e = tab[cls[at]];
              den[u] += e;
              num[u] += pv * patch[at] * e;
            }
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
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t t = t0; t < t1; ++t) {
              const size_t at = r0 + static_cast<size_t>(r * span + t);
              const size_t u = static_cast<size_t>((uy0 + r) * out_w + u0 + t);
              const T ew = tab[cls[at]] * patch[at];
              acc1[static_cast<size_t>(t)] += ew * h[u];
              acc2[static_cast<size_t>(t)] += ew * patch[at] * g[u];
            }
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

template <typename V>
bool same_bytes(const std::vector<V>& a, const std::vector<V>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(V)) == 0;
}

template <typename T>
void check_identity(int64_t height, int64_t width, int64_t step, double sigma, uint32_t seed) {
  CAPTURE(height);
  CAPTURE(width);
  CAPTURE(step);
  CAPTURE(sigma);
  const attributions::BasicSmoothMask<T> gen(height, width, step, sigma);
  const Reference<T> ref(height, width, step, sigma);
  REQUIRE(gen.out_h() == ref.out_h);
  REQUIRE(gen.out_w() == ref.out_w);
  const size_t np = static_cast<size_t>(gen.grid_h() * gen.grid_w()), pixels = static_cast<size_t>(ref.out_h * ref.out_w);
  std::mt19937 rng(seed);
  // p ≡ 1 (the method's start and its normalisation), p uniform in [0, 1], and p as an
  // optimisation leaves it: most parameters at 0 or 1, the rest in between.
  std::vector<std::vector<double>> ps(3, std::vector<double>(np, 1.0));
  for (double& v : ps[1]) v = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  for (double& v : ps[2]) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    v = u < 0.4 ? 0.0 : u < 0.8 ? 1.0 : std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  }
  lab::Runtime& rt = lab::Runtime::get();
  const int before = rt.threads();
  typename attributions::BasicSmoothMask<T>::State state;  // reused across the cases, as the method does
  std::vector<T> mask;
  std::vector<double> grad;
  for (size_t c = 0; c < ps.size(); ++c) {
    CAPTURE(c);
    std::vector<T> unclamped, den, table;
    const std::vector<T> want = ref.generate(ps[c], unclamped, den, table);
    std::vector<T> grad_mask(pixels);
    for (T& v : grad_mask) {
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      v = u < 0.2 ? T(0) : static_cast<T>(std::uniform_real_distribution<double>(-1.0, 1.0)(rng));
    }
    const std::vector<double> want_grad = ref.backward(ps[c], unclamped, den, table, grad_mask);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      rt.set_threads(threads);
      gen.generate(ps[c], state, mask);
      CHECK(same_bytes(mask, want));
      CHECK(same_bytes(state.unclamped, unclamped));
      CHECK(same_bytes(state.den, den));
      gen.backward(state, grad_mask, grad);
      CHECK(same_bytes(grad, want_grad));
    }
    // The one-shot overloads too.
    typename attributions::BasicSmoothMask<T>::State fresh;
    CHECK(same_bytes(gen.generate(ps[c], &fresh), want));
    CHECK(same_bytes(gen.backward(fresh, grad_mask), want_grad));
  }
  rt.set_threads(before);
}

}  // namespace

TEST_CASE("smooth masks: byte-identical to the generator of ca0ecf8 at both scales, float and double") {
  check_identity<float>(64, 64, 2, 6.0, 1);      // the default-scale experiment's settings
  check_identity<float>(224, 224, 7, 21.0, 2);   // the paper's
  check_identity<float>(20, 17, 3, 5.0, 3);      // odd sizes: partial bands and phases
  check_identity<float>(61, 50, 2, 6.0, 4);
  check_identity<double>(64, 64, 2, 6.0, 5);
  check_identity<double>(33, 45, 7, 21.0, 6);
}
