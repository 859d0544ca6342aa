#include "attributions/extremal_perturbation.h"

#include <algorithm>
#include <map>
#include <memory>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "attributions/perturbation.h"
#include "lab/core/error.h"
#include "lab/core/simd.h"
#include "lab/core/storage.h"

namespace attributions {

namespace {

constexpr double kColdness = 20.0;  // of the smooth max (TorchRay's MaskGenerator)

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

namespace {

// args = c·p·w − c, the exponent c(a − 1) of a = p·w.
template <typename T>
LAB_VECTOR_CLONES void exponent_args(const T* __restrict w, T cp, T c, T* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = cp * w[i] - c;
}

// GCC vectors of 32 bytes (one AVX2 register; two SSE2 registers in the default build): each
// lane computes what a scalar loop would, with the same operations in the same order.
template <typename T>
struct Lanes {
  typedef T type __attribute__((vector_size(32)));
  static constexpr int64_t width = 32 / static_cast<int64_t>(sizeof(T));
};

template <typename T>
inline __attribute__((always_inline)) void load_lanes(typename Lanes<T>::type& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}

template <typename T>
inline __attribute__((always_inline)) void store_lanes(T* p, const typename Lanes<T>::type& v) {
  std::memcpy(p, &v, sizeof v);
}

// f.operator()<V>(k) over [0, n) (n a multiple of the vector width): blocks of V = 5 vectors from
// k = 0, then one block of the 1 to 4 vectors left (each block is one pass over the taps).
template <typename T, typename F>
inline __attribute__((always_inline)) void by_vectors(int64_t n, F&& f) {
  constexpr int64_t width = Lanes<T>::width;
  int64_t k = 0;
  for (; k + 5 * width <= n; k += 5 * width) f.template operator()<5>(k);
  switch ((n - k) / width) {
    case 4: f.template operator()<4>(k); break;
    case 3: f.template operator()<3>(k); break;
    case 2: f.template operator()<2>(k); break;
    case 1: f.template operator()<1>(k); break;
    default: break;
  }
}

// The taps of one phase of a mask row: parameter rows j = 0..rows−1 (E rows at e + j·e_step, p
// rows at p + j·p_step), each with `taps` taps i (tap_stride apart from one row to the next):
// E at offset off[i], p at offset d[i], weight w[i].
template <typename T>
struct PhaseTaps {
  const T* e;
  int64_t e_step;
  const T* p;
  int64_t p_step;
  int64_t rows;
  const int64_t* off;
  const int64_t* d;
  const T* w;
  int64_t taps, tap_stride;
};

// `V` vectors of phase columns from k, held in registers over all the taps in order:
// den += E, num += (p·w)·E.
template <typename T, int V>
inline __attribute__((always_inline)) void splat_lanes(const PhaseTaps<T>& pt, T* __restrict den, T* __restrict num,
                                                       int64_t k) {
  using L = Lanes<T>;
  typename L::type dv[V], mv[V];
  for (int v = 0; v < V; ++v) {
    load_lanes(dv[v], den + k + v * L::width);
    load_lanes(mv[v], num + k + v * L::width);
  }
  for (int64_t j = 0; j < pt.rows; ++j) {
    const T* __restrict e = pt.e + j * pt.e_step + k;
    const T* __restrict p = pt.p + j * pt.p_step + k;
    const int64_t* __restrict off = pt.off + j * pt.tap_stride;
    const T* __restrict w = pt.w + j * pt.tap_stride;
    for (int64_t i = 0; i < pt.taps; ++i) {
      const T* __restrict ei = e + off[i];
      const T* __restrict pi = p + pt.d[i];
      const T wi = w[i];
      for (int v = 0; v < V; ++v) {
        typename L::type ev, pv;
        load_lanes(ev, ei + v * L::width);
        load_lanes(pv, pi + v * L::width);
        dv[v] += ev;
        mv[v] += pv * wi * ev;
      }
    }
  }
  for (int v = 0; v < V; ++v) {
    store_lanes(den + k + v * L::width, dv[v]);
    store_lanes(num + k + v * L::width, mv[v]);
  }
}

// All taps of one phase of a mask row, in order, over phase columns [0, n) (n a multiple of the
// vector width): each adds E and (p·w)·E to the columns (E and p of the parameter column a
// column meets, 0 off the grid).
template <typename T>
LAB_VECTOR_CLONES void splat_phase(const PhaseTaps<T>& pt, T* __restrict den, T* __restrict num, int64_t n) {
  by_vectors<T>(n, [&]<int V>(int64_t k) __attribute__((always_inline)) { splat_lanes<T, V>(pt, den, num, k); });
}

// What one tap (patch column t) of a parameter row meets over the mask rows of its patch:
// pair j = 0..n−1 is patch row r[j] (E at offset off[r[j]], weight w[r[j]] in the tap's column)
// and mask row at offset line[j] of G and H (g and h already at the tap's phase and column shift).
template <typename T>
struct ColumnTaps {
  const T* e;
  const int64_t* off;
  const T* w;
  const int64_t* r;
  const int64_t* line;
  int64_t n;
  const T* g;
  const T* h;
};

// `V` vectors of parameter columns from ix, held in registers over the pairs in order:
// acc1 += E·w·H, acc2 += E·w²·G.
template <typename T, int V>
inline __attribute__((always_inline)) void gather_lanes(const ColumnTaps<T>& ct, T* __restrict acc1, T* __restrict acc2,
                                                        int64_t ix) {
  using L = Lanes<T>;
  typename L::type a1[V], a2[V];
  for (int v = 0; v < V; ++v) {
    a1[v] = typename L::type{};
    a2[v] = typename L::type{};
  }
  for (int64_t j = 0; j < ct.n; ++j) {
    const int64_t r = ct.r[j];
    const T* __restrict e = ct.e + ct.off[r] + ix;
    const T* __restrict g = ct.g + ct.line[j] + ix;
    const T* __restrict h = ct.h + ct.line[j] + ix;
    const T w = ct.w[r];
    for (int v = 0; v < V; ++v) {
      typename L::type ev, gv, hv;
      load_lanes(ev, e + v * L::width);
      load_lanes(gv, g + v * L::width);
      load_lanes(hv, h + v * L::width);
      const typename L::type ew = ev * w;
      a1[v] += ew * hv;
      a2[v] += ew * w * gv;
    }
  }
  for (int v = 0; v < V; ++v) {
    store_lanes(acc1 + ix + v * L::width, a1[v]);
    store_lanes(acc2 + ix + v * L::width, a2[v]);
  }
}

// One tap of a parameter row over parameter columns [0, n) (n a multiple of the vector width):
// acc1 = Σ E·w·H, acc2 = Σ E·w²·G over its pairs in order, from 0.
template <typename T>
LAB_VECTOR_CLONES void gather_column(const ColumnTaps<T>& ct, T* __restrict acc1, T* __restrict acc2, int64_t n) {
  by_vectors<T>(n, [&]<int V>(int64_t ix) __attribute__((always_inline)) { gather_lanes<T, V>(ct, acc1, acc2, ix); });
}

// s += acc, per lane, in double.
template <typename T>
LAB_VECTOR_CLONES void add_to_double(const T* __restrict acc, double* __restrict s, int64_t n) {
  for (int64_t k = 0; k < n; ++k) s[k] += static_cast<double>(acc[k]);
}

template <typename T>
constexpr int cv_depth() {
  return std::is_same_v<T, float> ? CV_32F : CV_64F;
}

}  // namespace

template <typename T>
BasicSmoothMask<T>::BasicSmoothMask(int64_t height, int64_t width, int64_t step, double sigma)
    : height_(height), width_(width), step_(step) {
  // Layout of TorchRay's MaskGenerator: parameter j sits at pixel margin + step·j of the full
  // mask; pixel u sees the side² parameters around ⌊u/step⌋ − padding + (0..side−1).
  padding_ = 1 + static_cast<int64_t>(std::ceil(2.0 * sigma / static_cast<double>(step)));
  const int64_t radius = 1 + static_cast<int64_t>(std::ceil(sigma / static_cast<double>(step)));
  side_ = 2 * radius + 1;
  span_ = side_ * step;
  grid_h_ = ceil_div(height, step);
  grid_w_ = ceil_div(width, step);
  out_h_ = step * (grid_h_ + 2 * padding_ - side_ + 1) - step + 1;
  out_w_ = step * (grid_w_ + 2 * padding_ - side_ + 1) - step + 1;
  margin_ = static_cast<int64_t>(std::lround(sigma));
  if (out_h_ < margin_ + height || out_w_ < margin_ + width)
    lab::fail_parameter("extremal-perturbation: mask-sigma {} is too small for step {} (need about mask-sigma >= 3·step)",
                        sigma, step);
  // Pixel uy meets parameter row iy = ⌊uy/step⌋ − padding + ky at offset uy − step·iy =
  // step·(padding − ky) + uy mod step, which runs over offset_ + [0, span) as ky, uy mod step do.
  offset_ = step * (padding_ - side_ + 1);
  patch_.resize(static_cast<size_t>(span_ * span_));
  for (int64_t r = 0; r < span_; ++r)
    for (int64_t t = 0; t < span_; ++t) {
      const double dy = static_cast<double>(offset_ + r) - sigma, dx = static_cast<double>(offset_ + t) - sigma;
      const double z = std::max(std::sqrt(dy * dy + dx * dx) / sigma - 0.5, 0.0);
      patch_[static_cast<size_t>(r * span_ + t)] = static_cast<T>(std::exp(-2.0 * z * z));
    }
  std::map<T, int32_t> classes;
  for (T w : patch_) classes.emplace(w, 0);
  for (auto& [w, k] : classes) {
    k = static_cast<int32_t>(weights_.size());
    weights_.push_back(w);
  }
  class_.resize(patch_.size());
  for (size_t i = 0; i < patch_.size(); ++i) class_[i] = classes.at(patch_[i]);
  auto inside = [&](int64_t u, int64_t grid) {
    const int64_t first = u / step - padding_;
    return std::max<int64_t>(0, std::min(first + side_, grid) - std::max<int64_t>(first, 0));
  };
  in_rows_.resize(static_cast<size_t>(out_h_));
  in_cols_.resize(static_cast<size_t>(out_w_));
  for (int64_t u = 0; u < out_h_; ++u) in_rows_[static_cast<size_t>(u)] = inside(u, grid_h_);
  for (int64_t u = 0; u < out_w_; ++u) in_cols_[static_cast<size_t>(u)] = inside(u, grid_w_);
  outside_ = static_cast<T>(std::exp(-kColdness));
  // Phases: mask column ux = step·k + q. Parameter column ix starts its patch at mask column
  // step·ix + offset_, so at phase column k it is met at patch column t = q − offset_ − step·d,
  // d = ix − k: a tap (q, d) has one t for every k. Per phase, d ascending is ix ascending.
  phase_len_ = ceil_div(out_w_, step);
  phase_cols_.resize(static_cast<size_t>(step));
  phase_taps_.assign(static_cast<size_t>(step) + 1, 0);
  for (int64_t q = 0; q < step; ++q) {
    phase_cols_[static_cast<size_t>(q)] = ceil_div(out_w_ - q, step);
    for (int64_t d = -side_ - 2; d <= side_ + 2; ++d) {
      const int64_t t = q - offset_ - step * d;
      if (t >= 0 && t < span_) taps_.push_back({q, d, t});
    }
    phase_taps_[static_cast<size_t>(q) + 1] = static_cast<int64_t>(taps_.size());
  }
  // The forward's rows of E and p by parameter column: zeros around the grid, so that every tap
  // runs over all of a phase's columns (padded to whole vectors), adding exact zeros off the grid.
  const int64_t vec = Lanes<T>::width;
  lanes_ = ceil_div(phase_len_, vec) * vec;
  int64_t d_min = 0, d_max = 0;
  for (const Tap& tap : taps_) {
    d_min = std::min(d_min, tap.d);
    d_max = std::max(d_max, tap.d);
  }
  gw_pad_ = ceil_div(grid_w_, vec) * vec;
  pad_ = -d_min;
  row_stride_ = std::max(pad_ + gw_pad_, pad_ + lanes_ + d_max);
  // The forward's taps of mask row ρ of a band and parameter row ky, in taps_' order.
  tap_d_.resize(taps_.size());
  for (size_t i = 0; i < taps_.size(); ++i) tap_d_[i] = taps_[i].d;
  fwd_off_.resize(static_cast<size_t>(step * side_ * span_));
  fwd_w_.resize(fwd_off_.size());
  for (int64_t rho = 0; rho < step; ++rho)
    for (int64_t ky = 0; ky < side_; ++ky) {
      const int64_t r = step * (side_ - 1 - ky) + rho;
      for (size_t i = 0; i < taps_.size(); ++i) {
        const size_t at = static_cast<size_t>(r * span_ + taps_[i].t);
        const size_t o = static_cast<size_t>((rho * side_ + ky) * span_) + i;
        fwd_off_[o] = class_[at] * row_stride_ + taps_[i].d;
        fwd_w_[o] = patch_[at];
      }
    }
  // The backward's patch columns: E's offset and the weight per patch row.
  col_off_.resize(patch_.size());
  col_w_.resize(patch_.size());
  for (int64_t t = 0; t < span_; ++t)
    for (int64_t r = 0; r < span_; ++r) {
      col_off_[static_cast<size_t>(t * span_ + r)] = class_[static_cast<size_t>(r * span_ + t)] * row_stride_;
      col_w_[static_cast<size_t>(t * span_ + r)] = patch_[static_cast<size_t>(r * span_ + t)];
    }
  // G and H per mask row and phase: g_pad_ zeros, the phase's columns, zeros (seg_ in all), so
  // that a tap reads every parameter column (ix − d) inside its segment.
  g_pad_ = std::max<int64_t>(0, d_max);
  seg_ = std::max(g_pad_ + gw_pad_ - d_min, g_pad_ + phase_len_);
}

template <typename T>
void BasicSmoothMask<T>::exponentials(const std::vector<double>& p, State& state) const {
  const int64_t classes = static_cast<int64_t>(weights_.size());
  state.table.resize(p.size() * weights_.size());
  state.by_class.resize(static_cast<size_t>(grid_h_ * classes * row_stride_));
  state.pf.resize(static_cast<size_t>(grid_h_ * row_stride_));
  const T c = static_cast<T>(kColdness);
  tbb::parallel_for(int64_t{0}, grid_h_, [&](int64_t iy) {
    T* row = &state.table[static_cast<size_t>(iy * grid_w_ * classes)];
    for (int64_t ix = 0; ix < grid_w_; ++ix)
      exponent_args(weights_.data(), c * static_cast<T>(p[static_cast<size_t>(iy * grid_w_ + ix)]), c, row + ix * classes,
                    classes);
    cv::Mat m(1, static_cast<int>(grid_w_ * classes), cv_depth<T>(), row);
    cv::exp(m, m);
    T* by = &state.by_class[static_cast<size_t>(iy * classes * row_stride_)];
    // Transposed in blocks of 64 weights (source and destination blocks stay in L1).
    for (int64_t k0 = 0; k0 < classes; k0 += 64) {
      const int64_t k1 = std::min(classes, k0 + 64);
      for (int64_t ix = 0; ix < grid_w_; ++ix) {
        const T* from = row + ix * classes;
        T* to = by + pad_ + ix;
        for (int64_t k = k0; k < k1; ++k) to[k * row_stride_] = from[k];
      }
      for (int64_t k = k0; k < k1; ++k) {
        T* line = by + k * row_stride_;
        std::fill(line, line + pad_, T(0));
        std::fill(line + pad_ + grid_w_, line + row_stride_, T(0));
      }
    }
    T* pf = &state.pf[static_cast<size_t>(iy * row_stride_)];
    std::fill(pf, pf + pad_, T(0));
    for (int64_t ix = 0; ix < grid_w_; ++ix) pf[pad_ + ix] = static_cast<T>(p[static_cast<size_t>(iy * grid_w_ + ix)]);
    std::fill(pf + pad_ + grid_w_, pf + row_stride_, T(0));
  });
}

template <typename T>
std::vector<T> BasicSmoothMask<T>::generate(const std::vector<double>& p, State* state) const {
  State own;
  std::vector<T> mask;
  generate(p, state ? *state : own, mask);
  return mask;
}

template <typename T>
void BasicSmoothMask<T>::generate(const std::vector<double>& p, State& state, std::vector<T>& mask) const {
  LAB_CHECK(static_cast<int64_t>(p.size()) == grid_h_ * grid_w_, "{} mask parameters", p.size());
  for (double v : p) LAB_CHECK(v >= 0.0 && v <= 1.0, "mask parameter {} outside [0, 1]", v);
  const size_t pixels = static_cast<size_t>(out_h_ * out_w_);
  const int64_t classes = static_cast<int64_t>(weights_.size());
  exponentials(p, state);
  state.p = p;
  state.den.resize(pixels);
  state.unclamped.resize(pixels);
  mask.resize(pixels);
  const T* by_class = state.by_class.data();
  const T* pf = state.pf.data();
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, out_h_), [&](const tbb::blocked_range<int64_t>& range) {
    // Σ E and Σ a·E of one phase of one mask row.
    std::vector<T> den(static_cast<size_t>(lanes_)), num(den.size());
    for (int64_t uy = range.begin(); uy < range.end(); ++uy) {
      const int64_t b = uy / step_, rho = uy - b * step_;
      // Parameter rows iy = b − padding + ky inside the grid.
      const int64_t ky0 = std::max<int64_t>(0, padding_ - b), ky1 = std::min(side_, grid_h_ + padding_ - b);
      const int64_t rows = std::max<int64_t>(0, ky1 - ky0), iy0 = rows > 0 ? b - padding_ + ky0 : 0;
      T* den_out = &state.den[static_cast<size_t>(uy * out_w_)];
      T* unclamped = &state.unclamped[static_cast<size_t>(uy * out_w_)];
      T* m = &mask[static_cast<size_t>(uy * out_w_)];
      for (int64_t q = 0; q < step_; ++q) {
        const int64_t cols = phase_cols_[static_cast<size_t>(q)];
        for (int64_t k = 0; k < lanes_; ++k) {
          const int64_t ux = std::min(step_ * k + q, out_w_ - 1);  // columns past the phase: any value
          den[static_cast<size_t>(k)] =
              static_cast<T>(side_ * side_ - in_rows_[static_cast<size_t>(uy)] * in_cols_[static_cast<size_t>(ux)]) *
              outside_;
          num[static_cast<size_t>(k)] = T(0);
        }
        const size_t first = static_cast<size_t>((rho * side_ + (rows > 0 ? ky0 : 0)) * span_ + phase_taps_[static_cast<size_t>(q)]);
        const PhaseTaps<T> pt{by_class + iy0 * classes * row_stride_ + pad_,
                              classes * row_stride_,
                              pf + iy0 * row_stride_ + pad_,
                              row_stride_,
                              rows,
                              &fwd_off_[first],
                              &tap_d_[static_cast<size_t>(phase_taps_[static_cast<size_t>(q)])],
                              &fwd_w_[first],
                              phase_taps_[static_cast<size_t>(q) + 1] - phase_taps_[static_cast<size_t>(q)],
                              span_};
        splat_phase(pt, den.data(), num.data(), lanes_);
        for (int64_t k = 0; k < cols; ++k) {
          const size_t i = static_cast<size_t>(k), ux = static_cast<size_t>(step_ * k + q);
          const T v = num[i] / den[i];
          den_out[ux] = den[i];
          unclamped[ux] = v;
          m[ux] = std::clamp(v, T(0), T(1));
        }
      }
    }
  });
}

template <typename T>
std::vector<double> BasicSmoothMask<T>::backward(const State& state, const std::vector<T>& grad_mask) const {
  std::vector<T> g, h;
  std::vector<double> grad;
  backward(state, grad_mask, g, h, grad);
  return grad;
}

template <typename T>
void BasicSmoothMask<T>::backward(State& state, const std::vector<T>& grad_mask, std::vector<double>& grad) const {
  backward(state, grad_mask, state.g, state.h, grad);
}

template <typename T>
void BasicSmoothMask<T>::backward(const State& state, const std::vector<T>& grad_mask, std::vector<T>& g,
                                  std::vector<T>& h, std::vector<double>& grad) const {
  const size_t pixels = static_cast<size_t>(out_h_ * out_w_);
  LAB_CHECK(grad_mask.size() == pixels && state.unclamped.size() == pixels, "mask gradient of {} values", grad_mask.size());
  // ∂ smax/∂a_k = E_k/D · (1 + c(a_k − smax)), ∂a_k/∂p_j = w_k, so with G = g/D (0 where the
  // clamp holds) and H = G·(1 − c·smax): ∂/∂p_j = Σ E·w·H + c·p_j·Σ E·w²·G over j's patch.
  const T c = static_cast<T>(kColdness);
  const size_t row_len = static_cast<size_t>(step_ * seg_);
  g.resize(static_cast<size_t>(out_h_) * row_len);
  h.resize(g.size());
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, out_h_), [&](const tbb::blocked_range<int64_t>& range) {
    std::vector<T> g_row(static_cast<size_t>(out_w_)), h_row(g_row.size());
    for (int64_t uy = range.begin(); uy < range.end(); ++uy) {
      const size_t u0 = static_cast<size_t>(uy * out_w_);
      for (int64_t ux = 0; ux < out_w_; ++ux) {
        const size_t u = u0 + static_cast<size_t>(ux);
        const T v = state.unclamped[u];
        const bool live = grad_mask[u] != T(0) && v >= T(0) && v <= T(1);
        const T gv = live ? grad_mask[u] / state.den[u] : T(0);
        g_row[static_cast<size_t>(ux)] = gv;
        h_row[static_cast<size_t>(ux)] = gv * (T(1) - c * v);
      }
      for (int64_t q = 0; q < step_; ++q) {
        const size_t at = static_cast<size_t>(uy) * row_len + static_cast<size_t>(q * seg_);
        std::fill(&g[at], &g[at] + seg_, T(0));
        std::fill(&h[at], &h[at] + seg_, T(0));
        for (int64_t k = 0; k < phase_cols_[static_cast<size_t>(q)]; ++k) {
          g[at + static_cast<size_t>(g_pad_ + k)] = g_row[static_cast<size_t>(step_ * k + q)];
          h[at + static_cast<size_t>(g_pad_ + k)] = h_row[static_cast<size_t>(step_ * k + q)];
        }
      }
    }
  });
  const int64_t bands = ceil_div(out_h_, step_), classes = static_cast<int64_t>(weights_.size());
  grad.assign(state.p.size(), 0.0);
  tbb::parallel_for(int64_t{0}, grid_h_, [&](int64_t iy) {
    // The mask rows of the parameter row's patches: patch row r and offset of G and H's row, in
    // the order parameter row ky, then mask row.
    std::vector<int64_t> r_of, line;
    for (int64_t ky = 0; ky < side_; ++ky) {
      const int64_t b = iy + padding_ - ky;
      if (b < 0 || b >= bands) continue;
      const int64_t uy0 = b * step_, rows = std::min(step_, out_h_ - uy0);
      for (int64_t row = 0; row < rows; ++row) {
        r_of.push_back(step_ * (side_ - 1 - ky) + row);
        line.push_back((uy0 + row) * static_cast<int64_t>(row_len));
      }
    }
    // Per patch column t and parameter column ix: acc[t·gw_pad + ix].
    // (every tap's block is written whole: one tap per patch column)
    const std::unique_ptr<T[]> acc1(new T[static_cast<size_t>(span_ * gw_pad_)]), acc2(new T[static_cast<size_t>(span_ * gw_pad_)]);
    const T* e_row = &state.by_class[static_cast<size_t>(iy * classes * row_stride_ + pad_)];
    for (const Tap& tap : taps_) {
      const ColumnTaps<T> ct{e_row,
                             &col_off_[static_cast<size_t>(tap.t * span_)],
                             &col_w_[static_cast<size_t>(tap.t * span_)],
                             r_of.data(),
                             line.data(),
                             static_cast<int64_t>(r_of.size()),
                             g.data() + tap.q * seg_ + g_pad_ - tap.d,
                             h.data() + tap.q * seg_ + g_pad_ - tap.d};
      const size_t a = static_cast<size_t>(tap.t * gw_pad_);
      gather_column(ct, &acc1[a], &acc2[a], gw_pad_);
    }
    // Each parameter's sums over its patch columns in t order (columns off the mask hold 0).
    std::vector<double> s1(static_cast<size_t>(grid_w_), 0.0), s2(s1.size(), 0.0);
    for (int64_t t = 0; t < span_; ++t) {
      add_to_double(&acc1[static_cast<size_t>(t * gw_pad_)], s1.data(), grid_w_);
      add_to_double(&acc2[static_cast<size_t>(t * gw_pad_)], s2.data(), grid_w_);
    }
    for (int64_t ix = 0; ix < grid_w_; ++ix) {
      const size_t j = static_cast<size_t>(iy * grid_w_ + ix);
      grad[j] = s1[static_cast<size_t>(ix)] + kColdness * state.p[j] * s2[static_cast<size_t>(ix)];
    }
  });
}

template class BasicSmoothMask<float>;
template class BasicSmoothMask<double>;

template <typename T>
double area_loss(const std::vector<T>& mask, double area, std::type_identity_t<std::vector<T>>* grad) {
  const size_t n = mask.size();
  const size_t zeros = static_cast<size_t>(static_cast<double>(n) * (1.0 - area));
  // Which values the sorted reference r_a pairs with 0: the `zeros` smallest, ties by position.
  // With v the zeros-th smallest value, they are every value below v and the first values equal
  // to v (by position) up to the count: v is selected on a copy of the values alone.
  std::vector<uint8_t> one(n, 1);
  if (zeros > 0) {
    std::vector<T> values(mask);
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(zeros - 1), values.end());
    const T v = values[zeros - 1];
    size_t below = 0;
    for (size_t i = 0; i < n; ++i) below += mask[i] < v ? 1 : 0;
    size_t equal = zeros - below;  // how many values equal to v are selected, the first ones
    for (size_t i = 0; i < n; ++i) {
      if (mask[i] < v) {
        one[i] = 0;
      } else if (mask[i] == v && equal > 0) {
        one[i] = 0;
        --equal;
      }
    }
  }
  if (grad) grad->resize(n);
  double loss = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(mask[i]) - static_cast<double>(one[i]);
    loss += d * d;
    if (grad) (*grad)[i] = static_cast<T>(2.0 * d / static_cast<double>(n));
  }
  return loss / static_cast<double>(n);
}

template double area_loss<float>(const std::vector<float>&, double, std::vector<float>*);
template double area_loss<double>(const std::vector<double>&, double, std::vector<double>*);

// ---------------------------------------------------------------------------------------------
// The method

const lab::Schema<ExtremalPerturbation::Params>& ExtremalPerturbation::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .field("area", &Params::area,
                 {.range = lab::Range{.min = 0, .max = 1, .min_open = true, .max_open = true},
                  .help = "preserved fraction a of the mask",
                  .source = "App. F.2, G.2: 0.1; Fong et al. 2019, eq. 4"})
          .field("blur-sigma", &Params::blur_sigma,
                 {.range = lab::above(0), .help = "σ of the strongest Gaussian blur", .source = "App. F.2: 21"})
          .field("levels", &Params::levels,
                 {.range = lab::at_least(2),
                  .help = "blur pyramid levels, interpolated linearly",
                  .source = "TorchRay's blur perturbation"})
          .field("step", &Params::step,
                 {.range = lab::at_least(1), .help = "mask parameter grid step in pixels", .source = "TorchRay"})
          .field("mask-sigma", &Params::mask_sigma,
                 {.range = lab::above(0),
                  .help = "smoothing σ of the mask in pixels",
                  .source = "Fong et al. 2019, Sec. 3.3; TorchRay"})
          .field("iterations", &Params::iterations,
                 {.range = lab::at_least(1), .help = "optimisation steps", .source = "TorchRay: 800"})
          .field("lr", &Params::lr,
                 {.range = lab::above(0), .help = "SGD learning rate on the mask parameters", .source = "TorchRay"})
          .field("momentum", &Params::momentum,
                 {.range = lab::Range{.min = 0, .max = 1, .max_open = true},
                  .help = "SGD momentum, also its dampening",
                  .source = "TorchRay"})
          .field("area-weight", &Params::area_weight,
                 {.range = lab::above(0), .help = "λ of the area loss at the first iteration", .source = "TorchRay"})
          .field("area-weight-growth", &Params::area_weight_growth,
                 {.range = lab::at_least(1),
                  .help = "factor applied to λ after every iteration",
                  .source = "TorchRay"})
          .field("jitter", &Params::jitter,
                 {.help = "on: flip the perturbed input horizontally on even iterations", .source = "TorchRay"})
          .with(output_param(&Params::output, "TorchRay: the class score before the softmax"));
  return s;
}

ExtremalPerturbation::ExtremalPerturbation(Params params) : params_(std::move(params)) {
  Params::schema().validate(params_);
}

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
  // 1 / S_u(1): the mask is normalised so that p ≡ 1 gives m ≡ 1 (header).
  std::vector<float> inv_unit = generator.generate(std::vector<double>(np, 1.0));
  for (float& v : inv_unit) v = 1.0f / v;
  std::vector<std::vector<double>> p(static_cast<size_t>(n), std::vector<double>(np, 1.0));
  std::vector<Sgd> sgd(static_cast<size_t>(n), Sgd(np, params_.lr, params_.momentum, params_.momentum));
  // Per sample, kept across iterations: the mask, the generator's state and scratch, the mask's
  // gradient and the parameters' gradient.
  std::vector<std::vector<float>> full(static_cast<size_t>(n)), g_mask(static_cast<size_t>(n));
  std::vector<SmoothMask::State> state(static_cast<size_t>(n));
  std::vector<std::vector<double>> g_p(static_cast<size_t>(n));
  lab::Tensor inputs(x.shape()), grad(x.shape());
  Backprop bp{.net = &net};
  double lambda = params_.area_weight;
  Result r;

  // Mask value m at pixel (y, xx) of sample s, and its blur levels: k = min(⌊m(L−1)⌋, L−2),
  // k1 = k + 1, weight w of level k1 (w = 1 at m = 1: the top segment's one-sided derivative).
  auto mask_at = [&](int64_t s, int64_t y, int64_t xx) {
    return static_cast<double>(full[s][static_cast<size_t>((y + margin) * out_w + xx + margin)]);
  };
  auto levels_of = [&](double m, int64_t& k, int64_t& k1, double& w) {
    const double level = m * static_cast<double>(levels - 1);
    k = std::min(static_cast<int64_t>(std::floor(level)), levels - 2);
    k1 = k + 1;
    w = level - static_cast<double>(k);
  };
  for (int64_t t = 0; t < params_.iterations; ++t) {
    const bool flip = params_.jitter && t % 2 == 0;
    parallel_items(0, n, [&](int64_t s) {
      generator.generate(p[s], state[s], full[s]);
      for (size_t u = 0; u < full[s].size(); ++u) full[s][u] = std::min(1.0f, full[s][u] * inv_unit[u]);
    });
    parallel_items(0, n * height, [&](int64_t row) {
      const int64_t s = row / height, y = row % height;
      const auto& pyr = pyramid[s];
      float* dst = inputs.sample(s);
      for (int64_t xx = 0; xx < width; ++xx) {
        int64_t k, k1;
        double w;
        levels_of(mask_at(s, y, xx), k, k1, w);
        const int64_t to = y * width + (flip ? width - 1 - xx : xx);
        for (int64_t c = 0; c < channels; ++c) {
          const size_t i = static_cast<size_t>(c * plane + y * width + xx);
          dst[c * plane + to] = static_cast<float>((1.0 - w) * pyr[k][i] + w * pyr[k1][i]);
        }
      }
    });
    r.evaluations += run_backprop(
        bp, n, context.batch,
        [&](int64_t b, int64_t e) {
          lab::Shape shape = inputs.shape();
          shape[0] = e - b;
          lab::Tensor chunk = lab::uninitialized(std::move(shape));
          std::copy(inputs.sample(b), inputs.sample(b) + (e - b) * numel, chunk.data());
          return chunk;
        },
        [&](int64_t i) { return batch.target[static_cast<size_t>(i)]; },
        [&](int64_t begin, const lab::Trace&, const lab::Tensor& signal) {
          std::copy(signal.values().begin(), signal.values().end(), grad.data() + begin * numel);
        });
    parallel_items(0, n, [&](int64_t s) {
      // ∂E/∂m = −∂f/∂m + λ ∂R/∂m on the full mask; the image occupies its centre.
      std::vector<float>& g_full = g_mask[s];
      area_loss(full[s], params_.area, &g_full);
      const float scale = static_cast<float>(lambda);
      for (float& v : g_full) v *= scale;
      const float* g = grad.sample(s);
      const auto& pyr = pyramid[s];
      for (int64_t y = 0; y < height; ++y)
        for (int64_t xx = 0; xx < width; ++xx) {
          int64_t k, k1;
          double w;
          levels_of(mask_at(s, y, xx), k, k1, w);
          const int64_t from = y * width + (flip ? width - 1 - xx : xx);
          double df_dm = 0;
          for (int64_t c = 0; c < channels; ++c) {
            const size_t i = static_cast<size_t>(c * plane + y * width + xx);
            df_dm += g[c * plane + from] * static_cast<double>(pyr[k1][i] - pyr[k][i]);
          }
          g_full[static_cast<size_t>((y + margin) * out_w + xx + margin)] -=
              static_cast<float>(df_dm * static_cast<double>(levels - 1));
        }
      // Through m = min(1, S/S(1)): no gradient where the ratio exceeds 1, else scaled by 1/S(1).
      for (size_t u = 0; u < g_full.size(); ++u)
        g_full[u] = static_cast<double>(state[s].unclamped[u]) * inv_unit[u] > 1.0 ? 0.0f : g_full[u] * inv_unit[u];
      generator.backward(state[s], g_full, g_p[s]);
      sgd[s].step(p[s], g_p[s]);
      for (double& v : p[s]) v = std::clamp(v, 0.0, 1.0);
    });
    lambda *= params_.area_weight_growth;
  }

  lab::Tensor maps({n, height, width});
  for (int64_t s = 0; s < n; ++s)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t xx = 0; xx < width; ++xx) maps[s * plane + y * width + xx] = static_cast<float>(mask_at(s, y, xx));
  r.attr = spread_over_channels(maps, channels);
  return r;
}

MethodInfo ExtremalPerturbation::info() {
  return method_info<ExtremalPerturbation>(
      "extremal-perturbation", "smooth mask of fixed area that best preserves the output under blur (Fong et al. 2019)");
}

}  // namespace attributions
