#include "experiments/rank.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "lab/core/error.h"

namespace experiments {

namespace {

void check_pair(size_t a, size_t b, const char* what) {
  if (a != b) lab::fail_parameter("{}: vectors of {} and {} values", what, a, b);
  if (a < 2) lab::fail_parameter("{} needs at least 2 values, got {}", what, a);
}

}  // namespace

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair(x.size(), y.size(), "Pearson correlation");
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx <= 0.0 || syy <= 0.0) return 0.0;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double mean = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = mean;
    i = j + 1;
  }
  return ranks;
}

std::vector<double> ranking(const std::vector<double>& values, Direction direction) {
  std::vector<double> keyed = values;
  if (direction == Direction::kHigherIsBetter)
    for (double& v : keyed) v = -v;
  return average_ranks(keyed);
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair(x.size(), y.size(), "Spearman correlation");
  return pearson(average_ranks(x), average_ranks(y));
}

double point_biserial(const std::vector<bool>& group, const std::vector<double>& values) {
  check_pair(group.size(), values.size(), "point-biserial correlation");
  const double n = static_cast<double>(values.size());
  double sum1 = 0.0, sum0 = 0.0, n1 = 0.0, n0 = 0.0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (group[i]) {
      sum1 += values[i];
      n1 += 1.0;
    } else {
      sum0 += values[i];
      n0 += 1.0;
    }
  }
  if (n1 == 0.0 || n0 == 0.0) lab::fail_parameter("point-biserial correlation needs both groups present");
  const double mean = (sum1 + sum0) / n;
  double var = 0.0;
  for (double v : values) var += (v - mean) * (v - mean);
  var /= n;
  if (var <= 0.0) return 0.0;
  return (sum1 / n1 - sum0 / n0) / std::sqrt(var) * std::sqrt(n1 * n0 / (n * n));
}

MethodScores collect_scores(const std::vector<SummaryRow>& rows, const std::vector<std::string>& methods,
                            const std::string& metric, const std::string& variant, Direction direction) {
  MethodScores out{metric, variant, direction, {}};
  for (const std::string& m : methods) {
    const SummaryRow* found = nullptr;
    for (const SummaryRow& r : rows)
      if (r.method == m && r.metric == metric && r.variant == variant) {
        if (found) lab::fail("method {} has two values of {} {}", m, metric, variant);
        found = &r;
      }
    if (!found) lab::fail("method {} has no value of {} {}", m, metric, variant);
    out.values.push_back(found->value);
  }
  return out;
}

std::vector<RankCorrelation> rank_correlations(const std::vector<MethodScores>& scores, const MethodScores& reference) {
  const std::vector<double> ref = ranking(reference.values, reference.direction);
  std::vector<RankCorrelation> out;
  for (const MethodScores& s : scores) {
    RankCorrelation r{s.metric, s.variant, ranking(s.values, s.direction), 0.0};
    r.spearman = pearson(r.ranking, ref);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace experiments

namespace experiments {

BootstrapInterval bootstrap(int64_t n, const std::function<double(const std::vector<int64_t>&)>& statistic, int resamples,
                            uint64_t seed, double level) {
  if (n < 1) lab::fail_parameter("bootstrap: needs at least 1 image, got {}", n);
  if (resamples < 1) lab::fail_parameter("bootstrap: resamples must be at least 1, got {}", resamples);
  if (!(level > 0.0 && level < 1.0)) lab::fail_parameter("bootstrap: level must be in (0, 1), got {}", level);
  BootstrapInterval out;
  out.resamples = resamples;
  out.level = level;
  std::vector<int64_t> images(static_cast<size_t>(n));
  std::iota(images.begin(), images.end(), int64_t{0});
  out.value = statistic(images);
  std::mt19937_64 rng(seed);
  std::vector<double> values(static_cast<size_t>(resamples));
  for (double& v : values) {
    // Rejection: draws at or above the largest multiple of n are redrawn, so x mod n is exactly uniform.
    const uint64_t range = static_cast<uint64_t>(n);
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
    for (int64_t& i : images) {
      uint64_t x = rng();
      while (x >= limit) x = rng();
      i = static_cast<int64_t>(x % range);
    }
    v = statistic(images);
  }
  std::sort(values.begin(), values.end());
  auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(values.size() - 1);
    const size_t i = static_cast<size_t>(std::floor(pos));
    const size_t j = std::min(i + 1, values.size() - 1);
    return values[i] + (pos - static_cast<double>(i)) * (values[j] - values[i]);
  };
  out.lo = quantile((1.0 - level) / 2.0);
  out.hi = quantile((1.0 + level) / 2.0);
  return out;
}

std::vector<double> resampled_means(const std::vector<std::vector<double>>& per_image, const std::vector<int64_t>& images) {
  std::vector<double> means;
  means.reserve(per_image.size());
  for (const std::vector<double>& values : per_image) {
    double sum = 0.0;
    for (int64_t i : images) sum += values.at(static_cast<size_t>(i));
    means.push_back(sum / static_cast<double>(images.size()));
  }
  return means;
}

}  // namespace experiments
