#include "networks/single_color_modulo.h"

#include <algorithm>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "networks/heads.h"

namespace networks {

const lab::Schema<SingleColorModuloParams>& SingleColorModuloParams::schema() {
  using P = SingleColorModuloParams;
  static const auto s =
      lab::Schema<P>()
          .field("size", &P::size,
                 {.range = lab::between(2, 512),
                  .help = "image side; its prime factors at most 13 (accumulator kernels = strides)",
                  .source = "App. F.1 (224)"})
          .field("modulus", &P::modulus, {.range = lab::between(2, 4096), .help = "N: the label is the white count mod N", .source = "App. D (30)"})
          .field("accumulator", &P::accumulator,
                 {.choices = {"nonuniform", "uniform"},
                  .help = "CNN accumulator: non-uniform two-layer blocks (App. E's 10 CNN layers) or uniform",
                  .source = "App. C.2, E, Fig. 12, 13"})
          .custom("seed", &P::seed, lab::seed_codec(), {.help = "draws the non-uniform weights"})
          .field("max-count", &P::max_count,
                 {.range = lab::at_least(0),
                  .help = "U: largest white count counted exactly (capped at size²; 0 = size²)",
                  .source = "App. C.3; Table 1's parameter count implies U ≈ 4,500"})
          .field("kernels", &P::kernels,
                 {.range = lab::between(2, 64), .help = "non-uniform kernels per block", .source = "App. C.2"})
          .check([](const P& p, const std::string&) {
            p.accumulator_params().validate();
            ModuloParams{.modulus = p.modulus, .max_input = p.max_input()}.validate();
          });
  return s;
}

AccumulatorParams SingleColorModuloParams::accumulator_params() const {
  return AccumulatorParams{.kind = accumulator, .size = size, .channels = 1, .kernels = kernels, .seed = seed};
}

int64_t SingleColorModuloParams::max_input() const {
  const int64_t pixels = size * size;
  return max_count == 0 ? pixels : std::min(max_count, pixels);
}

Model make_single_color_modulo(const SingleColorModuloParams& params) {
  SingleColorModuloParams::schema().validate(params, "-o");
  Model model(lab::Shape{1, params.size, params.size});
  append_accumulator(model, "accumulator", params.accumulator_params());
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
