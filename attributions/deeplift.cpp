#include "attributions/deeplift.h"

#include <algorithm>
#include <numeric>

#include "lab/core/error.h"

namespace attributions {

namespace {

constexpr uint64_t kDataStream = 0x6465657073686170ull;  // "deepshap"

// DeepLIFT of every input against `reference`: 1×C×H×W (shared) or N×C×H×W (one per input).
// Adds (x − x') ⊙ m into attr and f_t(x') into reference_output (per sample).
int64_t deeplift_pass(const lab::Network& net, const lab::PreparedRules& rules, const Batch& batch,
                      const lab::Tensor& reference, int64_t max_batch, lab::Tensor& attr, std::vector<double>& fx,
                      std::vector<double>& reference_output) {
  const lab::Tensor& x = batch.x;
  const int64_t m = x.sample_numel();
  const bool shared = reference.batch() == 1;
  auto target = [&](int64_t i) { return batch.target[static_cast<size_t>(i)]; };
  Backprop bp{.net = &net, .rules = &rules};
  lab::Trace shared_trace;
  int64_t evaluations = 0;
  if (shared) {
    shared_trace = net.trace(reference);
    bp.reference = &shared_trace;
    evaluations += 1;
  } else {
    bp.reference_inputs = [&](int64_t b, int64_t e) { return reference.slice(b, e); };
    bp.on_reference = [&](int64_t begin, const lab::Trace& trace) {
      for (int64_t k = 0; k < trace.output().batch(); ++k)
        reference_output[static_cast<size_t>(begin + k)] += trace.output().sample(k)[target(begin + k)];
    };
  }
  // The reference outputs f_t(x') come from the same traces the rescale rule uses.
  const lab::Tensor shared_out = shared ? shared_trace.output() : lab::Tensor();
  evaluations += run_backprop(
      bp, x.batch(), max_batch, [&](int64_t b, int64_t e) { return x.slice(b, e); }, target,
      [&](int64_t begin, const lab::Trace& trace, const lab::Tensor& mult) {
        for (int64_t k = 0; k < mult.batch(); ++k) {
          const int64_t s = begin + k;
          const float* xs = x.sample(s);
          const float* rs = reference.sample(shared ? 0 : s);
          const float* ms = mult.sample(k);
          float* a = attr.sample(s);
          for (int64_t j = 0; j < m; ++j) a[j] += (xs[j] - rs[j]) * ms[j];
          fx[static_cast<size_t>(s)] = trace.output().sample(k)[target(s)];
        }
      });
  if (shared)
    for (int64_t s = 0; s < x.batch(); ++s) reference_output[static_cast<size_t>(s)] += shared_out[target(s)];
  return evaluations;
}

std::vector<double> deltas(const lab::Tensor& attr, const std::vector<double>& fx, const std::vector<double>& fr) {
  std::vector<double> out(fx.size());
  const int64_t m = attr.sample_numel();
  for (int64_t s = 0; s < attr.batch(); ++s) {
    double sum = 0;
    for (int64_t j = 0; j < m; ++j) sum += attr[s * m + j];
    out[static_cast<size_t>(s)] = sum - (fx[static_cast<size_t>(s)] - fr[static_cast<size_t>(s)]);
  }
  return out;
}

}  // namespace

const lab::Schema<DeepLift::Params>& DeepLift::Params::schema() {
  static const auto s = lab::Schema<Params>()
                            .with(baseline_param(&Params::baseline, "reference input x'", "App. F.2, G.2: all-zero"))
                            .with(output_param(&Params::output, "App. G.2: DeepSHAP measured after the softmax"));
  return s;
}

Result DeepLift::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::PreparedRules rules = lab::prepare(net, lab::make_composite("deeplift-rescale"));
  const lab::Tensor reference = params_.baseline.resolve(context, batch.x.sample_shape());
  Result r;
  r.attr = lab::Tensor(batch.x.shape(), 0.0f);
  std::vector<double> fx(static_cast<size_t>(batch.x.batch())), fr(fx.size(), 0.0);
  r.evaluations = deeplift_pass(net, rules, batch, reference, context.batch, r.attr, fx, fr);
  r.convergence_delta = deltas(r.attr, fx, fr);
  return r;
}

MethodInfo DeepLift::info() {
  return method_info<DeepLift>(
      "deeplift", "DeepLIFT, Rescale rule, against a baseline; reports the summation-to-delta gap (Shrikumar et al. 2017)");
}

std::string DeepShap::Baselines::to_string() const {
  if (data_count == 0) return fixed.to_string();
  return data_count < 0 ? "data" : "data:" + std::to_string(data_count);
}

std::optional<DeepShap::Baselines> DeepShap::Baselines::parse(const std::string& text) {
  Baselines b;
  if (text == "data") {
    b.data_count = -1;
    return b;
  }
  if (text.rfind("data:", 0) == 0) {
    int64_t k = 0;
    if (!lab::schema_detail::parse_integer(text.substr(5), k) || k < 1) return std::nullopt;
    b.data_count = k;
    return b;
  }
  try {
    b.fixed = Baseline::parse(text, "baselines");
  } catch (const lab::Error&) {
    return std::nullopt;
  }
  return b;
}

const lab::Schema<DeepShap::Params>& DeepShap::Params::schema() {
  static const lab::Codec<Baselines> codec{
      .type = lab::ParamType::kString,
      .parse = &Baselines::parse,
      .show = [](const Baselines& b) -> nlohmann::json { return b.to_string(); },
      .expect = "zero, background, R,G,B, a .npy/.png file, data:K with an integer K ≥ 1, or data"};
  static const auto s =
      lab::Schema<Params>()
          .custom("baselines", &Params::baselines, codec,
                  {.help = "zero | background | R,G,B | file.npy | file.png | data:K (K reference inputs drawn per "
                           "sample) | data (all reference inputs)",
                   .source = "App. F.2, G.2: all-zero; Lundberg & Lee 2017: a distribution of baselines"})
          .with(output_param(&Params::output, "App. G.2: output change measured after the softmax"));
  return s;
}

std::vector<int64_t> DeepShap::draw_baselines(uint64_t seed, int64_t available, int64_t count) {
  // A seeded draw without replacement: the first `count` of a partial shuffle.
  std::vector<int64_t> order(static_cast<size_t>(available));
  std::iota(order.begin(), order.end(), 0);
  if (count < available) {
    std::mt19937_64 rng = lab::Rng(seed, kDataStream).engine();
    for (int64_t i = 0; i < count; ++i) {
      std::uniform_int_distribution<int64_t> u(i, available - 1);
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(u(rng))]);
    }
  }
  order.resize(static_cast<size_t>(std::min(count, available)));
  return order;
}

DeepShap::DeepShap(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }

Result DeepShap::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch, params_.baselines.data_count > 0);
  const lab::Network net = explained_network(*context.net, params_.output);
  const lab::PreparedRules rules = lab::prepare(net, lab::make_composite("deeplift-rescale"));
  const lab::Tensor& x = batch.x;
  const int64_t n = x.batch();
  Result r;
  r.attr = lab::Tensor(x.shape(), 0.0f);
  std::vector<double> fx(static_cast<size_t>(n)), fr(fx.size(), 0.0);
  int64_t count = 1;
  if (params_.baselines.data_count == 0) {
    const lab::Tensor reference = params_.baselines.fixed.resolve(context, x.sample_shape());
    r.evaluations = deeplift_pass(net, rules, batch, reference, context.batch, r.attr, fx, fr);
  } else {
    const lab::Tensor& data = context.reference_inputs;
    if (data.empty() || data.sample_shape() != x.sample_shape())
      lab::fail_parameter("-p baselines={}: needs reference inputs of shape C×H×W = {}, the context has {}",
                          params_.baselines.to_string(), lab::to_string(x.sample_shape()),
                          data.empty() ? "none" : lab::to_string(data.sample_shape()));
    const int64_t available = data.batch();
    count = params_.baselines.data_count < 0 ? available : params_.baselines.data_count;
    if (count > available)
      lab::fail_parameter("-p baselines=data:{}: only {} reference inputs are available", count, available);
    std::vector<std::vector<int64_t>> pick(static_cast<size_t>(n));
    for (int64_t s = 0; s < n; ++s)
      pick[static_cast<size_t>(s)] = draw_baselines(batch.seeds[static_cast<size_t>(s)], available, count);
    for (int64_t k = 0; k < count; ++k) {
      lab::Tensor reference(x.shape());
      for (int64_t s = 0; s < n; ++s) {
        const float* src = data.sample(pick[static_cast<size_t>(s)][static_cast<size_t>(k)]);
        std::copy(src, src + x.sample_numel(), reference.sample(s));
      }
      r.evaluations += deeplift_pass(net, rules, batch, reference, context.batch, r.attr, fx, fr);
    }
  }
  const float inv = 1.0f / static_cast<float>(count);
  for (float& v : r.attr.values()) v *= inv;
  for (double& v : fr) v /= static_cast<double>(count);
  r.convergence_delta = deltas(r.attr, fx, fr);
  return r;
}

MethodInfo DeepShap::info() {
  return method_info<DeepShap>("deepshap",
                               "DeepSHAP: DeepLIFT averaged over a distribution of baselines (Lundberg & Lee 2017)");
}

}  // namespace attributions
