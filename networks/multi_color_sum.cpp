#include "networks/multi_color_sum.h"

#include <cmath>

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "networks/accumulator.h"
#include "networks/color_detector.h"
#include "networks/heads.h"
#include "networks/params_util.h"

namespace networks {

void MultiColorSumParams::validate() const {
  const int64_t n_palette = static_cast<int64_t>(palette().size());
  lab::require(colors >= 2 && colors <= n_palette, "colors", fmt::format("in 2..{}", n_palette),
               std::to_string(colors));
  lab::require(accumulator == "uniform" || accumulator == "nonuniform", "accumulator", "uniform or nonuniform",
               accumulator);
  lab::require(redundant >= 0 && redundant <= 64, "redundant", "in 0..64", std::to_string(redundant));
  require_logit_scale(logit_scale);
  for (int64_t c = 0; c < colors; ++c) {
    if (palette()[static_cast<size_t>(c)] == background)
      lab::fail_parameter("background={},{},{} is target colour {} ({}): it must differ from the {} target colours",
                          background.r, background.g, background.b, c, palette_names()[static_cast<size_t>(c)],
                          colors);
  }
  AccumulatorParams a{.kind = accumulator, .size = size, .channels = colors, .extra_channels = redundant,
                      .ude = ude, .ude_strength = ude_strength, .kernels = kernels, .seed = seed};
  a.validate();
}

MultiColorSumParams MultiColorSumParams::from_options(lab::Options& options) {
  MultiColorSumParams p;
  p.size = options.get_int("size", p.size);
  p.colors = options.get_int("colors", p.colors);
  const std::vector<int64_t> bg = options.get_ints("background", {p.background.r, p.background.g, p.background.b});
  if (bg.size() != 3 || bg[0] < 0 || bg[0] > 255 || bg[1] < 0 || bg[1] > 255 || bg[2] < 0 || bg[2] > 255)
    lab::fail_parameter("{} background={}: expected three integers R,G,B in 0..255", options.flag(),
                        *options.raw("background"));
  p.background = Rgb{static_cast<uint8_t>(bg[0]), static_cast<uint8_t>(bg[1]), static_cast<uint8_t>(bg[2])};
  p.redundant = options.get_int("redundant", p.redundant);
  p.ude = options.get_bool("ude", p.ude);
  p.ude_strength = options.get_double("ude_strength", p.ude_strength);
  p.accumulator = options.get_choice("accumulator", p.accumulator, {"nonuniform", "uniform"});
  p.seed = read_seed(options, p.seed);
  p.logit_scale = options.get_double("logit_scale", p.logit_scale);
  p.kernels = options.get_int("kernels", p.kernels);
  p.validate();
  return p;
}

nlohmann::json MultiColorSumParams::to_json() const {
  return {{"size", size},
          {"colors", colors},
          {"background", {background.r, background.g, background.b}},
          {"redundant", redundant},
          {"ude", ude},
          {"ude_strength", ude_strength},
          {"accumulator", accumulator},
          {"seed", seed},
          {"logit_scale", logit_scale},
          {"kernels", kernels}};
}

std::vector<Rgb> MultiColorSumParams::target_colors() const {
  return std::vector<Rgb>(palette().begin(), palette().begin() + colors);
}

Model make_multi_color_sum(const MultiColorSumParams& params) {
  params.validate();
  Model model(lab::Shape{3, params.size, params.size});
  append_color_detector(model, "detector",
                        ColorDetectorParams{.targets = params.target_colors(), .background = params.background,
                                            .redundant = params.redundant});
  append_accumulator(model, "accumulator",
                     AccumulatorParams{.kind = params.accumulator, .size = params.size, .channels = params.colors,
                                       .extra_channels = params.redundant, .ude = params.ude,
                                       .ude_strength = params.ude_strength, .kernels = params.kernels,
                                       .seed = params.seed});
  model.add("flatten", std::make_shared<lab::Flatten>(), "the per-colour counts as a vector");
  append_identity_mlp(model, "mlp", params.colors, params.logit_scale);
  model.add("softmax", std::make_shared<lab::Softmax>(), "class probabilities");
  return model;
}

lab::Network build_multi_color_sum(const MultiColorSumParams& params) {
  return make_multi_color_sum(params).network;
}

std::map<std::string, std::string> multi_color_sum_paper_layers() {
  return {{"gradcam", "accumulator.layers.5"}, {"iba", "accumulator.layers.7"}};
}

}  // namespace networks
