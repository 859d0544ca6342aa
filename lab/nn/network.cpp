#include "lab/nn/network.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <ranges>

#include "lab/core/error.h"
#include "lab/core/quadrature.h"
#include "lab/core/runtime.h"
#include "lab/core/simd.h"
#include "lab/core/storage.h"
#include "lab/nn/gradient_trace.h"
#include "lab/nn/linear_product.h"
#include "lab/nn/patch_run.h"
#include "lab/nn/pointwise_gemm.h"
#include "lab/nn/tile_loop.h"

namespace lab {

namespace {

// Elementwise kernels of the propagation rules. They are memory-bound passes over activations
// of several MB; built for the machine's widest vector unit at load time (lab/core/simd.h).

// s = r / stab(z), stab(z) = z + ε·sign(z) (sign(0) = +1), 0 where the denominator is 0.
LAB_VECTOR_CLONES void lrp_quotient(const float* z, const float* r, float* s, int64_t n, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    const float d = z[i] + (z[i] >= 0.0f ? eps : -eps);
    s[i] = d == 0.0f ? 0.0f : r[i] / d;
  }
}

// c ← c ⊙ (coef · x)
LAB_VECTOR_CLONES void scale_by(float* c, const float* x, float coef, int64_t n) {
  for (int64_t i = 0; i < n; ++i) c[i] *= coef * x[i];
}

// out ← out + coef · x ⊙ c
LAB_VECTOR_CLONES void add_product(float* out, const float* x, const float* c, float coef, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += coef * x[i] * c[i];
}

// s ← s · Δy/Δx where |Δx| > 1e-7, else s · [x > 0] (the DeepLIFT rescale multiplier of a ReLU).
LAB_VECTOR_CLONES void rescale_row(const float* x, const float* y, const float* xr, const float* yr, float* s,
                                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float dx = x[i] - xr[i];
    const float dy = y[i] - yr[i];
    s[i] = std::abs(dx) > 1e-7f ? s[i] * (dy / dx) : (x[i] > 0.0f ? s[i] : 0.0f);
  }
}

// How many elements are below and above zero (integer counts, so the loop vectorises).
LAB_VECTOR_CLONES void count_signs(const float* x, int64_t n, int64_t& below, int64_t& above) {
  int64_t lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo += x[i] < 0.0f ? 1 : 0;
    hi += x[i] > 0.0f ? 1 : 0;
  }
  below = lo;
  above = hi;
}

// The part of x a term uses: x itself (no copy) for Part::kAll or when x already is that part
// (a ReLU output is its own positive part), else a clipped copy kept in `owned`; nullptr when
// that part is all zero.
const Tensor* part_of(const Tensor& x, Part part, std::vector<Tensor>& owned) {
  if (part == Part::kAll) return &x;
  const float* in = x.data();
  const int64_t n = x.numel();
  const bool positive = part == Part::kPositive;
  int64_t below = 0, above = 0;
  count_signs(in, n, below, above);
  if ((positive ? above : below) == 0) return nullptr;
  if ((positive ? below : above) == 0) return &x;
  Tensor out = uninitialized(x.shape());
  float* o = out.data();
  if (positive)
    for (int64_t i = 0; i < n; ++i) o[i] = std::max(in[i], 0.0f);
  else
    for (int64_t i = 0; i < n; ++i) o[i] = std::min(in[i], 0.0f);
  owned.push_back(std::move(out));
  return &owned.back();
}

const Weights& weights_of(const AffineLayer& layer, const PreparedRule& p, Part part) {
  switch (part) {
    case Part::kAll: return layer.weights();
    case Part::kPositive: return p.positive;
    case Part::kNegative: return p.negative;
  }
  return layer.weights();
}

// Whether each image of x (N samples) has an element of `part` (Part::kAll: always): the images
// for which a term of that part counts.
std::vector<char> images_with(const Tensor& x, Part part) {
  const int64_t batch = x.dim(0), per = x.sample_numel();
  std::vector<char> has(static_cast<size_t>(batch), 1);
  if (part == Part::kAll) return has;
  for (int64_t n = 0; n < batch; ++n) {
    int64_t below = 0, above = 0;
    count_signs(x.sample(n), per, below, above);
    has[static_cast<size_t>(n)] = (part == Part::kPositive ? above : below) > 0;
  }
  return has;
}

// LRP for an affine layer (rules.h): R_in = Σ_g c_g Σ_t x_t ⊙ W_tᵀ (R / stab(z_g)).
// Elementwise work runs in float on raw pointers (it is memory-bound at 224×224); the first
// contribution is written, not added to a zero-filled tensor.
// One image's bytes do not depend on the other images of the batch: a term whose part of x is
// all zero in an image (x⁻ of an image without negative values) counts for that image as it
// counts for the image alone, not at all (neither in z nor in R_in), even where other images of
// the batch have that part; in a group with a bias every term counts for every image.
Tensor lrp(const AffineLayer& layer, const PreparedRule& p, const Tensor& x, const Tensor& y, Tensor relevance) {
  Tensor out;
  const int64_t batch = x.dim(0);
  const int64_t per_in = x.sample_numel(), per_out = y.sample_numel();
  std::vector<char> written(static_cast<size_t>(batch), 0);  // per image: out holds a contribution
  // With one group the quotient R / stab(z) overwrites R (taken by value, moved in by the caller).
  const bool in_place = p.rule.groups.size() == 1;
  const float eps = static_cast<float>(p.rule.epsilon);
  for (const LrpGroup& group : p.rule.groups) {
    std::vector<Tensor> owned;
    owned.reserve(group.terms.size() + 1);
    std::vector<const Tensor*> parts;
    std::vector<const Weights*> weights;
    std::vector<std::vector<char>> uses;  // per term, per image: the term counts
    bool every = true;                    // every term counts for every image
    for (const LrpTerm& term : group.terms) {
      const Tensor* xt = part_of(x, term.input, owned);
      if (!xt) {
        if (!group.bias) continue;
        owned.push_back(Tensor(x.shape(), 0.0f));
        xt = &owned.back();
      }
      parts.push_back(xt);
      weights.push_back(&weights_of(layer, p, term.weight));
      uses.push_back(group.bias ? std::vector<char>(static_cast<size_t>(batch), 1) : images_with(x, term.input));
      every = every && std::find(uses.back().begin(), uses.back().end(), 0) == uses.back().end();
    }
    if (parts.empty()) continue;
    const bool plain = group.terms.size() == 1 && group.terms[0].input == Part::kAll && group.terms[0].weight == Part::kAll;
    Tensor z;
    const Tensor* zp = &y;  // the recorded output already is W x + b
    if (!(plain && group.bias)) {
      // z = Σ_t W_t x_t (+ b): every term in one pass, summed on the host in term order.
      std::vector<Tensor> zs;
      zs.reserve(parts.size());
      Pass pass;
      for (size_t t = 0; t < parts.size(); ++t) {
        zs.push_back(uninitialized(y.shape()));
        layer.add_apply(pass, *weights[t], x.shape(), parts[t]->data(), t == 0 && group.bias, zs.back().data());
      }
      pass.run();
      if (every) {
        z = std::move(zs[0]);
        float* zd = z.data();
        for (size_t t = 1; t < parts.size(); ++t) {
          const float* ztd = zs[t].data();
          for (int64_t i = 0; i < z.numel(); ++i) zd[i] += ztd[i];
        }
      } else {
        // Per image, the terms that count for it, in term order (an image none counts for: its
        // z is never read).
        z = Tensor(y.shape(), 0.0f);
        for (int64_t n = 0; n < batch; ++n) {
          float* zd = z.sample(n);
          bool first = true;
          for (size_t t = 0; t < parts.size(); ++t) {
            if (!uses[t][static_cast<size_t>(n)]) continue;
            const float* ztd = zs[t].sample(n);
            if (first) std::copy(ztd, ztd + per_out, zd);
            else
              for (int64_t i = 0; i < per_out; ++i) zd[i] += ztd[i];
            first = false;
          }
        }
      }
      zp = &z;
    }
    Tensor s = in_place ? std::move(relevance) : uninitialized(zp->shape());
    lrp_quotient(zp->data(), in_place ? s.data() : relevance.data(), s.data(), s.numel(), eps);
    const float coef = static_cast<float>(group.coefficient);
    // c_t = W_tᵀ s for every term in one pass, then accumulated on the host in term order.
    std::vector<Tensor> cs;
    cs.reserve(parts.size());
    Pass pass;
    for (size_t t = 0; t < parts.size(); ++t) {
      cs.push_back(uninitialized(x.shape()));
      layer.add_apply_transpose(pass, *weights[t], x.shape(), s.data(), cs.back().data());
    }
    pass.run();
    const bool whole = every && (out.empty() || std::find(written.begin(), written.end(), 0) == written.end());
    for (size_t t = 0; t < parts.size(); ++t) {
      Tensor& c = cs[t];
      if (whole) {
        if (out.empty()) {
          scale_by(c.data(), parts[t]->data(), coef, c.numel());
          out = std::move(c);
        } else {
          add_product(out.data(), parts[t]->data(), c.data(), coef, c.numel());
        }
        continue;
      }
      // Image by image: the first contribution an image gets is written, the later ones added.
      if (out.empty()) out = uninitialized(x.shape());
      for (int64_t n = 0; n < batch; ++n) {
        const size_t i = static_cast<size_t>(n);
        if (!uses[t][i]) continue;
        if (written[i]) {
          add_product(out.sample(n), parts[t]->sample(n), c.sample(n), coef, per_in);
        } else {
          scale_by(c.sample(n), parts[t]->sample(n), coef, per_in);
          std::copy(c.sample(n), c.sample(n) + per_in, out.sample(n));
        }
      }
      for (int64_t n = 0; n < batch; ++n) written[static_cast<size_t>(n)] |= uses[t][static_cast<size_t>(n)];
    }
    if (whole) std::fill(written.begin(), written.end(), 1);
  }
  if (out.empty()) return Tensor(x.shape(), 0.0f);
  // An image no term counted for gets zeros, as alone.
  for (int64_t n = 0; n < batch; ++n)
    if (!written[static_cast<size_t>(n)]) std::fill(out.sample(n), out.sample(n) + per_in, 0.0f);
  return out;
}

// Whether LRP under rule p on layer `layer` is a step of a tiled LRP run (Network::backward): a
// ReLU under the pass rule, or a pointwise convolution under the plain rule of lrp() (one group of
// one term, x and W whole, with the bias: LRP-ε), whose z is the recorded output.
bool lrp_tiles(const Layer& layer, const PreparedRule& p) {
  if (layer.kind() == LayerKind::kReLU) return p.rule.kind == RuleKind::kPass;
  if (!is_pointwise(layer) || p.rule.kind != RuleKind::kLrp || p.rule.groups.size() != 1) return false;
  const LrpGroup& g = p.rule.groups[0];
  return g.bias && g.terms.size() == 1 && g.terms[0].input == Part::kAll && g.terms[0].weight == Part::kAll;
}

// A layer of a tiled LRP run: a 1×1 convolution (conv null: a ReLU, whose pass rule leaves the
// relevance as it is) from `in` to `out` channels, its input x and output z (the whole batch).
struct LrpTile {
  const Conv2d* conv = nullptr;
  int64_t in = 0, out = 0;
  const float* x = nullptr;
  const float* z = nullptr;
  float eps = 0.0f, coef = 1.0f;
};

// Adds lrp() through the layers `run` (lrp_tiles, in forward order, on `batch` images of `pixels`
// pixels) tile by tile: from the relevance dy at the run's output to dx at its input, per tile and
// convolution from the top down s = R / stab(z) (lrp_quotient), c = Wᵀ s (lab::pointwise_gemm:
// the bytes of oneDNN's 1×1 backward-data on nchw, as add_pointwise_backward_run) and R = c ⊙
// (coef · x) (scale_by), while the tile is in cache: lrp()'s kernels on the same values, so its
// bytes. Only dy, the convolutions' x and z and dx travel to memory.
void add_lrp_run(Pass& pass, std::vector<LrpTile> run, int64_t batch, int64_t pixels, const float* dy, float* dx,
                 int64_t tile) {
  int64_t widest = 0;
  size_t lowest = run.size();  // the lowest convolution: it writes dx (the ReLUs below it pass)
  for (size_t k = 0; k < run.size(); ++k) {
    widest = std::max({widest, run[k].in, run[k].out});
    if (run[k].conv && lowest == run.size()) lowest = k;
  }
  LAB_CHECK(lowest < run.size() && tile > 0, "tiled LRP run of {} layers without a convolution", run.size());
  pass.add_host([=, run = std::move(run)] {
    const int64_t in_channels = run.front().in, out_channels = run.back().out;
    for_each_tile(batch, pixels, tile, 2 * widest * tile, [&](int64_t n, int64_t p0, int64_t width, float* buffer) {
      bool ok = true;
      float* buffers[2] = {buffer, buffer + widest * tile};
      const float* g = dy + n * out_channels * pixels + p0;
      int64_t ldg = pixels;
      int in_buffer = -1;  // which buffer holds g (-1: g is dy)
      for (size_t k = run.size(); k-- > lowest;) {
        const LrpTile& st = run[k];
        if (!st.conv) continue;
        // s = R / stab(z), in place where R is a tile buffer.
        const int sb = in_buffer < 0 ? 0 : in_buffer;
        float* s = buffers[sb];
        const int64_t lds = in_buffer < 0 ? width : ldg;
        const float* z = st.z + n * st.out * pixels + p0;
        for (int64_t c = 0; c < st.out; ++c) lrp_quotient(z + c * pixels, g + c * ldg, s + c * lds, width, st.eps);
        // c = Wᵀ s, then R_in = c ⊙ (coef · x).
        float* out = k == lowest ? dx + n * in_channels * pixels + p0 : buffers[1 - sb];
        const int64_t ldo = k == lowest ? pixels : width;
        ok = pointwise_gemm(true, st.in, width, st.out, st.conv->weights().weight.data(), st.in, s, lds, out, ldo,
                            nullptr, false, &st.conv->sparse_transposed()) && ok;
        const float* x = st.x + n * st.in * pixels + p0;
        for (int64_t c = 0; c < st.in; ++c) scale_by(out + c * ldo, x + c * pixels, st.coef, width);
        g = out;
        ldg = ldo;
        in_buffer = 1 - sb;
      }
      return ok;
    });
  });
}

// Reference activation for sample n: the reference batch is either 1 (broadcast) or N.
const float* reference_row(const Tensor& ref, int64_t n) { return ref.sample(ref.batch() == 1 ? 0 : n); }

// DeepLIFT rescale on ReLU: multiplier Δy/Δx, and the plain derivative where Δx ≈ 0.
Tensor rescale_relu(const Tensor& x, const Tensor& y, const Tensor& xr, const Tensor& yr, Tensor s) {
  const int64_t k = x.sample_numel();
  for (int64_t n = 0; n < x.batch(); ++n)
    rescale_row(x.sample(n), y.sample(n), reference_row(xr, n), reference_row(yr, n), s.sample(n), k);
  return s;
}

// DeepLIFT rescale on softmax: the multiplier is the Jacobianᵀ averaged over the segment from the
// reference logits to the logits (Gauss–Legendre), so Σ m ⊙ Δz = Δ(s·p) up to quadrature error.
Tensor rescale_softmax(const Tensor& x, const Tensor& xr, const Tensor& s, int nodes) {
  const Quadrature q = make_quadrature("gauss-legendre", nodes);
  const int64_t k = x.dim(1);
  Tensor out(x.shape(), 0.0f);
  std::vector<double> u(static_cast<size_t>(k)), p(static_cast<size_t>(k));
  for (int64_t n = 0; n < x.batch(); ++n) {
    const float* zr = reference_row(xr, n);
    for (size_t node = 0; node < q.nodes.size(); ++node) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < k; ++j) {
        u[j] = zr[j] + q.nodes[node] * (static_cast<double>(x[n * k + j]) - zr[j]);
        mx = std::max(mx, u[j]);
      }
      double sum = 0, ps = 0;
      for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(u[j] - mx);
      for (int64_t j = 0; j < k; ++j) ps += (p[j] /= sum) * s[n * k + j];
      for (int64_t j = 0; j < k; ++j) out[n * k + j] += static_cast<float>(q.weights[node] * p[j] * (s[n * k + j] - ps));
    }
  }
  return out;
}

// DeepLIFT rescale on max-pooling. The multiplier of a window is its average Jacobian along the
// segment u(t) = x' + t (x − x'), t ∈ [0, 1]: max_j u_j(t) is the upper envelope of the lines
// x'_j + t Δ_j, so input j's multiplier is the length of the t-interval on which it is the argmax
// (exactly, by walking the envelope), and Σ_j m_j Δ_j = max x − max x' (summation-to-delta holds
// per window). As for the softmax, this reduces to Δy/Δx for a window of one input.
Tensor rescale_max_pool(const MaxPool2dParams& p, const Tensor& x, const Tensor& xr, const Tensor& s) {
  const int64_t channels = x.dim(1), h = x.dim(2), w = x.dim(3), oh = s.dim(2), ow = s.dim(3);
  Tensor out(x.shape(), 0.0f);
  std::vector<int64_t> idx;
  std::vector<double> base, slope;
  for (int64_t n = 0; n < x.batch(); ++n) {
    const float* xs = x.sample(n);
    const float* rs = reference_row(xr, n);
    const float* ss = s.sample(n);
    float* os = out.sample(n);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          idx.clear();
          base.clear();
          slope.clear();
          for (int64_t a = i * p.stride_h - p.pad_h, ae = a + p.kernel_h; a < ae; ++a)
            for (int64_t b = j * p.stride_w - p.pad_w, be = b + p.kernel_w; b < be; ++b) {
              if (a < 0 || a >= h || b < 0 || b >= w) continue;
              const int64_t e = (c * h + a) * w + b;
              idx.push_back(e);
              base.push_back(rs[e]);
              slope.push_back(static_cast<double>(xs[e]) - rs[e]);
            }
          const double signal = ss[(c * oh + i) * ow + j];
          // The argmax at t = 0: the largest x', then the steepest line, then the first.
          size_t cur = 0;
          for (size_t k = 1; k < idx.size(); ++k)
            if (base[k] > base[cur] || (base[k] == base[cur] && slope[k] > slope[cur])) cur = k;
          double t = 0.0;
          while (t < 1.0) {
            // The first steeper line to overtake the current one.
            size_t next = cur;
            double when = 1.0;
            for (size_t k = 0; k < idx.size(); ++k) {
              if (slope[k] <= slope[cur]) continue;
              const double at = std::max(t, (base[cur] - base[k]) / (slope[k] - slope[cur]));
              if (at < when || (at == when && next != cur && slope[k] > slope[next])) {
                when = at;
                next = k;
              }
            }
            os[idx[cur]] += static_cast<float>(signal * (when - t));
            t = when;
            cur = next;
          }
        }
  }
  return out;
}

// DeepLIFT on y = a ⊙ g: Δy = Δa (g + g')/2 + Δg (a + a')/2 exactly (the Shapley split of a
// product of two), so the multipliers are (g + g')/2 and (a + a')/2.
std::vector<Tensor> rescale_multiply(const Tensor& a, const Tensor& g, const Tensor& ar, const Tensor& gr,
                                     const Tensor& s) {
  std::vector<Tensor> out{uninitialized(a.shape()), uninitialized(g.shape())};
  const int64_t k = a.sample_numel();
  for (int64_t n = 0; n < a.batch(); ++n) {
    const float *an = a.sample(n), *gn = g.sample(n), *arn = reference_row(ar, n), *grn = reference_row(gr, n);
    const float* sn = s.sample(n);
    float *da = out[0].sample(n), *dg = out[1].sample(n);
    for (int64_t j = 0; j < k; ++j) {
      da[j] = sn[j] * 0.5f * (gn[j] + grn[j]);
      dg[j] = sn[j] * 0.5f * (an[j] + arn[j]);
    }
  }
  return out;
}

// LRP on a sum y = Σ_k x_k: R_k = x_k ⊙ R / stab(y) (the sum as a linear layer of unit weights
// under LRP-ε), so Σ_k R_k = R · y / stab(y): relevance is split in proportion to each input's
// contribution and conserved up to ε, never copied to every input.
std::vector<Tensor> lrp_add(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& r, float eps) {
  Tensor q = uninitialized(y.shape());
  lrp_quotient(y.data(), r.data(), q.data(), q.numel(), eps);
  std::vector<Tensor> out;
  for (const Tensor* x : xs) {
    Tensor c = q;
    scale_by(c.data(), x->data(), 1.0f, c.numel());
    out.push_back(std::move(c));
  }
  return out;
}

// Samples of the activations of shape s (the batch is dimension 0).
int64_t per_sample(const Shape& s) { return numel(s) / s[0]; }

Shape with_batch(Shape s, int64_t batch) {
  s[0] = batch;
  return s;
}

// The sub-batching of steps whose whole-batch working sets are `bytes` (one entry per step, in
// the order they run; a negative entry marks a step that must run on the whole batch): the steps
// [lo, hi) from the first whose working set exceeds the budget to the last before a whole-batch
// step (or the last that exceeds it) run in sub-batches of `size` samples (as many as fit in the
// budget, at least the runtime's threads); the others run on the whole batch. size == batch: no
// sub-batches.
struct SubBatches {
  int64_t size;
  size_t lo = 0, hi = 0;
};

SubBatches plan_sub_batches(const std::vector<int64_t>& bytes, int64_t batch) {
  const int64_t budget = sub_batch_budget();
  SubBatches plan{batch};
  if (budget <= 0 || batch < 2) return plan;
  size_t lo = 0;
  while (lo < bytes.size() && bytes[lo] <= budget) ++lo;
  size_t hi = lo, end = lo;
  while (end < bytes.size() && bytes[end] >= 0) {
    if (bytes[end] > budget) hi = end + 1;
    ++end;
  }
  if (hi == lo) return plan;
  int64_t largest = 0;
  for (size_t k = lo; k < hi; ++k) largest = std::max(largest, bytes[k]);
  // At least one sample per thread: oneDNN gives each thread whole samples of a batch, and
  // splits one sample over the threads only with synchronisation inside each primitive.
  const int64_t per = std::max<int64_t>(1, largest / batch);
  plan.size = std::clamp<int64_t>(budget / per, std::min<int64_t>(Runtime::get().threads(), batch), batch);
  if (plan.size < batch) {
    plan.lo = lo;
    plan.hi = hi;
  }
  return plan;
}

// Whether a layer may run in sub-batches: every layer computes each sample alike at every batch
// size (tests/lab/test_network.cpp; Linear as lab::linear_chain, linear_product.h), but a Linear
// layer runs on the whole batch all the same: its working set is its weights, which a sub-batch
// would read again (and as oneDNN's inner product, lab::set_linear_chains(false), it picks its
// GEMM kernel, and so its summation order, by the number of rows).
bool may_split(const Layer& layer) { return layer.kind() != LayerKind::kLinear; }

// Two scratch buffers used in turn by the steps of a chain, left uninitialised (every step writes
// its whole output). They only grow, and are freed with the object, after the pass has waited.
struct Scratch {
  std::unique_ptr<float[]> buf[2];
  int64_t size[2] = {0, 0};
  float* get(int i, int64_t n) {
    if (size[i] < n) {
      LAB_CHECK(!buf[i], "scratch grown while in use");
      buf[i] = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(n));
      size[i] = n;
    }
    return buf[i].get();
  }
};

// Adds steps [first, last) of a chain to `pass`: step k maps a buffer of shapes[k] to one of
// shapes[k + 1]; the first reads `in`, the last writes `out`, the others write scratch buffers
// in turn. The stream is in order, so step k has finished reading a buffer before step k + 2
// overwrites it, also across calls that share `scratch`. add_step(pass, k, b0, in_shape, x, y)
// adds step k for the samples starting at b0.
template <class AddStep>
void add_chain(Pass& pass, const std::vector<Shape>& shapes, size_t first, size_t last, int64_t b0, const float* in,
               float* out, Scratch& scratch, AddStep& add_step) {
  int64_t largest = 0;
  for (size_t k = first + 1; k < last; ++k) largest = std::max(largest, numel(shapes[k]));
  for (size_t k = first; k < last; ++k) {
    float* result = k + 1 == last ? out : scratch.get(static_cast<int>((k - first) % 2), largest);
    add_step(pass, k, b0, shapes[k], in, result);
    in = result;
  }
}

// Runs a chain of layer steps as one pass: step k maps the previous result (first: `input`) to
// values of shapes[k] (whole batch); `bytes[k]` is step k's whole-batch working set. The steps
// whose working set exceeds the cache budget run in sub-batches (plan_sub_batches), each
// sub-batch through all of them before the next; the output of the last of them is gathered in a
// whole-batch buffer for the steps after it. Scratch is freed only after the pass has waited.
template <class AddStep>
Tensor chain(const Tensor& input, const std::vector<Shape>& out_shapes, const std::vector<int64_t>& bytes,
             AddStep add_step) {
  std::vector<Shape> shapes{input.shape()};
  shapes.insert(shapes.end(), out_shapes.begin(), out_shapes.end());
  const size_t steps = out_shapes.size();
  const int64_t batch = input.batch();
  const SubBatches plan = plan_sub_batches(bytes, batch);
  Tensor out = uninitialized(shapes.back());
  Scratch before, inside, after;
  std::unique_ptr<float[]> gather[2];  // whole-batch inputs and outputs of the sub-batched steps
  Pass pass;
  if (plan.size == batch) {
    add_chain(pass, shapes, 0, steps, 0, input.data(), out.data(), before, add_step);
    pass.run();
    return out;
  }
  const auto whole = [&](int i, size_t at) -> float* {
    if (at == steps) return out.data();
    gather[i] = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(numel(shapes[at])));
    return gather[i].get();
  };
  const float* lo_in = input.data();
  if (plan.lo > 0) {
    float* a = whole(0, plan.lo);
    add_chain(pass, shapes, 0, plan.lo, 0, input.data(), a, before, add_step);
    lo_in = a;
  }
  float* hi_out = whole(1, plan.hi);
  for (int64_t b0 = 0; b0 < batch; b0 += plan.size) {
    const int64_t b = std::min(plan.size, batch - b0);
    std::vector<Shape> sub(shapes.size());
    for (size_t k = plan.lo; k <= plan.hi; ++k) sub[k] = with_batch(shapes[k], b);
    add_chain(pass, sub, plan.lo, plan.hi, b0, lo_in + b0 * per_sample(shapes[plan.lo]),
              hi_out + b0 * per_sample(shapes[plan.hi]), inside, add_step);
  }
  if (plan.hi < steps) add_chain(pass, shapes, plan.hi, steps, 0, hi_out, out.data(), after, add_step);
  pass.run();
  return out;
}

}  // namespace

namespace {
std::atomic<int64_t> budget_set{-1};
}  // namespace

int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    const long n = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (n > 0) return static_cast<int64_t>(n);
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index2/size");
    int64_t v = 0;
    char unit = 0;
    if (in >> v && v > 0) {
      in >> unit;
      return v * (unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1);
    }
    return int64_t{1} << 20;
  }();
  return bytes;
}

int64_t tile_of_pair(int64_t pair) {
  return std::max<int64_t>(64, l2_cache_bytes() / 4 / (static_cast<int64_t>(sizeof(float)) * pair) / 16 * 16);
}

int64_t sub_batch_budget() {
  const int64_t set = budget_set.load();
  return set >= 0 ? set : l2_cache_bytes() * Runtime::get().threads();
}

void set_sub_batch_budget(int64_t bytes) { budget_set.store(bytes < 0 ? -1 : bytes); }

namespace {
std::atomic<int> path_set{1 | 8};  // bits: 1 tiles, 2 relu_post_op, 4 inference, 8 backprop_tiles

// The most channels of a layer's input and output together through layers [first, last) on s
// (0: no layer).
int64_t widest_pair(const std::vector<std::shared_ptr<const Layer>>& layers, size_t first, size_t last, Shape s) {
  int64_t pair = 0;
  for (size_t k = first; k < last; ++k) {
    const Shape next = layers[k]->output_shape(s);
    pair = std::max(pair, s[1] + next[1]);
    s = next;
  }
  return pair;
}

// Pixels per tile of a pointwise run through layers [first, last) on `in`: two tile buffers of
// the widest adjacent pair of layers in a quarter of a core's L2 (the rest for the weights,
// sgemm's packed copies and the tiles of x and y).
int64_t pointwise_tile(const std::vector<std::shared_ptr<const Layer>>& layers, size_t first, size_t last, Shape s) {
  return tile_of_pair(widest_pair(layers, first, last, std::move(s)));
}

// Output pixels per tile of a patch run through layers [first, last) on `in` (patch_run.h):
// tile_of_patch of its column rows (in·kh·kw) and its widest layer.
int64_t patch_tile(const std::vector<std::shared_ptr<const Layer>>& layers, size_t first, size_t last, const Shape& in) {
  const auto& p = static_cast<const Conv2d&>(*layers[first]).params();
  Shape s = layers[first]->output_shape(in);
  int64_t widest = s[1];
  for (size_t k = first + 1; k < last; ++k) {
    s = layers[k]->output_shape(s);
    widest = std::max(widest, s[1]);
  }
  return tile_of_patch(p.in_channels * p.kernel_h * p.kernel_w, widest);
}

// Whether the layer's backward-data reads neither its input nor its output (AffineLayer: W'ᵀ dy).
bool reads_no_activation(const Layer& layer) { return dynamic_cast<const AffineLayer*>(&layer) != nullptr; }

// Bytes of the signs of an N×C×H×W activation (add_pointwise_sign_trace_run's layout).
int64_t sign_bytes(const Shape& s) { return s[0] * s[1] * sign_row_bytes(s[2] * s[3]); }

// The end of the pointwise run that starts at layer `first` of [first, end) on an input of shape
// `in`: the first layer after it, or `first` if there is no run of two or more pointwise layers
// (is_run_pointwise) with a convolution among them (a tile by tile pass of ReLUs alone gains
// nothing).
size_t pointwise_run_end(const std::vector<std::shared_ptr<const Layer>>& layers, size_t first, size_t end,
                         const Shape& in) {
  if (in.size() != 4) return first;
  size_t j = first;
  bool conv = false;
  while (j < end && is_run_pointwise(*layers[j])) conv |= layers[j++]->kind() == LayerKind::kConv2d;
  return conv && j - first >= 2 ? j : first;
}

// The end of the patch run that starts at layer `first` of [first, end) on `in`: a patch
// convolution (patch_run.h; in the forward, `forward`, of several groups too: is_forward_patch_conv)
// and the pointwise layers after it (is_run_pointwise); `first` if layer `first` is no patch
// convolution or lab::set_onednn_forward(true) holds.
size_t patch_run_end(const std::vector<std::shared_ptr<const Layer>>& layers, size_t first, size_t end,
                     const Shape& in, bool forward) {
  if (onednn_forward() || !(forward ? is_forward_patch_conv(*layers[first], in) : is_patch_conv(*layers[first], in)))
    return first;
  size_t k = first + 1;
  while (k < end && is_run_pointwise(*layers[k])) ++k;
  return k;
}
}  // namespace

namespace {
std::atomic<bool> lean_set{true};
}  // namespace

bool gradient_traces_lean() { return lean_set.load(); }
void set_gradient_traces_lean(bool on) { lean_set.store(on); }

Trace trace_for_gradient(const Network& net, const Tensor& x, const std::vector<size_t>& keep) {
  return net.trace(x, gradient_traces_lean() ? &keep : nullptr);
}

bool reads_only_signs(const PreparedRules& rules) {
  return std::ranges::all_of(rules.layers, [](const PreparedRule& p) {
    const RuleKind kind = p.rule.kind;
    return kind == RuleKind::kGradient || kind == RuleKind::kGuided || kind == RuleKind::kDeconv ||
           kind == RuleKind::kPass;
  });
}

ForwardPath forward_path() {
  const int bits = path_set.load();
  return ForwardPath{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0};
}

void set_forward_path(const ForwardPath& path) {
  path_set.store((path.tiles ? 1 : 0) | (path.relu_post_op ? 2 : 0) | (path.inference ? 4 : 0) |
                 (path.backprop_tiles ? 8 : 0));
}

Network::Network(Shape input_shape) : input_shape_(std::move(input_shape)) {}

void Network::add(std::string name, std::shared_ptr<const Layer> layer) {
  LAB_CHECK(layer != nullptr, "null layer {}", name);
  if (layer->is_merge()) fail_parameter("{} node '{}' needs its inputs named", kind_name(layer->kind()), name);
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    fail_parameter("layer name '{}' used twice", name);
  inputs_.push_back({layers_.size()});
  names_.push_back(std::move(name));
  layers_.push_back(std::move(layer));
  gradient_rules_.layers.push_back(PreparedRule{Rule::gradient(), {}, {}});
}

void Network::add(std::string name, std::shared_ptr<const Layer> layer, const std::vector<std::string>& inputs) {
  LAB_CHECK(layer != nullptr, "null layer {}", name);
  if (name == "input") fail_parameter("node name 'input' is reserved for the network input");
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    fail_parameter("layer name '{}' used twice", name);
  const size_t need = layer->is_merge() ? 2 : 1;
  if (inputs.size() < need || (!layer->is_merge() && inputs.size() > 1))
    fail_parameter("{} node '{}' takes {} input{}, got {}", kind_name(layer->kind()), name,
                   layer->is_merge() ? "2 or more" : "1", layer->is_merge() ? "s" : "", inputs.size());
  std::vector<size_t> acts;
  for (const std::string& in : inputs) {
    if (in == "input") {
      acts.push_back(0);
      continue;
    }
    auto it = std::find(names_.begin(), names_.end(), in);
    if (it == names_.end()) fail_parameter("node '{}': input '{}' is not an earlier node (or 'input')", name, in);
    acts.push_back(static_cast<size_t>(it - names_.begin()) + 1);
  }
  // Shapes must fit now, not at the first forward.
  if (!input_shape_.empty()) {
    const std::vector<Shape> shapes = act_shapes(1);
    std::vector<Shape> in_shapes;
    for (size_t a : acts) in_shapes.push_back(shapes[a]);
    if (layer->is_merge())
      static_cast<const Merge&>(*layer).merged_shape(in_shapes);
    else
      layer->output_shape(in_shapes[0]);
  }
  if (!(acts.size() == 1 && acts[0] == layers_.size())) chain_ = false;
  inputs_.push_back(std::move(acts));
  names_.push_back(std::move(name));
  layers_.push_back(std::move(layer));
  gradient_rules_.layers.push_back(PreparedRule{Rule::gradient(), {}, {}});
}

bool Network::is_cut(size_t act) const {
  LAB_CHECK(act <= layers_.size(), "activation {} of {} nodes", act, layers_.size());
  for (size_t j = act; j < layers_.size(); ++j)
    for (size_t a : inputs_[j])
      if (a < act) return false;
  return true;
}

std::vector<Shape> Network::act_shapes(int64_t batch) const {
  std::vector<Shape> shapes;
  shapes.reserve(layers_.size() + 1);
  Shape s{batch};
  s.insert(s.end(), input_shape_.begin(), input_shape_.end());
  shapes.push_back(std::move(s));
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i]->is_merge()) {
      std::vector<Shape> in;
      for (size_t a : inputs_[i]) in.push_back(shapes[a]);
      shapes.push_back(static_cast<const Merge&>(*layers_[i]).merged_shape(in));
    } else {
      shapes.push_back(layers_[i]->output_shape(shapes[inputs_[i][0]]));
    }
  }
  return shapes;
}

size_t Network::index_of(const std::string& name) const {
  auto it = std::find(names_.begin(), names_.end(), name);
  if (it != names_.end()) return static_cast<size_t>(it - names_.begin());
  std::string list;
  for (const auto& n : names_) list += (list.empty() ? "" : ", ") + n;
  fail_parameter("no layer named '{}'; layers: {}", name, list);
}

Shape Network::shape_after(size_t i, int64_t batch) const {
  if (!chain_) return act_shapes(batch).at(std::min(i, layers_.size() - 1) + 1);
  Shape s{batch};
  s.insert(s.end(), input_shape_.begin(), input_shape_.end());
  for (size_t k = 0; k <= i && k < layers_.size(); ++k) s = layers_[k]->output_shape(s);
  return s;
}

Shape Network::output_shape(int64_t batch) const {
  LAB_CHECK(!layers_.empty(), "empty network");
  return shape_after(layers_.size() - 1, batch);
}

int64_t Network::parameter_count() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l->parameter_count();
  return n;
}

void Network::check_input(const Tensor& x, size_t first_layer) const {
  const Shape expected = first_layer == 0 ? [&] {
    Shape s{x.rank() ? x.dim(0) : 0};
    s.insert(s.end(), input_shape_.begin(), input_shape_.end());
    return s;
  }() : shape_after(first_layer - 1, x.rank() ? x.dim(0) : 0);
  if (x.shape() != expected || x.dim(0) < 1)
    fail("network input of shape {} does not match the expected {}", to_string(x.shape()), to_string(expected));
}

Tensor Network::forward_range(size_t begin, size_t end, const Tensor& input) const {
  LAB_CHECK(begin <= end && end <= layers_.size(), "layer range [{}, {})", begin, end);
  check_input(input, begin);
  if (begin == end) return input;
  if (!chain_) {
    if (!is_cut(begin))
      fail_parameter("the graph cannot be continued from '{}' alone: a later node reads an earlier one",
                     begin == 0 ? std::string("input") : names_[begin - 1]);
    // acts[begin..end] only; the rest stay empty.
    std::vector<Tensor> acts(end + 1);
    const std::vector<Shape> shapes = act_shapes(input.batch());
    acts[begin] = input;
    for (size_t i = begin; i < end; ++i) acts[i + 1] = uninitialized(shapes[i + 1]);
    run_nodes(acts, begin, end, nullptr);
    Tensor out = std::move(acts[end]);
    recycle(acts);
    return out;
  }
  // The steps of the chain: one layer each, or several fused (forward_path()).
  struct Step {
    size_t first, count;
    bool tiles = false;  // a pointwise run of `tile` pixels per tile
    int64_t tile = 0;
    ForwardVariant variant;
    bool patch = false;  // with tiles: a patch run (its first layer a patch convolution)
    bool linear = false;  // Linear layers and their ReLUs as one run (add_linear_run)
  };
  const ForwardPath path = forward_path();
  const auto affine = [&](size_t i) {
    return layers_[i]->kind() == LayerKind::kConv2d || layers_[i]->kind() == LayerKind::kLinear;
  };
  std::vector<Step> steps;
  std::vector<Shape> shapes;
  std::vector<int64_t> bytes;
  for (size_t i = begin; i < end;) {
    const Shape in = i == begin ? input.shape() : shapes.back();
    Step step{i, 1};
    if (path.tiles) {
      const size_t j = pointwise_run_end(layers_, i, end, in);
      if (j > i) step = Step{i, j - i, true, pointwise_tile(layers_, i, j, in)};
      else if (const size_t k = patch_run_end(layers_, i, end, in, true); k > i)
        step = Step{i, k - i, true, patch_tile(layers_, i, k, in), {}, true};
    }
    if (const size_t j = linear_run_end(layers_, i, end); !step.tiles && j > i) {
      step.count = j - i;
      step.linear = true;
    } else if (!step.tiles && affine(i)) {
      step.variant.inference = path.inference;
      // A ReLU after a Linear layer that runs as lab::linear_chain goes into its store in any
      // path: the ReLU layer's bytes (v > 0 ? v : +0), without a pass of its own.
      const bool chain_relu = layers_[i]->kind() == LayerKind::kLinear && linear_chains();
      if ((path.relu_post_op || chain_relu) && i + 1 < end && layers_[i + 1]->kind() == LayerKind::kReLU) {
        step.variant.relu = true;
        step.count = 2;
      }
    }
    Shape out = in;
    for (size_t k = i; k < i + step.count; ++k) out = layers_[k]->output_shape(out);
    shapes.push_back(out);
    bytes.push_back(may_split(*layers_[i]) ? static_cast<int64_t>(sizeof(float)) * (numel(in) + numel(out)) : -1);
    steps.push_back(step);
    i += step.count;
  }
  // Consecutive tiled runs as one step, one parallel region (add_tiled_sequence, patch_run.h): its
  // working set is one image per thread, so it is not split into sub-batches.
  std::vector<std::vector<Step>> sequences(steps.size());
  if (tiled_sequences()) {
    std::vector<Step> merged;
    std::vector<Shape> merged_shapes;
    std::vector<int64_t> merged_bytes;
    std::vector<std::vector<Step>> merged_sequences;
    for (size_t k = 0; k < steps.size();) {
      size_t e = k;
      while (e < steps.size() && steps[e].tiles) ++e;
      if (e - k >= 2) {
        merged.push_back(Step{steps[k].first, steps[e - 1].first + steps[e - 1].count - steps[k].first, true});
        merged_shapes.push_back(shapes[e - 1]);
        merged_bytes.push_back(0);
        merged_sequences.emplace_back(steps.begin() + static_cast<std::ptrdiff_t>(k),
                                      steps.begin() + static_cast<std::ptrdiff_t>(e));
        k = e;
        continue;
      }
      merged.push_back(steps[k]);
      merged_shapes.push_back(shapes[k]);
      merged_bytes.push_back(bytes[k]);
      merged_sequences.emplace_back();
      ++k;
    }
    steps = std::move(merged);
    shapes = std::move(merged_shapes);
    bytes = std::move(merged_bytes);
    sequences = std::move(merged_sequences);
  }
  return chain(input, shapes, bytes, [&](Pass& pass, size_t k, int64_t, const Shape& in, const float* x, float* y) {
    const Step& step = steps[k];
    const Layer& layer = *layers_[step.first];
    if (!sequences[k].empty()) {
      std::vector<TiledRunSpec> runs;
      Shape s = in;
      for (const Step& sub : sequences[k]) {
        TiledRunSpec r{{}, s, sub.tile, sub.patch};
        for (size_t i = sub.first; i < sub.first + sub.count; ++i) {
          r.layers.push_back(layers_[i].get());
          s = layers_[i]->output_shape(s);
        }
        runs.push_back(std::move(r));
      }
      add_tiled_sequence(pass, runs, x, y);
    } else if (step.tiles) {
      std::vector<const Layer*> run;
      for (size_t i = step.first; i < step.first + step.count; ++i) run.push_back(layers_[i].get());
      if (step.patch) add_patch_run(pass, run, in, x, y, step.tile);
      else add_pointwise_run(pass, run, in, x, y, step.tile);
    } else if (step.linear) {
      std::vector<const Layer*> run;
      for (size_t i = step.first; i < step.first + step.count; ++i) run.push_back(layers_[i].get());
      add_linear_run(pass, run, in, x, y);
    } else if (layer.kind() == LayerKind::kConv2d) {
      static_cast<const Conv2d&>(layer).add_forward_variant(pass, in, x, y, step.variant);
    } else if (layer.kind() == LayerKind::kLinear) {
      static_cast<const Linear&>(layer).add_forward_variant(pass, in, x, y, step.variant);
    } else {
      layer.add_forward(pass, in, x, y);
    }
  });
}

Tensor Network::forward(const Tensor& x) const { return forward_range(0, layers_.size(), x); }

Tensor Network::forward_from(const std::string& layer, const Tensor& activation) const {
  const size_t i = index_of(layer);
  return forward_range(i + 1, layers_.size(), activation);
}

void Network::run_nodes(std::vector<Tensor>& acts, size_t begin, size_t end,
                        std::vector<std::vector<float>>* workspaces) const {
  const int64_t batch = acts[begin].batch();
  const auto keeps = [&](size_t i) {
    return workspaces && !layers_[i]->is_merge() && layers_[i]->workspace_numel(acts[inputs_[i][0]].shape()) > 0;
  };
  // Working set of each node: its inputs and output. A workspace is not split: with one, the
  // nodes run on the whole batch.
  std::vector<int64_t> bytes;
  bool split = true;
  for (size_t i = begin; i < end; ++i) {
    int64_t n = acts[i + 1].numel();
    for (size_t a : inputs_[i]) n += acts[a].numel();
    bytes.push_back(may_split(*layers_[i]) ? static_cast<int64_t>(sizeof(float)) * n : -1);
    split = split && !keeps(i);
  }
  if (!split) std::fill(bytes.begin(), bytes.end(), 0);
  const SubBatches plan = plan_sub_batches(bytes, batch);
  Pass pass;
  const auto add_node = [&](size_t i, int64_t b0, int64_t b) {
    const auto at = [&](size_t a) { return acts[a].data() + b0 * acts[a].sample_numel(); };
    float* y = acts[i + 1].data() + b0 * acts[i + 1].sample_numel();
    if (layers_[i]->is_merge()) {
      std::vector<Shape> in;
      std::vector<const float*> xs;
      for (size_t a : inputs_[i]) {
        in.push_back(with_batch(acts[a].shape(), b));
        xs.push_back(at(a));
      }
      static_cast<const Merge&>(*layers_[i]).add_merge_forward(pass, in, xs, y);
      return;
    }
    const size_t a = inputs_[i][0];
    const Shape in = with_batch(acts[a].shape(), b);
    if (!keeps(i)) {
      layers_[i]->add_forward(pass, in, at(a), y);
      return;
    }
    std::vector<float>& ws = (*workspaces)[i];
    ws.resize(static_cast<size_t>(layers_[i]->workspace_numel(in)));
    layers_[i]->add_forward_keep(pass, in, at(a), y, ws.data());
  };
  const size_t lo = begin + plan.lo, hi = begin + plan.hi;
  for (size_t i = begin; i < lo; ++i) add_node(i, 0, batch);
  if (plan.size < batch)
    for (int64_t b0 = 0; b0 < batch; b0 += plan.size)
      for (size_t i = lo; i < hi; ++i) add_node(i, b0, std::min(plan.size, batch - b0));
  for (size_t i = std::max(lo, hi); i < end; ++i) add_node(i, 0, batch);
  pass.run();
}

Trace Network::trace(const Tensor& x, const std::vector<size_t>* keep) const {
  check_input(x, 0);
  const bool tiles = chain_ && forward_path().backprop_tiles;
  const std::vector<Shape> shapes = act_shapes(x.batch());
  // The pointwise runs [first, end) that go tile by tile (a patch convolution and the pointwise
  // layers after it among them), and the activations a lean trace omits.
  std::vector<std::pair<size_t, size_t>> runs;
  std::vector<bool> omit(shapes.size(), false);
  for (size_t i = 0; tiles && i < layers_.size();) {
    size_t j = pointwise_run_end(layers_, i, layers_.size(), shapes[i]);
    // A patch convolution and the pointwise layers after it, as the forward's patch runs (with
    // one layer at least after it).
    if (const size_t k = patch_run_end(layers_, i, layers_.size(), shapes[i], false); j == i && k > i + 1) j = k;
    if (j == i) {
      ++i;
      continue;
    }
    runs.emplace_back(i, j);
    if (keep)
      for (size_t k = i; k + 1 < j; ++k) omit[k + 1] = std::find(keep->begin(), keep->end(), k) == keep->end();
    i = j;
  }
  Trace t;
  t.acts.reserve(layers_.size() + 1);
  t.acts.push_back(uninitialized(x.shape()));
  std::copy(x.values().begin(), x.values().end(), t.acts.back().values().begin());
  for (size_t a = 1; a < shapes.size(); ++a) t.acts.push_back(omit[a] ? Tensor() : uninitialized(shapes[a]));
  t.workspaces.resize(layers_.size());
  if (!tiles) {
    run_nodes(t.acts, 0, layers_.size(), &t.workspaces);
    return t;
  }
  // The pointwise runs tile by tile (every activation kept written from cache; in a lean trace,
  // the signs of each ReLU's omitted input), the nodes between them as run_nodes does.
  size_t done = 0;
  for (const auto& [i, j] : runs) {
    if (done < i) run_nodes(t.acts, done, i, &t.workspaces);
    Pass pass;
    std::vector<const Layer*> run;
    std::vector<float*> outputs;
    std::vector<uint8_t*> masks;
    for (size_t k = i; k < j; ++k) {
      run.push_back(layers_[k].get());
      outputs.push_back(omit[k + 1] ? nullptr : t.acts[k + 1].data());
      masks.push_back(nullptr);
      if (omit[k] && layers_[k]->kind() == LayerKind::kReLU) {
        std::vector<float>& ws = t.workspaces[k];
        ws.resize(static_cast<size_t>((sign_bytes(shapes[k]) + 3) / 4));
        masks.back() = reinterpret_cast<uint8_t*>(ws.data());
      }
    }
    add_pointwise_sign_trace_run(pass, run, shapes[i], t.acts[i].data(), outputs, masks,
                                 is_patch_conv(*layers_[i], shapes[i]) ? patch_tile(layers_, i, j, shapes[i])
                                                                       : pointwise_tile(layers_, i, j, shapes[i]));
    pass.run();
    done = j;
  }
  if (done < layers_.size()) run_nodes(t.acts, done, layers_.size(), &t.workspaces);
  return t;
}

Tensor Network::backward(const Trace& trace, const Tensor& seed, const PreparedRules& rules,
                         std::optional<size_t> to_layer, const Trace* reference) const {
  LAB_CHECK(trace.acts.size() == layers_.size() + 1, "trace of {} activations for {} layers", trace.acts.size(),
            layers_.size());
  LAB_CHECK(rules.layers.size() == layers_.size(), "rules for {} layers, network has {}", rules.layers.size(),
            layers_.size());
  if (seed.shape() != trace.output().shape())
    fail("backward seed of shape {} does not match the output {}", to_string(seed.shape()),
         to_string(trace.output().shape()));
  if (rules.needs_reference) {
    if (!reference) fail_parameter("the rescale rule (DeepLIFT) needs the trace of a reference input");
    LAB_CHECK(reference->acts.size() == trace.acts.size() &&
                  (reference->input().batch() == 1 || reference->input().batch() == trace.input().batch()),
              "reference trace does not match");
  }
  const size_t stop = to_layer ? *to_layer + 1 : 0;
  LAB_CHECK(stop <= layers_.size(), "to_layer {} out of range", stop);
  if (!chain_) return backward_graph(trace, seed, rules, stop, reference);
  const std::vector<Shape> shapes = act_shapes(seed.batch());  // (a hand-made trace may lack the input)
  // Activation a: the trace's, or, omitted by trace_for_gradient (inside a pointwise run, whose
  // input the trace keeps), recomputed by the layers below it from the nearest one kept: the
  // same kernels on the same inputs as Network::trace, so the same bytes. signs(a): the bytes
  // x > 0 of a ReLU's omitted input a, kept instead by trace_for_gradient (nullptr: none).
  const auto signs = [&](size_t a) -> const uint8_t* {
    if (!trace.acts[a].empty() || a >= trace.workspaces.size() || layers_[a]->kind() != LayerKind::kReLU ||
        static_cast<int64_t>(trace.workspaces[a].size()) * 4 < sign_bytes(shapes[a]))
      return nullptr;
    return reinterpret_cast<const uint8_t*>(trace.workspaces[a].data());
  };
  std::vector<Tensor> own(layers_.size() + 1);
  const std::function<const Tensor&(size_t)> act = [&](size_t a) -> const Tensor& {
    if (!trace.acts[a].empty() || a == 0) return trace.acts[a];
    if (own[a].empty()) {
      const Tensor& below = act(a - 1);
      own[a] = uninitialized(shapes[a]);
      Pass pass;
      layers_[a - 1]->add_forward(pass, below.shape(), below.data(), own[a].data());
      pass.run();
    }
    return own[a];
  };
  // Workspaces of the layers that keep one (max-pool), recomputed if the trace lacks them.
  std::vector<std::vector<float>> own_ws;
  std::vector<const float*> ws(layers_.size(), nullptr);
  for (size_t i = stop; i < layers_.size(); ++i) {
    const int64_t n = layers_[i]->workspace_numel(shapes[i]);
    if (n == 0) continue;
    if (i < trace.workspaces.size() && static_cast<int64_t>(trace.workspaces[i].size()) >= n) {
      ws[i] = trace.workspaces[i].data();
      continue;
    }
    own_ws.emplace_back(static_cast<size_t>(n));
    Tensor scratch = uninitialized(shapes[i + 1]);
    Pass pass;
    layers_[i]->add_forward_keep(pass, shapes[i], act(i).data(), scratch.data(), own_ws.back().data());
    pass.run();
    ws[i] = own_ws.back().data();
  }
  // How ReLU i carries the signal under its rule: the gradient, guided and deconv rules are steps
  // of the chain below (in a pointwise run, or alone), computed by add_pointwise_sign_backward_run
  // except a lone ReLU under the gradient, which runs oneDNN's backward-data.
  const auto relu_mode = [&](size_t i) {
    const RuleKind kind = rules.layers[i].rule.kind;
    return kind == RuleKind::kGuided ? ReluBackward::kGuided
           : kind == RuleKind::kDeconv ? ReluBackward::kDeconv
                                       : ReluBackward::kGradient;
  };
  // The guided rule on a layer other than a ReLU: the host clips the whole signal, then the
  // layer's backward-data.
  const auto clips_on_host = [&](size_t i) {
    return rules.layers[i].rule.kind == RuleKind::kGuided && layers_[i]->kind() != LayerKind::kReLU;
  };
  // Whether layer i carries the signal in the chain of steps below under its rule (else the host does).
  const auto by_backward_data = [&](size_t i) {
    const RuleKind kind = rules.layers[i].rule.kind;
    const LayerKind layer = layers_[i]->kind();
    return kind == RuleKind::kGradient || kind == RuleKind::kGuided ||
           (kind == RuleKind::kDeconv && layer == LayerKind::kReLU) ||
           (kind == RuleKind::kRescale && layer != LayerKind::kReLU && layer != LayerKind::kSoftmax &&
            layer != LayerKind::kMaxPool2d);
  };
  Tensor s = seed;
  for (size_t top = layers_.size(); top-- > stop;) {
    const Layer& layer = *layers_[top];
    const PreparedRule& p = rules.layers[top];
    if (by_backward_data(top)) {
      // Every layer down to the next one the host works on (or the next host clip) runs in one
      // pass: backward-data, and the ReLUs' gradient, guided and deconv rules.
      if (clips_on_host(top))
        for (float& v : s.values()) v = std::max(v, 0.0f);
      size_t bottom = top;
      while (bottom > stop && by_backward_data(bottom - 1) && !clips_on_host(bottom - 1)) --bottom;
      // The steps, from the top down: one layer each, or a pointwise run (backprop_tiles) of
      // layers [lo, hi] tile by tile.
      struct Step {
        size_t lo, hi;
        int64_t tile = 0;  // > 0: a pointwise run
      };
      std::vector<Step> steps;
      std::vector<Shape> steps_in;
      std::vector<int64_t> bytes;  // dy, dx, x and y of each layer (none: a workspace cannot be split)
      bool split = true;
      const bool tiles = forward_path().backprop_tiles;
      for (size_t i = top + 1; i-- > bottom;) {
        Step step{i, i};
        if (tiles) {
          // The longest pointwise run ending at i, from the first pointwise layer below it.
          size_t lo = i;
          while (lo > bottom && is_run_pointwise(*layers_[lo - 1])) --lo;
          for (; lo < i; ++lo)
            if (pointwise_run_end(layers_, lo, i + 1, shapes[lo]) == i + 1) break;
          if (lo < i) step = Step{lo, i, pointwise_tile(layers_, lo, i + 1, shapes[lo])};
          // A patch convolution right below the run joins it where its transposed product splits
          // by columns alike (patch_backward_joins): the signal at its output stays in cache.
          if (lo < i && lo > bottom && layers_[lo - 1]->kind() == LayerKind::kConv2d &&
              patch_backward_joins(static_cast<const Conv2d&>(*layers_[lo - 1]), shapes[lo - 1]))
            step = Step{lo - 1, i, patch_tile(layers_, lo - 1, i + 1, shapes[lo - 1])};
        }
        // A ReLU of the step that reads its input (or its signs): not under the deconv rule.
        const auto reads_x = [&](size_t k) {
          return layers_[k]->kind() == LayerKind::kReLU && relu_mode(k) != ReluBackward::kDeconv;
        };
        // A lone ReLU under the guided or deconv rule (see relu_mode).
        const bool lone_rule = step.tile == 0 && layers_[i]->kind() == LayerKind::kReLU &&
                               relu_mode(i) != ReluBackward::kGradient;
        int64_t values = numel(shapes[step.lo]) + numel(shapes[step.hi + 1]);
        for (size_t k = step.lo; k <= step.hi; ++k) {
          if ((step.tile > 0 || lone_rule) && reads_x(k))
            values += step.tile > 0 && signs(k) ? sign_bytes(shapes[k]) / 4 : numel(shapes[k]);
          split = split && ws[k] == nullptr;
        }
        // The activations the step reads (a tiled run or a lone guided ReLU: its ReLUs' inputs,
        // or their signs), recomputed here if the trace omitted them.
        // An affine layer's backward-data reads neither (reads_no_activation).
        if (step.tile == 0 && !lone_rule && !reads_no_activation(*layers_[step.lo])) {
          (void)act(step.lo);
          (void)act(step.lo + 1);
        }
        for (size_t k = step.lo; (step.tile > 0 || lone_rule) && k <= step.hi; ++k)
          if (reads_x(k) && !(step.tile > 0 && signs(k))) (void)act(k);
        steps_in.push_back(shapes[step.lo]);
        bytes.push_back(may_split(*layers_[i]) ? static_cast<int64_t>(2 * sizeof(float)) * values : -1);
        steps.push_back(step);
        i = step.lo;
      }
      if (!split) std::fill(bytes.begin(), bytes.end(), 0);
      s = chain(s, steps_in, bytes, [&](Pass& pass, size_t k, int64_t b0, const Shape& dy_shape, const float* dy, float* dx) {
        const Step& step = steps[k];
        const size_t i = step.lo;
        const Shape in = with_batch(shapes[i], dy_shape[0]);
        const auto at = [&](size_t a) { return act(a).data() + b0 * act(a).sample_numel(); };
        const auto reads_x = [&](size_t l) {
          return layers_[l]->kind() == LayerKind::kReLU && relu_mode(l) != ReluBackward::kDeconv;
        };
        if (step.tile > 0) {
          std::vector<const Layer*> run;
          std::vector<const float*> inputs;
          std::vector<const uint8_t*> masks;
          std::vector<ReluBackward> modes;
          for (size_t l = step.lo; l <= step.hi; ++l) {
            run.push_back(layers_[l].get());
            const uint8_t* m = reads_x(l) ? signs(l) : nullptr;
            masks.push_back(m ? m + b0 * (sign_bytes(shapes[l]) / shapes[l][0]) : nullptr);
            inputs.push_back(reads_x(l) && !m ? at(l) : nullptr);
            modes.push_back(relu_mode(l));
          }
          add_pointwise_sign_backward_run(pass, run, in, inputs, masks, dy, dx, step.tile, modes);
        } else if (layers_[i]->kind() == LayerKind::kReLU && relu_mode(i) != ReluBackward::kGradient) {
          // A lone ReLU under the guided or deconv rule: a run of that one ReLU on the signal
          // viewed as N×1×P×1 (P values per sample), its input read as values.
          const Shape view{in[0], 1, per_sample(in), 1};
          add_pointwise_sign_backward_run(pass, {layers_[i].get()}, view, {reads_x(i) ? at(i) : nullptr}, {nullptr},
                                          dy, dx, pointwise_tile(layers_, i, i + 1, view), {relu_mode(i)});
        } else if (ws[i]) {
          layers_[i]->add_backward_keep(pass, in, at(i), at(i + 1), dy, dx, ws[i]);
        } else if (reads_no_activation(*layers_[i])) {
          layers_[i]->add_backward_data(pass, in, nullptr, nullptr, dy, dx);
        } else {
          layers_[i]->add_backward_data(pass, in, at(i), at(i + 1), dy, dx);
        }
      });
      top = bottom;
      continue;
    }
    if (forward_path().backprop_tiles && lrp_tiles(layer, p)) {
      // LRP-ε through a pointwise run ending at `top` (its convolutions under LRP-ε, its ReLUs
      // under the pass rule): the longest such run, tile by tile (add_lrp_run).
      size_t lo = top;
      while (lo > stop && lrp_tiles(*layers_[lo - 1], rules.layers[lo - 1])) --lo;
      for (; lo < top; ++lo)
        if (pointwise_run_end(layers_, lo, top + 1, shapes[lo]) == top + 1) break;
      if (lo < top) {
        std::vector<LrpTile> run;
        for (size_t k = lo; k <= top; ++k) {
          const Shape& in = shapes[k];
          LrpTile t{nullptr, in[1], shapes[k + 1][1]};
          if (layers_[k]->kind() == LayerKind::kConv2d) {
            const PreparedRule& q = rules.layers[k];
            t = LrpTile{&static_cast<const Conv2d&>(*layers_[k]), in[1], shapes[k + 1][1], act(k).data(),
                        act(k + 1).data(), static_cast<float>(q.rule.epsilon),
                        static_cast<float>(q.rule.groups[0].coefficient)};
          }
          run.push_back(t);
        }
        Tensor dx = uninitialized(shapes[lo]);
        Pass pass;
        add_lrp_run(pass, std::move(run), shapes[lo][0], shapes[lo][2] * shapes[lo][3], s.data(), dx.data(),
                    pointwise_tile(layers_, lo, top + 1, shapes[lo]));
        pass.run();
        s = std::move(dx);
        top = lo;
        continue;
      }
    }
    switch (p.rule.kind) {
      case RuleKind::kPass:
        s.reshape(shapes[top]);
        break;
      case RuleKind::kDeconv:
        for (float& v : s.values()) v = std::max(v, 0.0f);
        break;
      case RuleKind::kLrp:
        s = lrp(static_cast<const AffineLayer&>(layer), p, act(top), act(top + 1), std::move(s));
        break;
      case RuleKind::kRescale:
        if (layer.kind() == LayerKind::kReLU)
          s = rescale_relu(act(top), act(top + 1), reference->acts[top], reference->acts[top + 1], std::move(s));
        else if (layer.kind() == LayerKind::kMaxPool2d)
          s = rescale_max_pool(static_cast<const MaxPool2d&>(layer).params(), act(top), reference->acts[top], s);
        else
          s = rescale_softmax(act(top), reference->acts[top], s, p.rule.quadrature);
        break;
      case RuleKind::kGradient:
      case RuleKind::kGuided:
        break;  // carried by backward-data above
    }
  }
  return s;
}

Tensor Network::backward_graph(const Trace& trace, const Tensor& seed, const PreparedRules& rules, size_t stop,
                               const Trace* reference) const {
  // sig[a]: the signal at acts[a], summed over the consumers processed so far (empty: none yet).
  std::vector<Tensor> sig(layers_.size() + 1);
  sig.back() = seed;
  const auto accumulate = [&](size_t a, Tensor t) {
    if (sig[a].empty()) {
      sig[a] = std::move(t);
      return;
    }
    float* d = sig[a].data();
    const float* v = t.data();
    for (int64_t k = 0; k < t.numel(); ++k) d[k] += v[k];
  };
  for (size_t i = layers_.size(); i-- > stop;) {
    if (sig[i + 1].empty()) continue;  // no consumer carried a signal here
    Tensor s = std::move(sig[i + 1]);
    sig[i + 1] = Tensor();
    const Layer& layer = *layers_[i];
    const PreparedRule& p = rules.layers[i];
    const Tensor& y = trace.acts[i + 1];
    if (layer.is_merge()) {
      const auto& merge = static_cast<const Merge&>(layer);
      std::vector<const Tensor*> xs;
      for (size_t a : inputs_[i]) xs.push_back(&trace.acts[a]);
      std::vector<Tensor> out;
      if (layer.kind() == LayerKind::kAdd && p.rule.kind == RuleKind::kLrp) {
        out = lrp_add(xs, y, s, static_cast<float>(p.rule.epsilon));
      } else if (layer.kind() == LayerKind::kMultiply && p.rule.kind == RuleKind::kPass) {
        out.push_back(std::move(s));
        out.emplace_back(xs[1]->shape(), 0.0f);
      } else if (layer.kind() == LayerKind::kMultiply && p.rule.kind == RuleKind::kRescale) {
        out = rescale_multiply(*xs[0], *xs[1], reference->acts[inputs_[i][0]], reference->acts[inputs_[i][1]], s);
      } else {
        std::vector<Tensor> in;
        for (const Tensor* x : xs) in.push_back(*x);
        out = merge.backward_data(in, s);
      }
      for (size_t k = 0; k < out.size(); ++k) accumulate(inputs_[i][k], std::move(out[k]));
      continue;
    }
    const size_t a = inputs_[i][0];
    const Tensor& x = trace.acts[a];
    switch (p.rule.kind) {
      case RuleKind::kGuided:
        for (float& v : s.values()) v = std::max(v, 0.0f);
        [[fallthrough]];
      case RuleKind::kGradient: {
        if (i < trace.workspaces.size() && !trace.workspaces[i].empty()) {
          Tensor dx = uninitialized(x.shape());
          Pass pass;
          layer.add_backward_keep(pass, x.shape(), x.data(), y.data(), s.data(), dx.data(), trace.workspaces[i].data());
          pass.run();
          s = std::move(dx);
        } else {
          s = layer.backward_data(x, y, s);  // recomputes a missing workspace
        }
        break;
      }
      case RuleKind::kPass:
        s.reshape(x.shape());
        break;
      case RuleKind::kDeconv:
        for (float& v : s.values()) v = std::max(v, 0.0f);
        break;
      case RuleKind::kLrp:
        s = lrp(static_cast<const AffineLayer&>(layer), p, x, y, std::move(s));
        break;
      case RuleKind::kRescale:
        if (layer.kind() == LayerKind::kReLU)
          s = rescale_relu(x, y, reference->acts[a], reference->acts[i + 1], std::move(s));
        else if (layer.kind() == LayerKind::kMaxPool2d)
          s = rescale_max_pool(static_cast<const MaxPool2d&>(layer).params(), x, reference->acts[a], s);
        else if (layer.kind() == LayerKind::kSoftmax)
          s = rescale_softmax(x, reference->acts[a], s, p.rule.quadrature);
        else
          s = layer.backward_data(x, y, s);  // linear layers: the multiplier is the derivative
        break;
    }
    accumulate(a, std::move(s));
  }
  if (sig[stop].empty()) return Tensor(trace.acts[stop].shape(), 0.0f);
  return std::move(sig[stop]);
}

Tensor Network::gradient(const Trace& trace, const Tensor& seed, std::optional<size_t> to_layer) const {
  return backward(trace, seed, gradient_rules_, to_layer);
}

}  // namespace lab
