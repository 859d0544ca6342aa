#include "attributions/controls.h"

namespace attributions {

namespace {
constexpr uint64_t kRandomStream = 0x72616e646f6d6d70ull;  // "randommp"
}

const lab::Schema<RandomMap::Params>& RandomMap::Params::schema() {
  static const lab::Schema<Params> s;
  return s;
}

Result RandomMap::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, true);
  Result r;
  r.attr = lab::Tensor(batch.x.shape());
  const int64_t m = batch.x.sample_numel();
  for (int64_t s = 0; s < batch.x.batch(); ++s) {
    std::mt19937_64 rng = lab::Rng(batch.seeds[static_cast<size_t>(s)], kRandomStream).engine();
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    float* a = r.attr.sample(s);
    for (int64_t j = 0; j < m; ++j) a[j] = uniform(rng);
  }
  return r;
}

MethodInfo RandomMap::info() {
  return method_info<RandomMap>("random", "control: every value drawn from U(0, 1), seeded per sample (App. F.2)");
}

const lab::Schema<ConstantMap::Params>& ConstantMap::Params::schema() {
  static const auto s = lab::Schema<Params>().field(
      "value", &Params::value, {.help = "the constant of every map value", .source = "App. F.2: 1.0"});
  return s;
}

Result ConstantMap::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  Result r;
  r.attr = lab::Tensor(batch.x.shape(), static_cast<float>(params_.value));
  return r;
}

MethodInfo ConstantMap::info() {
  return method_info<ConstantMap>("constant", "control: every value the same constant (App. F.2)");
}

}  // namespace attributions
