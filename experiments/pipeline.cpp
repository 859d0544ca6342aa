#include "experiments/pipeline.h"

#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <numeric>
#include <utility>

#include <time.h>

#include <opencv2/core.hpp>

#include "attributions/common.h"
#include "experiments/config.h"
#include "lab/core/error.h"
#include "lab/io/npy.h"

namespace experiments {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bytes of network activations one network call may hold when no batch is given.
constexpr int64_t kBatchMemory = int64_t{1} << 30;

}  // namespace

TargetMode TargetMode::parse(const std::string& text, int64_t units, const std::string& flag) {
  if (text == "label" || text == "predicted") return {text, -1};
  int64_t unit = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), unit);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || unit < 0 || unit >= units)
    lab::fail_parameter("{} {}: expected label, predicted or an output unit 0..{}", flag, text, units - 1);
  return {"unit", unit};
}

json TargetMode::to_json() const { return mode == "unit" ? json(unit) : json(mode); }

attributions::Context method_context(const datasets::Environment& env, const lab::Network& net, lab::Tensor reference,
                                     int64_t batch) {
  attributions::Context context;
  context.net = &net;
  context.background = env.background();
  context.layers = env.default_layers();
  context.reference_inputs = std::move(reference);
  context.batch = batch > 0 ? batch : attributions::batch_for_memory(net, kBatchMemory);
  context.to_input = [&env](const cv::Mat& image) { return env.to_input(image); };
  return context;
}

AttributeStage::AttributeStage(const datasets::DataDir& data, const lab::Network& net,
                               const attributions::Method& method, AttributeSetup setup)
    : data_(data), net_(net), method_(method), setup_(std::move(setup)) {
  label_ = setup_.label.empty() ? method_.name() : setup_.label;
  const int64_t reference = std::min(setup_.reference, data_.size());
  context_ = method_context(data_.env(), net_, reference > 0 ? data_.inputs(0, reference) : lab::Tensor(), setup_.batch);
  for (int64_t i = 0; i < data_.size(); ++i) index_[data_.id(i)] = i;
}

Explainer AttributeStage::explainer() const {
  return [this](const lab::Tensor& x, const std::string& id, int64_t target, const std::vector<uint64_t>& seeds) {
    const auto it = index_.find(id);
    LAB_CHECK(it != index_.end(), "no sample {} in the data", id);
    const int64_t m = x.batch();
    attributions::Batch batch;
    batch.x = x;
    batch.target.assign(static_cast<size_t>(m), target);
    batch.seeds = seeds;
    cv::Mat segments;
    data_.patches(it->second).convertTo(segments, CV_32S);
    batch.segments.assign(static_cast<size_t>(m), segments);
    batch.ids.assign(static_cast<size_t>(m), id);
    const lab::Tensor gt = data_.gt(it->second, false);
    batch.gt = lab::Tensor::stack(std::vector<lab::Tensor>(static_cast<size_t>(m), gt));
    return method_.attribute(context_, batch).attr;
  };
}

ScoredMethod AttributeStage::scored_method() const {
  ScoredMethod m;
  m.name = method_.name();
  m.params = method_.params();
  m.context = &context_;
  m.seed = [this](const std::string& id) {
    const auto it = index_.find(id);
    LAB_CHECK(it != index_.end(), "no sample {} in the data", id);
    return sample_seed(setup_.seed, label_, it->second);
  };
  return m;
}

AttributedUnit AttributeStage::prepare(int64_t begin, int64_t end) const {
  const datasets::Environment& env = data_.env();
  AttributedUnit u;
  u.begin = begin;
  u.end = end;
  attributions::Batch& batch = u.batch;
  batch.x = data_.inputs(begin, end);
  for (int64_t i = begin; i < end; ++i) {
    u.ids.push_back(data_.id(i));
    batch.seeds.push_back(sample_seed(setup_.seed, label_, i));
    cv::Mat segments;
    data_.patches(i).convertTo(segments, CV_32S);
    batch.segments.push_back(segments);
  }
  if (setup_.target.mode == "label") {
    for (int64_t i = begin; i < end; ++i) batch.target.push_back(env.target_output(data_.label(i)));
  } else if (setup_.target.mode == "predicted") {
    const lab::Tensor y = net_.forward(batch.x);
    for (int64_t k = 0; k < y.batch(); ++k) batch.target.push_back(env.target_output(env.predicted_label(y.sample(k))));
  } else {
    batch.target.assign(static_cast<size_t>(end - begin), setup_.target.unit);
  }
  batch.ids = u.ids;
  std::vector<lab::Tensor> gts;
  for (int64_t i = begin; i < end; ++i) gts.push_back(data_.gt(i, false));
  batch.gt = lab::Tensor::stack(gts);
  return u;
}

nlohmann::json AttributeStage::sample_entries(const AttributedUnit& u) const {
  json samples = json::array();
  for (int64_t k = 0; k < u.end - u.begin; ++k) {
    const auto s = static_cast<size_t>(k);
    json entry = {{"id", u.ids[s]}, {"map", u.ids[s] + ".npy"}, {"label", data_.label(u.begin + k)},
                  {"target", u.batch.target[s]}};
    if (!u.result.convergence_delta.empty()) entry["convergence-delta"] = u.result.convergence_delta[s];
    samples.push_back(std::move(entry));
  }
  return samples;
}

AttributedUnit AttributeStage::run(int64_t begin, int64_t end) const {
  AttributedUnit u = prepare(begin, end);
  const attributions::Batch& batch = u.batch;
  u.result = method_.attribute(context_, batch);
  if (u.result.attr.shape() != batch.x.shape())
    lab::fail("method '{}' returned maps of shape {} for inputs {}", label_, lab::to_string(u.result.attr.shape()),
              lab::to_string(batch.x.shape()));
  if (!u.result.attr.all_finite())
    lab::fail("method '{}' returned NaN or Inf in samples {}..{}", label_, u.ids.front(), u.ids.back());
  u.samples = sample_entries(u);
  return u;
}

std::optional<AttributedUnit> AttributeStage::reuse(int64_t begin, int64_t end, ReusedUnit maps) const {
  AttributedUnit u = prepare(begin, end);
  if (maps.attr.shape() != u.batch.x.shape()) return std::nullopt;
  u.result.attr = std::move(maps.attr);
  u.result.evaluations = maps.evaluations;
  for (const json& s : maps.samples)
    if (s.contains("convergence-delta")) u.result.convergence_delta.push_back(s.at("convergence-delta").get<double>());
  if (!u.result.convergence_delta.empty() && u.result.convergence_delta.size() != u.ids.size()) return std::nullopt;
  u.samples = sample_entries(u);
  // Ids, labels and targets as this run would record them, else the maps explain something else.
  if (u.samples != maps.samples) return std::nullopt;
  return u;
}

void AttributeStage::save_maps(const AttributedUnit& unit, const fs::path& dir) const {
  const lab::Shape shape = unit.batch.x.sample_shape();
  tbb::parallel_for(int64_t{0}, unit.end - unit.begin, [&](int64_t k) {
    lab::write_npy(dir / (unit.ids[static_cast<size_t>(k)] + ".npy"), unit.result.attr.slice(k, k + 1).reshaped(shape));
  });
}

json AttributeStage::record(const fs::path& maps_dir, const json& samples, int64_t evaluations) const {
  const datasets::Environment& env = data_.env();
  const fs::path data_dir = fs::absolute(data_.path()).lexically_normal();
  const fs::path maps = fs::absolute(maps_dir).lexically_normal();
  return {{"format", 1},
          {"method", method_.name()},
          {"label", label_},
          {"params", method_.params()},
          {"version", ATTRLAB_VERSION},
          {"data", fs::relative(data_dir, maps).string()},
          {"data-manifest",
           {{"path", (data_dir / "manifest.json").string()},
            {"env", env.name()},
            {"seed", data_.seed()},
            {"count", data_.size()},
            {"fingerprint", data_.fingerprint()}}},
          {"target", setup_.target.to_json()},
          {"seed", setup_.seed},
          {"context",
           {{"background", context_.background},
            {"layers", context_.layers},
            {"reference-inputs", context_.reference_inputs.empty() ? 0 : context_.reference_inputs.batch()}}},
          {"shape", env.input_shape()},
          {"evaluations", evaluations},
          {"samples", samples}};
}

std::vector<ResultRow> AttributeStage::gap_rows(const std::string& model, const AttributedUnit& unit) const {
  std::vector<ResultRow> rows;
  for (size_t k = 0; k < unit.result.convergence_delta.size(); ++k)
    rows.push_back({model, unit.ids[k], label_, "method", "completeness-gap", unit.result.convergence_delta[k]});
  return rows;
}

ScoreStage::ScoreStage(const datasets::DataDir& data, const lab::Network& net,
                       std::vector<std::unique_ptr<Metric>> metrics, uint64_t seed, int64_t unit, int64_t batch)
    : data_(data), metrics_(std::move(metrics)), seed_(seed) {
  const datasets::Environment& env = data_.env();
  context_.net = &net;
  context_.env = env.name();
  context_.background = env.background();
  context_.input_max = env.image_channels() == 3 ? 255.0f : 1.0f;
  context_.predicted_label = [&env](const float* row) { return env.predicted_label(row); };
  context_.unit = unit;
  context_.batch = batch;
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

Scores ScoreStage::score(const std::string& model, const std::string& method, int64_t begin, int64_t end,
                         const lab::Tensor& attr, const std::vector<int64_t>& target, const Explainer& explain,
                         const ScoredMethod& method_record) const {
  std::vector<int64_t> samples(static_cast<size_t>(end - begin));
  std::iota(samples.begin(), samples.end(), begin);
  return score(model, method, samples, attr, target, explain, method_record);
}

Scores ScoreStage::score(const std::string& model, const std::string& method, const std::vector<int64_t>& samples,
                         const lab::Tensor& attr, const std::vector<int64_t>& target, const Explainer& explain,
                         const ScoredMethod& method_record) const {
  Context context = context_;
  context.explain = explain;
  context.method = method_record;
  Batch scored;
  std::vector<lab::Tensor> xs;
  for (const int64_t i : samples) xs.push_back(data_.input(i));
  scored.x = lab::Tensor::stack(xs);
  scored.attr = attr;
  scored.target = target;
  std::vector<lab::Tensor> gts, smooth;
  for (const int64_t i : samples) {
    scored.ids.push_back(data_.id(i));
    gts.push_back(data_.gt(i, false));
    smooth.push_back(data_.gt(i, true));
    scored.seeds.push_back(sample_seed(seed_, "metrics", i));
  }
  scored.gt = lab::Tensor::stack(gts);
  scored.gt_smooth = lab::Tensor::stack(smooth);

  Scores out;
  for (const auto& metric : metrics_) {
    const auto started = std::chrono::steady_clock::now();
    const double cpu_started = process_cpu_seconds();
    const MetricOutput output = metric->evaluate_samples(context, scored);
    out.metric_seconds[metric->label()] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    out.metric_cpu_seconds[metric->label()] = process_cpu_seconds() - cpu_started;
    for (const MetricRow& r : output.rows) out.rows.push_back({model, r.sample, method, metric->label(), r.variant, r.value});
    // Group the points into curves (sample, variant), keeping their order, then resample.
    std::vector<std::pair<std::string, std::string>> keys;
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<double>, std::vector<double>>> curves;
    for (const CurvePoint& p : output.curves) {
      const auto key = std::make_pair(p.sample, p.variant);
      auto [it, fresh] = curves.try_emplace(key);
      if (fresh) keys.push_back(key);
      it->second.first.push_back(p.x);
      it->second.second.push_back(p.y);
    }
    tbb::parallel_for(size_t{0}, keys.size(), [&](size_t i) {
      auto& [x, y] = curves.at(keys[i]);
      resample_curve(x, y);
    });
    for (const auto& key : keys) {
      const auto& [x, y] = curves.at(key);
      for (size_t i = 0; i < x.size(); ++i)
        out.curves.push_back({model, key.first, method, metric->label(), key.second, x[i], y[i]});
    }
  }
  return out;
}

std::vector<ResultRow> ScoreStage::aggregate(const std::string& model, const std::string& method,
                                             const std::vector<ResultRow>& rows) const {
  std::vector<ResultRow> out;
  double sum = 0.0;
  int64_t count = 0;
  for (const ResultRow& r : rows)
    if (r.model == model && r.method == method && r.metric == "method" && r.variant == "completeness-gap") {
      sum += r.value;
      ++count;
    }
  if (count > 0) out.push_back({model, kAllSamples, method, "method", "completeness-gap", sum / static_cast<double>(count)});
  for (const auto& metric : metrics_) {
    std::vector<MetricRow> mine;
    for (const ResultRow& r : rows)
      if (r.model == model && r.method == method && r.metric == metric->label()) mine.push_back({r.sample, r.variant, r.value});
    for (const MetricRow& a : metric->aggregate(mine))
      out.push_back({model, kAllSamples, method, metric->label(), a.variant, a.value});
  }
  return out;
}

void resample_curve(std::vector<double>& x, std::vector<double>& y, size_t points) {
  LAB_CHECK(x.size() == y.size(), "curve with {} x and {} y", x.size(), y.size());
  if (x.size() <= points || points < 2) return;
  std::vector<double> nx(points), ny(points);
  const double lo = x.front(), hi = x.back();
  size_t j = 0;
  for (size_t i = 0; i < points; ++i) {
    const double t = i + 1 == points ? hi : lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(points - 1);
    while (j + 2 < x.size() && x[j + 1] < t) ++j;
    const double x0 = x[j], x1 = x[j + 1];
    const double w = x1 > x0 ? std::clamp((t - x0) / (x1 - x0), 0.0, 1.0) : 0.0;
    nx[i] = t;
    ny[i] = y[j] + w * (y[j + 1] - y[j]);
  }
  x = std::move(nx);
  y = std::move(ny);
}

}  // namespace experiments
