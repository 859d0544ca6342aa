#include "networks/registry.h"

#include "lab/core/error.h"
#include "networks/multi_color_sum.h"
#include "networks/single_color_modulo.h"

namespace networks {

namespace {

struct Entry {
  const char* name;
  ModelInfo (*make)(lab::Options&);
};

ModelInfo make_multi(lab::Options& options) {
  const MultiColorSumParams p = MultiColorSumParams::from_options(options);
  return {"multi-color-sum", p.to_json(), make_multi_color_sum(p), multi_color_sum_paper_layers()};
}

ModelInfo make_modulo(lab::Options& options) {
  const SingleColorModuloParams p = SingleColorModuloParams::from_options(options);
  return {"single-color-modulo", p.to_json(), make_single_color_modulo(p), single_color_modulo_paper_layers()};
}

// Sorted by name.
constexpr Entry kModels[] = {
    {"multi-color-sum", make_multi},
    {"single-color-modulo", make_modulo},
};

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const Entry& e : kModels) names.emplace_back(e.name);
  return names;
}

ModelInfo make_model(const std::string& env, lab::Options& options) {
  for (const Entry& e : kModels) {
    if (env == e.name) return e.make(options);
  }
  std::string known;
  for (const Entry& e : kModels) known += (known.empty() ? "" : ", ") + std::string(e.name);
  lab::fail_parameter("unknown environment --env {}; known: {}", env, known);
}

lab::Network build_model(const std::string& env, lab::Options& options) {
  return make_model(env, options).model.network;
}

}  // namespace networks
