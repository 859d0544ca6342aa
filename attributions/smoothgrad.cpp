#include "attributions/smoothgrad.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "attributions/gradient.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

constexpr uint64_t kNoiseStream = 0x736d6f6f74686772ull;  // "smoothgr"

// n draws of N(0, σ²) added to x: Box–Muller on the two 32-bit halves of each 64-bit draw, giving
// two normals per draw (std::normal_distribution's polar method costs several times more here,
// where a noisy 224×224 copy needs 150,528 draws).
void add_noise(std::mt19937_64& rng, const float* x, float sigma, float* out, int64_t n) {
  constexpr float kTwoPi = 6.28318530717958647692f;
  for (int64_t j = 0; j < n; j += 2) {
    const uint64_t r = rng();
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * 0x1p-24f;             // (0, 1]
    const float u2 = static_cast<float>((r >> 8) & 0xFFFFFFu) * 0x1p-24f;          // [0, 1)
    const float radius = sigma * std::sqrt(-2.0f * std::log(u1));
    out[j] = x[j] + radius * std::cos(kTwoPi * u2);
    if (j + 1 < n) out[j + 1] = x[j + 1] + radius * std::sin(kTwoPi * u2);
  }
}

}  // namespace

const lab::Schema<SmoothGrad::Params>& SmoothGrad::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .field("base", &Params::base,
                 {.help = "the wrapped method, by name (saliency, input-x-gradient, integrated-gradients, ...)",
                  .source = "Smilkov et al. 2017 (the gradient there)"})
          .field("samples", &Params::samples,
                 {.range = lab::between(1, 100000),
                  .help = "number n of noisy copies",
                  .source = "Smilkov et al. 2017: 50"})
          .field("noise", &Params::noise,
                 {.range = lab::at_least(0),
                  .help = "noise σ as a fraction of the input's value range",
                  .source = "Smilkov et al. 2017: 10–20% works best"})
          .check([](const Params& p, const std::string& flag) {
            if (p.base == "smoothgrad") lab::fail_value(flag, "base", p.base, "another method: SmoothGrad cannot wrap itself");
          });
  return s;
}

SmoothGrad::SmoothGrad(Params params, std::unique_ptr<Method> base) : params_(std::move(params)), base_(std::move(base)) {
  Params::schema().validate(params_);
  LAB_CHECK(base_ != nullptr && base_->name() == params_.base, "SmoothGrad base method");
}

nlohmann::json SmoothGrad::params() const {
  nlohmann::json j = Params::schema().to_json(params_);
  j["base-params"] = base_->params();
  return j;
}

Result SmoothGrad::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, true);
  const lab::Tensor& x = batch.x;
  const int64_t n = x.batch(), m = x.sample_numel(), samples = params_.samples;
  std::vector<float> sigma(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    const auto [lo, hi] = std::minmax_element(x.sample(s), x.sample(s) + m);
    sigma[static_cast<size_t>(s)] = static_cast<float>(params_.noise * (static_cast<double>(*hi) - *lo));
  }

  Result r;
  std::vector<double> sum(static_cast<size_t>(n * m), 0.0);
  // Noisy copies in sample-major order (sample s, copy k = i % samples), in groups of chunk inputs.
  // Copy k of sample s draws its noise from its own stream, seeded by lab::derive_seed(seed_s, k), so
  // copies are made in parallel (TBB, no network calls) and never depend on the grouping.
  const int64_t total = n * samples;
  const int64_t group = std::max<int64_t>(1, context.batch);
  for (int64_t begin = 0; begin < total; begin += group) {
    const int64_t end = std::min(total, begin + group);
    Batch noisy;
    lab::Shape shape = x.shape();
    shape[0] = end - begin;
    noisy.x = lab::Tensor(shape);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t s = i / samples;
      noisy.target.push_back(batch.target[static_cast<size_t>(s)]);
      noisy.seeds.push_back(lab::derive_seed(batch.seeds[static_cast<size_t>(s)], static_cast<uint64_t>(i % samples)));
      if (!batch.segments.empty()) noisy.segments.push_back(batch.segments[static_cast<size_t>(s)]);
    }
    tbb::parallel_for(begin, end, [&](int64_t i) {
      std::mt19937_64 rng = lab::Rng(noisy.seeds[static_cast<size_t>(i - begin)], kNoiseStream).engine();
      const int64_t s = i / samples;
      add_noise(rng, x.sample(s), sigma[static_cast<size_t>(s)], noisy.x.sample(i - begin), m);
    });
    Result part = base_->attribute(context, noisy);
    r.evaluations += part.evaluations;
    for (int64_t i = begin; i < end; ++i) {
      double* acc = sum.data() + (i / samples) * m;
      const float* a = part.attr.sample(i - begin);
      for (int64_t j = 0; j < m; ++j) acc[j] += a[j];
    }
  }
  r.attr = lab::Tensor(x.shape());
  for (int64_t i = 0; i < n * m; ++i) r.attr[i] = static_cast<float>(sum[static_cast<size_t>(i)] / static_cast<double>(samples));
  return r;
}

MethodInfo SmoothGrad::info() {
  MethodInfo info;
  info.name = "smoothgrad";
  info.summary =
      "SmoothGrad: a base method averaged over Gaussian-noised copies of the input (Smilkov et al. 2017); other "
      "-p keys go to the base method";
  info.params = Params::schema().docs();
  // The default base's parameters, from its own schema: -p passes them on to the base method.
  const MethodInfo base = Saliency::info();
  LAB_CHECK(base.name == Params{}.base, "SmoothGrad lists the parameters of {}, its default base is {}", base.name,
            Params{}.base);
  for (lab::ParamDoc doc : base.params) {
    doc.info.help = "(base " + base.name + ") " + doc.info.help;
    info.params.push_back(std::move(doc));
  }
  info.make = [](lab::Options& options) -> std::unique_ptr<Method> {
    Params p = Params::schema().read(options);
    std::unique_ptr<Method> inner = make_method(p.base, options);
    return std::make_unique<SmoothGrad>(std::move(p), std::move(inner));
  };
  return info;
}

}  // namespace attributions
