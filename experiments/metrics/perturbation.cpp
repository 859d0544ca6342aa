#include "experiments/metrics/perturbation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>

#include "lab/core/error.h"

namespace experiments {

namespace {

const std::vector<std::string> kModes = {"standard", "modulo"};
const std::vector<std::string> kReplacements = {"constant", "background", "blur", "noise"};
const std::vector<std::string> kOutputs = {"probability", "logit"};

}  // namespace

void PerturbationParams::validate() const {
  lab::require(!value.empty(), "-p value", "one number or one per channel", "nothing");
  for (double v : value) lab::require(std::isfinite(v), "-p value", "finite", fmt::format("{}", v));
  lab::require(blur_sigma > 0.0 && std::isfinite(blur_sigma), "-p blur_sigma", "> 0", fmt::format("{}", blur_sigma));
  lab::require(std::isfinite(noise_low), "-p noise_low", "finite", fmt::format("{}", noise_low));
  if (noise_high)
    lab::require(std::isfinite(*noise_high) && noise_low < *noise_high, "-p noise_high", "finite and > noise_low",
                 fmt::format("{}", *noise_high));
}

PerturbationParams PerturbationParams::from_options(lab::Options& options, const MetricSetup& setup) {
  PerturbationParams p;
  const std::string default_mode = setup.env == "single-color-modulo" ? "modulo" : "standard";
  p.mode = options.get_choice("mode", default_mode, kModes) == "modulo" ? PerturbationMode::kModulo
                                                                        : PerturbationMode::kStandard;
  const std::string r = options.get_choice("replacement", "constant", kReplacements);
  p.replacement = static_cast<ReplacementKind>(std::find(kReplacements.begin(), kReplacements.end(), r) -
                                               kReplacements.begin());
  p.value = options.get_doubles("value", p.value);
  p.blur_sigma = options.get_double("blur_sigma", p.blur_sigma);
  p.noise_low = options.get_double("noise_low", p.noise_low);
  if (options.has("noise_high")) p.noise_high = options.get_double("noise_high", 0.0);
  p.output = options.get_choice("output", "probability", kOutputs) == "logit" ? OutputKind::kLogit
                                                                               : OutputKind::kProbability;
  const int64_t seed = options.get_int("seed", 0);
  lab::require(seed >= 0, "-p seed", ">= 0", std::to_string(seed));
  p.seed = static_cast<uint64_t>(seed);
  p.validate();
  return p;
}

nlohmann::json PerturbationParams::to_json() const {
  return {{"mode", kModes[static_cast<size_t>(mode)]},
          {"replacement", kReplacements[static_cast<size_t>(replacement)]},
          {"value", value},
          {"blur_sigma", blur_sigma},
          {"noise_low", noise_low},
          {"noise_high", noise_high ? nlohmann::json(*noise_high) : nlohmann::json("input_max")},
          {"output", kOutputs[static_cast<size_t>(output)]},
          {"seed", seed}};
}

std::vector<ParamInfo> perturbation_param_info() {
  return {
      {"mode", "standard", "standard | modulo (App. F.4/F.5: a step is correct when the label changes); "
                           "default modulo on single-color-modulo data"},
      {"replacement", "constant", "constant | background | blur | noise: values of perturbed pixels"},
      {"value", "0", "replacement=constant: one value or one per channel (network units)"},
      {"blur_sigma", "5", "replacement=blur: Gaussian standard deviation in pixels"},
      {"noise_low", "0", "replacement=noise: lower end of the uniform range"},
      {"noise_high", "input max", "replacement=noise: upper end, exclusive (input max: 255 RGB, 1 modulo)"},
      {"output", "probability", "probability (after softmax) | logit (before): the target score"},
      {"seed", "0", "random stream (noise, subsets), combined with each sample's seed"},
  };
}

lab::Tensor replacement_image(const PerturbationParams& params, const lab::Tensor& x, const Context& context,
                              uint64_t sample_seed) {
  const lab::Shape shape = x.rank() == 4 ? x.sample_shape() : x.shape();
  LAB_CHECK(shape.size() == 3, "replacement for {}", lab::to_string(x.shape()));
  const int64_t c = shape[0], h = shape[1], w = shape[2], hw = h * w;
  lab::Tensor out(shape, 0.0f);
  auto per_channel = [&](const std::vector<double>& values, const char* what) {
    if (values.size() != 1 && static_cast<int64_t>(values.size()) != c)
      lab::fail_parameter("{} has {} values for {} input channels; give 1 or {}", what, values.size(), c, c);
    for (int64_t ch = 0; ch < c; ++ch)
      std::fill(out.data() + ch * hw, out.data() + (ch + 1) * hw,
                static_cast<float>(values[values.size() == 1 ? 0 : static_cast<size_t>(ch)]));
  };
  switch (params.replacement) {
    case ReplacementKind::kConstant:
      per_channel(params.value, "-p value");
      break;
    case ReplacementKind::kBackground: {
      if (context.background.empty()) lab::fail_parameter("-p replacement=background: the data gives no background");
      per_channel(std::vector<double>(context.background.begin(), context.background.end()), "the background");
      break;
    }
    case ReplacementKind::kBlur:
      for (int64_t ch = 0; ch < c; ++ch) {
        const cv::Mat src(static_cast<int>(h), static_cast<int>(w), CV_32F,
                          const_cast<float*>(x.data() + ch * hw));
        cv::Mat dst(static_cast<int>(h), static_cast<int>(w), CV_32F, out.data() + ch * hw);
        cv::GaussianBlur(src, dst, cv::Size(0, 0), params.blur_sigma, params.blur_sigma, cv::BORDER_REFLECT_101);
      }
      break;
    case ReplacementKind::kNoise: {
      const double high = params.noise_high.value_or(context.input_max);
      if (!(params.noise_low < high))
        lab::fail_parameter("-p noise_low={} must be below the noise upper end {}", params.noise_low, high);
      lab::Rng rng(lab::derive_seed(sample_seed, params.seed), 0);
      for (float& v : out.values()) v = static_cast<float>(rng.uniform(params.noise_low, high));
      break;
    }
  }
  return out;
}

OutputReader::OutputReader(const lab::Network& net, OutputKind kind) {
  LAB_CHECK(net.size() > 0, "empty network");
  const bool ends_softmax = net.layer(net.size() - 1).kind() == lab::LayerKind::kSoftmax;
  if (kind == OutputKind::kProbability) {
    end_ = net.size();
    softmax_ = !ends_softmax;
  } else {
    end_ = ends_softmax ? net.size() - 1 : net.size();
  }
}

double OutputReader::score(const float* row, int64_t k, int64_t target) const {
  if (target < 0 || target >= k) lab::fail("target output {} outside the network's {} outputs", target, k);
  if (!softmax_) return row[target];
  const double top = *std::max_element(row, row + k);
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) sum += std::exp(static_cast<double>(row[i]) - top);
  return std::exp(static_cast<double>(row[target]) - top) / sum;
}

int64_t predicted_label(const Context& context, const float* row, int64_t k) {
  if (context.predicted_label) return context.predicted_label(row);
  return std::max_element(row, row + k) - row;
}

std::vector<int64_t> attribution_order(const float* attr, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [attr](int64_t a, int64_t b) { return attr[a] > attr[b]; });
  return order;
}

double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y) {
  LAB_CHECK(x.size() == y.size(), "{} x for {} y", x.size(), y.size());
  double area = 0.0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0;
  return area;
}

}  // namespace experiments
