#include "networks/color_detector.h"

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "networks/number_checker.h"

namespace networks {

void ColorDetectorParams::validate() const {
  lab::require(!targets.empty(), "colour detector targets", "at least one colour", "none");
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (targets[i] == targets[j]) lab::fail_parameter("colour detector: target colour {} appears twice", to_string(targets[i]));
    }
    if (targets[i] == background)
      lab::fail_parameter("background={} is also target colour {}: it must differ from every target",
                          to_string(background), i);
  }
  lab::require(redundant >= 0 && redundant <= 64, "redundant", "in 0..64", std::to_string(redundant));
}

void append_color_detector(Model& model, const std::string& prefix, const ColorDetectorParams& params) {
  params.validate();
  std::vector<Rgb> colours = params.targets;
  colours.push_back(params.background);
  const int64_t d_count = static_cast<int64_t>(colours.size());
  const int64_t n_c = d_count - 1;

  std::vector<CheckItem> items;
  for (const Rgb& c : colours) {
    const int64_t v[3] = {c.r, c.g, c.b};
    for (int64_t k = 0; k < 3; ++k) items.push_back({CheckItem::Kind::kEqual, k, v[k]});
  }
  std::vector<DenseStage> stages = checker_bank(
      3, items,
      {fmt::format("x_k−(V−1), x_k−V, x_k−V, x_k−V−1 for each RGB component k of the {} target colours and the "
                   "background (eq. 6)",
                   n_c),
       "I_{>V−1}(x_k), I_{>V}(x_k) per colour and component (eq. 6)",
       "I_V(x_k): component k equals the colour's (eq. 7)"});

  // C_d = ReLU(I_R + I_G + I_B − 2), d over targets then background (eq. 4).
  DenseStage colour(3 * d_count, d_count,
                    fmt::format("C_d: pixel has colour d, for the {} targets then the background (eq. 4)", n_c));
  for (int64_t d = 0; d < d_count; ++d) {
    for (int64_t k = 0; k < 3; ++k) colour.w(d, 3 * d + k) = 1.0f;
    colour.b(d) = -2.0f;
  }
  stages.push_back(std::move(colour));

  // Targets pass; each redundant channel is R = ReLU(1 − Σ_targets C_i − C_bg) (eq. 5 / 15).
  DenseStage out(d_count, n_c + params.redundant,
                 fmt::format("{} target channels C_i, then {} redundant channels R = 1 − ΣC_i − C_bg (eq. 5): "
                             "1 on any colour that is neither a target nor the background",
                             n_c, params.redundant));
  for (int64_t i = 0; i < n_c; ++i) out.w(i, i) = 1.0f;
  for (int64_t r = 0; r < params.redundant; ++r) {
    for (int64_t d = 0; d < d_count; ++d) out.w(n_c + r, d) = -1.0f;
    out.b(n_c + r) = 1.0f;
  }
  stages.push_back(std::move(out));
  append_stages(model, prefix, stages, StageForm::kConv1x1);
}

lab::Network build_color_detector(const ColorDetectorParams& params, int64_t size) {
  lab::require(size >= 1, "size", "at least 1", std::to_string(size));
  Model model(lab::Shape{3, size, size});
  append_color_detector(model, "detector", params);
  return model.network;
}

}  // namespace networks
