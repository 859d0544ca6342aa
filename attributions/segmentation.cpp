#include "attributions/segmentation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <opencv2/imgproc.hpp>
#include <opencv2/ximgproc/segmentation.hpp>
#include <opencv2/ximgproc/slic.hpp>
#include <tbb/parallel_for.h>

extern "C" {
#include <vl/quickshift.h>
}

#include "attributions/perturbation.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

const std::vector<std::string> kAlgorithms = {"quickshift", "felzenszwalb", "slic", "oracle"};

/// The image as H×W RGB CV_32FC3 in [0, 1] (min-max over all values; gray replicated).
cv::Mat to_unit_rgb(const float* image, int64_t channels, int64_t height, int64_t width) {
  const int64_t plane = height * width;
  const auto [lo, hi] = std::minmax_element(image, image + channels * plane);
  const float min = *lo;
  const float range = *hi - *lo;
  cv::Mat rgb(static_cast<int>(height), static_cast<int>(width), CV_32FC3);
  for (int64_t y = 0; y < height; ++y) {
    auto* row = rgb.ptr<cv::Vec3f>(static_cast<int>(y));
    for (int64_t x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int64_t source = channels == 3 ? c : 0;
        const float v = image[source * plane + y * width + x];
        row[x][c] = range > 0.0f ? (v - min) / range : 0.0f;
      }
    }
  }
  return rgb;
}

cv::Mat to_lab(const cv::Mat& rgb) {
  cv::Mat lab;
  cv::cvtColor(rgb, lab, cv::COLOR_RGB2Lab);
  return lab;
}

Segments quickshift(const SegmentationParams& p, const cv::Mat& rgb) {
  const cv::Mat lab = to_lab(rgb);
  const int height = lab.rows;
  const int width = lab.cols;
  const int n = height * width;
  // VLFeat stores the feature image column-major per channel: value (row i, col j, channel k)
  // at i + height·j + height·width·k; rows and columns enter the distance as coordinates.
  std::vector<vl_qs_type> features(static_cast<size_t>(n) * 3);
  for (int i = 0; i < height; ++i) {
    const auto* row = lab.ptr<cv::Vec3f>(i);
    for (int j = 0; j < width; ++j)
      for (int k = 0; k < 3; ++k) features[static_cast<size_t>(i + height * j + n * k)] = p.ratio * row[j][k];
  }
  // The Parzen density from VLFeat (Gaussian of σ = kernel-size over a ⌈3σ⌉ window). Its own
  // linking stage is not used (a radius of 1 keeps it cheap): see the rule below.
  VlQS* qs = vl_quickshift_new(features.data(), height, width, 3);
  vl_quickshift_set_kernel_size(qs, p.kernel_size);
  vl_quickshift_set_max_dist(qs, 1.0);
  vl_quickshift_set_medoid(qs, VL_FALSE);
  vl_quickshift_process(qs);
  std::vector<double> density(vl_quickshift_get_density(qs), vl_quickshift_get_density(qs) + n);
  vl_quickshift_delete(qs);
  // Ties (flat regions) are broken by noise of σ = 1e-5, from a fixed seed.
  Draws draws(std::mt19937_64(42));
  for (double& d : density) d += 1e-5 * draws.normal();
  // Each pixel links to the nearest pixel (in the joint feature space) of higher density within
  // the ⌈3σ⌉ window; links longer than max-dist are cut; the trees are the segments.
  const int reach = static_cast<int>(std::ceil(3.0 * p.kernel_size));
  auto at = [&](int i, int j) { return static_cast<size_t>(i + height * j); };
  std::vector<int> parent(static_cast<size_t>(n));
  tbb::parallel_for(0, width, [&](int j) {
    for (int i = 0; i < height; ++i) {
      const double own = density[at(i, j)];
      double closest = std::numeric_limits<double>::max();
      int best = static_cast<int>(at(i, j));
      for (int jj = std::max(j - reach, 0); jj <= std::min(j + reach, width - 1); ++jj)
        for (int ii = std::max(i - reach, 0); ii <= std::min(i + reach, height - 1); ++ii) {
          if (density[at(ii, jj)] <= own) continue;
          double d = double(i - ii) * (i - ii) + double(j - jj) * (j - jj);
          for (int k = 0; k < 3; ++k) {
            const double t = features[at(i, j) + static_cast<size_t>(n * k)] - features[at(ii, jj) + static_cast<size_t>(n * k)];
            d += t * t;
          }
          if (d < closest) {
            closest = d;
            best = static_cast<int>(at(ii, jj));
          }
        }
      parent[at(i, j)] = std::sqrt(closest) > p.max_dist ? static_cast<int>(at(i, j)) : best;
    }
  });
  // Every pixel is labelled with its root (densities strictly increase along links: no cycles).
  std::vector<int> root(static_cast<size_t>(n), -1);
  for (int s = 0; s < n; ++s) {
    int r = s;
    while (parent[static_cast<size_t>(r)] != r && root[static_cast<size_t>(r)] < 0) r = parent[static_cast<size_t>(r)];
    const int top = root[static_cast<size_t>(r)] >= 0 ? root[static_cast<size_t>(r)] : r;
    for (int v = s; v != r; v = parent[static_cast<size_t>(v)]) root[static_cast<size_t>(v)] = top;
    root[static_cast<size_t>(r)] = top;
  }
  cv::Mat labels(height, width, CV_32S);
  for (int i = 0; i < height; ++i)
    for (int j = 0; j < width; ++j) labels.at<int32_t>(i, j) = root[at(i, j)];
  return relabel(labels);
}

Segments felzenszwalb(const SegmentationParams& p, const cv::Mat& rgb) {
  auto gs = cv::ximgproc::segmentation::createGraphSegmentation(p.sigma, static_cast<float>(p.scale),
                                                               static_cast<int>(p.min_size));
  cv::Mat labels;
  gs->processImage(rgb, labels);
  return relabel(labels);
}

Segments slic(const SegmentationParams& p, const cv::Mat& rgb) {
  const cv::Mat lab = to_lab(rgb);
  auto sp = cv::ximgproc::createSuperpixelSLIC(lab, cv::ximgproc::SLIC, static_cast<int>(p.region_size),
                                               static_cast<float>(p.compactness));
  sp->iterate(static_cast<int>(p.iterations));
  if (p.min_size_percent > 0) sp->enforceLabelConnectivity(static_cast<int>(p.min_size_percent));
  cv::Mat labels;
  sp->getLabels(labels);
  return relabel(labels);
}

}  // namespace

void SegmentationParams::validate() const {
  if (std::find(kAlgorithms.begin(), kAlgorithms.end(), algorithm) == kAlgorithms.end())
    lab::fail_parameter("segmentation must be one of quickshift, felzenszwalb, slic, oracle; got '{}'", algorithm);
  lab::require(kernel_size > 0, "kernel-size", "> 0", std::to_string(kernel_size));
  lab::require(max_dist > 0, "max-dist", "> 0", std::to_string(max_dist));
  lab::require(ratio >= 0 && ratio <= 1, "ratio", "in [0, 1]", std::to_string(ratio));
  lab::require(scale > 0, "scale", "> 0", std::to_string(scale));
  lab::require(sigma >= 0, "sigma", ">= 0", std::to_string(sigma));
  lab::require(min_size >= 1, "min-size", ">= 1", std::to_string(min_size));
  lab::require(region_size >= 2, "region-size", ">= 2", std::to_string(region_size));
  lab::require(compactness > 0, "compactness", "> 0", std::to_string(compactness));
  lab::require(iterations >= 1, "iterations", ">= 1", std::to_string(iterations));
  lab::require(min_size_percent >= 0 && min_size_percent <= 100, "min-size-percent", "in [0, 100]",
               std::to_string(min_size_percent));
}

SegmentationParams SegmentationParams::from_options(lab::Options& options) {
  SegmentationParams p;
  p.algorithm = options.get_choice("segmentation", p.algorithm, kAlgorithms);
  if (p.algorithm == "quickshift") {
    p.kernel_size = options.get_double("kernel-size", p.kernel_size);
    p.max_dist = options.get_double("max-dist", p.max_dist);
    p.ratio = options.get_double("ratio", p.ratio);
  } else if (p.algorithm == "felzenszwalb") {
    p.scale = options.get_double("scale", p.scale);
    p.sigma = options.get_double("sigma", p.sigma);
    p.min_size = options.get_int("min-size", p.min_size);
  } else if (p.algorithm == "slic") {
    p.region_size = options.get_int("region-size", p.region_size);
    p.compactness = options.get_double("compactness", p.compactness);
    p.iterations = options.get_int("iterations", p.iterations);
    p.min_size_percent = options.get_int("min-size-percent", p.min_size_percent);
  }
  p.validate();
  return p;
}

nlohmann::json SegmentationParams::to_json() const {
  nlohmann::json j{{"segmentation", algorithm}};
  if (algorithm == "quickshift") {
    j["kernel-size"] = kernel_size;
    j["max-dist"] = max_dist;
    j["ratio"] = ratio;
  } else if (algorithm == "felzenszwalb") {
    j["scale"] = scale;
    j["sigma"] = sigma;
    j["min-size"] = min_size;
  } else if (algorithm == "slic") {
    j["region-size"] = region_size;
    j["compactness"] = compactness;
    j["iterations"] = iterations;
    j["min-size-percent"] = min_size_percent;
  }
  return j;
}

std::vector<SegmentationKey> segmentation_keys() {
  return {
      {"segmentation", "quickshift", "superpixels: quickshift | felzenszwalb | slic | oracle (the designed patches)"},
      {"kernel-size", "4", "quickshift: σ of the Parzen density in pixels"},
      {"max-dist", "200", "quickshift: links longer than this in (ratio·Lab, row, col) are cut"},
      {"ratio", "0.2", "quickshift: weight of colour against space, in [0, 1]"},
      {"scale", "1", "felzenszwalb: k of the threshold k/|C| on the [0,1] image"},
      {"sigma", "0.8", "felzenszwalb: Gaussian pre-smoothing"},
      {"min-size", "20", "felzenszwalb: smallest segment in pixels"},
      {"region-size", "10", "slic: superpixel side in pixels"},
      {"compactness", "10", "slic: weight of space against Lab colour"},
      {"iterations", "10", "slic: k-means iterations"},
      {"min-size-percent", "25", "slic: merge segments under this % of region-size²"},
  };
}

Segments relabel(const cv::Mat& labels) {
  LAB_CHECK(labels.type() == CV_32S, "label image of type {}", labels.type());
  Segments out;
  out.labels.create(labels.rows, labels.cols, CV_32S);
  std::unordered_map<int32_t, int32_t> ids;
  for (int y = 0; y < labels.rows; ++y) {
    for (int x = 0; x < labels.cols; ++x) {
      const int32_t v = labels.at<int32_t>(y, x);
      auto [it, inserted] = ids.emplace(v, static_cast<int32_t>(ids.size()));
      out.labels.at<int32_t>(y, x) = it->second;
    }
  }
  out.count = static_cast<int64_t>(ids.size());
  return out;
}

Segments segment_image(const SegmentationParams& params, const float* image, int64_t channels, int64_t height,
                       int64_t width, const cv::Mat* oracle) {
  if (params.algorithm == "oracle") {
    if (oracle == nullptr || oracle->empty())
      lab::fail_parameter("segmentation=oracle needs the designed patches of every sample (Batch::segments)");
    if (oracle->type() != CV_32S || oracle->rows != height || oracle->cols != width)
      lab::fail_parameter("segmentation=oracle: designed patches must be CV_32S {}x{}, got type {} {}x{}", height,
                          width, oracle->type(), oracle->rows, oracle->cols);
    return relabel(*oracle);
  }
  if (channels != 1 && channels != 3)
    lab::fail_parameter("segmentation={} needs images with 1 or 3 channels, got {}", params.algorithm, channels);
  const cv::Mat rgb = to_unit_rgb(image, channels, height, width);
  if (params.algorithm == "quickshift") return quickshift(params, rgb);
  if (params.algorithm == "felzenszwalb") return felzenszwalb(params, rgb);
  return slic(params, rgb);
}

std::vector<Segments> segment_batch(const SegmentationParams& params, const lab::Tensor& x,
                                    const std::vector<cv::Mat>& oracle) {
  LAB_CHECK(x.rank() == 4, "segment_batch on a rank-{} tensor", x.rank());
  const int64_t n = x.batch();
  if (params.algorithm == "oracle" && static_cast<int64_t>(oracle.size()) != n)
    lab::fail_parameter("segmentation=oracle needs the designed patches of every sample: {} given for {} samples",
                        oracle.size(), n);
  std::vector<Segments> out(static_cast<size_t>(n));
  tbb::parallel_for(int64_t{0}, n, [&](int64_t i) {
    const cv::Mat* o = params.algorithm == "oracle" ? &oracle[static_cast<size_t>(i)] : nullptr;
    out[static_cast<size_t>(i)] = segment_image(params, x.sample(i), x.dim(1), x.dim(2), x.dim(3), o);
  });
  return out;
}

}  // namespace attributions
