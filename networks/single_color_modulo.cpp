#include "networks/single_color_modulo.h"

#include <algorithm>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "networks/accumulator.h"
#include "networks/heads.h"
#include "networks/params_util.h"

namespace networks {

void SingleColorModuloParams::validate() const {
  lab::require(accumulator == "uniform" || accumulator == "nonuniform", "accumulator", "uniform or nonuniform",
               accumulator);
  AccumulatorParams a{.kind = accumulator, .size = size, .channels = 1, .kernels = kernels, .seed = seed};
  a.validate();
  lab::require(max_count >= 0, "max_count", "0 (= size*size) or a positive count", std::to_string(max_count));
  ModuloParams{.modulus = modulus, .max_input = max_input()}.validate();
}

int64_t SingleColorModuloParams::max_input() const {
  const int64_t pixels = size * size;
  return max_count == 0 ? pixels : std::min(max_count, pixels);
}

SingleColorModuloParams SingleColorModuloParams::from_options(lab::Options& options) {
  SingleColorModuloParams p;
  p.size = options.get_int("size", p.size);
  p.modulus = options.get_int("modulus", p.modulus);
  p.accumulator = options.get_choice("accumulator", p.accumulator, {"nonuniform", "uniform"});
  p.seed = read_seed(options, p.seed);
  p.max_count = options.get_int("max_count", p.max_count);
  p.kernels = options.get_int("kernels", p.kernels);
  p.validate();
  return p;
}

nlohmann::json SingleColorModuloParams::to_json() const {
  return {{"size", size},       {"modulus", modulus},     {"accumulator", accumulator},
          {"seed", seed},       {"max_count", max_count}, {"kernels", kernels}};
}

Model make_single_color_modulo(const SingleColorModuloParams& params) {
  params.validate();
  Model model(lab::Shape{1, params.size, params.size});
  append_accumulator(model, "accumulator",
                     AccumulatorParams{.kind = params.accumulator, .size = params.size, .channels = 1,
                                       .kernels = params.kernels, .seed = params.seed});
  model.add("flatten", std::make_shared<lab::Flatten>(), "the white-pixel count as a 1-vector");
  append_modulo(model, "modulo", ModuloParams{.modulus = params.modulus, .max_input = params.max_input()});
  return model;
}

lab::Network build_single_color_modulo(const SingleColorModuloParams& params) {
  return make_single_color_modulo(params).network;
}

std::map<std::string, std::string> single_color_modulo_paper_layers() {
  return {{"gradcam", "accumulator.layers.5"}, {"iba", "accumulator.layers.11"}};
}

}  // namespace networks
