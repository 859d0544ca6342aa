#include "networks/heads.h"

#include <cmath>

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/schema.h"
#include "networks/number_checker.h"

namespace networks {

bool is_exact_logit_scale(double logit_scale) {
  int e = 0;
  const double mantissa = std::isfinite(logit_scale) && logit_scale > 0 ? std::frexp(logit_scale, &e) : 0.0;
  // frexp gives mantissa 0.5 for an exact power of two 2^(e-1).
  return mantissa == 0.5 && e - 1 >= -20 && e - 1 <= 4;
}

void require_logit_scale(double logit_scale) {
  if (!is_exact_logit_scale(logit_scale))
    lab::fail_value("", "logit-scale", lab::option_text(logit_scale), kLogitScaleExpected);
}

void append_identity_mlp(Model& model, const std::string& prefix, int64_t classes, double logit_scale) {
  require_logit_scale(logit_scale);
  LAB_CHECK(classes >= 1);
  DenseStage identity(classes, classes, "identity: the counts of the target colours");
  DenseStage scaled(classes, classes,
                    fmt::format("logits = {} × counts (logit_scale)", logit_scale));
  for (int64_t c = 0; c < classes; ++c) {
    identity.w(c, c) = 1.0f;
    scaled.w(c, c) = static_cast<float>(logit_scale);
  }
  append_stages(model, prefix, {identity}, StageForm::kLinear, 0);
  // The logits feed the softmax directly: no ReLU after the last layer.
  model.add(layer_name(prefix, 2),
            std::make_shared<lab::Linear>(lab::Tensor({classes, classes}, scaled.weight),
                                          lab::Tensor({classes}, scaled.bias)),
            scaled.role);
}

void ModuloParams::validate() const {
  lab::require(modulus >= 2 && modulus <= 4096, "modulus", "in 2..4096", std::to_string(modulus));
  lab::require(max_input >= 1 && max_input <= (int64_t{1} << 20), "max-count", "in 1..2^20",
               std::to_string(max_input));
}

void append_modulo(Model& model, const std::string& prefix, const ModuloParams& params) {
  params.validate();
  const int64_t n = params.modulus;
  const int64_t k = params.entries();
  const float nf = static_cast<float>(n);
  std::vector<DenseStage> stages;

  DenseStage f1(1, k + 1, fmt::format("f1: x − jN for j = 0..{} (eq. 8)", k));
  for (int64_t j = 0; j <= k; ++j) f1.w(j, 0) = 1.0f, f1.b(j) = -static_cast<float>(j * n);
  stages.push_back(std::move(f1));

  DenseStage f2(k + 1, k, "f2: differences x_j − x_{j+1} = N, …, N, x mod N, 0, … (eq. 9)");
  for (int64_t j = 0; j < k; ++j) f2.w(j, j) = 1.0f, f2.w(j, j + 1) = -1.0f;
  stages.push_back(std::move(f2));

  std::vector<CheckItem> items;
  for (int64_t j = 0; j < k; ++j) {
    items.push_back({CheckItem::Kind::kCarry, j, 0});
    items.push_back({CheckItem::Kind::kEqual, j, n});
  }
  for (DenseStage& s : checker_bank(k, items,
                                    {"f3 (1/3): x_j carried; x_j−(N−1), x_j−N, x_j−N, x_j−N−1 (eqs. 10, 6)",
                                     "f3 (2/3): x_j carried; I_{>N−1}(x_j), I_{>N}(x_j) (eqs. 10, 6)",
                                     "f3 (3/3): x_0, I_N(x_0), x_1, I_N(x_1), … (eqs. 10, 7)"}))
    stages.push_back(std::move(s));

  DenseStage f4(2 * k, k, "f4: x_j − N·I_N(x_j): 0 except the entry holding x mod N (eq. 11)");
  for (int64_t j = 0; j < k; ++j) f4.w(j, 2 * j) = 1.0f, f4.w(j, 2 * j + 1) = -nf;
  stages.push_back(std::move(f4));

  DenseStage f5(k, 1, fmt::format("f5: Σ_j = x mod {} (eqs. 12, 13)", n));
  for (int64_t j = 0; j < k; ++j) f5.w(0, j) = 1.0f;
  stages.push_back(std::move(f5));

  append_stages(model, prefix, stages, StageForm::kLinear);
}

lab::Network build_modulo(const ModuloParams& params) {
  Model model(lab::Shape{1});
  append_modulo(model, "modulo", params);
  return model.network;
}

}  // namespace networks
