#include "attributions/segmentation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>

#include <opencv2/imgproc.hpp>
#include <tbb/parallel_for.h>

extern "C" {
#include <vl/quickshift.h>
}

#include "attributions/perturbation.h"
#include "attributions/segmentation_ximgproc.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

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

/// libattrlab_ximgproc.so (segmentation_ximgproc.h), opened once per process from the directory
/// of the library holding this code; a missing module is an internal error (a broken build or
/// installation, exit code 4) naming its path.
struct Ximgproc {
  AttrlabXimgprocFelzenszwalb felzenszwalb = nullptr;
  AttrlabXimgprocSlic slic = nullptr;
};

const Ximgproc& ximgproc() {
  static const Ximgproc module = [] {
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&segment_image), &self) == 0 || self.dli_fname == nullptr)
      throw std::runtime_error("cannot locate libattrlab_attributions.so to load libattrlab_ximgproc.so beside it");
    const std::string path = (std::filesystem::path(self.dli_fname).parent_path() / "libattrlab_ximgproc.so").string();
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* e = dlerror();
      throw std::runtime_error(fmt::format("{}: cannot load OpenCV's segmentations (felzenszwalb, slic): {}", path,
                                           e ? e : "unknown error"));
    }
    Ximgproc m;
    m.felzenszwalb = reinterpret_cast<AttrlabXimgprocFelzenszwalb>(dlsym(handle, "attrlab_ximgproc_felzenszwalb"));
    m.slic = reinterpret_cast<AttrlabXimgprocSlic>(dlsym(handle, "attrlab_ximgproc_slic"));
    if (m.felzenszwalb == nullptr || m.slic == nullptr)
      throw std::runtime_error(fmt::format("{}: not attrlab's ximgproc module (a function is missing)", path));
    return m;  // the module stays loaded until the process ends
  }();
  return module;
}

Segments felzenszwalb(const SegmentationParams& p, const cv::Mat& rgb) {
  cv::Mat labels;
  ximgproc().felzenszwalb(rgb, p.sigma, static_cast<float>(p.scale), static_cast<int>(p.min_size), labels);
  return relabel(labels);
}

Segments slic(const SegmentationParams& p, const cv::Mat& rgb) {
  const cv::Mat lab = to_lab(rgb);
  cv::Mat labels;
  ximgproc().slic(lab, static_cast<int>(p.region_size), static_cast<float>(p.compactness),
                  static_cast<int>(p.iterations), static_cast<int>(p.min_size_percent), labels);
  return relabel(labels);
}

}  // namespace

const lab::Schema<SegmentationParams>& SegmentationParams::schema() {
  using P = SegmentationParams;
  // The algorithm each key belongs to.
  static std::vector<std::pair<std::string, std::string>> owner;
  static const auto s = [] {
    lab::Schema<P> schema;
    schema.field("segmentation", &P::algorithm,
            {.choices = {"quickshift", "felzenszwalb", "slic", "oracle"},
             .help = "superpixel algorithm (oracle: the designed patches of the sample)",
             .source = "App. G.2: quickshift (Vedaldi & Soatto 2008), LIME's default"});
    auto key = [&schema](const std::string& algorithm, const std::string& name, auto member, lab::ParamSpec spec) {
      spec.help = algorithm + ": " + spec.help;
      schema.field(name, member, std::move(spec));
      owner.emplace_back(name, algorithm);
    };
    key("quickshift", "kernel-size", &P::kernel_size,
        {.range = lab::above(0), .help = "σ of the Parzen density in pixels", .source = "LIME's quickshift setting"});
    key("quickshift", "max-dist", &P::max_dist,
        {.range = lab::above(0),
         .help = "links longer than this in (ratio·Lab, row, col) are cut",
         .source = "LIME's quickshift setting"});
    key("quickshift", "ratio", &P::ratio,
        {.range = lab::between(0, 1), .help = "weight of colour against space", .source = "LIME's quickshift setting"});
    key("felzenszwalb", "scale", &P::scale,
        {.range = lab::above(0),
         .help = "k of the merging threshold k/|C| on the [0,1] image",
         .source = "Felzenszwalb & Huttenlocher 2004; scikit-image default"});
    key("felzenszwalb", "sigma", &P::sigma,
        {.range = lab::at_least(0), .help = "Gaussian pre-smoothing σ", .source = "scikit-image default"});
    key("felzenszwalb", "min-size", &P::min_size,
        {.range = lab::at_least(1), .help = "smallest segment in pixels", .source = "scikit-image default"});
    key("slic", "region-size", &P::region_size,
        {.range = lab::at_least(2), .help = "superpixel side in pixels", .source = "Achanta et al. 2012"});
    key("slic", "compactness", &P::compactness,
        {.range = lab::above(0), .help = "weight of space against Lab colour", .source = "scikit-image default"});
    key("slic", "iterations", &P::iterations,
        {.range = lab::at_least(1), .help = "k-means iterations", .source = "scikit-image default"});
    key("slic", "min-size-percent", &P::min_size_percent,
        {.range = lab::between(0, 100),
         .help = "merge segments under this % of region-size²",
         .source = "OpenCV ximgproc SLIC enforceLabelConnectivity"});
    schema.check([](const P& p, const std::string& flag) {
      const nlohmann::json given = SegmentationParams::schema().to_json(p), defaults = SegmentationParams::schema().to_json(P{});
      for (const auto& [name, algorithm] : owner)
        if (algorithm != p.algorithm && given.at(name) != defaults.at(name))
          lab::fail_parameter("{} {}={}: a {} parameter, but the segmentation is {}", flag, name,
                              lab::option_text(given.at(name)), algorithm, p.algorithm);
    });
    return schema;
  }();
  return s;
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
