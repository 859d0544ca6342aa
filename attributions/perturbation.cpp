#include "attributions/perturbation.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string_view>
#include <unordered_map>

#include <tbb/parallel_for.h>

#include "lab/core/error.h"
#include "lab/core/storage.h"
#include "lab/nn/incremental.h"
#include "lab/nn/layers.h"

namespace attributions {

double Draws::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

uint64_t Draws::below(uint64_t n) {
  LAB_CHECK(n >= 1, "below({})", n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = engine_();
  } while (v >= limit);
  return v % n;
}

double Draws::normal() {
  const double u1 = 1.0 - uniform();  // in (0, 1], so the logarithm is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

Adam::Adam(size_t size, double lr, double beta1, double beta2, double epsilon)
    : lr_(lr), beta1_(beta1), beta2_(beta2), epsilon_(epsilon), m_(size, 0.0), v_(size, 0.0) {}

void Adam::step(std::vector<double>& theta, const std::vector<double>& grad) {
  LAB_CHECK(theta.size() == m_.size() && grad.size() == m_.size(), "Adam of size {} given {} and {}", m_.size(),
            theta.size(), grad.size());
  ++t_;
  const double c1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  for (size_t i = 0; i < theta.size(); ++i) {
    m_[i] = beta1_ * m_[i] + (1.0 - beta1_) * grad[i];
    v_[i] = beta2_ * v_[i] + (1.0 - beta2_) * grad[i] * grad[i];
    theta[i] -= lr_ * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + epsilon_);
  }
}

Sgd::Sgd(size_t size, double lr, double momentum, double dampening)
    : lr_(lr), momentum_(momentum), dampening_(dampening), buffer_(size, 0.0) {}

void Sgd::step(std::vector<double>& theta, const std::vector<double>& grad) {
  LAB_CHECK(theta.size() == buffer_.size() && grad.size() == buffer_.size(), "SGD of size {} given {} and {}",
            buffer_.size(), theta.size(), grad.size());
  for (size_t i = 0; i < theta.size(); ++i) {
    buffer_[i] = started_ ? momentum_ * buffer_[i] + (1.0 - dampening_) * grad[i] : grad[i];
    theta[i] -= lr_ * buffer_[i];
  }
  started_ = true;
}

namespace {

/// run_forward of layers [first, net.size()): `inputs` makes activations of node first − 1 (the
/// network input for first = 0).
int64_t forward_chunks(const lab::Network& net, size_t first, int64_t count, int64_t max_batch, const InputFn& inputs,
                       const TargetFn& target, const OutputsFn& consume) {
  LAB_CHECK(max_batch >= 1, "batch {}", max_batch);
  std::vector<double> outputs;
  for (int64_t begin = 0; begin < count; begin += max_batch) {
    const int64_t end = std::min(count, begin + max_batch);
    const lab::Tensor chunk = inputs(begin, end);
    const lab::Tensor y = first == 0 ? net.forward(chunk) : net.forward_range(first, net.size(), chunk);
    LAB_CHECK(y.batch() == end - begin, "input function made {} inputs for [{}, {})", y.batch(), begin, end);
    const int64_t units = y.sample_numel();
    outputs.resize(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = target(i);
      LAB_CHECK(t >= 0 && t < units, "target {} outside {} output units", t, units);
      outputs[static_cast<size_t>(i - begin)] = y[(i - begin) * units + t];
    }
    consume(begin, outputs);
  }
  return count;
}

}  // namespace

int64_t run_forward(const lab::Network& net, int64_t count, int64_t max_batch, const InputFn& inputs,
                    const TargetFn& target, const OutputsFn& consume) {
  return forward_chunks(net, 0, count, max_batch, inputs, target, consume);
}

size_t coalition_cut(const lab::Network& net) { return lab::pixelwise_cut(net); }

void parallel_items(int64_t begin, int64_t end, const std::function<void(int64_t)>& body) {
  tbb::parallel_for(begin, end, [&](int64_t i) { body(i); });
}

void Coalitions::push(const std::vector<uint8_t>& row) {
  LAB_CHECK(static_cast<int64_t>(row.size()) == features, "coalition of {} features, expected {}", row.size(),
            features);
  z.insert(z.end(), row.begin(), row.end());
}

void fill_coalition(const float* x, const float* baseline, const cv::Mat& labels, const uint8_t* z,
                    int64_t channels, float* out) {
  const int64_t plane = static_cast<int64_t>(labels.rows) * labels.cols;
  const int32_t* label = labels.ptr<int32_t>(0);
  // Which pixels keep x, looked up once for all channels.
  thread_local std::vector<uint8_t> keep;
  keep.resize(static_cast<size_t>(plane));
  for (int64_t p = 0; p < plane; ++p) keep[static_cast<size_t>(p)] = z[label[p]];
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t offset = c * plane;
    for (int64_t p = 0; p < plane; ++p)
      out[offset + p] = keep[static_cast<size_t>(p)] ? x[offset + p] : baseline[offset + p];
  }
}

std::vector<std::vector<double>> evaluate_coalitions(const lab::Network& net, const lab::Tensor& x,
                                                     const lab::Tensor& baseline,
                                                     const std::vector<Segments>& segments,
                                                     const std::vector<Coalitions>& coalitions,
                                                     const std::vector<int64_t>& target, int64_t max_batch,
                                                     int64_t& evaluations) {
  const int64_t n = x.batch();
  LAB_CHECK(static_cast<int64_t>(segments.size()) == n && static_cast<int64_t>(coalitions.size()) == n,
            "segments/coalitions per sample");
  // Each sample's distinct coalitions, in order of first appearance: distinct[s] holds the row of
  // each, slot[s][i] the distinct coalition that row i repeats. Equal rows make equal inputs, and a
  // sample's output does not depend on the other inputs of its network call, so a repeated row
  // takes the value its first appearance was given, bit for bit.
  std::vector<std::vector<int64_t>> distinct(static_cast<size_t>(n)), slot(static_cast<size_t>(n));
  parallel_items(0, n, [&](int64_t s) {
    const Coalitions& c = coalitions[static_cast<size_t>(s)];
    const auto bytes = static_cast<size_t>(c.features);
    std::unordered_map<std::string_view, int64_t> seen;
    seen.reserve(static_cast<size_t>(c.count()));
    auto& d = distinct[static_cast<size_t>(s)];
    auto& sl = slot[static_cast<size_t>(s)];
    sl.resize(static_cast<size_t>(c.count()));
    for (int64_t i = 0; i < c.count(); ++i) {
      const std::string_view row(reinterpret_cast<const char*>(c.row(i)), bytes);
      const auto [it, fresh] = seen.try_emplace(row, static_cast<int64_t>(d.size()));
      if (fresh) d.push_back(i);
      sl[static_cast<size_t>(i)] = it->second;
    }
  });
  // Virtual input v belongs to sample owner[v] as its distinct coalition v − first[owner[v]].
  std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
  for (int64_t s = 0; s < n; ++s) first[s + 1] = first[s] + static_cast<int64_t>(distinct[s].size());
  const int64_t total = first[n];
  auto owner = [&](int64_t v) {
    return static_cast<int64_t>(std::upper_bound(first.begin(), first.end(), v) - first.begin()) - 1;
  };
  std::vector<double> values(static_cast<size_t>(total));
  // The inputs are assembled at activation `cut`, from x and the baseline carried through the
  // pixel-wise layers before it (once per sample, not once per coalition).
  const size_t cut = total > 0 ? coalition_cut(net) : 0;
  const lab::Shape x_shape = x.sample_shape();
  lab::Shape baseline_shape{1};
  baseline_shape.insert(baseline_shape.end(), x_shape.begin(), x_shape.end());
  const lab::Tensor from = cut == 0 ? x : net.forward_range(0, cut, x);
  const lab::Tensor base = cut == 0 ? baseline : net.forward_range(0, cut, baseline.reshaped(baseline_shape));
  LAB_CHECK(from.rank() == 4 && from.dim(2) == x.dim(2) && from.dim(3) == x.dim(3), "coalitions cut at a {} activation",
            lab::to_string(from.shape()));
  const lab::Shape sample_shape = from.sample_shape();
  const int64_t numel = from.sample_numel();
  const int64_t channels = from.dim(1);
  evaluations += forward_chunks(
      net, cut, total, max_batch,
      [&](int64_t begin, int64_t end) {
        lab::Shape shape{end - begin};
        shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
        lab::Tensor inputs = lab::uninitialized(shape);
        parallel_items(begin, end, [&](int64_t v) {
          const int64_t s = owner(v);
          fill_coalition(from.sample(s), base.data(), segments[s].labels,
                         coalitions[s].row(distinct[s][static_cast<size_t>(v - first[s])]), channels,
                         inputs.data() + (v - begin) * numel);
        });
        return inputs;
      },
      [&](int64_t v) { return target[static_cast<size_t>(owner(v))]; },
      [&](int64_t begin, const std::vector<double>& outputs) {
        std::copy(outputs.begin(), outputs.end(), values.begin() + begin);
      });
  std::vector<std::vector<double>> out(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    out[s].resize(static_cast<size_t>(coalitions[s].count()));
    for (size_t i = 0; i < out[s].size(); ++i) out[s][i] = values[static_cast<size_t>(first[s] + slot[s][i])];
  }
  return out;
}

lab::Tensor superpixel_maps(const std::vector<Segments>& segments, const std::vector<std::vector<double>>& values) {
  LAB_CHECK(!segments.empty() && segments.size() == values.size(), "superpixel maps of {} samples", segments.size());
  const int64_t h = segments[0].labels.rows, w = segments[0].labels.cols;
  lab::Tensor maps({static_cast<int64_t>(segments.size()), h, w});
  for (size_t n = 0; n < segments.size(); ++n) {
    LAB_CHECK(static_cast<int64_t>(values[n].size()) == segments[n].count, "values for {} of {} superpixels",
              values[n].size(), segments[n].count);
    const int32_t* label = segments[n].labels.ptr<int32_t>(0);
    float* m = maps.sample(static_cast<int64_t>(n));
    for (int64_t p = 0; p < h * w; ++p) m[p] = static_cast<float>(values[n][static_cast<size_t>(label[p])]);
  }
  return maps;
}

}  // namespace attributions
