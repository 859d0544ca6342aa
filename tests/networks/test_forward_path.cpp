// Forward paths (lab/nn/network.h, ForwardPath): the environments' forward with pointwise tiles,
// ReLU post-ops and inference primitives gives the bytes of the plain layer-by-layer forward
// (memcmp; the −0 of a ReLU post-op never reaches these outputs: the next layers add biases or
// other inputs), at the sizes the tests use, on designed images, on the same images moved off the
// integers (as the attribution methods' interpolations and noise do), at 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "images.h"
#include "lab/forward_paths.h"
#include "lab/core/runtime.h"
#include "lab/nn/gradient_trace.h"
#include "networks/multi_color_sum.h"
#include "networks/single_color_modulo.h"

namespace {

struct Env {
  std::string name;
  lab::Network net;
  lab::Tensor x;
};

// The designed images, then the same images scaled by a random factor in [0, 1) per pixel and
// with uniform noise in [-8, 8) added (values off the integers, some out of [0, 255]).
lab::Tensor with_off_grid(const lab::Tensor& designed, std::mt19937_64& rng) {
  const int64_t n = designed.dim(0);
  lab::Shape shape = designed.shape();
  shape[0] = 2 * n;
  lab::Tensor x(shape);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f), noise(-8.0f, 8.0f);
  const int64_t half = designed.numel();
  for (int64_t i = 0; i < half; ++i) {
    x[i] = designed[i];
    x[half + i] = designed[i] * unit(rng) + noise(rng);
  }
  return x;
}

// multi-color-sum (both accumulators, ude on and off) and single-color-modulo at 32, 64 and 224,
// each on designed images and the same images off the integers.
std::vector<Env> environments(std::mt19937_64& rng) {
  std::vector<Env> envs;
  for (const int64_t size : {32, 64, 224}) {
    const int64_t images = size == 224 ? 2 : 3;
    for (const char* accumulator : {"nonuniform", "uniform"}) {
      for (const bool ude : {true, false}) {
        networks::MultiColorSumParams p;
        p.size = size;
        p.accumulator = accumulator;
        p.ude = ude;
        p.seed = static_cast<uint64_t>(size);
        const auto batch = testimg::color_batch(p.target_colors(), p.background, size, images, rng);
        envs.push_back({fmt::format("multi-color-sum {} {} ude={}", size, accumulator, ude),
                        networks::build_multi_color_sum(p), with_off_grid(batch.x, rng)});
      }
    }
    networks::SingleColorModuloParams q;
    q.size = size;
    const auto gray = testimg::gray_batch(size, images, 4, size / 2, rng);
    envs.push_back({fmt::format("single-color-modulo {}", size), networks::build_single_color_modulo(q),
                    with_off_grid(gray.x, rng)});
  }
  return envs;
}

// A seed for env's batch: every output unit's random mix in [-1, 1), as a method's.
lab::Tensor random_mix(const Env& env, std::mt19937_64& rng) {
  lab::Tensor seed(env.net.output_shape(env.x.dim(0)));
  std::uniform_real_distribution<float> mix(-1.0f, 1.0f);
  for (float& v : seed.values()) v = mix(rng);
  return seed;
}

}  // namespace

TEST_CASE("forward paths give the bytes of the layer-by-layer forward on every environment") {
  std::mt19937_64 rng(77);
  const std::vector<Env> envs = environments(rng);
  const lab::ForwardPath saved = lab::forward_path();
  int64_t compared = 0;
  for (const Env& env : envs) {
    CAPTURE(env.name);
    lab::set_forward_path(testnets::kPlainPath);
    const lab::Tensor plain = env.net.forward(env.x);
    const lab::Trace trace = env.net.trace(env.x);
    REQUIRE(std::memcmp(plain.data(), trace.output().data(), sizeof(float) * plain.numel()) == 0);
    // From a middle layer on, as forward_from runs it.
    const size_t from = env.net.size() / 2;
    testnets::for_each_forward_path([&] {
      const lab::Tensor y = env.net.forward(env.x);
      REQUIRE(y.shape() == plain.shape());
      CHECK(std::memcmp(y.data(), plain.data(), sizeof(float) * y.numel()) == 0);
      const lab::Tensor rest = env.net.forward_range(from + 1, env.net.size(), trace.after(from));
      CHECK(std::memcmp(rest.data(), plain.data(), sizeof(float) * y.numel()) == 0);
      ++compared;
    });
  }
  lab::set_forward_path(saved);
  CHECK(compared == static_cast<int64_t>(envs.size()) * 8);
}

// Guided backprop or deconvnet of a chain one layer at a time, as Network::backward carried them
// before their ReLUs were steps of its tiled runs: the rule's clip (std::max(v, 0.0f)) of the
// whole signal at each ReLU, then (guided) oneDNN's ReLU backward-data; every other layer's
// backward-data. A graph: Network::backward's graph path, which does that node by node.
lab::Tensor clip_then_backward_data(const lab::Network& net, const lab::Trace& full, lab::Tensor s,
                                    const lab::PreparedRules& rules) {
  if (!net.is_chain()) return net.backward(full, s, rules);
  for (size_t i = net.size(); i-- > 0;) {
    const lab::RuleKind kind = rules.layers[i].rule.kind;
    if (kind == lab::RuleKind::kGuided || kind == lab::RuleKind::kDeconv)
      for (float& v : s.values()) v = std::max(v, 0.0f);
    if (kind != lab::RuleKind::kDeconv) s = net.layer(i).backward_data(full.acts[i], full.acts[i + 1], s);
  }
  return s;
}

// Samples i of a batch of `batch` taken from x's images in turn (sample i is image i % k).
lab::Tensor cycled(const lab::Tensor& x, int64_t batch) {
  lab::Shape shape = x.shape();
  shape[0] = batch;
  lab::Tensor out(shape);
  const int64_t per = x.sample_numel();
  for (int64_t i = 0; i < batch; ++i) std::memcpy(out.sample(i), x.sample(i % x.dim(0)), sizeof(float) * per);
  return out;
}

TEST_CASE("every activation of every environment is batch- and thread-invariant") {
  // The patch convolutions computed one way (lab/nn/patch_run.h), and every other layer as before:
  // each image of the environments' batches (designed and off-grid, at 32, 64 and 224) gives the
  // same bytes alone, in a batch of 5 and in a batch of 64 (the images in turn), at 1 and 2
  // threads: the forward (patch runs and tiles), the full trace (at 224 the batch of 64 of
  // multi-color-sum only through the gradient's trace, whose full trace would take 3 GB), the
  // gradient's trace (its activations and sign bits), and the maps of the gradient and LRP-ε (the
  // patch convolutions' backward-data is oneDNN's, per image) for each image's own random mix of
  // the outputs; at 32 and 64 also the maps of the other LRP composites (z⁺, ε-plus, α-β with
  // α = 2, β = 1) and of guided backprop and deconvnet. (LRP-z⁺, ε-plus and α-β differed here in
  // the signed zeros of the input map: lrp() left out a term whose part of x, x⁻, was zero in the
  // whole batch, so an image without negative values had it alone but not beside an off-grid
  // image; now a term counts for an image as it does alone.)
  std::mt19937_64 rng(79);
  const std::vector<Env> envs = environments(rng);
  const int threads = lab::Runtime::get().threads();
  const auto same_sample = [](const lab::Tensor& batch, int64_t i, const lab::Tensor& alone) {
    return alone.sample_numel() == batch.sample_numel() &&
           std::memcmp(batch.sample(i), alone.data(), sizeof(float) * alone.numel()) == 0;
  };
  int64_t compared = 0;
  for (const Env& env : envs) {
    CAPTURE(env.name);
    const int64_t k = env.x.dim(0);
    const lab::Tensor seeds = random_mix(env, rng);
    std::vector<lab::PreparedRules> rules;
    for (const char* name : {"gradient", "lrp-epsilon"})
      rules.push_back(lab::prepare(env.net, lab::make_composite(name)));
    if (env.x.dim(2) < 224) {
      for (const char* name : {"lrp-zplus", "lrp-epsilon-plus", "guided-backprop", "deconvnet"})
        rules.push_back(lab::prepare(env.net, lab::make_composite(name)));
      rules.push_back(lab::prepare(env.net, lab::make_composite("lrp-alpha-beta", {.alpha = 2.0, .beta = 1.0})));
    }
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      // Each image alone.
      std::vector<lab::Tensor> forward;
      std::vector<lab::Trace> full, lean;
      std::vector<std::vector<lab::Tensor>> maps(static_cast<size_t>(k));
      for (int64_t i = 0; i < k; ++i) {
        const lab::Tensor one = env.x.slice(i, i + 1);
        forward.push_back(env.net.forward(one));
        full.push_back(env.net.trace(one));
        lean.push_back(lab::trace_for_gradient(env.net, one));
        for (const lab::PreparedRules& r : rules)
          maps[static_cast<size_t>(i)].push_back(env.net.backward(full.back(), seeds.slice(i, i + 1), r));
      }
      for (const int64_t batch : {int64_t{5}, int64_t{64}}) {
        CAPTURE(batch);
        const lab::Tensor x = cycled(env.x, batch);
        const lab::Tensor seed = cycled(seeds, batch);
        const lab::Tensor y = env.net.forward(x);
        const lab::Trace g = lab::trace_for_gradient(env.net, x);
        const bool whole = batch < 64 || env.x.dim(2) < 224 || env.name.starts_with("single-color-modulo");
        lab::Trace f;
        if (whole) f = env.net.trace(x);
        // Without the full trace only the gradient (LRP would recompute the detector's 3 GB).
        const size_t map_rules = whole ? rules.size() : 1;
        std::vector<lab::Tensor> batch_maps;
        for (size_t r = 0; r < map_rules; ++r) batch_maps.push_back(env.net.backward(whole ? f : g, seed, rules[r]));
        for (int64_t n = 0; n < batch; ++n) {
          CAPTURE(n);
          const size_t i = static_cast<size_t>(n % k);
          CHECK(same_sample(y, n, forward[i]));
          for (size_t a = 1; a < g.acts.size(); ++a) {
            CAPTURE(a);
            if (whole) CHECK(same_sample(f.acts[a], n, full[i].acts[a]));
            REQUIRE(g.acts[a].empty() == lean[i].acts[a].empty());
            if (!g.acts[a].empty()) CHECK(same_sample(g.acts[a], n, lean[i].acts[a]));
            // The sign bits of an omitted ReLU input: the batch's rows, image by image.
            const size_t w = a - 1;
            if (w < g.workspaces.size() && !g.workspaces[w].empty() && g.acts[w].empty()) {
              const lab::Shape& in = full[i].acts[w].shape();
              const int64_t row = in[1] * lab::sign_row_bytes(in[2] * in[3]);  // one image's sign bytes
              REQUIRE(static_cast<int64_t>(g.workspaces[w].size()) * 4 >= row * batch);
              const auto* bytes = reinterpret_cast<const uint8_t*>(g.workspaces[w].data());
              CHECK(std::memcmp(bytes + n * row, lean[i].workspaces[w].data(), static_cast<size_t>(row)) == 0);
            }
          }
          for (size_t r = 0; r < map_rules; ++r) {
            CAPTURE(r);
            CHECK(same_sample(batch_maps[r], n, maps[i][r]));
          }
        }
        ++compared;
      }
    }
    lab::Runtime::get().set_threads(threads);
  }
  CHECK(compared == static_cast<int64_t>(envs.size()) * 4);
}

TEST_CASE("backprop tiles give the bytes of the layer-by-layer trace and backward on every environment") {
  // The gradient of every output unit's random mix (as a method's seed), guided backprop and
  // deconvnet, to the input, on the trace of each path and on trace_for_gradient's; guided
  // backprop and deconvnet against their clip and backward-data layer by layer; at 1 and 2
  // threads.
  std::mt19937_64 rng(78);
  const std::vector<Env> envs = environments(rng);
  const lab::ForwardPath saved = lab::forward_path();
  const int threads = lab::Runtime::get().threads();
  const auto same = [](const lab::Tensor& a, const lab::Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
  };
  int64_t compared = 0;
  for (const Env& env : envs) {
    CAPTURE(env.name);
    const lab::Tensor seed = random_mix(env, rng);
    const lab::PreparedRules guided = lab::prepare(env.net, lab::make_composite("guided-backprop"));
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = false});
    const lab::Trace plain = env.net.trace(env.x);
    const lab::Tensor gradient = env.net.gradient(plain, seed);
    const lab::Tensor guided_signal = clip_then_backward_data(env.net, plain, seed, guided);
    const lab::PreparedRules deconv = lab::prepare(env.net, lab::make_composite("deconvnet"));
    const lab::Tensor deconv_signal = clip_then_backward_data(env.net, plain, seed, deconv);
    CHECK(same(env.net.backward(plain, seed, guided), guided_signal));
    CHECK(same(env.net.backward(plain, seed, deconv), deconv_signal));
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = true});
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      const lab::Trace trace = env.net.trace(env.x);
      for (size_t a = 0; a < trace.acts.size(); ++a) {
        CAPTURE(a);
        REQUIRE(same(trace.acts[a], plain.acts[a]));
      }
      CHECK(same(env.net.gradient(trace, seed), gradient));
      CHECK(same(env.net.backward(trace, seed, guided), guided_signal));
      CHECK(same(env.net.backward(trace, seed, deconv), deconv_signal));
      // The gradient's trace (lab/nn/gradient_trace.h): the detector's inner activations left
      // out, recomputed tile by tile in the backward; with and without sub-batches.
      for (const int64_t budget : {int64_t{0}, int64_t{-1}}) {
        CAPTURE(budget);
        lab::set_sub_batch_budget(budget);
        const lab::Trace lean = lab::trace_for_gradient(env.net, env.x);
        int64_t omitted = 0;
        for (size_t a = 0; a < lean.acts.size(); ++a) {
          CAPTURE(a);
          if (lean.acts[a].empty()) ++omitted;
          else REQUIRE(same(lean.acts[a], plain.acts[a]));
        }
        if (env.name.starts_with("multi-color-sum")) CHECK(omitted > 0);  // the colour detector's run
        CHECK(same(env.net.gradient(lean, seed), gradient));
        CHECK(same(env.net.backward(lean, seed, guided), guided_signal));
        CHECK(same(env.net.backward(lean, seed, deconv), deconv_signal));
      }
      lab::set_sub_batch_budget(-1);
      ++compared;
    }
    lab::Runtime::get().set_threads(threads);
  }
  lab::set_forward_path(saved);
  CHECK(compared == static_cast<int64_t>(envs.size()) * 2);
}

TEST_CASE("LRP-epsilon through the detector's pointwise runs tile by tile gives the layer-by-layer bytes on every environment") {
  // With backprop tiles Network::backward takes LRP-ε through each pointwise run (the colour
  // detector's 1×1 convolutions under LRP-ε, its ReLUs under the pass rule) tile by tile; every
  // LRP composite's map of every output unit's random mix, to the input, is the bytes of the
  // layer-by-layer backward without them (lrp-epsilon the tiled one; the others, whose rules
  // need z from more than the recorded output, still layer by layer), on the full trace; at 1
  // and 2 threads, with and without sub-batches.
  std::mt19937_64 rng(80);
  const std::vector<Env> envs = environments(rng);
  const lab::ForwardPath saved = lab::forward_path();
  const std::vector<const char*> names{"lrp-epsilon", "lrp-zplus", "lrp-alpha-beta", "lrp-epsilon-plus"};
  int64_t compared = 0;
  for (const Env& env : envs) {
    CAPTURE(env.name);
    const lab::Tensor seed = random_mix(env, rng);
    std::vector<lab::PreparedRules> rules;
    for (const char* name : names) rules.push_back(lab::prepare(env.net, lab::make_composite(name)));
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = false});
    const lab::Trace plain = env.net.trace(env.x);
    std::vector<lab::Tensor> want;
    for (const lab::PreparedRules& r : rules) want.push_back(env.net.backward(plain, seed, r));
    lab::set_forward_path(lab::ForwardPath{.backprop_tiles = true});
    testnets::at_threads_and_budgets([&] {
      const lab::Trace trace = env.net.trace(env.x);
      for (size_t r = 0; r < rules.size(); ++r) {
        CAPTURE(names[r]);
        const lab::Tensor map = env.net.backward(trace, seed, rules[r]);
        CHECK((map.shape() == want[r].shape() &&
               std::memcmp(map.data(), want[r].data(), sizeof(float) * map.numel()) == 0));
        ++compared;
      }
    });
  }
  lab::set_forward_path(saved);
  CHECK(compared == static_cast<int64_t>(envs.size()) * 4 * 4);
}
