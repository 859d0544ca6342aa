#include "experiments/meta_evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "lab/core/error.h"

namespace experiments {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool constant(const std::vector<double>& values) {
  for (double v : values)
    if (v != values.front()) return false;
  return true;
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
  bool any = false;
  for (const ResultRow& r : rows) {
    if (r.model != model || r.method != method || r.metric != measure.metric || r.variant != measure.variant ||
        r.sample == kAllSamples)
      continue;
    any = true;
    if (!std::isfinite(r.value)) continue;
    out.samples.push_back(r.sample);
    out.values.push_back(r.value);
  }
  if (!any)
    lab::fail_parameter("meta-evaluation: no per-image rows of {}/{} for model '{}' and method '{}'", measure.metric,
                        measure.variant, model, method);
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
  TruthAgreement out;
  out.model = model;
  out.methods = methods;
  out.reference = reference.name();
  std::vector<ImageScores> truth;
  for (const std::string& method : methods) truth.push_back(image_scores(rows, model, method, reference));
  auto table = [](const ImageScores& s) {
    std::map<std::string, double> m;
    for (size_t i = 0; i < s.samples.size(); ++i) m.emplace(s.samples[i], s.values[i]);
    return m;
  };
  // The reference means over all images every method scores under it (the truth's ranking).
  {
    std::vector<std::map<std::string, double>> tables;
    for (const auto& t : truth) tables.push_back(table(t));
    std::vector<std::vector<double>> per_image(methods.size());
    for (const std::string& sample : truth.front().samples) {
      bool all = true;
      for (const auto& t : tables) all = all && t.count(sample) > 0;
      if (!all) continue;
      for (size_t m = 0; m < methods.size(); ++m) per_image[m].push_back(tables[m].at(sample));
    }
    if (per_image.front().empty())
      lab::fail_parameter("agreement with the truth on model '{}': no image scored by every method under {}", model,
                          reference.name());
    std::vector<int64_t> all(per_image.front().size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    out.reference_means = resampled_means(per_image, all);
    out.reference_ranking = ranking(out.reference_means, reference.direction);
  }
  for (size_t q = 0; q < measures.size(); ++q) {
    const MetricVariant& measure = measures[q];
    std::vector<std::map<std::string, double>> mine, ref;
    for (size_t m = 0; m < methods.size(); ++m) {
      mine.push_back(table(image_scores(rows, model, methods[m], measure)));
      ref.push_back(table(truth[m]));
    }
    // Images every method scores under both measures, in the reference's row order.
    std::vector<std::vector<double>> scores(methods.size()), reference_scores(methods.size());
    for (const std::string& sample : truth.front().samples) {
      bool all = true;
      for (size_t m = 0; m < methods.size(); ++m) all = all && mine[m].count(sample) > 0 && ref[m].count(sample) > 0;
      if (!all) continue;
      for (size_t m = 0; m < methods.size(); ++m) {
        scores[m].push_back(mine[m].at(sample));
        reference_scores[m].push_back(ref[m].at(sample));
      }
    }
    const int64_t n = static_cast<int64_t>(scores.front().size());
    if (n == 0)
      lab::fail_parameter("agreement with the truth on model '{}': no image scored by every method under both {} and {}",
                          model, measure.name(), reference.name());
    Agreement a;
    a.measure = measure.name();
    a.images = n;
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    a.means = resampled_means(scores, all);
    a.ranking = ranking(a.means, measure.direction);
    // Every measure draws the same resamples (the same seed), as the report's other intervals do:
    // a measure's interval does not depend on which others are listed with it.
    a.rho = bootstrap(
        n,
        [&](const std::vector<int64_t>& images) {
          return spearman(ranking(resampled_means(scores, images), measure.direction),
                          ranking(resampled_means(reference_scores, images), reference.direction));
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
