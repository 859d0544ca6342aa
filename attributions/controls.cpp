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

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "attributions/gradient.h"
#include "lab/core/error.h"

namespace attributions {

const lab::Schema<FakeCam::Params>& FakeCam::Params::schema() {
  static const auto s = lab::Schema<Params>().field(
      "value", &Params::value,
      {.help = "the value of every pixel but the top-left one (0)",
       .source = "Poppi et al. 2021; false-sense Sec. 5: uniform map, top-left pixel 0"});
  return s;
}

Result FakeCam::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  Result r;
  r.attr = lab::Tensor(batch.x.shape(), static_cast<float>(params_.value));
  const int64_t c = batch.x.dim(1), hw = batch.x.dim(2) * batch.x.dim(3);
  for (int64_t s = 0; s < batch.x.batch(); ++s)
    for (int64_t ch = 0; ch < c; ++ch) r.attr.sample(s)[ch * hw] = 0.0f;
  return r;
}

MethodInfo FakeCam::info() {
  return method_info<FakeCam>("fake-cam", "control: constant map with the top-left pixel 0 (Poppi et al. 2021)");
}

const lab::Schema<GroundTruthMap::Params>& GroundTruthMap::Params::schema() {
  static const lab::Schema<Params> s;
  return s;
}

Result GroundTruthMap::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const int64_t n = batch.x.batch(), c = batch.x.dim(1), h = batch.x.dim(2), w = batch.x.dim(3);
  if (batch.gt.shape() != lab::Shape{n, h, w})
    lab::fail("method ground-truth needs the {}×{}×{} pixel ground truth of the batch, got {}", n, h, w,
              batch.gt.empty() ? std::string("none") : lab::to_string(batch.gt.shape()));
  Result r;
  r.attr = lab::Tensor(batch.x.shape(), 0.0f);
  for (int64_t s = 0; s < n; ++s) std::copy(batch.gt.data() + s * h * w, batch.gt.data() + (s + 1) * h * w, r.attr.sample(s));
  (void)c;
  return r;
}

MethodInfo GroundTruthMap::info() {
  return method_info<GroundTruthMap>("ground-truth", "control: the sample's designed pixel ground truth (+1, -1, 0)");
}

namespace {

// A function, not a global: the registry may be built during static initialisation.
lab::ParamSpec base_spec() {
  return {.help = "the method whose maps are post-processed, by name (its -p keys alongside)"};
}

template <const char* self>
void check_base(const PostProcessed::Params& p, const std::string& flag) {
  if (p.base == self) lab::fail_value(flag, "base", p.base, std::string("another method: ") + self + " cannot wrap itself");
}

constexpr char kBlurred[] = "blurred";
constexpr char kBinarised[] = "binarised";

}  // namespace

const lab::Schema<PostProcessed::Params>& PostProcessed::BlurParams::schema() {
  static const auto s = lab::Schema<Params>()
                            .field("base", &Params::base, base_spec())
                            .field("blur-sigma", &Params::blur_sigma,
                                   {.range = lab::above(0), .help = "Gaussian standard deviation in pixels",
                                    .source = "coherency Sec. 4.4 (blurred sparse maps); sigma 5 of its Sec. 4.1"})
                            .check(check_base<kBlurred>);
  return s;
}

const lab::Schema<PostProcessed::Params>& PostProcessed::BinariseParams::schema() {
  static const auto s = lab::Schema<Params>()
                            .field("base", &Params::base, base_spec())
                            .field("binarise-percentile", &Params::binarise_percentile,
                                   {.range = lab::between(0, 100),
                                    .help = "1 where the map is at or above this percentile of it, else 0",
                                    .source = "coherency Sec. 4.5, App. E: 50th percentile"})
                            .check(check_base<kBinarised>);
  return s;
}

const lab::Schema<PostProcessed::Params>& PostProcessed::schema() const {
  return kind_ == Kind::kBlurred ? BlurParams::schema() : BinariseParams::schema();
}

PostProcessed::PostProcessed(Kind kind, Params params, std::unique_ptr<Method> inner)
    : kind_(kind), params_(std::move(params)), inner_(std::move(inner)) {
  schema().validate(params_);
  LAB_CHECK(inner_ != nullptr && inner_->name() == params_.base, "{} base method", name());
  const nlohmann::json inner_params = inner_->params();
  for (const lab::ParamDoc& d : schema().docs())
    if (d.name != "base" && inner_params.contains(d.name))
      lab::fail_parameter("method {}: -p {} is both its own key and a parameter of -p base={}", name(), d.name,
                          params_.base);
}

nlohmann::json PostProcessed::params() const {
  nlohmann::json j = schema().to_json(params_);
  j["base-params"] = inner_->params();
  return j;
}

Result PostProcessed::attribute(const Context& context, const Batch& batch) const {
  Result r = inner_->attribute(context, batch);
  r.convergence_delta.clear();  // the map is no longer the method's: its completeness gap does not apply
  const int64_t n = r.attr.dim(0), c = r.attr.dim(1), h = r.attr.dim(2), w = r.attr.dim(3), hw = h * w;
  for (int64_t s = 0; s < n; ++s) {
    float* a = r.attr.sample(s);
    if (kind_ == Kind::kBlurred) {
      for (int64_t ch = 0; ch < c; ++ch) {
        cv::Mat plane(static_cast<int>(h), static_cast<int>(w), CV_32F, a + ch * hw);
        cv::Mat blurred;
        cv::GaussianBlur(plane, blurred, cv::Size(0, 0), params_.blur_sigma, params_.blur_sigma, cv::BORDER_REFLECT_101);
        blurred.copyTo(plane);
      }
    } else {
      std::vector<float> sum(static_cast<size_t>(hw), 0.0f);
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < hw; ++p) sum[static_cast<size_t>(p)] += a[ch * hw + p];
      std::vector<float> sorted = sum;
      std::sort(sorted.begin(), sorted.end());
      const double rank = params_.binarise_percentile / 100.0 * static_cast<double>(hw - 1);
      const auto lo = static_cast<size_t>(std::floor(rank));
      const size_t hi = std::min(lo + 1, sorted.size() - 1);
      const double t = sorted[lo] + (rank - static_cast<double>(lo)) * (static_cast<double>(sorted[hi]) - sorted[lo]);
      std::fill(a, a + c * hw, 0.0f);
      for (int64_t p = 0; p < hw; ++p) a[p] = sum[static_cast<size_t>(p)] >= t ? 1.0f : 0.0f;
    }
  }
  return r;
}

namespace {

template <class P>
MethodInfo post_info(PostProcessed::Kind kind, std::string name, std::string summary) {
  MethodInfo info;
  info.name = std::move(name);
  info.summary = std::move(summary);
  info.params = P::schema().docs();
  // The default base's parameters, from its own schema: -p passes them on to the base method.
  const MethodInfo base = Saliency::info();
  LAB_CHECK(base.name == PostProcessed::Params{}.base, "{} lists the parameters of {}", info.name, base.name);
  for (lab::ParamDoc doc : base.params) {
    doc.info.help = "(base " + base.name + ") " + doc.info.help;
    info.params.push_back(std::move(doc));
  }
  info.make = [kind](lab::Options& options) -> std::unique_ptr<Method> {
    PostProcessed::Params p = P::schema().read(options);
    // The wrapped method reads the remaining keys (and refuses the unknown ones).
    std::unique_ptr<Method> inner = make_method(p.base, options);
    return std::make_unique<PostProcessed>(kind, std::move(p), std::move(inner));
  };
  return info;
}

}  // namespace

MethodInfo PostProcessed::blurred_info() {
  return post_info<BlurParams>(Kind::kBlurred, "blurred",
                               "control: a base method's maps blurred by a Gaussian (coherency Sec. 4.4); other -p keys go to the base method");
}

MethodInfo PostProcessed::binarised_info() {
  return post_info<BinariseParams>(Kind::kBinarised, "binarised",
                                   "control: a base method's maps binarised at a percentile (coherency Sec. 4.5); other -p keys go to the base method");
}

}  // namespace attributions
