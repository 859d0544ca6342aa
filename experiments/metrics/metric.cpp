#include "experiments/metrics/metric.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "lab/core/error.h"

namespace experiments {

std::string direction_name(Direction direction) {
  return direction == Direction::kHigherIsBetter ? "higher-is-better" : "lower-is-better";
}

void MetricOutput::append(MetricOutput&& other) {
  rows.insert(rows.end(), std::make_move_iterator(other.rows.begin()), std::make_move_iterator(other.rows.end()));
  curves.insert(curves.end(), std::make_move_iterator(other.curves.begin()),
                std::make_move_iterator(other.curves.end()));
}

namespace {

lab::Tensor slice_or_empty(const lab::Tensor& t, int64_t begin, int64_t end) {
  return t.empty() ? lab::Tensor() : t.slice(begin, end);
}

template <typename T>
std::vector<T> sub_vector(const std::vector<T>& v, int64_t begin, int64_t end) {
  if (v.empty()) return {};
  return std::vector<T>(v.begin() + begin, v.begin() + end);
}

}  // namespace

Batch Batch::slice(int64_t begin, int64_t end) const {
  Batch out;
  out.ids = sub_vector(ids, begin, end);
  out.x = x.slice(begin, end);
  out.attr = attr.slice(begin, end);
  out.target = sub_vector(target, begin, end);
  out.gt = slice_or_empty(gt, begin, end);
  out.gt_smooth = slice_or_empty(gt_smooth, begin, end);
  out.seeds = sub_vector(seeds, begin, end);
  return out;
}

lab::Tensor pixel_map(const lab::Tensor& attr) {
  if (attr.rank() == 3) return attr;
  if (attr.rank() != 4) lab::fail("attribution maps must be N×H×W or N×C×H×W, got {}", lab::to_string(attr.shape()));
  const int64_t n = attr.dim(0), c = attr.dim(1), hw = attr.dim(2) * attr.dim(3);
  lab::Tensor out({n, attr.dim(2), attr.dim(3)}, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* src = attr.data() + (i * c + ch) * hw;
      float* dst = out.data() + i * hw;
      for (int64_t p = 0; p < hw; ++p) dst[p] += src[p];
    }
  return out;
}

lab::Tensor normalise_eq17(const lab::Tensor& attr) {
  LAB_CHECK(attr.rank() == 3, "eq. 17 works on N×H×W maps, got {}", lab::to_string(attr.shape()));
  lab::Tensor out = attr;
  const int64_t n = attr.dim(0), hw = attr.dim(1) * attr.dim(2);
  for (int64_t i = 0; i < n; ++i) {
    float* a = out.data() + i * hw;
    float max_pos = 0.0f, min_neg = 0.0f;
    for (int64_t p = 0; p < hw; ++p) {
      max_pos = std::max(max_pos, a[p]);
      min_neg = std::min(min_neg, a[p]);
    }
    for (int64_t p = 0; p < hw; ++p) {
      if (a[p] > 0.0f) a[p] /= max_pos;
      else if (a[p] < 0.0f) a[p] /= -min_neg;
    }
  }
  return out;
}

MetricOutput Metric::evaluate(const Context& context, const Batch& data) const {
  MetricOutput out = evaluate_samples(context, data);
  std::vector<MetricRow> summary = aggregate(out.rows);
  out.rows.insert(out.rows.end(), summary.begin(), summary.end());
  return out;
}

MetricOutput Metric::evaluate_samples(const Context& context, const Batch& data) const {
  if (context.net == nullptr) lab::fail_parameter("metric {}: no network given", name());
  if (context.unit < 1) lab::fail_parameter("metric unit must be >= 1, got {}", context.unit);
  const int64_t n = data.size();
  if (data.x.rank() != 4 || data.x.dim(0) != n)
    lab::fail("metric {}: inputs must be N×C×H×W with N = {} samples, got {}", name(), n,
              lab::to_string(data.x.shape()));
  const int64_t h = data.x.dim(2), w = data.x.dim(3);
  const bool attr_fits = (data.attr.rank() == 3 || data.attr.rank() == 4) && data.attr.dim(0) == n &&
                         data.attr.dim(-2) == h && data.attr.dim(-1) == w;
  if (!attr_fits)
    lab::fail("metric {}: attribution maps must be {}×{}×{} or {}×C×{}×{}, got {}", name(), n, h, w, n, h, w,
              lab::to_string(data.attr.shape()));
  if (!data.attr.all_finite()) lab::fail("metric {}: attribution maps hold NaN or Inf", name());
  if (static_cast<int64_t>(data.target.size()) != n)
    lab::fail("metric {}: {} targets for {} samples", name(), data.target.size(), n);
  if (!data.seeds.empty() && static_cast<int64_t>(data.seeds.size()) != n)
    lab::fail("metric {}: {} seeds for {} samples", name(), data.seeds.size(), n);
  for (const lab::Tensor* g : {&data.gt, &data.gt_smooth})
    if (!g->empty() && g->shape() != lab::Shape{n, h, w})
      lab::fail("metric {}: ground truth must be {}×{}×{}, got {}", name(), n, h, w, lab::to_string(g->shape()));

  MetricOutput out;
  for (int64_t begin = 0; begin < n; begin += context.unit) {
    Batch batch = data.slice(begin, std::min(n, begin + context.unit));
    if (batch.seeds.empty()) batch.seeds.assign(static_cast<size_t>(batch.size()), 0);
    batch.attr = pixel_map(batch.attr);
    if (normalisation() == Normalisation::kEq17) batch.attr = normalise_eq17(batch.attr);
    out.append(evaluate_batch(context, batch));
  }
  return out;
}

std::vector<MetricRow> Metric::aggregate(const std::vector<MetricRow>& rows) const {
  std::vector<MetricRow> out;
  for (const Variant& v : variants()) {
    double sum = 0.0;
    int64_t count = 0;
    for (const MetricRow& r : rows)
      if (r.variant == v.name && r.sample != kAllSamples) {
        sum += r.value;
        ++count;
      }
    if (count > 0) out.push_back({kAllSamples, v.name, sum / static_cast<double>(count)});
  }
  return out;
}

Direction Metric::direction(const std::string& variant) const {
  std::string known;
  for (const Variant& v : variants()) {
    if (v.name == variant) return v.direction;
    known += (known.empty() ? "" : ", ") + v.name;
  }
  lab::fail_parameter("metric {} has no variant {}; known: {}", name(), variant, known);
}

namespace {

const MetricInfo& find_info(const std::string& name) {
  std::string known;
  for (const MetricInfo& info : registry()) {
    if (info.name == name) return info;
    known += (known.empty() ? "" : ", ") + info.name;
  }
  lab::fail_parameter("unknown metric --metric {}; known: {}", name, known);
}

}  // namespace

std::unique_ptr<Metric> make_metric(const std::string& name, lab::Options& params, const MetricSetup& setup) {
  const MetricInfo& info = find_info(name);
  std::unique_ptr<Metric> metric = info.make(params, setup);
  params.finish(lab::param_names(info.params));
  return metric;
}

std::vector<std::unique_ptr<Metric>> make_metrics(const std::vector<std::string>& names, lab::Options& params,
                                                  const MetricSetup& setup) {
  std::vector<std::unique_ptr<Metric>> metrics;
  std::vector<std::string> known;
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      if (names[j] == names[i]) lab::fail_parameter("--metric {} given twice", names[i]);
    const MetricInfo& info = find_info(names[i]);
    metrics.push_back(info.make(params, setup));
    for (const std::string& k : lab::param_names(info.params))
      if (std::find(known.begin(), known.end(), k) == known.end()) known.push_back(k);
  }
  params.finish(known);
  return metrics;
}

}  // namespace experiments
