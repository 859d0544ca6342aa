// CNN accumulator (App. C.2, Figs. 12, 13): kernel schedules, refused sizes, the non-uniform
// weight identity Σ_i w_ij m_i = 1, exact sums in float32, seeds, and the unseen-data wiring.
#include <doctest/doctest.h>

#include <random>
#include <set>

#include "lab/core/error.h"
#include "networks/accumulator.h"

using networks::AccumulatorParams;

namespace {

const lab::Conv2d& conv(const lab::Network& net, size_t i) { return dynamic_cast<const lab::Conv2d&>(net.layer(i)); }

// Random 0/1 maps in the first `counted` channels (densities vary per image), zeros elsewhere.
lab::Tensor random_maps(int64_t n, int64_t channels, int64_t counted, int64_t size, std::mt19937_64& rng) {
  lab::Tensor x({n, channels, size, size});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < counted; ++c) {
      const uint64_t density = rng() % 5;  // 0/4 .. 4/4: empty to full maps
      for (int64_t p = 0; p < size * size; ++p)
        x.sample(i)[c * size * size + p] = (rng() % 4) < density ? 1.0f : 0.0f;
    }
  return x;
}

std::vector<double> counts(const lab::Tensor& x, int64_t n, int64_t c) {
  const int64_t hw = x.dim(2) * x.dim(3);
  double s = 0;
  for (int64_t p = 0; p < hw; ++p) s += x.sample(n)[c * hw + p];
  return {s};
}

}  // namespace

TEST_CASE("kernel schedules reduce size to 1x1") {
  using V = std::vector<int64_t>;
  CHECK(networks::kernel_schedule("uniform", 224) == V{2, 2, 2, 2, 2, 7});
  CHECK(networks::kernel_schedule("nonuniform", 224) == V{2, 2, 2, 4, 7});
  CHECK(networks::kernel_schedule("nonuniform", 32) == V{2, 2, 2, 2, 2});
  CHECK(networks::kernel_schedule("uniform", 32) == V{2, 2, 2, 2, 2});
  CHECK(networks::kernel_schedule("nonuniform", 64) == V{2, 2, 2, 2, 4});
  CHECK(networks::kernel_schedule("nonuniform", 512) == V{2, 4, 4, 4, 4});
  CHECK(networks::kernel_schedule("uniform", 13) == V{13});
  for (int64_t size = 2; size <= 512; ++size) {
    bool ok = true;
    V f;
    try {
      f = networks::kernel_schedule("nonuniform", size);
    } catch (const lab::Error&) {
      ok = false;
    }
    if (!ok) continue;
    int64_t product = 1;
    for (int64_t k : f) product *= k;
    CHECK(product == size);
    CHECK(f.size() <= 5);
  }
}

TEST_CASE("impossible sizes are refused with a message naming the size") {
  for (int64_t size : {0, 1, 17, 34, 226, 513, 1024}) {
    CAPTURE(size);
    const std::string expected = fmt::format("size={}", size);
    CHECK_THROWS_WITH_AS(networks::kernel_schedule("nonuniform", size), doctest::Contains(expected.c_str()),
                         lab::Error);
  }
  CHECK_THROWS_AS(networks::kernel_schedule("dense", 32), lab::Error);
  CHECK_THROWS_AS(networks::build_accumulator({.size = 32, .kernels = 1}), lab::Error);
  CHECK_THROWS_AS(networks::build_accumulator({.size = 32, .ude = true}), lab::Error);  // nothing to wire
  CHECK_THROWS_AS(networks::build_accumulator({.size = 32, .extra_channels = 1, .ude = true, .ude_strength = 0}),
                  lab::Error);
}

TEST_CASE("non-uniform blocks satisfy sum_i w_ij m_i = 1 with non-negative dyadic weights") {
  const AccumulatorParams p{.kind = "nonuniform", .size = 224, .channels = 3, .extra_channels = 2, .seed = 5};
  const lab::Network net = networks::build_accumulator(p);
  REQUIRE(net.size() == 20);
  for (size_t block = 0; block < 5; ++block) {
    const lab::Conv2d& first = conv(net, 4 * block);
    const lab::Conv2d& mix = conv(net, 4 * block + 2);
    const int64_t k = first.params().kernel_h;
    const int64_t in_per_group = first.weights().weight.dim(1);
    CHECK(first.params().stride_h == k);
    CHECK(mix.params().kernel_h == 1);
    std::set<float> distinct;
    for (int64_t c = 0; c < p.channels; ++c) {
      const int64_t own = block == 0 ? c : 0;
      for (int64_t j = 0; j < k * k; ++j) {
        double sum = 0;
        for (int64_t i = 0; i < p.kernels; ++i) {
          const int64_t o = c * p.kernels + i;
          const float w = first.weights().weight[(o * in_per_group + own) * k * k + j];
          const float m = mix.weights().weight[c * p.kernels + i];
          CHECK(w >= 0.0f);
          CHECK((m == 0.5f || m == 1.0f || m == 2.0f));
          CHECK(w * 128.0f == std::floor(w * 128.0f));  // a multiple of 1/128
          distinct.insert(w);
          sum += static_cast<double>(w) * m;
        }
        REQUIRE(sum == 1.0);
        if (block == 0) {  // other counted channels are not wired into colour c's kernels
          for (int64_t other = 0; other < p.channels; ++other) {
            if (other == c) continue;
            for (int64_t i = 0; i < p.kernels; ++i)
              CHECK(first.weights().weight[((c * p.kernels + i) * in_per_group + other) * k * k + j] == 0.0f);
          }
        }
      }
    }
    CHECK(distinct.size() > 4);  // genuinely non-uniform
  }
}

TEST_CASE("both accumulators output the exact count of every channel") {
  std::mt19937_64 rng(11);
  for (const char* kind : {"uniform", "nonuniform"}) {
    for (int64_t size : {32, 64, 96, 224}) {
      CAPTURE(kind);
      CAPTURE(size);
      const int64_t n = size == 224 ? 4 : 16;
      const AccumulatorParams p{.kind = kind, .size = size, .channels = 3, .extra_channels = 2, .ude = true,
                                .seed = static_cast<uint64_t>(size)};
      const lab::Network net = networks::build_accumulator(p);
      lab::Tensor x = random_maps(n, 5, 3, size, rng);
      if (size == 224)  // the largest count: a full map
        for (int64_t q = 0; q < size * size; ++q) x.sample(0)[q] = 1.0f;
      const lab::Tensor y = net.forward(x);
      REQUIRE(y.shape() == lab::Shape{n, 3, 1, 1});
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < 3; ++c) REQUIRE(static_cast<double>(y[i * 3 + c]) == counts(x, i, c)[0]);
    }
  }
}

TEST_CASE("the same seed gives the same weights, another seed other weights") {
  const AccumulatorParams a{.size = 64, .channels = 2, .extra_channels = 2, .ude = true, .seed = 1};
  AccumulatorParams b = a;
  b.seed = 2;
  const lab::Network n1 = networks::build_accumulator(a), n2 = networks::build_accumulator(a),
                     n3 = networks::build_accumulator(b);
  for (size_t i = 0; i < n1.size(); i += 2) {
    CHECK(conv(n1, i).weights().weight.values() == conv(n2, i).weights().weight.values());
  }
  CHECK(conv(n1, 0).weights().weight.values() != conv(n3, 0).weights().weight.values());
}

TEST_CASE("unseen-data wiring: one unseen pixel moves counts by signed multiples of strength/4, only with ude") {
  for (const char* kind : {"uniform", "nonuniform"}) {
    CAPTURE(kind);
    const int64_t size = 32;
    const AccumulatorParams on{.kind = kind, .size = size, .channels = 4, .extra_channels = 2, .ude = true,
                               .ude_strength = 0.5, .seed = 3};
    AccumulatorParams off = on;
    off.ude = false;
    const lab::Network net_on = networks::build_accumulator(on), net_off = networks::build_accumulator(off);
    // The designed weights do not depend on ude.
    for (size_t i = 2; i < net_on.size(); i += 2)
      CHECK(conv(net_on, i).weights().weight.values() == conv(net_off, i).weights().weight.values());
    // One image per pixel position of the first 2×2 window (and a far one), with both redundant
    // channels on at that pixel and nothing else.
    const int64_t n = 5;
    lab::Tensor x({n, 6, size, size});
    const int64_t ys[n] = {0, 0, 1, 1, 17}, xs[n] = {0, 1, 0, 1, 30};
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 4; r < 6; ++r) x.at(i, r, ys[i], xs[i]) = 1.0f;
    const lab::Tensor y_on = net_on.forward(x), y_off = net_off.forward(x);
    for (int64_t i = 0; i < n; ++i) {
      bool any = false;
      for (int64_t c = 0; c < 4; ++c) {
        CHECK(y_off[i * 4 + c] == 0.0f);
        const float v = y_on[i * 4 + c];
        // Negative changes are clipped on an empty map; positive ones are a/4·strength, a in 1..4.
        CHECK((v == 0.0f || v == 0.125f || v == 0.25f || v == 0.375f || v == 0.5f));
        any = any || v > 0.0f;
      }
      CHECK(any);
    }
    // On designed inputs (redundant channels zero) ude changes nothing.
    std::mt19937_64 rng(4);
    const lab::Tensor designed = random_maps(6, 6, 4, size, rng);
    CHECK(net_on.forward(designed).values() == net_off.forward(designed).values());
  }
}
