#include "experiments/meta_evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "lab/core/error.h"

namespace experiments {

namespace {

bool constant(const std::vector<double>& values) {
  for (double v : values)
    if (v != values.front()) return false;
  return true;
}

void check_measure(const std::vector<ResultRow>& rows, const std::string& model, const MetricVariant& measure) {
  for (const ResultRow& r : rows)
    if (r.model == model && r.metric == measure.metric && r.variant == measure.variant) return;
  lab::fail_parameter("meta-evaluation: no rows of {}/{} for model '{}'", measure.metric, measure.variant, model);
}

double oriented(double value, Direction direction) { return direction == Direction::kLowerIsBetter ? -value : value; }

CorrelationMatrix pairwise(const std::vector<ResultRow>& rows, const std::string& model,
                           const std::vector<std::string>& methods, const std::vector<MetricVariant>& measures,
                           bool allow_point_biserial) {
  if (measures.empty()) lab::fail_parameter("meta-evaluation on model '{}': no measures", model);
  CorrelationMatrix out;
  out.model = model;
  out.methods = methods;
  for (const MetricVariant& m : measures) out.measures.push_back(m.name());
  const size_t k = measures.size();
  for (const MetricVariant& m : measures) check_measure(rows, model, m);
  for (const std::string& method : methods) {
    std::vector<ImageScores> scores;
    for (const MetricVariant& m : measures) scores.push_back(image_scores(rows, model, method, m));
    std::vector<std::vector<PairCorrelation>> matrix(k, std::vector<PairCorrelation>(k));
    for (size_t i = 0; i < k; ++i)
      for (size_t j = i; j < k; ++j) {
        matrix[i][j] = correlate(scores[i], measures[i].direction, scores[j], measures[j].direction, allow_point_biserial);
        matrix[j][i] = matrix[i][j];
      }
    out.per_method.push_back(std::move(matrix));
  }
  out.mean.assign(k, std::vector<double>(k, kNaN));
  out.count.assign(k, std::vector<int64_t>(k, 0));
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j) {
      double sum = 0.0;
      int64_t n = 0;
      for (const auto& matrix : out.per_method)
        if (std::isfinite(matrix[i][j].value)) {
          sum += matrix[i][j].value;
          ++n;
        }
      out.count[i][j] = n;
      if (n > 0) out.mean[i][j] = sum / static_cast<double>(n);
    }
  return out;
}

}  // namespace

std::string coefficient_name(Coefficient coefficient) {
  return coefficient == Coefficient::kPointBiserial ? "point-biserial" : "spearman";
}

ImageScores image_scores(const std::vector<ResultRow>& rows, const std::string& model, const std::string& method,
                         const MetricVariant& measure) {
  ImageScores out;
  for (const ResultRow& r : rows) {
    if (r.model != model || r.method != method || r.metric != measure.metric || r.variant != measure.variant ||
        r.sample == kAllSamples || !std::isfinite(r.value))
      continue;
    out.samples.push_back(r.sample);
    out.values.push_back(r.value);
  }
  return out;
}

bool is_binary(const std::vector<double>& values) {
  if (values.empty()) return false;
  const double first = values.front();
  double second = first;
  for (double v : values) {
    if (v == first || v == second) continue;
    if (second != first) return false;
    second = v;
  }
  return second != first;
}

PairCorrelation correlate(const ImageScores& a, Direction direction_a, const ImageScores& b, Direction direction_b,
                          bool allow_point_biserial) {
  std::map<std::string, double> by_sample;
  for (size_t i = 0; i < b.samples.size(); ++i) by_sample.emplace(b.samples[i], b.values[i]);
  std::vector<double> x, y;
  for (size_t i = 0; i < a.samples.size(); ++i) {
    const auto it = by_sample.find(a.samples[i]);
    if (it == by_sample.end()) continue;
    x.push_back(a.values[i]);
    y.push_back(it->second);
  }
  PairCorrelation out;
  out.images = static_cast<int64_t>(x.size());
  out.value = kNaN;
  if (x.size() < 2 || constant(x) || constant(y)) return out;
  const bool binary_x = is_binary(x), binary_y = is_binary(y);
  if (allow_point_biserial && binary_x != binary_y) {
    out.coefficient = Coefficient::kPointBiserial;
    const auto& groups_raw = binary_x ? x : y;
    const auto& values_raw = binary_x ? y : x;
    const Direction group_direction = binary_x ? direction_a : direction_b;
    const Direction value_direction = binary_x ? direction_b : direction_a;
    const double high = *std::max_element(groups_raw.begin(), groups_raw.end());
    std::vector<bool> groups;
    std::vector<double> values;
    for (size_t i = 0; i < groups_raw.size(); ++i) {
      // The group is the higher of the two values; oriented, the "better" group of a
      // lower-is-better measure is the lower value.
      groups.push_back((groups_raw[i] == high) == (group_direction == Direction::kHigherIsBetter));
      values.push_back(oriented(values_raw[i], value_direction));
    }
    out.value = point_biserial(groups, values);
    return out;
  }
  for (double& v : x) v = oriented(v, direction_a);
  for (double& v : y) v = oriented(v, direction_b);
  out.value = spearman(x, y);
  return out;
}

CorrelationMatrix internal_consistency(const std::vector<ResultRow>& rows, const std::string& model,
                                       const std::vector<std::string>& methods, const std::vector<MetricVariant>& configs) {
  return pairwise(rows, model, methods, configs, false);
}

CorrelationMatrix reliability(const std::vector<ResultRow>& rows, const std::string& model,
                              const std::vector<std::string>& methods, const std::vector<MetricVariant>& measures) {
  return pairwise(rows, model, methods, measures, true);
}

TruthAgreement agreement_with_truth(const std::vector<ResultRow>& rows, const std::string& model,
                                    const std::vector<std::string>& methods, const std::vector<MetricVariant>& measures,
                                    const MetricVariant& reference, int resamples, uint64_t seed, double level) {
  if (methods.size() < 2)
    lab::fail_parameter("agreement with the truth on model '{}': needs at least 2 methods, got {}", model,
                        methods.size());
  check_measure(rows, model, reference);
  for (const MetricVariant& m : measures) check_measure(rows, model, m);
  TruthAgreement out;
  out.model = model;
  out.methods = methods;
  out.reference = reference.name();
  using ScoreMap = std::map<std::string, double>;
  auto table = [](const ImageScores& s) {
    ScoreMap m;
    for (size_t i = 0; i < s.samples.size(); ++i) m.emplace(s.samples[i], s.values[i]);
    return m;
  };
  std::vector<std::string> order;  // sample ids in row order
  {
    std::set<std::string> seen;
    for (const ResultRow& r : rows)
      if (r.model == model && r.sample != kAllSamples && seen.insert(r.sample).second) order.push_back(r.sample);
  }
  std::vector<ScoreMap> truth;
  for (const std::string& method : methods) truth.push_back(table(image_scores(rows, model, method, reference)));
  // The methods scored under `tables` and the reference (and `extra`), and the images all of them share.
  auto common = [&](const std::vector<const std::vector<ScoreMap>*>& tables, std::vector<size_t>& kept) {
    kept.clear();
    for (size_t m = 0; m < methods.size(); ++m) {
      bool scored = true;
      for (const auto* t : tables) scored = scored && !(*t)[m].empty();
      if (scored) kept.push_back(m);
    }
    std::vector<std::string> images;
    for (const std::string& sample : order) {
      bool all = !kept.empty();
      for (size_t m : kept)
        for (const auto* t : tables) all = all && (*t)[m].count(sample) > 0;
      if (all) images.push_back(sample);
    }
    return images;
  };
  auto matrix = [&](const std::vector<ScoreMap>& t, const std::vector<size_t>& kept, const std::vector<std::string>& images) {
    std::vector<std::vector<double>> rows_of(kept.size());
    for (size_t i = 0; i < kept.size(); ++i)
      for (const std::string& sample : images) rows_of[i].push_back(t[kept[i]].at(sample));
    return rows_of;
  };
  auto spread = [&](const std::vector<double>& values, const std::vector<size_t>& kept) {
    std::vector<double> full(methods.size(), kNaN);
    for (size_t i = 0; i < kept.size(); ++i) full[kept[i]] = values[i];
    return full;
  };
  auto indices = [](size_t n) {
    std::vector<int64_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = static_cast<int64_t>(i);
    return all;
  };
  {
    std::vector<size_t> kept;
    const auto images = common({&truth}, kept);
    if (images.empty())
      lab::fail_parameter("agreement with the truth on model '{}': no image scored by every method under {}", model,
                          reference.name());
    const auto means = resampled_means(matrix(truth, kept, images), indices(images.size()));
    out.reference_means = spread(means, kept);
    out.reference_ranking = spread(ranking(means, reference.direction), kept);
  }
  for (const MetricVariant& measure : measures) {
    std::vector<ScoreMap> mine;
    for (const std::string& method : methods) mine.push_back(table(image_scores(rows, model, method, measure)));
    std::vector<size_t> kept;
    const auto images = common({&mine, &truth}, kept);
    Agreement a;
    a.measure = measure.name();
    a.images = static_cast<int64_t>(images.size());
    a.methods = static_cast<int64_t>(kept.size());
    a.means.assign(methods.size(), kNaN);
    a.ranking.assign(methods.size(), kNaN);
    a.rho = {kNaN, kNaN, kNaN, 0, level};
    if (kept.size() < 2 || images.empty()) {
      out.measures.push_back(std::move(a));
      continue;
    }
    const auto scores = matrix(mine, kept, images), reference_scores = matrix(truth, kept, images);
    const auto means = resampled_means(scores, indices(images.size()));
    a.means = spread(means, kept);
    a.ranking = spread(ranking(means, measure.direction), kept);
    // Every measure draws the same resamples (the same seed), as the report's other intervals do:
    // a measure's interval does not depend on which others are listed with it.
    a.rho = bootstrap(
        a.images,
        [&](const std::vector<int64_t>& idx) {
          return spearman(ranking(resampled_means(scores, idx), measure.direction),
                          ranking(resampled_means(reference_scores, idx), reference.direction));
        },
        resamples, seed, level);
    out.measures.push_back(std::move(a));
  }
  return out;
}

Table correlation_long_table(const CorrelationMatrix& matrix, const std::string& id, const std::string& title) {
  Table t;
  t.id = id;
  t.title = title;
  t.columns = {"model", "method", "measure-a", "measure-b", "coefficient", "value", "images"};
  t.align = {Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight};
  const size_t k = matrix.measures.size();
  for (size_t m = 0; m < matrix.methods.size(); ++m)
    for (size_t i = 0; i < k; ++i)
      for (size_t j = i + 1; j < k; ++j) {
        const PairCorrelation& c = matrix.per_method[m][i][j];
        t.add({matrix.model, matrix.methods[m], matrix.measures[i], matrix.measures[j], coefficient_name(c.coefficient),
               exact_number(c.value), std::to_string(c.images)});
      }
  for (size_t i = 0; i < k; ++i)
    for (size_t j = i + 1; j < k; ++j)
      t.add({matrix.model, "mean", matrix.measures[i], matrix.measures[j], "mean", exact_number(matrix.mean[i][j]),
             std::to_string(matrix.count[i][j])});
  return t;
}

Table correlation_square_table(const CorrelationMatrix& matrix, const std::string& id, const std::string& title,
                               int decimals) {
  Table t;
  t.id = id;
  t.title = title;
  t.columns = {"measure"};
  t.align = {Align::kLeft};
  for (const std::string& m : matrix.measures) {
    t.columns.push_back(m);
    t.align.push_back(Align::kRight);
  }
  for (size_t i = 0; i < matrix.measures.size(); ++i) {
    std::vector<std::string> row = {matrix.measures[i]};
    for (size_t j = 0; j < matrix.measures.size(); ++j) row.push_back(i == j ? "/" : fixed(matrix.mean[i][j], decimals));
    t.add(std::move(row));
  }
  return t;
}

}  // namespace experiments
