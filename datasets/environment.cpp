#include "datasets/environment.h"

#include <fmt/format.h>

#include "datasets/multi_color_sum.h"
#include "datasets/single_color_modulo.h"
#include "lab/core/error.h"

namespace datasets {

namespace {

using Maker = std::unique_ptr<Environment> (*)(lab::Options&);

struct Entry {
  const char* name;
  Maker make;
};

// Every environment, sorted by name.
const Entry kEnvironments[] = {
    {"multi-color-sum",
     [](lab::Options& o) -> std::unique_ptr<Environment> {
       return std::make_unique<MultiColorSumEnvironment>(MultiColorSumEnvParams::from_options(o));
     }},
    {"single-color-modulo",
     [](lab::Options& o) -> std::unique_ptr<Environment> {
       return std::make_unique<SingleColorModuloEnvironment>(SingleColorModuloEnvParams::from_options(o));
     }},
};

}  // namespace

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

std::vector<std::string> environment_names() {
  std::vector<std::string> names;
  for (const Entry& e : kEnvironments) names.emplace_back(e.name);
  return names;
}

std::unique_ptr<Environment> make_environment(const std::string& name, lab::Options& options) {
  for (const Entry& e : kEnvironments) {
    if (name != e.name) continue;
    std::unique_ptr<Environment> env = e.make(options);
    const nlohmann::json resolved = env->options();
    std::vector<std::string> known;
    for (const auto& item : resolved.items()) known.push_back(item.key());
    options.finish(known);
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
