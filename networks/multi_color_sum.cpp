#include "networks/multi_color_sum.h"

#include <cmath>

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "networks/color_detector.h"
#include "networks/heads.h"

namespace networks {

const lab::Schema<MultiColorSumParams>& MultiColorSumParams::schema() {
  using P = MultiColorSumParams;
  static const auto s =
      lab::Schema<P>()
          .field("size", &P::size,
                 {.range = lab::between(2, 512),
                  .help = "image side; its prime factors at most 13 (accumulator kernels = strides)",
                  .source = "App. G.1 (224)"})
          .field("colors", &P::colors,
                 {.range = lab::between(2, static_cast<double>(palette().size())),
                  .help = "N_C target colours: the first N_C of the palette",
                  .source = "Section 3"})
          .custom("background", &P::background, rgb_codec(),
                  {.help = "the in-distribution background R,G,B; not a target colour", .source = "App. G.1"})
          .field("redundant", &P::redundant,
                 {.range = lab::between(0, 64),
                  .help = "N_R redundant channels of the colour detector",
                  .source = "App. C.4, Fig. 15"})
          .field("ude", &P::ude,
                 {.help = "unseen-data effect: wire the redundant channels into the accumulator",
                  .source = "Section 3.1"})
          .field("ude-strength", &P::ude_strength,
                 {.range = lab::Range{.min = 0, .max = 1024, .min_open = true},
                  .help = "largest count change of one unseen pixel (the paper gives no magnitude)"})
          .field("accumulator", &P::accumulator,
                 {.choices = {"nonuniform", "uniform"},
                  .help = "CNN accumulator: non-uniform two-layer blocks or uniform all-ones convs",
                  .source = "App. C.2, Fig. 12, 13"})
          .custom("seed", &P::seed, lab::seed_codec(), {.help = "draws the non-uniform and unseen-data weights"})
          .field("logit-scale", &P::logit_scale,
                 {.range = lab::between(0x1.0p-20, 16),
                  .help = "logits = logit-scale × counts; a power of two keeps them exact",
                  .expect = kLogitScaleExpected})
          .field("kernels", &P::kernels,
                 {.range = lab::between(2, 64), .help = "non-uniform kernels per colour and block", .source = "App. C.2"})
          .check([](const P& p, const std::string& flag) {
            if (!is_exact_logit_scale(p.logit_scale))
              lab::fail_value(flag, "logit-scale", lab::option_text(p.logit_scale), kLogitScaleExpected);
            for (int64_t c = 0; c < p.colors; ++c) {
              if (palette()[static_cast<size_t>(c)] == p.background)
                lab::fail_value(flag, "background", lab::option_text(rgb_codec().show(p.background)),
                                fmt::format("a colour other than the {} target colours (it is colour {}, {})",
                                            p.colors, c, palette_names()[static_cast<size_t>(c)]));
            }
            p.accumulator_params().validate();
          });
  return s;
}

AccumulatorParams MultiColorSumParams::accumulator_params() const {
  return AccumulatorParams{.kind = accumulator, .size = size, .channels = colors, .extra_channels = redundant,
                           .ude = ude, .ude_strength = ude_strength, .kernels = kernels, .seed = seed};
}

std::vector<Rgb> MultiColorSumParams::target_colors() const {
  return std::vector<Rgb>(palette().begin(), palette().begin() + colors);
}

Model make_multi_color_sum(const MultiColorSumParams& params) {
  MultiColorSumParams::schema().validate(params, "-o");
  Model model(lab::Shape{3, params.size, params.size});
  append_color_detector(model, "detector",
                        ColorDetectorParams{.targets = params.target_colors(), .background = params.background,
                                            .redundant = params.redundant});
  append_accumulator(model, "accumulator", params.accumulator_params());
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
