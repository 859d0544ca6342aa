#include "attributions/segmentation.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <opencv2/imgproc.hpp>
#include <opencv2/ximgproc/segmentation.hpp>
#include <opencv2/ximgproc/slic.hpp>
#include <tbb/parallel_for.h>

extern "C" {
#include <vl/quickshift.h>
}

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
  // VLFeat stores the feature image column-major per channel: value (row i, col j, channel k)
  // at i + height·j + height·width·k; rows and columns enter the distance as coordinates.
  std::vector<vl_qs_type> features(static_cast<size_t>(height) * width * 3);
  for (int i = 0; i < height; ++i) {
    const auto* row = lab.ptr<cv::Vec3f>(i);
    for (int j = 0; j < width; ++j) {
      for (int k = 0; k < 3; ++k) {
        features[static_cast<size_t>(i + height * j + height * width * k)] = p.ratio * row[j][k];
      }
    }
  }
  VlQS* qs = vl_quickshift_new(features.data(), height, width, 3);
  vl_quickshift_set_kernel_size(qs, p.kernel_size);
  vl_quickshift_set_max_dist(qs, p.max_dist);
  vl_quickshift_set_medoid(qs, VL_FALSE);
  vl_quickshift_process(qs);
  const int* parents = vl_quickshift_get_parents(qs);
  const int n = height * width;
  std::vector<int> root(static_cast<size_t>(n), -1);
  for (int s = 0; s < n; ++s) {
    int r = s;
    while (parents[r] != r && root[static_cast<size_t>(r)] < 0) r = parents[r];
    const int top = parents[r] == r ? r : root[static_cast<size_t>(r)];
    for (int v = s; v != r; v = parents[v]) root[static_cast<size_t>(v)] = top;
    root[static_cast<size_t>(r)] = top;
  }
  vl_quickshift_delete(qs);
  cv::Mat labels(height, width, CV_32S);
  for (int i = 0; i < height; ++i) {
    for (int j = 0; j < width; ++j) labels.at<int32_t>(i, j) = root[static_cast<size_t>(i + height * j)];
  }
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
      {"max-dist", "17", "quickshift: largest link distance in (ratio·Lab, row, col), also the search radius"},
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
