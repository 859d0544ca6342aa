#include "networks/accumulator.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/random.h"

namespace networks {

namespace {

constexpr int64_t kMaxSize = 512;        // 64·size² <= 2^24
constexpr int64_t kMaxPrime = 13;
constexpr size_t kMaxBlocks = 5;
constexpr uint64_t kUdeStream = 0x554445;  // "UDE"

std::vector<int64_t> prime_factors(int64_t n) {
  std::vector<int64_t> f;
  for (int64_t p = 2; p * p <= n; ++p) {
    while (n % p == 0) f.push_back(p), n /= p;
  }
  if (n > 1) f.push_back(n);
  return f;
}

// total units cut at parts − 1 uniform points: parts non-negative integers summing to total.
std::vector<int64_t> split_units(lab::Rng& rng, int64_t total, int64_t parts) {
  std::vector<int64_t> cuts{0, total};
  for (int64_t i = 0; i + 1 < parts; ++i) cuts.push_back(rng.uniform_int(0, total));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> out(static_cast<size_t>(parts));
  for (int64_t i = 0; i < parts; ++i) out[static_cast<size_t>(i)] = cuts[static_cast<size_t>(i + 1)] - cuts[static_cast<size_t>(i)];
  return out;
}

size_t widx(int64_t o, int64_t ci, int64_t in_per_group, int64_t k, int64_t y, int64_t x) {
  return static_cast<size_t>(((o * in_per_group + ci) * k + y) * k + x);
}

std::string window_text(int64_t side) { return fmt::format("{}×{}", side, side); }

std::string counts_role(int64_t covered, int64_t side) {
  if (side == 1) return "the count of each counted channel over the whole image";
  return fmt::format("counts per {} window, {}×{} map", window_text(covered), side, side);
}

}  // namespace

std::vector<int64_t> kernel_schedule(const std::string& kind, int64_t size) {
  lab::require(kind == "uniform" || kind == "nonuniform", "accumulator", "uniform or nonuniform", kind);
  if (size < 2 || size > kMaxSize)
    lab::fail_parameter("size={}: expected 2..{} (the accumulator's float32 sums stay exact up to {}×{})", size,
                        kMaxSize, kMaxSize, kMaxSize);
  std::vector<int64_t> f = prime_factors(size);
  if (f.back() > kMaxPrime)
    lab::fail_parameter(
        "size={}: the accumulator reduces size×size to 1×1 with kernel = stride convolutions over the prime "
        "factors of size, each at most {}; {} has the prime factor {} (try 32, 64, 96, 128, 224)",
        size, kMaxPrime, size, f.back());
  if (kind == "nonuniform") {
    while (f.size() > kMaxBlocks) {
      std::sort(f.begin(), f.end());
      f[1] *= f[0];
      f.erase(f.begin());
    }
    std::sort(f.begin(), f.end());
  }
  return f;
}

void AccumulatorParams::validate() const {
  kernel_schedule(kind, size);
  lab::require(channels >= 1, "accumulator channels", "at least 1", std::to_string(channels));
  lab::require(extra_channels >= 0, "accumulator extra channels", "at least 0", std::to_string(extra_channels));
  lab::require(kernels >= 2 && kernels <= kWeightUnits, "kernels", "in 2..64", std::to_string(kernels));
  lab::require(std::isfinite(ude_strength) && ude_strength > 0 && ude_strength <= 1024, "ude-strength",
               "in (0, 1024]", fmt::format("{}", ude_strength));
  if (ude && extra_channels < 1)
    lab::fail_parameter("ude=on needs redundant channels to wire in: redundant must be at least 1, got 0");
}

void append_accumulator(Model& model, const std::string& prefix, const AccumulatorParams& p) {
  p.validate();
  const std::vector<int64_t> ks = kernel_schedule(p.kind, p.size);
  const bool uniform = p.kind == "uniform";
  const int64_t n_c = p.channels;
  const int64_t n_in = p.channels + p.extra_channels;
  const int64_t m_count = uniform ? 1 : p.kernels;
  const bool wire = p.ude && p.extra_channels > 0;

  // Unseen-data effect: sign and size of one unseen pixel's change of count c at first-stage
  // position j, drawn whether or not the wires are used so that `ude` changes nothing else.
  const int64_t k0 = ks.front();
  lab::Rng ude_rng(p.seed, kUdeStream);
  std::vector<double> effect(static_cast<size_t>(n_c * k0 * k0));
  for (int64_t j = 0; j < k0 * k0; ++j) {
    bool any_positive = false;
    for (int64_t c = 0; c < n_c; ++c) {
      const double sign = ude_rng.bit() ? 1.0 : -1.0;
      any_positive = any_positive || sign > 0;
      effect[static_cast<size_t>(c * k0 * k0 + j)] = sign * static_cast<double>(ude_rng.uniform_int(1, 4)) / 4.0;
    }
    if (!any_positive) {
      double& e = effect[static_cast<size_t>((j % n_c) * k0 * k0 + j)];
      e = -e;
    }
  }

  int64_t side = p.size;
  int64_t k_index = 0;
  for (size_t s = 0; s < ks.size(); ++s) {
    const int64_t k = ks[s];
    side /= k;
    const int64_t covered = p.size / side;  // each output pixel counts a covered×covered window
    const bool first = s == 0;
    // The first conv sees every input channel (dense, so the redundant channels can be wired in);
    // later ones are grouped per counted channel.
    const int64_t groups = first ? 1 : n_c;
    const int64_t in_channels = first ? n_in : n_c;
    const int64_t in_per_group = in_channels / groups;
    const int64_t out_channels = n_c * m_count;
    std::vector<float> w(static_cast<size_t>(out_channels * in_per_group * k * k), 0.0f);
    std::vector<float> m(static_cast<size_t>(n_c * m_count), 1.0f);
    lab::Rng rng(p.seed, static_cast<uint64_t>(s));
    for (int64_t c = 0; c < n_c; ++c) {
      // Column of counted channel c in this conv's (per-group) input.
      const int64_t own = first ? c : 0;
      if (uniform) {
        for (int64_t y = 0; y < k; ++y)
          for (int64_t x = 0; x < k; ++x) w[widx(c, own, in_per_group, k, y, x)] = 1.0f;
        continue;
      }
      std::vector<double> m_c(static_cast<size_t>(m_count));
      for (int64_t i = 0; i < m_count; ++i) {
        m_c[static_cast<size_t>(i)] = std::ldexp(1.0, static_cast<int>(rng.uniform_int(-1, 1)));
        m[static_cast<size_t>(c * m_count + i)] = static_cast<float>(m_c[static_cast<size_t>(i)]);
      }
      for (int64_t y = 0; y < k; ++y) {
        for (int64_t x = 0; x < k; ++x) {
          const std::vector<int64_t> n = split_units(rng, kWeightUnits, m_count);
          for (int64_t i = 0; i < m_count; ++i) {
            const double value = static_cast<double>(n[static_cast<size_t>(i)]) /
                                 (static_cast<double>(kWeightUnits) * m_c[static_cast<size_t>(i)]);
            w[widx(c * m_count + i, own, in_per_group, k, y, x)] = static_cast<float>(value);
          }
        }
      }
    }
    if (first) {
      // Unseen-data wires: redundant channel r → kernels of counted channel c (all zero without ude).
      for (int64_t c = 0; c < n_c; ++c) {
        for (int64_t j = 0; j < k * k; ++j) {
          const std::vector<int64_t> n = split_units(ude_rng, kWeightUnits, m_count * p.extra_channels);
          if (!wire) continue;
          const double e = effect[static_cast<size_t>(c * k * k + j)] * p.ude_strength;
          for (int64_t i = 0; i < m_count; ++i) {
            for (int64_t r = 0; r < p.extra_channels; ++r) {
              const double share = static_cast<double>(n[static_cast<size_t>(i * p.extra_channels + r)]) /
                                   static_cast<double>(kWeightUnits);
              w[widx(c * m_count + i, n_c + r, in_per_group, k, j / k, j % k)] =
                  static_cast<float>(e * share / m[static_cast<size_t>(c * m_count + i)]);
            }
          }
        }
      }
    }

    lab::Conv2dParams cp{.in_channels = in_channels, .out_channels = out_channels, .kernel_h = k, .kernel_w = k,
                         .stride_h = k, .stride_w = k, .groups = groups};
    auto conv = std::make_shared<lab::Conv2d>(cp, lab::Tensor({out_channels, in_per_group, k, k}, std::move(w)),
                                              lab::Tensor());
    const std::string ude_note =
        first && p.extra_channels > 0
            ? (wire ? fmt::format(", plus random unseen-data weights from the {} redundant channels", p.extra_channels)
                    : fmt::format(" (the {} redundant channels have weight 0: ude off)", p.extra_channels))
            : std::string();
    if (uniform) {
      model.add(layer_name(prefix, k_index++), conv,
                fmt::format("stage {}: all-ones {}×{} stride {} conv: count of each counted channel per {} window{}",
                            s + 1, k, k, k, window_text(covered), ude_note));
      model.add(layer_name(prefix, k_index++), std::make_shared<lab::ReLU>(), counts_role(covered, side));
      continue;
    }
    model.add(layer_name(prefix, k_index++), conv,
              fmt::format("block {}: {}×{} stride {} conv, {} non-uniform kernels per counted channel{}", s + 1, k,
                          k, k, m_count, ude_note));
    model.add(layer_name(prefix, k_index++), std::make_shared<lab::ReLU>(),
              fmt::format("weighted partial sums over {} windows, {}×{} map", window_text(covered), side, side));
    lab::Conv2dParams mp{.in_channels = out_channels, .out_channels = n_c, .groups = n_c};
    auto mix = std::make_shared<lab::Conv2d>(mp, lab::Tensor({n_c, m_count, 1, 1}, std::move(m)), lab::Tensor());
    model.add(layer_name(prefix, k_index++), mix,
              fmt::format("block {}: 1×1 conv m_i (Σ_i w_ij m_i = 1): count per {} window", s + 1, window_text(covered)));
    model.add(layer_name(prefix, k_index++), std::make_shared<lab::ReLU>(), counts_role(covered, side));
  }
}

lab::Network build_accumulator(const AccumulatorParams& params) {
  params.validate();
  Model model(lab::Shape{params.channels + params.extra_channels, params.size, params.size});
  append_accumulator(model, "accumulator", params);
  return model.network;
}

}  // namespace networks
