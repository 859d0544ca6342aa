#include "networks/number_checker.h"

#include <algorithm>

#include "lab/core/error.h"
#include "lab/core/options.h"

namespace networks {

namespace {

constexpr int64_t kMaxValue = int64_t{1} << 20;

int depth_of(const CheckItem& item) {
  switch (item.kind) {
    case CheckItem::Kind::kCarry: return 1;
    case CheckItem::Kind::kGreater: return 2;
    case CheckItem::Kind::kEqual: return 3;
  }
  return 1;
}

// Units of each item per stage. Stage 0 reads the bank's inputs; later stages read the previous
// stage's units of the same item (items never mix).
int64_t units(const CheckItem& item, int stage) {
  if (item.kind == CheckItem::Kind::kEqual) return stage == 0 ? 4 : stage == 1 ? 2 : 1;
  if (item.kind == CheckItem::Kind::kGreater) return stage == 0 ? 2 : 1;
  return 1;
}

}  // namespace

std::vector<DenseStage> checker_bank(int64_t in, const std::vector<CheckItem>& items,
                                     const std::vector<std::string>& roles) {
  LAB_CHECK(!items.empty());
  int depth = 1;
  for (const CheckItem& item : items) {
    LAB_CHECK(item.channel >= 0 && item.channel < in, "channel {} of {}", item.channel, in);
    depth = std::max(depth, depth_of(item));
  }
  std::vector<DenseStage> stages;
  int64_t previous_width = in;
  std::vector<int64_t> previous_offset(items.size(), 0);
  for (int s = 0; s < depth; ++s) {
    int64_t width = 0;
    std::vector<int64_t> offset(items.size());
    for (size_t t = 0; t < items.size(); ++t) {
      offset[t] = width;
      width += units(items[t], s);
    }
    DenseStage stage(previous_width, width, s < static_cast<int>(roles.size()) ? roles[s] : "");
    for (size_t t = 0; t < items.size(); ++t) {
      const CheckItem& item = items[t];
      const int64_t o = offset[t];
      const int64_t p = previous_offset[t];
      const float v = static_cast<float>(item.value);
      const bool carry = item.kind == CheckItem::Kind::kCarry || s >= depth_of(item);
      if (carry) {
        // Identity: the item's single unit (or its input channel at stage 0).
        stage.w(o, s == 0 ? item.channel : p) = 1.0f;
      } else if (item.kind == CheckItem::Kind::kGreater) {
        if (s == 0) {  // ReLU(x − i), ReLU(x − i − 1)
          stage.w(o, item.channel) = 1.0f, stage.b(o) = -v;
          stage.w(o + 1, item.channel) = 1.0f, stage.b(o + 1) = -v - 1.0f;
        } else {  // I_{>i} = ReLU(a0 − a1)
          stage.w(o, p) = 1.0f, stage.w(o, p + 1) = -1.0f;
        }
      } else if (s == 0) {  // x − (N − 1), x − N  |  x − N, x − N − 1
        const float bias[4] = {-(v - 1.0f), -v, -v, -v - 1.0f};
        for (int u = 0; u < 4; ++u) stage.w(o + u, item.channel) = 1.0f, stage.b(o + u) = bias[u];
      } else if (s == 1) {  // I_{>N−1} = ReLU(a0 − a1), I_{>N} = ReLU(a2 − a3)
        stage.w(o, p) = 1.0f, stage.w(o, p + 1) = -1.0f;
        stage.w(o + 1, p + 2) = 1.0f, stage.w(o + 1, p + 3) = -1.0f;
      } else {  // I_N = ReLU(I_{>N−1} − I_{>N})
        stage.w(o, p) = 1.0f, stage.w(o, p + 1) = -1.0f;
      }
    }
    stages.push_back(std::move(stage));
    previous_width = width;
    previous_offset = offset;
  }
  return stages;
}

const lab::Schema<NumberCheckerParams>& NumberCheckerParams::schema() {
  using P = NumberCheckerParams;
  static const auto s =
      lab::Schema<P>()
          .field("kind", &P::kind,
                 {.choices = {"equal", "greater"}, .help = "I_N (equal) or I_{>i} (greater)", .source = "App. C.1, eq. 6, 7"})
          .field("value", &P::value,
                 {.range = lab::between(-static_cast<double>(kMaxValue), static_cast<double>(kMaxValue)),
                  .help = "N or i; within ±2^20 every activation is exact in float32"});
  return s;
}

lab::Network build_number_checker(const NumberCheckerParams& params) {
  NumberCheckerParams::schema().validate(params, "-o");
  const bool equal = params.kind == "equal";
  const CheckItem item{equal ? CheckItem::Kind::kEqual : CheckItem::Kind::kGreater, 0, params.value};
  std::vector<std::string> roles;
  if (equal) {
    roles = {"x−(N−1), x−N, x−N, x−N−1", "I_{>N−1}(x), I_{>N}(x) (eq. 6)", "I_N(x) (eq. 7)"};
  } else {
    roles = {"x−i, x−i−1", "I_{>i}(x) (eq. 6)"};
  }
  Model model(lab::Shape{1});
  append_stages(model, "checker", checker_bank(1, {item}, roles), StageForm::kLinear);
  return model.network;
}

}  // namespace networks
