#include "experiments/metrics/sensitivity_n.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>

#include "experiments/engine/incremental.h"
#include "experiments/metrics/curve.h"
#include "experiments/rank.h"
#include "lab/core/error.h"
#include "lab/core/hash.h"

namespace experiments {

std::vector<int64_t> log_schedule(int64_t pixels, int64_t points) {
  LAB_CHECK(pixels >= 1 && points >= 1, "pixels {} points {}", pixels, points);
  // N_i = round(P^{i/points}) stays below P; rounding can still reach P on tiny images, hence the
  // clamp to P − 1 (and the duplicates it makes are dropped).
  std::vector<int64_t> out;
  const double top = std::log(static_cast<double>(pixels));
  for (int64_t i = 0; i < points; ++i) {
    const int64_t n = std::min(
        pixels - 1, static_cast<int64_t>(std::llround(std::exp(static_cast<double>(i) / static_cast<double>(points) * top))));
    if (n >= 1 && (out.empty() || n > out.back())) out.push_back(n);
  }
  return out;
}

const lab::Schema<SensitivityNParams>& SensitivityNParams::schema() {
  using Params = SensitivityNParams;
  static const auto s =
      lab::Schema<Params>()
          .nested(&Params::perturbation, PerturbationParams::schema())
          .field("n", &Params::n,
                 {.range = lab::at_least(1),
                  .help = "subset sizes N, comma-separated, increasing, each < H*W",
                  .source = "Ancona et al. 2018; App. F.5, G.5: N from 1 up to H*W, whose rho is undefined",
                  .derived = "`points` values log-spaced on [1, H*W)"})
          .field("points", &Params::points,
                 {.range = lab::at_least(1), .help = "points of the derived log-spaced schedule of n"})
          .field("subsets", &Params::subsets,
                 {.range = lab::at_least(2),
                  .help = "random subsets (standard) or orders (modulo) per N",
                  .source = "App. G.5: 100"})
          .check([](const Params& p, const std::string& flag) {
            if (!p.n) return;
            if (p.n->empty()) lab::fail_value(flag, "n", "", "increasing integers >= 1, or auto");
            for (size_t i = 1; i < p.n->size(); ++i)
              if ((*p.n)[i] <= (*p.n)[i - 1])
                lab::fail_value(flag, "n", lab::option_text(*p.n), "increasing integers >= 1");
          });
  return s;
}

void SensitivityNParams::resolve(const MetricSetup& setup) {
  perturbation.resolve(setup);
  if (!n && setup.pixels) n = log_schedule(*setup.pixels, points);
}

/// The target scores of one image's subsets, in the order (N, replicate), per network.
struct SensitivityN::ScoreCache {
  struct Entry {
    uint64_t key = 0;             ///< image, replacement, seed, target, schedule, output read
    /// The layers evaluated: the same objects (alive) are the same network.
    std::vector<std::weak_ptr<const lab::Layer>> layers;
    std::vector<float> base;      ///< the unperturbed output row (compared exactly)
    std::vector<double> scores;   ///< f(x_S) of every subset

    bool matches(uint64_t k, const lab::Network& net, const std::vector<float>& b) const {
      if (k != key || b != base) return false;
      for (size_t i = 0; i < layers.size(); ++i) {
        const std::shared_ptr<const lab::Layer> layer = layers[i].lock();
        if (!layer || layer.get() != net.layer_ptr(i).get()) return false;
      }
      return true;
    }
  };
  std::mutex mutex;
  std::deque<std::shared_ptr<const Entry>> entries;  ///< oldest first

  std::shared_ptr<const Entry> find(uint64_t key, const lab::Network& net, const std::vector<float>& base) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& e : entries)
      if (e->matches(key, net, base)) return e;
    return nullptr;
  }
  void add(std::shared_ptr<const Entry> entry) {
    std::lock_guard<std::mutex> lock(mutex);
    if (entries.size() >= kCachedImages) entries.pop_front();
    entries.push_back(std::move(entry));
  }
};

SensitivityN::SensitivityN(Params params)
    : MetricWith(std::move(params)), cache_(std::make_shared<ScoreCache>()) {}

std::string SensitivityN::variant() const {
  return params_.perturbation.modulo() ? "mean-modulo" : "mean";
}

std::vector<Variant> SensitivityN::variants() const { return {{variant(), Direction::kHigherIsBetter}}; }

std::vector<Variant> SensitivityN::all_variants() {
  return {{"mean", Direction::kHigherIsBetter}, {"mean-modulo", Direction::kHigherIsBetter}};
}

std::vector<int64_t> SensitivityN::schedule(int64_t pixels) const {
  if (pixels < 2) lab::fail_parameter("sensitivity-n needs images of at least 2 pixels, got {}", pixels);
  if (!params_.n) return log_schedule(pixels, params_.points);
  if (params_.n->back() >= pixels)
    lab::fail_parameter("-p n={} is not below the {} pixels of the images; expected N < H*W (at N = H*W every "
                        "subset is the whole image and rho is undefined)",
                        params_.n->back(), pixels);
  return *params_.n;
}

namespace {

/// Moves a uniformly random `n`-subset of `pixels` to its front (partial Fisher–Yates).
void draw_front(std::vector<int64_t>& pixels, int64_t n, lab::Rng& rng) {
  const int64_t size = static_cast<int64_t>(pixels.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = rng.uniform_int(i, size - 1);
    std::swap(pixels[static_cast<size_t>(i)], pixels[static_cast<size_t>(j)]);
  }
}

}  // namespace

std::vector<CurvePoint> SensitivityN::standard_curve(const Context& context, const PathEvaluator& evaluator,
                                                     const lab::Tensor& x, const float* attr, int64_t target,
                                                     const std::string& id, uint64_t seed) const {
  const lab::Network& net = *context.net;
  const lab::Tensor image = x.reshaped(x.sample_shape());
  const int64_t hw = image.dim(1) * image.dim(2);
  const std::vector<int64_t> ns = schedule(hw);
  const lab::Tensor replacement = replacement_image(params_.perturbation, image, context, seed);
  const OutputReader reader(net, params_.perturbation.output);

  const lab::Tensor base = net.forward_range(0, reader.end(), x);
  const int64_t k = base.sample_numel();
  const double base_score = reader.score(base.data(), k, target);

  lab::Rng rng(lab::derive_seed(seed, params_.perturbation.seed), 1);
  std::vector<int64_t> pixels(static_cast<size_t>(hw));
  for (int64_t p = 0; p < hw; ++p) pixels[static_cast<size_t>(p)] = p;

  const int64_t subsets = params_.subsets;
  const int64_t total = static_cast<int64_t>(ns.size()) * subsets;
  std::vector<double> change(static_cast<size_t>(total)), attr_sum(static_cast<size_t>(total));
  const uint64_t rng_seed = lab::derive_seed(seed, params_.perturbation.seed);
  const auto draw = [&](int64_t q, std::vector<int64_t>& subset) {
    const int64_t n = ns[static_cast<size_t>(q / subsets)];
    draw_front(pixels, n, rng);
    subset.assign(pixels.begin(), pixels.begin() + n);
    double sum = 0.0;
    for (int64_t p : subset) sum += attr[p];
    attr_sum[static_cast<size_t>(q)] = sum;
  };

  // What the subsets' outputs depend on: everything but the map.
  uint64_t key = lab::fnv1a(image.data(), static_cast<size_t>(image.numel()) * sizeof(float));
  key = lab::fnv1a(image.shape().data(), image.shape().size() * sizeof(int64_t), key);
  key = lab::fnv1a(replacement.data(), static_cast<size_t>(replacement.numel()) * sizeof(float), key);
  key = lab::fnv1a(ns.data(), ns.size() * sizeof(int64_t), key);
  const uint64_t fields[5] = {rng_seed, static_cast<uint64_t>(target), static_cast<uint64_t>(subsets),
                              static_cast<uint64_t>(reader.end()), static_cast<uint64_t>(params_.perturbation.output)};
  key = lab::fnv1a(fields, sizeof(fields), key);
  std::vector<float> base_row(base.data(), base.data() + base.numel());
  std::shared_ptr<const ScoreCache::Entry> cached = cache_->find(key, net, base_row);
  if (cached) {
    // The same draws in the same order, for the attribution sums alone.
    std::vector<int64_t> subset;
    for (int64_t q = 0; q < total; ++q) draw(q, subset);
  } else {
    // Subsets are drawn in the order (N, replicate); the engine evaluates the small ones on one
    // incremental path and the others in batched full passes (subset_plan, its cost model).
    const lab::Tensor y =
        evaluate_subsets(net, evaluator, reader.end(), image, replacement, total, draw, subset_plan(context));
    auto entry = std::make_shared<ScoreCache::Entry>();
    entry->key = key;
    for (size_t i = 0; i < reader.end(); ++i) entry->layers.push_back(net.layer_ptr(i));
    entry->base = std::move(base_row);
    entry->scores.resize(static_cast<size_t>(total));
    for (int64_t q = 0; q < total; ++q) entry->scores[static_cast<size_t>(q)] = reader.score(y.sample(q), k, target);
    cache_->add(entry);
    cached = std::move(entry);
  }
  for (int64_t q = 0; q < total; ++q)
    change[static_cast<size_t>(q)] = base_score - cached->scores[static_cast<size_t>(q)];

  std::vector<CurvePoint> points;
  for (size_t s = 0; s < ns.size(); ++s) {
    const auto from = static_cast<std::ptrdiff_t>(s) * subsets;
    const std::vector<double> dc(change.begin() + from, change.begin() + from + subsets);
    const std::vector<double> da(attr_sum.begin() + from, attr_sum.begin() + from + subsets);
    points.push_back({id, variant(), static_cast<double>(ns[s]), pearson(dc, da)});
  }
  return points;
}

std::vector<CurvePoint> SensitivityN::modulo_curve(const Context& context, const PathEvaluator& evaluator,
                                                   const lab::Tensor& x, const float* attr, const std::string& id,
                                                   uint64_t seed) const {
  const lab::Tensor image = x.reshaped(x.sample_shape());
  const int64_t hw = image.dim(1) * image.dim(2);
  const std::vector<int64_t> ns = schedule(hw);
  const int64_t max_n = ns.back();

  PerturbationPath path;
  path.start = image;
  path.source = replacement_image(params_.perturbation, image, context, seed);
  path.step_ends = uniform_steps(max_n, 1);
  lab::Rng rng(lab::derive_seed(seed, params_.perturbation.seed), 1);
  std::vector<int64_t> pixels(static_cast<size_t>(hw));
  for (int64_t p = 0; p < hw; ++p) pixels[static_cast<size_t>(p)] = p;

  const size_t subsets = static_cast<size_t>(params_.subsets);
  std::vector<std::vector<double>> correct(ns.size(), std::vector<double>(subsets));
  std::vector<std::vector<double>> attr_sum(ns.size(), std::vector<double>(subsets));
  for (size_t r = 0; r < subsets; ++r) {
    draw_front(pixels, max_n, rng);
    path.order.assign(pixels.begin(), pixels.begin() + max_n);
    const lab::Tensor outputs = evaluator.run(path);
    const int64_t k = outputs.dim(1);
    int64_t label = predicted_label(context, outputs.sample(0), k);
    int64_t count = 0;
    double sum = 0.0;
    size_t next = 0;
    for (int64_t s = 1; s <= max_n; ++s) {
      const int64_t now = predicted_label(context, outputs.sample(s), k);
      count += now != label;
      label = now;
      sum += attr[path.order[static_cast<size_t>(s - 1)]];
      if (s == ns[next]) {
        correct[next][r] = static_cast<double>(count);
        attr_sum[next][r] = sum;
        ++next;
      }
    }
  }
  std::vector<CurvePoint> points;
  for (size_t s = 0; s < ns.size(); ++s)
    points.push_back({id, variant(), static_cast<double>(ns[s]), pearson(correct[s], attr_sum[s])});
  return points;
}

MetricOutput SensitivityN::evaluate_batch(const Context& context, const Batch& batch) const {
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const bool modulo = params_.perturbation.modulo();
  const size_t end = modulo ? context.net->size() : OutputReader(*context.net, params_.perturbation.output).end();
  const PathEvaluator evaluator = path_evaluator(context, end);
  // Samples may run concurrently: each has its own random stream, and the score cache is locked.
  return score_samples(context, batch.size(), [&](int64_t i, MetricOutput& slot) {
    const size_t si = static_cast<size_t>(i);
    const lab::Tensor x = batch.x.slice(i, i + 1);
    const float* attr = batch.attr.data() + i * hw;
    std::vector<CurvePoint> points =
        modulo ? modulo_curve(context, evaluator, x, attr, batch.ids[si], batch.seeds[si])
               : standard_curve(context, evaluator, x, attr, batch.target[si], batch.ids[si], batch.seeds[si]);
    double mean = 0.0;
    for (const CurvePoint& p : points) mean += p.y;
    mean /= static_cast<double>(points.size());
    slot.rows.push_back({batch.ids[si], variant(), mean});
    slot.curves = std::move(points);
  });
}

}  // namespace experiments
