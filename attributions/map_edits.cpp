#include "attributions/map_edits.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attributions/gradient.h"
#include "lab/core/error.h"

namespace attributions {

namespace {
constexpr uint64_t kEditStream = 0x65646974656d6170ull;  // "editemap"
}

const lab::Schema<EditedMap::Params>& EditedMap::Params::schema() {
  static const auto s =
      lab::Schema<Params>()
          .field("base", &Params::base, {.help = "the method whose maps are edited, by name (its -p keys alongside)"})
          .field("edit", &Params::edit,
                 {.choices = {"remove", "introduce"},
                  .help = "remove attribution (lowers completeness) or introduce it (lowers soundness)",
                  .source = "soundness-completeness Sec. 5.1-5.2, App. G.3 Table 3"})
          .field("scheme", &Params::scheme,
                 {.choices = {"constant", "random", "partial"},
                  .help = "constant shift, per-pixel uniform shift, or a rank window set to a level",
                  .source = "soundness-completeness App. G.3 Table 3"})
          .field("shift", &Params::shift,
                 {.range = lab::between(0, 10), .help = "d: the constant, or the bound of the uniform shift",
                  .source = "Table 3: 0.6"})
          .field("remove-from", &Params::remove_from,
                 {.range = lab::between(0, 1), .help = "partial remove: first ascending rank set to 0, as a fraction of P",
                  .source = "Table 3: 0.6N"})
          .field("remove-to", &Params::remove_to,
                 {.range = lab::between(0, 1), .help = "partial remove: end (excluded) of the ranks set to 0",
                  .source = "Table 3: 0.8N"})
          .field("introduce-to", &Params::introduce_to,
                 {.range = lab::between(0, 1), .help = "partial introduce: the lowest ranks [0, this) are raised",
                  .source = "Table 3: 0.4N"})
          .field("introduce-quantile", &Params::introduce_quantile,
                 {.range = lab::between(0, 1), .help = "partial introduce: the quantile of the map they are raised to",
                  .source = "Table 3: q_0.8"})
          .check([](const Params& p, const std::string& flag) {
            if (p.base == "edited") lab::fail_value(flag, "base", p.base, "another method: edited cannot wrap itself");
            if (p.remove_from > p.remove_to)
              lab::fail_value(flag, "remove-from", std::to_string(p.remove_from),
                              "at most remove-to (" + std::to_string(p.remove_to) + ")");
          });
  return s;
}

EditedMap::EditedMap(Params params, std::unique_ptr<Method> inner) : params_(std::move(params)), inner_(std::move(inner)) {
  Params::schema().validate(params_);
  LAB_CHECK(inner_ != nullptr && inner_->name() == params_.base, "edited base method");
  const nlohmann::json inner_params = inner_->params();
  for (const lab::ParamDoc& d : Params::schema().docs())
    if (d.name != "base" && inner_params.contains(d.name))
      lab::fail_parameter("method edited: -p {} is both its own key and a parameter of -p base={}", d.name, params_.base);
}

nlohmann::json EditedMap::params() const {
  nlohmann::json j = Params::schema().to_json(params_);
  j["base-params"] = inner_->params();
  return j;
}

void EditedMap::apply(const Params& p, std::vector<float>& a, const std::function<double()>& uniform) {
  const bool remove = p.edit == "remove";
  const auto n = static_cast<int64_t>(a.size());
  if (p.scheme == "constant") {
    for (float& v : a) v = static_cast<float>(v + (remove ? -p.shift : p.shift));
  } else if (p.scheme == "random") {
    for (float& v : a) {
      const double u = uniform() * p.shift;
      v = static_cast<float>(v + (remove ? -u : u));
    }
  } else {
    // Ascending rank by value, ties in pixel order.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[static_cast<size_t>(x)] < a[static_cast<size_t>(y)]; });
    auto rank = [&](double f) { return std::min<int64_t>(n, static_cast<int64_t>(std::floor(f * static_cast<double>(n) + 1e-9))); };
    if (remove) {
      for (int64_t r = rank(p.remove_from); r < rank(p.remove_to); ++r) a[static_cast<size_t>(order[static_cast<size_t>(r)])] = 0.0f;
    } else {
      // q: numpy's linear-interpolation quantile of the unedited values.
      const double pos = p.introduce_quantile * static_cast<double>(n - 1);
      const auto lo = static_cast<int64_t>(std::floor(pos));
      const int64_t hi = std::min(lo + 1, n - 1);
      const double vlo = a[static_cast<size_t>(order[static_cast<size_t>(lo)])], vhi = a[static_cast<size_t>(order[static_cast<size_t>(hi)])];
      const auto q = static_cast<float>(vlo + (pos - static_cast<double>(lo)) * (vhi - vlo));
      for (int64_t r = 0; r < rank(p.introduce_to); ++r) a[static_cast<size_t>(order[static_cast<size_t>(r)])] = q;
    }
  }
}

Result EditedMap::attribute(const Context& context, const Batch& batch) const {
  Result r = inner_->attribute(context, batch);
  r.convergence_delta.clear();  // the map is no longer the method's
  const int64_t n = r.attr.dim(0), c = r.attr.dim(1), hw = r.attr.dim(2) * r.attr.dim(3);
  for (int64_t s = 0; s < n; ++s) {
    float* map = r.attr.sample(s);
    std::vector<float> a(static_cast<size_t>(hw), 0.0f);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p) a[static_cast<size_t>(p)] += map[ch * hw + p];
    const float top = *std::max_element(a.begin(), a.end());
    for (float& v : a) v = top > 0.0f ? std::max(v, 0.0f) / top : 0.0f;
    const uint64_t seed = batch.seeds.empty() ? 0 : batch.seeds[static_cast<size_t>(s)];
    std::mt19937_64 rng = lab::Rng(seed, kEditStream).engine();
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    apply(params_, a, [&] { return unit(rng); });
    std::fill(map, map + c * hw, 0.0f);
    std::copy(a.begin(), a.end(), map);
  }
  return r;
}

MethodInfo EditedMap::info() {
  MethodInfo info;
  info.name = "edited";
  info.summary = "control: a base method's map with the soundness paper's Remove or Introduce edit (App. G.3 Table 3); other -p keys go to the base method";
  info.params = Params::schema().docs();
  const MethodInfo base = Saliency::info();
  LAB_CHECK(base.name == Params{}.base, "edited lists the parameters of {}", base.name);
  for (lab::ParamDoc doc : base.params) {
    doc.info.help = "(base " + base.name + ") " + doc.info.help;
    info.params.push_back(std::move(doc));
  }
  info.make = [](lab::Options& options) -> std::unique_ptr<Method> {
    Params p = Params::schema().read(options);
    std::unique_ptr<Method> inner = make_method(p.base, options);
    return std::make_unique<EditedMap>(std::move(p), std::move(inner));
  };
  return info;
}

const lab::Schema<IsolatedMap::Params>& IsolatedMap::Params::schema() {
  static const lab::Schema<Params> s;
  return s;
}

int64_t IsolatedMap::bayer_index(int64_t row, int64_t col, int bits) {
  // M_2n(i, j) = 4 M_n(i mod n, j mod n) + D(i div n, j div n), D = [[0, 2], [3, 1]]: the lowest
  // coordinate bit gives the most significant base-4 digit.
  static constexpr int64_t kD[2][2] = {{0, 2}, {3, 1}};
  int64_t v = 0;
  for (int b = 0; b < bits; ++b) v = v * 4 + kD[(row >> b) & 1][(col >> b) & 1];
  return v;
}

Result IsolatedMap::attribute(const Context& context, const Batch& batch) const {
  check_batch(context, batch);
  const int64_t n = batch.x.batch(), c = batch.x.dim(1), h = batch.x.dim(2), w = batch.x.dim(3), hw = h * w;
  int bits = 0;
  while ((int64_t{1} << bits) < std::max(h, w)) ++bits;
  std::vector<int64_t> order(static_cast<size_t>(hw));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> index(static_cast<size_t>(hw));
  for (int64_t p = 0; p < hw; ++p) index[static_cast<size_t>(p)] = bayer_index(p / w, p % w, bits);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return index[static_cast<size_t>(x)] < index[static_cast<size_t>(y)]; });
  std::vector<float> map(static_cast<size_t>(hw));
  for (int64_t r = 0; r < hw; ++r)
    map[static_cast<size_t>(order[static_cast<size_t>(r)])] = static_cast<float>(1.0 - static_cast<double>(r) / static_cast<double>(hw));
  Result result;
  result.attr = lab::Tensor(batch.x.shape(), 0.0f);
  for (int64_t s = 0; s < n; ++s) std::copy(map.begin(), map.end(), result.attr.sample(s));
  (void)c;
  return result;
}

MethodInfo IsolatedMap::info() {
  return method_info<IsolatedMap>(
      "isolated", "control: ordered-dither ranks, every prefix of the flip order spread evenly and isolated (unified Sec. 6.2.3)");
}

}  // namespace attributions
