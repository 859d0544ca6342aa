#include "datasets/environment.h"

#include <algorithm>

#include <fmt/format.h>

#include "datasets/multi_color_sum.h"
#include "datasets/single_color_modulo.h"
#include "datasets/traps.h"
#include "lab/core/error.h"

namespace datasets {

std::string sample_id(int64_t index) { return fmt::format("{:06d}", index); }

Environment::~Environment() = default;

std::map<std::string, std::string> Environment::default_layers() const { return {}; }

std::vector<int64_t> Environment::count_pixels(const cv::Mat& image) const {
  const cv::Mat classes = pixel_classes(image);
  std::vector<int64_t> counts(static_cast<size_t>(num_counts()), 0);
  for (int y = 0; y < classes.rows; ++y)
    for (int x = 0; x < classes.cols; ++x) {
      const int c = classes.at<int>(y, x);
      if (c >= 0) ++counts[static_cast<size_t>(c)];
    }
  return counts;
}

const std::vector<EnvironmentInfo>& environments() {
  static const std::vector<EnvironmentInfo> table = [] {
    std::vector<EnvironmentInfo> t = {
      environment_info<MultiColorSumEnvironment>(
          "multi-color-sum", "RGB patches of N_C colours; the label is the colour with the most pixels",
          "Section 3, App. G"),
      environment_info<SingleColorModuloEnvironment>(
          "single-color-modulo", "gray Bézier patches of white pixels; the label is their number mod N",
          "App. D, E, F"),
    };
    for (EnvironmentInfo& e : trap_environment_infos()) t.push_back(std::move(e));
    std::sort(t.begin(), t.end(), [](const EnvironmentInfo& a, const EnvironmentInfo& b) { return a.name < b.name; });
    return t;
  }();
  return table;
}

std::vector<std::string> environment_names() {
  std::vector<std::string> names;
  for (const EnvironmentInfo& e : environments()) names.push_back(e.name);
  return names;
}

std::unique_ptr<Environment> make_environment(const std::string& name, lab::Options& options) {
  for (const EnvironmentInfo& e : environments()) {
    if (name != e.name) continue;
    std::unique_ptr<Environment> env = e.make(options);
    options.finish(lab::param_names(e.params));
    return env;
  }
  lab::fail_parameter("--env {}: unknown environment; expected one of {}", name,
                      fmt::join(environment_names(), ", "));
}

std::unique_ptr<Environment> environment_from_json(const std::string& name, const nlohmann::json& options) {
  lab::Options o = lab::Options::from_json(options, "-o");
  return make_environment(name, o);
}

}  // namespace datasets
