/// @file segmentation.h
/// @brief Superpixels for the surrogate methods (LIME, KernelSHAP): quickshift, Felzenszwalb,
/// SLIC, and the designed patches (`oracle`).
///
/// LIME (Ribeiro et al. 2016) treats every superpixel as one interpretable feature, so the map it
/// returns is only as fine as the segmentation (paper Section 4.2, App. K). Four algorithms:
/// - `quickshift` (Vedaldi & Soatto 2008), LIME's default (App. G.2), as the scikit-image function
///   LIME calls: features (ratio·Lab colour, row, column); the Parzen density with a Gaussian of
///   σ = `kernel-size` over a ⌈3σ⌉ window (computed by VLFeat, `vl/quickshift.h`), ties broken
///   by noise of σ = 1e-5 from a fixed seed; each pixel links to the nearest pixel of higher
///   density within the ⌈3σ⌉ window, links longer than `max-dist` are cut, and the trees are the
///   segments. VLFeat's own linking stage searches a window of radius `max-dist` instead, which
///   at LIME's max_dist = 200 is both slow and a different segmentation, so the link rule is
///   scikit-image's. Defaults kernel-size 4, max-dist 200, ratio 0.2: LIME's.
/// - `felzenszwalb` (Felzenszwalb & Huttenlocher 2004; OpenCV ximgproc graph segmentation) on
///   the image scaled to [0, 1], so `scale`, `sigma` and `min-size` mean what they mean in
///   scikit-image (LIME's alternative; defaults scale 1, sigma 0.8, min-size 20 as scikit-image).
/// - `slic` (Achanta et al. 2012; OpenCV ximgproc SLIC) on the Lab image: `region-size` pixels per
///   superpixel side, `compactness` the weight of space against colour (10, as scikit-image),
///   `iterations` (10), segments under `min-size-percent` of a region merged into a neighbour.
/// - `oracle`: the designed patches of the sample (Batch::segments; 0 = background), the "right
///   segmentation prior" of Section 4.2 standing in for the paper's SAM.
///
/// The image handed to an algorithm is the network input mapped to [0, 1] by its own minimum and
/// maximum over all channels (a constant image maps to 0); gray images are treated as RGB with
/// three equal channels. Labels are returned renumbered 0..K-1 in raster order of first
/// appearance, so equal segmentations give equal label images.
/// Tested in test_perturbation_segmentation.cpp: labels consecutive and covering; another
/// algorithm's key refused; the oracle
/// reproduces the designed patches; every algorithm separates two flat regions of different
/// colours; the same image always gives the same labels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lab/core/schema.h"
#include "lab/core/tensor.h"

namespace attributions {

struct SegmentationParams {
  std::string algorithm = "quickshift";  ///< quickshift | felzenszwalb | slic | oracle
  // quickshift
  double kernel_size = 4.0;  ///< σ of the Parzen density (pixels), > 0
  double max_dist = 200.0;   ///< links longer than this (feature space) are cut, > 0
  double ratio = 0.2;        ///< weight of colour against space, in [0, 1]
  // felzenszwalb
  double scale = 1.0;        ///< k of the merging threshold k/|C|, on the [0, 1] image, > 0
  double sigma = 0.8;        ///< Gaussian pre-smoothing, >= 0
  int64_t min_size = 20;     ///< smallest segment in pixels, >= 1
  // slic
  int64_t region_size = 10;        ///< superpixel side in pixels, >= 2
  double compactness = 10.0;       ///< space against Lab colour, > 0
  int64_t iterations = 10;         ///< k-means iterations, >= 1
  int64_t min_size_percent = 25;   ///< segments smaller than this % of region_size² are merged, in [0, 100]

  /// `segmentation` and every algorithm's keys, for `.nested(&Params::segmentation, ...)` in the
  /// surrogate methods. A key of another algorithm than the chosen one is refused unless it keeps
  /// its default; the record holds every key.
  static const lab::Schema<SegmentationParams>& schema();
};

/// A segmentation: CV_32S labels 0..count-1.
struct Segments {
  cv::Mat labels;
  int64_t count = 0;
};

/// Segments one C×H×W image (C = 1 or 3; `image` points at its first value). `oracle` is the
/// sample's designed label image, required (and only used) by the `oracle` algorithm.
Segments segment_image(const SegmentationParams& params, const float* image, int64_t channels, int64_t height,
                       int64_t width, const cv::Mat* oracle);

/// Segments every sample of an N×C×H×W batch (in parallel around, never inside, network calls).
/// `oracle` holds one label image per sample, or is empty unless the algorithm is `oracle`.
std::vector<Segments> segment_batch(const SegmentationParams& params, const lab::Tensor& x,
                                    const std::vector<cv::Mat>& oracle);

/// Renumbers any integer label image to 0..K-1 in raster order of first appearance.
Segments relabel(const cv::Mat& labels);

}  // namespace attributions
