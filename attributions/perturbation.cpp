#include "attributions/perturbation.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <tbb/parallel_for.h>

#include "lab/core/error.h"
#include "lab/core/storage.h"

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

int64_t run_forward(const lab::Network& net, int64_t count, int64_t max_batch, const InputFn& inputs,
                    const TargetFn& target, const OutputsFn& consume) {
  LAB_CHECK(max_batch >= 1, "batch {}", max_batch);
  std::vector<double> outputs;
  for (int64_t begin = 0; begin < count; begin += max_batch) {
    const int64_t end = std::min(count, begin + max_batch);
    const lab::Tensor y = net.forward(inputs(begin, end));
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
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t offset = c * plane;
    for (int64_t p = 0; p < plane; ++p) out[offset + p] = z[label[p]] ? x[offset + p] : baseline[offset + p];
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
  // Virtual input v belongs to sample owner[v] as its coalition v − first[owner[v]].
  std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
  for (int64_t s = 0; s < n; ++s) first[s + 1] = first[s] + coalitions[s].count();
  const int64_t total = first[n];
  auto owner = [&](int64_t v) {
    return static_cast<int64_t>(std::upper_bound(first.begin(), first.end(), v) - first.begin()) - 1;
  };
  std::vector<std::vector<double>> out(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) out[s].resize(static_cast<size_t>(coalitions[s].count()));
  const lab::Shape sample_shape = x.sample_shape();
  const int64_t numel = x.sample_numel();
  const int64_t channels = x.dim(1);
  evaluations += run_forward(
      net, total, max_batch,
      [&](int64_t begin, int64_t end) {
        lab::Shape shape{end - begin};
        shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
        lab::Tensor inputs = lab::uninitialized(shape);
        parallel_items(begin, end, [&](int64_t v) {
          const int64_t s = owner(v);
          fill_coalition(x.sample(s), baseline.data(), segments[s].labels, coalitions[s].row(v - first[s]), channels,
                         inputs.data() + (v - begin) * numel);
        });
        return inputs;
      },
      [&](int64_t v) { return target[static_cast<size_t>(owner(v))]; },
      [&](int64_t begin, const std::vector<double>& outputs) {
        for (size_t i = 0; i < outputs.size(); ++i) {
          const int64_t v = begin + static_cast<int64_t>(i);
          const int64_t s = owner(v);
          out[s][static_cast<size_t>(v - first[s])] = outputs[i];
        }
      });
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
