#include "attributions/occlusion.h"

#include <algorithm>

#include "attributions/perturbation.h"
#include "lab/core/error.h"
#include "lab/core/storage.h"
#include "lab/nn/incremental.h"

namespace attributions {

namespace {

std::string triple_text(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

/// A window position: its first channel, row and column.
struct Position {
  int64_t c, y, x;
};

}  // namespace

const lab::Schema<Occlusion::Params>& Occlusion::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .field("window", &Params::window,
                 {.range = lab::at_least(1),
                  .help = "window (c,h,w)",
                  .source = "App. F.2: (1,5,5) on gray; App. G.2: (3,5,5) on RGB",
                  .derived = "(C,5,5) for inputs of C channels"})
          .field("strides", &Params::strides,
                 {.range = lab::at_least(1),
                  .help = "strides (c,h,w)",
                  .source = "App. F.2: (1,3,3) on gray; App. G.2: (3,3,3) on RGB",
                  .derived = "(C,3,3) for inputs of C channels"})
          .with(baseline_param(&Params::baseline, "occluding value (background: Occlusion*)",
                               "App. F.2: all-zero; App. G.2: the ground-truth baseline"))
          .with(output_param(&Params::output, "App. G.2: before the softmax, as Zeiler & Fergus 2014"))
          .check([](const Params& p, const std::string& flag) {
            for (const auto& [key, value] : {std::pair{"window", &p.window}, std::pair{"strides", &p.strides}})
              if (*value && (*value)->size() != 3)
                lab::fail_value(flag, key, triple_text(**value), "auto or three positive integers (c,h,w)");
          });
  return s;
}

Occlusion::Occlusion(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

std::vector<int64_t> Occlusion::window_for(int64_t channels) const {
  return params_.window.value_or(std::vector<int64_t>{channels, 5, 5});
}

std::vector<int64_t> Occlusion::strides_for(int64_t channels) const {
  return params_.strides.value_or(std::vector<int64_t>{channels, 3, 3});
}

std::vector<int64_t> Occlusion::window_counts(const std::vector<int64_t>& window, const std::vector<int64_t>& strides,
                                              const lab::Shape& sample_shape) {
  std::vector<int64_t> steps(3);
  for (size_t d = 0; d < 3; ++d) {
    const int64_t free = sample_shape[d] - window[d];
    if (free < 0)
      lab::fail_parameter("occlusion window {} does not fit inputs of shape {}", triple_text(window),
                          lab::to_string(sample_shape));
    // As Captum: a stride longer than the window would skip features (and could start a window
    // past the border), so it is refused wherever the window does not span the whole dimension.
    if (free > 0 && strides[d] > window[d])
      lab::fail_parameter("occlusion strides {} exceed the window {} on inputs of shape {}; expected each stride ≤ "
                          "the window",
                          triple_text(strides), triple_text(window), lab::to_string(sample_shape));
    steps[d] = (free + strides[d] - 1) / strides[d] + 1;
  }
  return steps;
}

Result Occlusion::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const lab::Tensor& x = batch.x;
  if (x.rank() != 4) lab::fail_parameter("occlusion needs C×H×W inputs, got {}", lab::to_string(x.sample_shape()));
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::Tensor baseline = params_.baseline.resolve(context, x.sample_shape());
  const int64_t n = x.batch(), dims[3] = {x.dim(1), x.dim(2), x.dim(3)};
  const std::vector<int64_t> window = window_for(dims[0]);
  const std::vector<int64_t> strides = strides_for(dims[0]);
  const std::vector<int64_t> steps = window_counts(window, strides, x.sample_shape());
  std::vector<Position> positions;
  for (int64_t c = 0; c < steps[0]; ++c)
    for (int64_t y = 0; y < steps[1]; ++y)
      for (int64_t xx = 0; xx < steps[2]; ++xx) positions.push_back({c * strides[0], y * strides[1], xx * strides[2]});
  const int64_t per_sample = 1 + static_cast<int64_t>(positions.size());
  const int64_t numel = x.sample_numel(), plane = dims[1] * dims[2];
  // The last window of a dimension may reach past the border; it is clipped there.
  auto for_window = [&](const Position& p, auto&& body) {
    for (int64_t c = p.c; c < std::min(p.c + window[0], dims[0]); ++c)
      for (int64_t y = p.y; y < std::min(p.y + window[1], dims[1]); ++y)
        for (int64_t xx = p.x; xx < std::min(p.x + window[2], dims[2]); ++xx) body(c * plane + y * dims[2] + xx);
  };

  // f[v], virtual input v: sample v / per_sample; k = v % per_sample is the unoccluded input
  // (k = 0) or window k − 1.
  std::vector<double> f(static_cast<size_t>(n * per_sample));
  Result r;
  lab::PathEvaluator::Params knobs;
  knobs.max_elements = std::max<int64_t>(1, context.batch) * numel;
  const lab::PathEvaluator engine(net, net.size(), knobs);
  if (incremental_ && engine.spatial_layers() > 0) {
    // Each window is a local change of x_n: one reference per sample, its windows batched.
    lab::LocalChanges changes;
    changes.source = baseline;
    for (const Position& p : positions)
      changes.boxes.push_back({p.c, std::min(p.c + window[0], dims[0]), p.y, std::min(p.y + window[1], dims[1]), p.x,
                               std::min(p.x + window[2], dims[2])});
    for (int64_t s = 0; s < n; ++s) {
      changes.reference = x.slice(s, s + 1);
      const lab::Tensor y = engine.run(changes);
      const int64_t units = y.dim(1), t = batch.target[static_cast<size_t>(s)];
      LAB_CHECK(t >= 0 && t < units, "target {} outside {} output units", t, units);
      for (int64_t k = 0; k < per_sample; ++k) f[static_cast<size_t>(s * per_sample + k)] = y[k * units + t];
    }
    r.evaluations = n * per_sample;
  } else {
    r.evaluations = run_forward(
        net, n * per_sample, context.batch,
        [&](int64_t begin, int64_t end) {
          lab::Shape shape{end - begin};
          const lab::Shape s = x.sample_shape();
          shape.insert(shape.end(), s.begin(), s.end());
          lab::Tensor inputs = lab::uninitialized(shape);
          parallel_items(begin, end, [&](int64_t v) {
            float* dst = inputs.data() + (v - begin) * numel;
            std::copy(x.sample(v / per_sample), x.sample(v / per_sample) + numel, dst);
            const int64_t k = v % per_sample;
            if (k > 0) for_window(positions[static_cast<size_t>(k - 1)], [&](int64_t i) { dst[i] = baseline[i]; });
          });
          return inputs;
        },
        [&](int64_t v) { return batch.target[static_cast<size_t>(v / per_sample)]; },
        [&](int64_t begin, const std::vector<double>& outputs) {
          std::copy(outputs.begin(), outputs.end(), f.begin() + begin);
        });
  }

  std::vector<int64_t> covered(static_cast<size_t>(numel), 0);
  for (const Position& p : positions) for_window(p, [&](int64_t i) { ++covered[static_cast<size_t>(i)]; });
  r.attr = lab::Tensor(x.shape(), 0.0f);
  parallel_items(0, n, [&](int64_t s) {
    std::vector<double> sum(static_cast<size_t>(numel), 0.0);
    const double f0 = f[static_cast<size_t>(s * per_sample)];
    for (size_t k = 0; k < positions.size(); ++k) {
      const double delta = f0 - f[static_cast<size_t>(s * per_sample) + 1 + k];
      for_window(positions[k], [&](int64_t i) { sum[static_cast<size_t>(i)] += delta; });
    }
    float* a = r.attr.sample(s);
    for (int64_t i = 0; i < numel; ++i)
      a[i] = covered[static_cast<size_t>(i)] ? static_cast<float>(sum[static_cast<size_t>(i)] / covered[static_cast<size_t>(i)]) : 0.0f;
  });
  return r;
}

MethodInfo Occlusion::info() {
  return method_info<Occlusion>(
      "occlusion", "sliding-window occlusion, output drop averaged over overlapping windows (Zeiler & Fergus 2014)");
}

}  // namespace attributions
