/// @file pointing_game.h
/// @brief The Pointing Game (Zhang et al. 2018) as the unified study (Sec. 6.1, App. C) and the
/// coherency paper (Sec. 3) use it: metric "pointing-game".
///
/// A map *hits* when its maximum point lies within `tolerance` pixels (Euclidean distance, exact
/// distance transform) of the ground-truth region; the ratio of hits over samples is the score.
/// Region: region=positive (default) the pixels whose ground truth is > 0 (the evidence for the
/// explained output); region=overall every pixel whose ground truth is non-zero. Several pixels
/// sharing the maximum value point together: the sample's value is the share of them that hit
/// (1 or 0 when the maximum is unique), so a constant map scores the share of the image within
/// tolerance of the region instead of an arbitrary raster-order pixel. A sample whose region is
/// empty has no row. Row "hit", higher-is-better; the mean over samples is the pointing-game ratio.
/// Tested in tests/experiments/test_metrics_complexity.cpp.
#pragma once

#include "experiments/metrics/metric.h"

namespace experiments {

/// The settings of PointingGame (`-p`; PointingGame::Params).
struct PointingGameParams {
  /// The ground-truth region a map's maximum must point into (PointingGame::Region).
  enum class Region { kPositive, kOverall };
  double tolerance = 15.0;
  Region region = Region::kPositive;
  static const lab::Schema<PointingGameParams>& schema();
};

class PointingGame final : public MetricWith<PointingGameParams> {
 public:
  using Region = Params::Region;
  using MetricWith::MetricWith;
  std::string name() const override { return "pointing-game"; }
  std::string family() const override { return "ground-truth"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"hit", Direction::kHigherIsBetter}}; }
  /// The value of one H×W map against one H×W ground truth; nullopt for an empty region.
  std::optional<double> hit(const float* attr, const float* gt, int64_t h, int64_t w) const;

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
