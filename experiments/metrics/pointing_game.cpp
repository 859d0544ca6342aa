#include "experiments/metrics/pointing_game.h"

#include <algorithm>

#include <opencv2/imgproc.hpp>

#include "lab/core/error.h"

namespace experiments {

const lab::Schema<PointingGameParams>& PointingGameParams::schema() {
  using Params = PointingGameParams;
  static const auto s =
      lab::Schema<Params>()
          .field("tolerance", &Params::tolerance,
                 {.range = lab::at_least(0),
                  .help = "a maximum point within this many pixels of the region hits",
                  .source = "Zhang et al. 2018: 15 pixels"})
          .choice("region", &Params::region, {{Region::kPositive, "positive"}, {Region::kOverall, "overall"}},
                  {.help = "the ground-truth region: positive pixels, or every non-zero pixel",
                   .source = "unified study Sec. 6.1 (the object area)"});
  return s;
}

std::optional<double> PointingGame::hit(const float* attr, const float* gt, int64_t h, int64_t w) const {
  const int64_t hw = h * w;
  // Distance of every pixel to the nearest region pixel: distanceTransform measures to the
  // nearest zero, so the region is 0 and the rest 255.
  cv::Mat outside(static_cast<int>(h), static_cast<int>(w), CV_8U);
  bool any = false;
  for (int64_t p = 0; p < hw; ++p) {
    const bool in = params_.region == Region::kPositive ? gt[p] > 0.0f : gt[p] != 0.0f;
    any = any || in;
    outside.data[p] = in ? 0 : 255;
  }
  if (!any) return std::nullopt;
  cv::Mat distance;
  cv::distanceTransform(outside, distance, cv::DIST_L2, cv::DIST_MASK_PRECISE, CV_32F);
  const float top = *std::max_element(attr, attr + hw);
  int64_t maxima = 0, hits = 0;
  for (int64_t p = 0; p < hw; ++p)
    if (attr[p] == top) {
      ++maxima;
      hits += distance.at<float>(static_cast<int>(p / w), static_cast<int>(p % w)) <= params_.tolerance;
    }
  return static_cast<double>(hits) / static_cast<double>(maxima);
}

MetricOutput PointingGame::evaluate_batch(const Context&, const Batch& batch) const {
  if (batch.gt.empty()) lab::fail("metric {} needs the pixel ground truth, which the data does not provide", name());
  MetricOutput out;
  const int64_t h = batch.attr.dim(1), w = batch.attr.dim(2);
  for (int64_t i = 0; i < batch.size(); ++i)
    if (const auto v = hit(batch.attr.data() + i * h * w, batch.gt.data() + i * h * w, h, w))
      out.rows.push_back({batch.ids[static_cast<size_t>(i)], "hit", *v});
  return out;
}

}  // namespace experiments
