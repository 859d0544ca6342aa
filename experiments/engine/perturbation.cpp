#include "experiments/engine/perturbation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/core/storage.h"

namespace experiments {

namespace {

const std::vector<std::pair<PerturbationMode, std::string>>& mode_names() {
  static const std::vector<std::pair<PerturbationMode, std::string>> names = {
      {PerturbationMode::kStandard, "standard"}, {PerturbationMode::kModulo, "modulo"}};
  return names;
}

}  // namespace

const lab::Schema<PerturbationParams>& PerturbationParams::schema() {
  static const auto s =
      lab::Schema<PerturbationParams>()
          .choice("mode", &PerturbationParams::mode, mode_names(),
                  {.help = "standard: the target's score; modulo: a step is correct when the label changes",
                   .source = "App. G.4-G.5; modulo App. F.4-F.5",
                   .derived = "modulo on single-color-modulo data, else standard"})
          .choice("replacement", &PerturbationParams::replacement,
                  {{ReplacementKind::kConstant, "constant"},
                   {ReplacementKind::kBackground, "background"},
                   {ReplacementKind::kBlur, "blur"},
                   {ReplacementKind::kNoise, "noise"}},
                  {.help = "values a perturbed pixel takes (Insertion: the canvas)", .source = "App. B, G.4"})
          .field("value", &PerturbationParams::value,
                 {.help = "replacement=constant: one value or one per channel (network units)",
                  .source = "App. G.4: (0, 0, 0)"})
          .field("blur-sigma", &PerturbationParams::blur_sigma,
                 {.range = lab::above(0), .help = "replacement=blur: Gaussian standard deviation in pixels"})
          .field("noise-low", &PerturbationParams::noise_low,
                 {.help = "replacement=noise: lower end of the uniform range"})
          .field("noise-high", &PerturbationParams::noise_high,
                 {.help = "replacement=noise: upper end, exclusive",
                  .derived = "the input maximum: 255 RGB, 1 modulo"})
          .choice("output", &PerturbationParams::output,
                  {{OutputKind::kProbability, "probability"}, {OutputKind::kLogit, "logit"}},
                  {.help = "the target's score after the softmax or before it (unused in modulo mode)",
                   .source = "App. G.2"})
          .field("seed", &PerturbationParams::seed,
                 {.range = lab::at_least(0), .help = "random stream (noise, subsets), combined with each sample's seed"})
          .check([](const PerturbationParams& p, const std::string& flag) {
            if (p.value.empty()) lab::fail_value(flag, "value", "", "one number or one per channel");
            if (p.noise_high && !(p.noise_low < *p.noise_high))
              lab::fail_value(flag, "noise-high", lab::option_text(*p.noise_high),
                              fmt::format("a finite number > noise-low = {}", lab::option_text(p.noise_low)));
          });
  return s;
}

void PerturbationParams::resolve(const MetricSetup& setup) {
  if (!mode) mode = setup.env == "single-color-modulo" ? PerturbationMode::kModulo : PerturbationMode::kStandard;
  if (!noise_high && setup.input_max) noise_high = *setup.input_max;
}


lab::Tensor replacement_image(const PerturbationParams& params, const lab::Tensor& x, const Context& context,
                              uint64_t sample_seed) {
  const lab::Shape shape = x.rank() == 4 ? x.sample_shape() : x.shape();
  LAB_CHECK(shape.size() == 3, "replacement for {}", lab::to_string(x.shape()));
  const int64_t c = shape[0], h = shape[1], w = shape[2], hw = h * w;
  lab::Tensor out(shape, 0.0f);
  auto per_channel = [&](const std::vector<double>& values, const char* what) {
    if (values.size() != 1 && static_cast<int64_t>(values.size()) != c)
      lab::fail_parameter("{} has {} values for {} input channels; give 1 or {}", what, values.size(), c, c);
    for (int64_t ch = 0; ch < c; ++ch)
      std::fill(out.data() + ch * hw, out.data() + (ch + 1) * hw,
                static_cast<float>(values[values.size() == 1 ? 0 : static_cast<size_t>(ch)]));
  };
  switch (params.replacement) {
    case ReplacementKind::kConstant:
      per_channel(params.value, "-p value");
      break;
    case ReplacementKind::kBackground: {
      if (context.background.empty()) lab::fail_parameter("-p replacement=background: the data gives no background");
      per_channel(std::vector<double>(context.background.begin(), context.background.end()), "the background");
      break;
    }
    case ReplacementKind::kBlur:
      for (int64_t ch = 0; ch < c; ++ch) {
        const cv::Mat src(static_cast<int>(h), static_cast<int>(w), CV_32F,
                          const_cast<float*>(x.data() + ch * hw));
        cv::Mat dst(static_cast<int>(h), static_cast<int>(w), CV_32F, out.data() + ch * hw);
        cv::GaussianBlur(src, dst, cv::Size(0, 0), params.blur_sigma, params.blur_sigma, cv::BORDER_REFLECT_101);
      }
      break;
    case ReplacementKind::kNoise: {
      const double high = params.noise_high.value_or(context.input_max);
      if (!(params.noise_low < high))
        lab::fail_parameter("-p noise-low={} must be below the noise upper end {}", params.noise_low, high);
      lab::Rng rng(lab::derive_seed(sample_seed, params.seed), 0);
      for (float& v : out.values()) v = static_cast<float>(rng.uniform(params.noise_low, high));
      break;
    }
  }
  return out;
}

OutputReader::OutputReader(const lab::Network& net, OutputKind kind) {
  LAB_CHECK(net.size() > 0, "empty network");
  const bool ends_softmax = net.layer(net.size() - 1).kind() == lab::LayerKind::kSoftmax;
  if (kind == OutputKind::kProbability) {
    end_ = net.size();
    softmax_ = !ends_softmax;
  } else {
    end_ = ends_softmax ? net.size() - 1 : net.size();
  }
}

double OutputReader::score(const float* row, int64_t k, int64_t target) const {
  if (target < 0 || target >= k) lab::fail("target output {} outside the network's {} outputs", target, k);
  if (!softmax_) return row[target];
  const double top = *std::max_element(row, row + k);
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) sum += std::exp(static_cast<double>(row[i]) - top);
  return std::exp(static_cast<double>(row[target]) - top) / sum;
}

int64_t predicted_label(const Context& context, const float* row, int64_t k) {
  if (context.predicted_label) return context.predicted_label(row);
  return std::max_element(row, row + k) - row;
}

std::vector<int64_t> attribution_order(const float* attr, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [attr](int64_t a, int64_t b) { return attr[a] > attr[b]; });
  return order;
}

PathEvaluator path_evaluator(const Context& context, size_t end) {
  PathEvaluator::Params knobs;
  knobs.max_batch = context.batch;
  knobs.incremental = context.incremental;
  return PathEvaluator(*context.net, end, knobs);
}

void for_samples(const Context& context, int64_t n, const std::function<void(int64_t)>& body) {
  const int threads = lab::Runtime::get().threads();
  if (!context.concurrent_samples || !context.incremental || threads < 2 || n < 2) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  // One sample per task: a worker takes the next sample when it finishes one, so uneven samples
  // balance. isolate(): while a sample waits for the engine's own TBB loops (crops), its thread
  // runs only that loop's pieces, never another sample in the middle of this one.
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n, 1),
      [&](const tbb::blocked_range<int64_t>& range) {
        for (int64_t i = range.begin(); i < range.end(); ++i)
          tbb::this_task_arena::isolate([&] {
            const lab::OmpThreads one(true, 1);
            body(i);
          });
      },
      tbb::simple_partitioner());
}

namespace {

/// The most floats a batch of full-pass subsets holds (1 GiB): at the cut an input may have many
/// more channels than the image (multi-color-sum's detector with 12 colours and 64 redundant
/// channels at 224×224: 256 inputs would take 3.9 GiB; the default 4 + 2 channels, 0.3 GiB).
/// The batch size never changes a result.
constexpr int64_t kSubsetBatchFloats = int64_t{1} << 28;

}  // namespace

SubsetPlan subset_plan(const Context& context) {
  return {.incremental = context.incremental, .max_batch = context.batch};
}

int64_t subset_path_limit(const lab::Network& net, const PathEvaluator& evaluator, size_t end, size_t cut) {
  // A subset as a full pass: its activation at `cut` filled in (a copied float counts as one
  // unit, as in the path's cost model) and layers [cut, end) run. On a path: 2N one-pixel steps.
  const lab::Shape at = cut == 0 ? net.input_shape() : net.shape_after(cut - 1, 1);
  double filled = 1.0;
  for (size_t d = cut == 0 ? 0 : 1; d < at.size(); ++d) filled *= static_cast<double>(at[d]);
  const double full = filled + lab::layer_work(net, cut, end);
  const double step = evaluator.pixel_step_work();
  if (!std::isfinite(step)) return 0;
  return static_cast<int64_t>(std::floor(full / (2.0 * step)));
}

lab::Tensor evaluate_subsets(const lab::Network& net, const PathEvaluator& evaluator, size_t end,
                             const lab::Tensor& start, const lab::Tensor& source, int64_t count,
                             const SubsetSource& subset, const SubsetPlan& plan, SubsetStats* stats) {
  LAB_CHECK(start.rank() == 3 && source.shape() == start.shape(), "subsets of {} from {}", lab::to_string(start.shape()),
            lab::to_string(source.shape()));
  const int64_t hw = start.dim(1) * start.dim(2);
  const int64_t chunk = std::max<int64_t>(1, plan.max_batch);
  // Full passes start at activation `cut` (0: the input), from `from` with pixels of `base`.
  size_t cut = plan.incremental && plan.assemble_at_cut ? lab::pixelwise_cut(net) : 0;
  if (cut >= end) cut = 0;
  const int64_t path_below =
      !plan.incremental ? 0 : plan.path_below >= 0 ? plan.path_below : subset_path_limit(net, evaluator, end, cut);
  if (stats) *stats = {.cut = cut, .path_below = path_below};
  lab::Tensor from, base;
  std::vector<std::vector<float>> rows(static_cast<size_t>(count));

  // Small subsets share one path: perturbed pixel by pixel, read, then restored pixel by pixel.
  PerturbationPath path;
  path.start = start;
  path.source = source;
  std::vector<std::pair<int64_t, int64_t>> read_at;  // (q, step)
  auto add_step = [&path](int64_t p, uint8_t restore) {
    path.order.push_back(p);
    path.step_ends.push_back(static_cast<int64_t>(path.order.size()));
    path.restore.push_back(restore);
  };
  // Large subsets: full passes from `cut`, `chunk` inputs per call.
  lab::Tensor batch;
  std::vector<int64_t> batch_q;
  auto flush = [&] {
    if (batch_q.empty()) return;
    const int64_t n = static_cast<int64_t>(batch_q.size());
    lab::Tensor y = net.forward_range(cut, end, n == batch.dim(0) ? batch : batch.slice(0, n));
    for (int64_t i = 0; i < n; ++i)
      rows[static_cast<size_t>(batch_q[static_cast<size_t>(i)])].assign(y.sample(i), y.sample(i) + y.sample_numel());
    batch_q.clear();
    lab::recycle(y);
  };

  std::vector<int64_t> pixels;
  for (int64_t q = 0; q < count; ++q) {
    pixels.clear();
    subset(q, pixels);
    if (static_cast<int64_t>(pixels.size()) <= path_below) {
      for (int64_t p : pixels) add_step(p, 0);
      read_at.emplace_back(q, path.steps());
      for (int64_t p : pixels) add_step(p, 1);
      if (stats) ++stats->on_path;
      continue;
    }
    if (from.empty()) {
      const lab::Tensor x = start.reshaped({1, start.dim(0), start.dim(1), start.dim(2)});
      const lab::Tensor s = source.reshaped(x.shape());
      from = cut == 0 ? x : net.forward_range(0, cut, x);
      base = cut == 0 ? s : net.forward_range(0, cut, s);
      LAB_CHECK(from.rank() == 4 && from.dim(2) * from.dim(3) == hw, "subsets assembled at a {} activation",
                lab::to_string(from.shape()));
    }
    const int64_t channels = from.dim(1), per = from.sample_numel();
    if (batch.empty()) {
      lab::Shape shape = from.shape();
      shape[0] = std::min({chunk, std::max<int64_t>(1, kSubsetBatchFloats / per), count - q});
      batch = lab::uninitialized(shape);
    }
    float* dst = batch.sample(static_cast<int64_t>(batch_q.size()));
    std::memcpy(dst, from.data(), static_cast<size_t>(per) * sizeof(float));
    const float* src = base.data();
    for (int64_t p : pixels)
      for (int64_t ch = 0; ch < channels; ++ch) dst[ch * hw + p] = src[ch * hw + p];
    batch_q.push_back(q);
    if (stats) ++stats->full;
    if (static_cast<int64_t>(batch_q.size()) == batch.dim(0)) {
      flush();
      lab::recycle(batch);
    }
  }
  flush();
  if (!batch.empty()) lab::recycle(batch);
  if (!read_at.empty()) {
    const lab::Tensor y = evaluator.run(path);
    for (const auto& [q, step] : read_at)
      rows[static_cast<size_t>(q)].assign(y.sample(step), y.sample(step) + y.sample_numel());
  }

  const int64_t k = count > 0 ? static_cast<int64_t>(rows[0].size()) : 0;
  lab::Tensor out({count, k});
  for (int64_t q = 0; q < count; ++q) {
    LAB_CHECK(static_cast<int64_t>(rows[static_cast<size_t>(q)].size()) == k, "subset {} has no output", q);
    std::copy(rows[static_cast<size_t>(q)].begin(), rows[static_cast<size_t>(q)].end(), out.sample(q));
  }
  return out;
}

}  // namespace experiments
