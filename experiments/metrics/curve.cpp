#include "experiments/metrics/curve.h"

#include <utility>

#include "experiments/engine/perturbation.h"
#include "lab/core/error.h"

namespace experiments {

double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y) {
  LAB_CHECK(x.size() == y.size(), "{} x for {} y", x.size(), y.size());
  double area = 0.0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0;
  return area;
}

MetricOutput score_samples(const Context& context, int64_t n,
                           const std::function<void(int64_t i, MetricOutput& slot)>& body) {
  std::vector<MetricOutput> slots(static_cast<size_t>(n));
  for_samples(context, n, [&](int64_t i) { body(i, slots[static_cast<size_t>(i)]); });
  MetricOutput out;
  for (MetricOutput& slot : slots) out.append(std::move(slot));
  return out;
}

std::vector<CurvePoint> path_curve(const PerturbationPath& path, int64_t pixels, const std::string& id,
                                   const std::string& variant, const std::function<double(int64_t s)>& y_of) {
  std::vector<CurvePoint> points;
  points.reserve(static_cast<size_t>(path.steps() + 1));
  for (int64_t s = 0; s <= path.steps(); ++s) {
    const double x = s == 0 ? 0.0 : static_cast<double>(path.step_ends[static_cast<size_t>(s - 1)]) / pixels;
    points.push_back({id, variant, x, y_of(s)});
  }
  return points;
}

void add_auc_curve(MetricOutput& out, std::vector<CurvePoint> points) {
  if (points.empty()) return;
  std::vector<double> xs, ys;
  xs.reserve(points.size());
  ys.reserve(points.size());
  for (const CurvePoint& p : points) {
    xs.push_back(p.x);
    ys.push_back(p.y);
  }
  out.rows.push_back({points.front().sample, points.front().variant, trapezoid_auc(xs, ys)});
  out.curves.insert(out.curves.end(), std::make_move_iterator(points.begin()), std::make_move_iterator(points.end()));
}

}  // namespace experiments
