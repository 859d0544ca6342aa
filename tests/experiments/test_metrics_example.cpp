// Adding a metric, the complete example the README walks through: "mass-on-gt", the share of a
// map's positive attribution mass that lies on positive ground-truth pixels, with one parameter.
// The metric, its parameter schema and its registration are this one file; the test then scores
// maps through the same registry path as the built-in metrics (make_metrics, Metric::evaluate),
// and the generic tests of test_metrics_registry.cpp cover it once registered.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "experiments/metrics/metric.h"
#include "lab/core/error.h"

namespace {

using namespace experiments;

/// mass-on-gt: with a the channel-summed map and g the pixel ground truth of one sample,
///   value = Σ_{j: a_j > floor, g_j > 0} a_j / Σ_{j: a_j > floor} a_j,
/// i.e. how much of the attribution above `floor` falls on the pixels that raise the output
/// (0 when no attribution exceeds the floor). Higher is better; in [0, 1].
struct MassOnGtParams {
  /// Attribution at or below this value is not counted as mass, ≥ 0.
  double floor = 0.0;
  static const lab::Schema<MassOnGtParams>& schema() {
    static const auto s = lab::Schema<MassOnGtParams>().field(
        "floor", &MassOnGtParams::floor,
        {.range = lab::at_least(0), .help = "attribution at or below this is not counted as mass"});
    return s;
  }
};

class MassOnGt final : public MetricWith<MassOnGtParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "mass-on-gt"; }
  std::string family() const override { return "ground-truth"; }
  std::vector<Variant> variants() const override { return {{"share", Direction::kHigherIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context&, const Batch& batch) const override {
    if (batch.gt.empty()) lab::fail("metric {} needs the pixel ground truth", name());
    MetricOutput out;
    const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
    for (int64_t i = 0; i < batch.size(); ++i) {
      const float* a = batch.attr.data() + i * hw;
      const float* g = batch.gt.data() + i * hw;
      double on = 0.0, all = 0.0;
      for (int64_t j = 0; j < hw; ++j)
        if (a[j] > params_.floor) {
          all += a[j];
          if (g[j] > 0.0f) on += a[j];
        }
      out.rows.push_back({batch.ids[static_cast<size_t>(i)], "share", all > 0.0 ? on / all : 0.0});
    }
    return out;
  }
};

/// The registration line (once per process).
void register_mass_on_gt() {
  static const bool done = [] {
    add_metric(metric_info<MassOnGt>("mass-on-gt", "ground-truth",
                                     "share of the positive attribution mass on positive-GT pixels",
                                     "README, Adding a metric", {{"share", Direction::kHigherIsBetter}}));
    return true;
  }();
  (void)done;
}

}  // namespace

TEST_CASE("an outside metric registered with add_metric is made and scored like the built-in ones") {
  register_mass_on_gt();
  // Two 1×4 samples: the first puts 3 of its 4 positive units on the single positive-GT pixel.
  Batch b;
  b.ids = {"s0", "s1"};
  b.x = lab::Tensor({2, 1, 1, 4}, 0.0f);
  b.attr = lab::Tensor({2, 1, 4}, {3.0f, 1.0f, -2.0f, 0.0f, 0.5f, 0.5f, 0.0f, 0.0f});
  b.gt = lab::Tensor({2, 1, 4}, {1.0f, 0.0f, 1.0f, -1.0f, 0.0f, 0.0f, 0.0f, 1.0f});
  b.target = {0, 0};
  const lab::Network net;
  Context context;
  context.net = &net;

  lab::Options params = lab::Options::parse({"floor=0.75", "ground-truth=pixel"}, "-p");
  const auto metrics = make_metrics({"mass-on-gt", "gt"}, params, {});
  REQUIRE(metrics.size() == 2);
  CHECK(metrics[0]->params() == nlohmann::json{{"floor", 0.75}});
  const MetricOutput out = metrics[0]->evaluate(context, b);
  REQUIRE(out.rows.size() == 3);
  CHECK(out.rows[0].value == 0.75);  // floor 0.75 keeps 3 and 1: 3 / 4 on the GT pixel
  CHECK(out.rows[1].value == 0.0);   // nothing above the floor
  CHECK(out.rows[2].sample == kAllSamples);
  CHECK(out.rows[2].value == 0.375);
  CHECK(metrics[0]->direction("share") == Direction::kHigherIsBetter);

  lab::Options none("-p");
  CHECK(make_metric("mass-on-gt", none, {})->evaluate(context, b).rows[1].value == 0.0);  // GT pixel has 0
  lab::Options negative = lab::Options::parse({"floor=-1"}, "-p");
  try {
    make_metric("mass-on-gt", negative, {});
    FAIL("floor=-1 accepted");
  } catch (const lab::Error& e) {
    CHECK(std::string(e.what()).find("-p floor=-1: must be a finite number ≥ 0") != std::string::npos);
  }
  CHECK_THROWS_AS(add_metric(metric_info<MassOnGt>("gt", "ground-truth", "", "", {})), lab::Error);
}
