#include "attributions/rise.h"

#include <algorithm>

#include <opencv2/imgproc.hpp>

#include "attributions/perturbation.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

constexpr uint64_t kRiseStream = 0x52495345;  // "RISE"
constexpr int64_t kAutoCells = 7;

}  // namespace

const lab::Schema<Rise::Params>& Rise::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .field("masks", &Params::masks,
                 {.range = lab::at_least(1),
                  .help = "number N of random masks",
                  .source = "Petsiuk et al. 2018: 4000 for ResNet-50"})
          .field("p", &Params::p,
                 {.range = lab::Range{.min = 0, .max = 1, .min_open = true},
                  .help = "probability of keeping a cell of the coarse grid",
                  .source = "Petsiuk et al. 2018"})
          .field("cell-size", &Params::cell_size,
                 {.range = lab::at_least(1),
                  .help = "cell side in pixels (s = ⌈H/c⌉ cells per side)",
                  .source = "Petsiuk et al. 2018: a 7×7 grid",
                  .derived = "⌈H/7⌉, the original's 7×7 grid"})
          .with(baseline_param(&Params::baseline, "value where a mask is 0 (zero: the original's M ⊙ x)"))
          .with(output_param(&Params::output, "Petsiuk et al. 2018: masks weighed by class probabilities"));
  return s;
}

Rise::Rise(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

std::vector<float> Rise::mask(uint64_t seed, int64_t index, int64_t height, int64_t width) const {
  const int64_t ch = params_.cell_size.value_or(ceil_div(height, kAutoCells));
  const int64_t cw = params_.cell_size.value_or(ceil_div(width, kAutoCells));
  const int64_t sh = ceil_div(height, ch), sw = ceil_div(width, cw);
  Draws draws(lab::Rng(lab::derive_seed(seed, static_cast<uint64_t>(index)), kRiseStream).engine());
  cv::Mat grid(static_cast<int>(sh), static_cast<int>(sw), CV_32F);
  for (int y = 0; y < grid.rows; ++y)
    for (int x = 0; x < grid.cols; ++x) grid.at<float>(y, x) = draws.bernoulli(params_.p) ? 1.0f : 0.0f;
  const int64_t dy = static_cast<int64_t>(draws.below(static_cast<uint64_t>(ch)));
  const int64_t dx = static_cast<int64_t>(draws.below(static_cast<uint64_t>(cw)));
  cv::Mat up;
  cv::resize(grid, up, cv::Size(static_cast<int>((sw + 1) * cw), static_cast<int>((sh + 1) * ch)), 0, 0,
             cv::INTER_LINEAR);
  std::vector<float> out(static_cast<size_t>(height * width));
  for (int64_t y = 0; y < height; ++y) {
    const float* row = up.ptr<float>(static_cast<int>(y + dy));
    std::copy(row + dx, row + dx + width, out.begin() + y * width);
  }
  return out;
}

Result Rise::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, true);
  const lab::Tensor& x = batch.x;
  if (x.rank() != 4) lab::fail_parameter("rise needs C×H×W inputs, got {}", lab::to_string(x.sample_shape()));
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor baseline = params_.baseline.resolve(context, x.sample_shape());
  const int64_t n = x.batch(), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  const int64_t plane = height * width, numel = x.sample_numel(), per_sample = params_.masks;

  // Virtual input v is mask v % N of sample v / N; the chunk's masks are kept for the sum.
  std::vector<std::vector<float>> chunk_masks;
  std::vector<std::vector<double>> sum(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(plane), 0.0));
  Result r;
  r.evaluations = run_forward(
      net, n * per_sample, context.batch,
      [&](int64_t begin, int64_t end) {
        lab::Shape shape{end - begin};
        const lab::Shape s = x.sample_shape();
        shape.insert(shape.end(), s.begin(), s.end());
        lab::Tensor inputs(shape);
        chunk_masks.assign(static_cast<size_t>(end - begin), {});
        parallel_items(begin, end, [&](int64_t v) {
          const int64_t sample = v / per_sample;
          std::vector<float>& m = chunk_masks[static_cast<size_t>(v - begin)];
          m = mask(batch.seeds[static_cast<size_t>(sample)], v % per_sample, height, width);
          const float* xs = x.sample(sample);
          float* dst = inputs.data() + (v - begin) * numel;
          for (int64_t c = 0; c < channels; ++c)
            for (int64_t i = 0; i < plane; ++i) {
              const float keep = m[static_cast<size_t>(i)];
              dst[c * plane + i] = keep * xs[c * plane + i] + (1.0f - keep) * baseline[c * plane + i];
            }
        });
        return inputs;
      },
      [&](int64_t v) { return batch.target[static_cast<size_t>(v / per_sample)]; },
      [&](int64_t begin, const std::vector<double>& outputs) {
        // Per sample, masks are added in index order whatever the chunking; samples are independent.
        const int64_t first = begin / per_sample;
        const int64_t last = (begin + static_cast<int64_t>(outputs.size()) - 1) / per_sample;
        parallel_items(first, last + 1, [&](int64_t sample) {
          std::vector<double>& acc = sum[static_cast<size_t>(sample)];
          for (size_t k = 0; k < outputs.size(); ++k) {
            const int64_t v = begin + static_cast<int64_t>(k);
            if (v / per_sample != sample) continue;
            const std::vector<float>& m = chunk_masks[k];
            for (int64_t i = 0; i < plane; ++i) acc[static_cast<size_t>(i)] += outputs[k] * m[static_cast<size_t>(i)];
          }
        });
      });
  lab::Tensor maps({n, height, width});
  const double scale = 1.0 / (static_cast<double>(params_.masks) * params_.p);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < plane; ++i) maps[s * plane + i] = static_cast<float>(sum[static_cast<size_t>(s)][static_cast<size_t>(i)] * scale);
  r.attr = spread_over_channels(maps, channels);
  return r;
}

MethodInfo Rise::info() {
  return method_info<Rise>("rise", "expected output over random smooth masks that keep each pixel (Petsiuk et al. 2018)");
}

}  // namespace attributions
