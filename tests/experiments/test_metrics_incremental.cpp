// Incremental path evaluation (lab/nn/incremental.h, named in experiments/engine/incremental.h)
// against full recomputation: bit-identical on the designed networks (the engine's tests on
// random networks are in tests/lab/test_incremental.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <string>
#include <random>

#include "datasets/environment.h"
#include "experiments/engine/incremental.h"
#include "lab/core/error.h"

namespace {

using experiments::PathEvaluator;
using experiments::PerturbationPath;

/// A multi-color-sum network of side `size`, its sample (seed, index), and a path from that
/// sample's input to zeros over every pixel in an order shuffled by `shuffle` (steps unset).
struct ShuffledPath {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  datasets::Sample sample;
  PerturbationPath path;
  int64_t hw = 0;

  ShuffledPath(int64_t size, uint64_t seed, int64_t index, unsigned shuffle) {
    lab::Options options = lab::Options::parse({"size=" + std::to_string(size)}, "-o");
    env = datasets::make_environment("multi-color-sum", options);
    net = env->build_network();
    sample = env->generate(seed, index);
    const lab::Tensor x = env->to_input(sample.image);
    hw = sample.gt.numel();
    path.start = x;
    path.source = lab::Tensor(x.shape(), 0.0f);
    path.order.resize(static_cast<size_t>(hw));
    std::iota(path.order.begin(), path.order.end(), 0);
    std::mt19937 rng(shuffle);
    std::shuffle(path.order.begin(), path.order.end(), rng);
  }
};

}  // namespace

TEST_CASE("incremental curves are bit-identical to full recomputation on the designed networks") {
  for (const char* env_name : {"multi-color-sum", "single-color-modulo"}) {
    CAPTURE(env_name);
    lab::Options options = lab::Options::parse({"size=16"}, "-o");
    const auto env = datasets::make_environment(env_name, options);
    const lab::Network net = env->build_network();
    const datasets::Sample sample = env->generate(5, 0);
    const lab::Tensor x = env->to_input(sample.image);
    PerturbationPath path;
    path.start = x;
    path.source = lab::Tensor(x.shape(), 0.0f);
    // Ground-truth pixels first, then the rest: the curve moves through every regime.
    const int64_t hw = sample.gt.numel();
    path.order.resize(static_cast<size_t>(hw));
    std::iota(path.order.begin(), path.order.end(), 0);
    std::stable_sort(path.order.begin(), path.order.end(),
                     [&](int64_t a, int64_t b) { return sample.gt[a] > sample.gt[b]; });
    path.step_ends = experiments::uniform_steps(hw, 1);
    for (const bool insertion : {false, true}) {
      CAPTURE(insertion);
      if (insertion) std::swap(path.start, path.source);
      PathEvaluator::Params knobs;
      knobs.max_batch = 100;
      const PathEvaluator inc(net, net.size(), knobs);
      CHECK(inc.spatial_layers() > 0);
      knobs.incremental = false;
      const lab::Tensor a = inc.run(path);
      const lab::Tensor b = PathEvaluator(net, net.size(), knobs).run(path);
      REQUIRE(a.shape() == b.shape());
      CHECK(a.values() == b.values());
      // The path really changes the output.
      CHECK(std::any_of(a.values().begin(), a.values().end(), [&](float v) { return v != a[0]; }));
    }
  }
}

TEST_CASE("steps of far-apart pixels run pixel by pixel, bit-identical to full recomputation on the designed networks") {
  // 64×64, 1/64 of the pixels per step in attribution order (the default Insertion/Deletion
  // curve): a step's pixels are scattered, so the engine writes them pixel by pixel.
  ShuffledPath s(64, 3, 0, 5);
  const lab::Network& net = s.net;
  const datasets::Sample& sample = s.sample;
  const int64_t hw = s.hw;
  PerturbationPath& path = s.path;
  std::stable_sort(path.order.begin(), path.order.end(), [&](int64_t a, int64_t b) { return sample.gt[a] > sample.gt[b]; });
  for (const int64_t per_step : {int64_t{1}, int64_t{7}, hw / 64, hw / 4, hw}) {
    CAPTURE(per_step);
    path.step_ends = experiments::uniform_steps(hw, per_step);
    path.restore.clear();
    if (per_step == 7)  // every third step undoes its pixels: restore sub-steps must restore
      for (int64_t k = 0; k < path.steps(); ++k) path.restore.push_back(k % 3 == 2);
    // From the input: the split is weighed against the steps' rectangles through the colour
    // detector too (from the cut, where those layers cost nothing per step, a scattered step's
    // whole-map rectangle is a cheap full pass and the cost model takes it).
    PathEvaluator::Params knobs;
    knobs.assemble_at_cut = false;
    CHECK(PathEvaluator(net, net.size(), knobs).run(path).values() == PathEvaluator(net, net.size()).run(path).values());
    PathEvaluator::Stats split_stats, whole_stats, full_stats;
    const lab::Tensor split = PathEvaluator(net, net.size(), knobs).run(path, &split_stats);
    knobs.split_steps = false;
    const lab::Tensor whole = PathEvaluator(net, net.size(), knobs).run(path, &whole_stats);
    knobs.incremental = false;
    const lab::Tensor full = PathEvaluator(net, net.size(), knobs).run(path, &full_stats);
    REQUIRE(split.shape() == full.shape());
    CHECK(split.values() == full.values());
    CHECK(whole.values() == full.values());
    CHECK(whole_stats.sub_steps == path.steps());
    CHECK(full_stats.sub_steps == path.steps());
    CHECK(split_stats.sub_steps >= path.steps());
    CHECK(split_stats.sub_steps <= hw);
    // 64 pixels far apart per step: pixel by pixel; one pixel per step: nothing to split; the
    // whole map in one step: one full pass.
    if (per_step == hw / 64) CHECK(split_stats.sub_steps > 4 * path.steps());
    if (per_step == 1) CHECK(split_stats.sub_steps == path.steps());
    if (per_step == hw) CHECK(split_stats.sub_steps == 1);
  }
}


TEST_CASE("paths from the activation after the pixel-wise layers equal paths from the input and full passes") {
  // Multi-color-sum's colour detector (its first 10 layers) is pixel-wise: the evaluator starts
  // its paths there. Deletion and insertion orders, single- and many-pixel steps, restore steps.
  for (const int64_t size : {int64_t{16}, int64_t{32}}) {
    CAPTURE(size);
    ShuffledPath s(size, 4, 1, 11);
    const lab::Network& net = s.net;
    const int64_t hw = s.hw;
    PerturbationPath& path = s.path;
    for (const int64_t per_step : {int64_t{1}, int64_t{5}, hw / 8}) {
      CAPTURE(per_step);
      path.step_ends = experiments::uniform_steps(hw, per_step);
      path.restore.clear();
      if (per_step == 5)
        for (int64_t k = 0; k < path.steps(); ++k) path.restore.push_back(k % 4 == 3);
      for (const bool insertion : {false, true}) {
        CAPTURE(insertion);
        PerturbationPath p = path;
        if (insertion) std::swap(p.start, p.source);
        PathEvaluator::Params knobs;
        knobs.max_batch = 37;
        const PathEvaluator at_cut(net, net.size(), knobs);
        CHECK(at_cut.path_cut() == 10);
        knobs.assemble_at_cut = false;
        const PathEvaluator at_input(net, net.size(), knobs);
        CHECK(at_input.path_cut() == 0);
        knobs.incremental = false;
        const PathEvaluator full(net, net.size(), knobs);
        const lab::Tensor a = at_cut.run(p), b = at_input.run(p), c = full.run(p);
        REQUIRE(a.shape() == c.shape());
        CHECK(a.values() == b.values());
        CHECK(a.values() == c.values());
        // The output before the softmax too (end < size).
        const PathEvaluator logits(net, net.size() - 1, PathEvaluator::Params{});
        knobs.assemble_at_cut = true;
        const lab::Tensor d = logits.run(p), e = PathEvaluator(net, net.size() - 1, knobs).run(p);
        CHECK(d.values() == e.values());
      }
    }
  }
}
