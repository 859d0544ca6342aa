// The multi-color-sum model (Section 3, App. G): exact logits = logit_scale × counts over
// generated images at 32, 64 and 224, argmax = label, Propositions 3.1 and 3.2, the unseen-data
// effect, the layer table, options.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "images.h"
#include "lab/core/error.h"
#include "networks/multi_color_sum.h"

using networks::MultiColorSumParams;
using networks::Rgb;

namespace {

// Logits (the layer before the softmax) of a batch, N × colors.
lab::Tensor logits(const lab::Network& net, const lab::Tensor& x) {
  return net.forward_range(0, net.size() - 1, x);
}

int64_t argmax_row(const float* row, int64_t n) { return std::max_element(row, row + n) - row; }

bool unique_max(const std::vector<int64_t>& counts) {
  const int64_t m = *std::max_element(counts.begin(), counts.end());
  return std::count(counts.begin(), counts.end(), m) == 1;
}

}  // namespace

TEST_CASE("default model: layer names, kinds and the paper's hook layers") {
  const MultiColorSumParams p;
  CHECK(p.size == 224);
  CHECK(p.colors == 4);
  CHECK(p.background == (Rgb{20, 20, 20}));
  CHECK(p.redundant == 2);
  CHECK(p.ude);
  CHECK(p.accumulator == "nonuniform");
  CHECK(p.logit_scale == 1.0 / 256);
  const networks::Model m = networks::make_multi_color_sum(p);
  const lab::Network& net = m.network;
  CHECK(m.roles.size() == net.size());
  CHECK(net.size() == 10 + 20 + 1 + 3 + 1);
  CHECK(networks::weight_layer_count(net) == 5 + 10 + 2);
  CHECK(net.name(net.size() - 1) == "softmax");
  CHECK(net.layer(net.size() - 1).kind() == lab::LayerKind::kSoftmax);
  CHECK(net.name(net.size() - 2) == "mlp.layers.2");
  CHECK(net.layer(net.size() - 2).kind() == lab::LayerKind::kLinear);
  CHECK(net.shape_after(net.index_of("detector.layers.9")) == lab::Shape{1, 6, 224, 224});
  CHECK(net.shape_after(net.index_of("accumulator.layers.5")) == lab::Shape{1, 32, 56, 56});
  CHECK(net.shape_after(net.index_of("accumulator.layers.7")) == lab::Shape{1, 4, 56, 56});
  CHECK(net.shape_after(net.index_of("accumulator.layers.19")) == lab::Shape{1, 4, 1, 1});
  CHECK(net.output_shape(2) == lab::Shape{2, 4});
  for (const auto& [method, layer] : networks::multi_color_sum_paper_layers()) CHECK_NOTHROW(net.index_of(layer));
  // Uniform: one conv per prime factor; the hook layers are still spatial maps.
  MultiColorSumParams u;
  u.accumulator = "uniform";
  const lab::Network un = networks::build_multi_color_sum(u);
  CHECK(un.shape_after(un.index_of("accumulator.layers.5")) == lab::Shape{1, 4, 28, 28});
  CHECK(un.shape_after(un.index_of("accumulator.layers.7")) == lab::Shape{1, 4, 14, 14});
  CHECK(un.shape_after(un.index_of("accumulator.layers.11")) == lab::Shape{1, 4, 1, 1});
}

TEST_CASE("logits are logit_scale times the pixel counts exactly, and the argmax is the label") {
  struct Run {
    int64_t size, images, batch;
  };
  std::mt19937_64 rng(2024);
  int64_t checked = 0;
  for (const char* accumulator : {"nonuniform", "uniform"}) {
    for (const Run run : {Run{32, 60, 30}, Run{64, 40, 20}, Run{224, 4, 2}}) {
      CAPTURE(accumulator);
      CAPTURE(run.size);
      MultiColorSumParams p;
      p.size = run.size;
      p.accumulator = accumulator;
      p.seed = static_cast<uint64_t>(run.size);
      const lab::Network net = networks::build_multi_color_sum(p);
      for (int64_t done = 0; done < run.images; done += run.batch) {
        const testimg::ColorBatch b = testimg::color_batch(p.target_colors(), p.background, run.size, run.batch, rng);
        const lab::Tensor z = logits(net, b.x);
        const lab::Tensor prob = net.forward_range(net.size() - 1, net.size(), z);
        for (int64_t i = 0; i < run.batch; ++i) {
          for (int64_t c = 0; c < p.colors; ++c)
            REQUIRE(z[i * p.colors + c] == static_cast<float>(p.logit_scale * b.counts[i][c]));
          if (unique_max(b.counts[i])) {
            const int64_t label = argmax_row(z.data() + i * p.colors, p.colors);
            REQUIRE(b.counts[i][label] == *std::max_element(b.counts[i].begin(), b.counts[i].end()));
            REQUIRE(argmax_row(prob.data() + i * p.colors, p.colors) == label);
          }
          ++checked;
        }
      }
    }
  }
  CHECK(checked >= 200);
}

TEST_CASE("gradients after the softmax stay informative at 224x224 with the default logit_scale") {
  std::mt19937_64 rng(5);
  const MultiColorSumParams p;
  const lab::Network net = networks::build_multi_color_sum(p);
  const testimg::ColorBatch b = testimg::color_batch(p.target_colors(), p.background, 224, 2, rng);
  const lab::Trace t = net.trace(b.x);
  const size_t flatten = net.index_of("flatten");
  for (int64_t i = 0; i < 2; ++i) {
    const int64_t label = argmax_row(t.output().data() + i * p.colors, p.colors);
    CAPTURE(b.counts[i][0]);
    CAPTURE(b.counts[i][1]);
    CAPTURE(b.counts[i][2]);
    CAPTURE(b.counts[i][3]);
    CHECK(t.output()[i * p.colors + label] < 1.0f);
    lab::Tensor seed(t.output().shape(), 0.0f);
    seed[i * p.colors + label] = 1.0f;
    // d p_label / d count: positive for the label, negative for the others, all far from denormal.
    const lab::Tensor g = net.gradient(t, seed, flatten);
    for (int64_t c = 0; c < p.colors; ++c) {
      const float v = g[i * p.colors + c];
      CHECK(std::fabs(v) > 1e-12f);
      CHECK((c == label ? v > 0 : v < 0));
    }
  }
}

TEST_CASE("Propositions 3.1 and 3.2: removing any ground-truth pixel lowers its colour's logit by logit_scale") {
  std::mt19937_64 rng(31);
  for (const char* accumulator : {"nonuniform", "uniform"}) {
    CAPTURE(accumulator);
    MultiColorSumParams p;
    p.size = 32;
    p.accumulator = accumulator;
    const lab::Network net = networks::build_multi_color_sum(p);
    const testimg::ColorBatch b = testimg::color_batch(p.target_colors(), p.background, 32, 6, rng);
    const lab::Tensor z = logits(net, b.x);
    for (int64_t i = 0; i < 6; ++i) {
      // 48 ground-truth pixels of the image drawn at random, one perturbed copy each, in one batch.
      std::vector<std::pair<int64_t, int64_t>> pixels;  // (position, colour)
      for (int64_t q = 0; q < 32 * 32; ++q) {
        const Rgb c = testimg::get_pixel(b.x, i, q / 32, q % 32);
        for (int64_t k = 0; k < p.colors; ++k)
          if (c == p.target_colors()[k]) pixels.push_back({q, k});
      }
      REQUIRE(!pixels.empty());
      std::shuffle(pixels.begin(), pixels.end(), rng);
      pixels.resize(std::min<size_t>(pixels.size(), 48));
      const int64_t n = static_cast<int64_t>(pixels.size());
      lab::Tensor x({n, 3, 32, 32});
      for (int64_t j = 0; j < n; ++j) {
        std::copy(b.x.sample(i), b.x.sample(i) + b.x.sample_numel(), x.sample(j));
        testimg::set_pixel(x, j, pixels[j].first / 32, pixels[j].first % 32, p.background);
      }
      const lab::Tensor zp = logits(net, x);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < p.colors; ++c) {
          const float delta = zp[j * p.colors + c] - z[i * p.colors + c];
          REQUIRE(delta == (c == pixels[j].second ? -static_cast<float>(p.logit_scale) : 0.0f));
        }
    }
  }
}

TEST_CASE("unseen-data effect: an unseen colour moves the logits only with ude=on; the background never does") {
  std::mt19937_64 rng(77);
  for (const char* accumulator : {"nonuniform", "uniform"}) {
    CAPTURE(accumulator);
    MultiColorSumParams on;
    on.size = 32;
    on.accumulator = accumulator;
    MultiColorSumParams off = on;
    off.ude = false;
    const lab::Network net_on = networks::build_multi_color_sum(on), net_off = networks::build_multi_color_sum(off);
    const testimg::ColorBatch b = testimg::color_batch(on.target_colors(), on.background, 32, 4, rng);
    CHECK(logits(net_on, b.x).values() == logits(net_off, b.x).values());
    // Copies with one pixel (any position: background or ground truth) set to an unseen colour.
    const std::vector<Rgb> unseen = {{0, 0, 0}, {19, 20, 20}, {21, 21, 21}, {231, 25, 75}, {128, 64, 200}};
    const int64_t n = 4 * 16;
    lab::Tensor x({n, 3, 32, 32});
    std::vector<int64_t> source(n), replaced(n, -1);  // replaced: the target colour overwritten, or -1
    for (int64_t j = 0; j < n; ++j) {
      source[j] = j / 16;
      std::copy(b.x.sample(source[j]), b.x.sample(source[j]) + b.x.sample_numel(), x.sample(j));
      const int64_t y = testimg::uniform(rng, 0, 31), xx = testimg::uniform(rng, 0, 31);
      for (int64_t c = 0; c < on.colors; ++c)
        if (testimg::get_pixel(x, j, y, xx) == on.target_colors()[c]) replaced[j] = c;
      testimg::set_pixel(x, j, y, xx, unseen[static_cast<size_t>(j) % unseen.size()]);
    }
    const lab::Tensor base_on = logits(net_on, b.x), base_off = logits(net_off, b.x);
    const lab::Tensor z_on = logits(net_on, x), z_off = logits(net_off, x);
    for (int64_t j = 0; j < n; ++j) {
      CAPTURE(j);
      bool changed = false;
      for (int64_t c = 0; c < on.colors; ++c) {
        changed = changed || z_on[j * on.colors + c] != base_on[source[j] * on.colors + c];
        // Without ude the unseen pixel counts for nothing: only a replaced target pixel is missing.
        const float d = base_off[source[j] * on.colors + c] - z_off[j * on.colors + c];
        CHECK(d == (c == replaced[j] ? static_cast<float>(on.logit_scale) : 0.0f));
      }
      CHECK(changed);
    }
    // A canvas of background: all logits exactly 0 (ude on); a (0, 0, 0) canvas: not, unless ude is off.
    lab::Tensor canvas({2, 3, 32, 32}, 0.0f);
    std::fill(canvas.sample(0), canvas.sample(0) + canvas.sample_numel(), 20.0f);
    const lab::Tensor zc_on = logits(net_on, canvas), zc_off = logits(net_off, canvas);
    bool black_moves = false;
    for (int64_t c = 0; c < on.colors; ++c) {
      CHECK(zc_on[c] == 0.0f);
      CHECK(zc_off[on.colors + c] == 0.0f);
      black_moves = black_moves || zc_on[on.colors + c] != 0.0f;
    }
    CHECK(black_moves);
  }
}

TEST_CASE("options: parsing, validation and a JSON round trip") {
  lab::Options o = lab::Options::parse({"size=64", "colors=6", "background=1,2,3", "redundant=3", "ude=off",
                                        "ude-strength=0.25", "accumulator=uniform", "seed=18446744073709551615",
                                        "logit-scale=0.0625", "kernels=4", "other=1"},
                                       "-o");
  const auto& schema = MultiColorSumParams::schema();
  const MultiColorSumParams p = schema.read(o);
  CHECK(p.size == 64);
  CHECK(p.colors == 6);
  CHECK(p.background == (Rgb{1, 2, 3}));
  CHECK(p.redundant == 3);
  CHECK_FALSE(p.ude);
  CHECK(p.ude_strength == 0.25);
  CHECK(p.accumulator == "uniform");
  CHECK(p.seed == UINT64_MAX);
  CHECK(p.logit_scale == 0.0625);
  CHECK(p.kernels == 4);
  CHECK(o.unread() == std::vector<std::string>{"other"});
  CHECK(p.target_colors().size() == 6);
  lab::Options back = lab::Options::from_json(schema.to_json(p), "-o");
  CHECK(schema.to_json(schema.read(back)) == schema.to_json(p));
  CHECK_NOTHROW(back.finish());

  auto refuse = [](std::vector<std::string> items, const char* text) {
    CAPTURE(text);
    lab::Options bad = lab::Options::parse(items, "-o");
    CHECK_THROWS_WITH_AS(MultiColorSumParams::schema().read(bad), doctest::Contains(text), lab::Error);
  };
  refuse({"background=1,2"}, "background=1,2");
  refuse({"background=1,2,256"}, "background=1,2,256");
  refuse({"background=230,25,75"}, "background=230,25,75");
  refuse({"colors=13"}, "colors");
  refuse({"colors=1"}, "colors");
  refuse({"size=17"}, "size=17");
  refuse({"size=1000"}, "size=1000");
  refuse({"logit-scale=0.01"}, "-o logit-scale=0.01: must be a power of two");
  refuse({"ude=maybe"}, "ude");
  refuse({"redundant=0"}, "redundant");  // ude is on by default and needs a channel to wire
  refuse({"accumulator=dense"}, "accumulator");
  refuse({"seed=-1"}, "-o seed=-1: must be an integer in 0..18446744073709551615");
  refuse({"ude-strength=0"}, "-o ude-strength=0: must be a finite number in (0, 1024]");
  lab::Options zero = lab::Options::parse({"redundant=0", "ude=off"}, "-o");
  CHECK_NOTHROW(MultiColorSumParams::schema().read(zero));
}

TEST_CASE("a (0, 0, 0) canvas at 224x224: spurious counts bounded by ude_strength and linear in it") {
  MultiColorSumParams p;
  CHECK(p.ude_strength == 0.0625);
  const lab::Tensor black({1, 3, 224, 224}, 0.0f);
  auto canvas_counts = [&](double strength) {
    MultiColorSumParams q = p;
    q.ude_strength = strength;
    const lab::Network net = networks::build_multi_color_sum(q);
    lab::Tensor z = net.forward_range(0, net.size() - 1, black);
    for (int64_t c = 0; c < z.numel(); ++c) z[c] = static_cast<float>(z[c] / q.logit_scale);
    return z.values();
  };
  const std::vector<float> base = canvas_counts(p.ude_strength);
  // The README's numbers (seed 0).
  CHECK(base == std::vector<float>{15.3125f, 0.0f, 116.375f, 1960.0f});
  // Each 2×2 window of unseen pixels adds at most 4·ude_strength to a count.
  for (float v : base) CHECK(v <= 112 * 112 * 4 * p.ude_strength);
  // ReLU networks are positively homogeneous in the unseen-data weights: 4× the strength, 4× the counts.
  const std::vector<float> quadruple = canvas_counts(4 * p.ude_strength);
  for (size_t c = 0; c < base.size(); ++c) CHECK(quadruple[c] == 4 * base[c]);
}
