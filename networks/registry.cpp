#include "networks/registry.h"

#include "lab/core/error.h"
#include "networks/multi_color_sum.h"
#include "networks/single_color_modulo.h"
#include "networks/traps.h"

namespace networks {

namespace {

struct Entry {
  const char* name;
  ModelInfo (*make)(lab::Options&);
};

// The model of Params P: options read through its schema, recorded resolved.
template <class P>
ModelInfo make_from(const char* env, lab::Options& options, Model (*build)(const P&),
                    std::map<std::string, std::string> (*paper_layers)()) {
  const P p = P::schema().read(options);
  return {env, P::schema().to_json(p), P::schema().names(), build(p), paper_layers()};
}

ModelInfo make_multi(lab::Options& options) {
  return make_from<MultiColorSumParams>("multi-color-sum", options, make_multi_color_sum, multi_color_sum_paper_layers);
}

ModelInfo make_modulo(lab::Options& options) {
  return make_from<SingleColorModuloParams>("single-color-modulo", options, make_single_color_modulo,
                                            single_color_modulo_paper_layers);
}

ModelInfo make_trap_model(const char* env, lab::Options& options) {
  const TrapParams p = TrapParams::schema().read(options);
  return {env, TrapParams::schema().to_json(p), TrapParams::schema().names(), make_trap(env, p),
          trap_paper_layers(env)};
}

// Sorted by name.
constexpr Entry kModels[] = {
    {"batch-norm", [](lab::Options& o) { return make_trap_model("batch-norm", o); }},
    {"interaction", [](lab::Options& o) { return make_trap_model("interaction", o); }},
    {"max-pool", [](lab::Options& o) { return make_trap_model("max-pool", o); }},
    {"multi-color-sum", make_multi},
    {"position", [](lab::Options& o) { return make_trap_model("position", o); }},
    {"residual", [](lab::Options& o) { return make_trap_model("residual", o); }},
    {"reused-relu", [](lab::Options& o) { return make_trap_model("reused-relu", o); }},
    {"saturation", [](lab::Options& o) { return make_trap_model("saturation", o); }},
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
