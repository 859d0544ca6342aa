// Incremental path evaluation (experiments/engine/incremental.h) against full recomputation:
// bit-identical on the designed networks, equal to float rounding on random networks with
// padding, strides and groups, for any chunking.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "datasets/environment.h"
#include "experiments/engine/incremental.h"
#include "lab/core/error.h"
#include "lab/random_nets.h"

namespace {

using experiments::PathEvaluator;
using experiments::PerturbationPath;

PerturbationPath random_path(const lab::Shape& image, int64_t per_step, unsigned seed) {
  std::mt19937 rng(seed);
  PerturbationPath path;
  path.start = testnets::random_tensor(image, rng);
  path.source = testnets::random_tensor(image, rng);
  path.order.resize(static_cast<size_t>(image[1] * image[2]));
  std::iota(path.order.begin(), path.order.end(), 0);
  std::shuffle(path.order.begin(), path.order.end(), rng);
  path.step_ends = experiments::uniform_steps(static_cast<int64_t>(path.order.size()), per_step);
  return path;
}

void check_close(const lab::Tensor& a, const lab::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    CAPTURE(i);
    REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-4));
  }
}

}  // namespace

TEST_CASE("incremental path evaluation equals full recomputation on a random convnet") {
  const lab::Network net = testnets::random_convnet(7, true, true);
  const lab::Shape image = net.input_shape();
  for (int64_t per_step : {1, 3, 64}) {
    for (int64_t chunk : {1, 5, 256}) {
      CAPTURE(per_step);
      CAPTURE(chunk);
      const PerturbationPath path = random_path(image, per_step, 11 + static_cast<unsigned>(per_step));
      PathEvaluator::Params knobs;
      knobs.max_batch = chunk;
      const PathEvaluator incremental(net, net.size(), knobs);
      CHECK(incremental.spatial_layers() == 4);
      knobs.incremental = false;
      const lab::Tensor full = PathEvaluator(net, net.size(), knobs).run(path);
      const lab::Tensor inc = incremental.run(path);
      CHECK(inc.dim(0) == path.steps() + 1);
      check_close(inc, full);
    }
  }
}

TEST_CASE("incremental evaluation handles a ReLU first, stride without overlap, and stops at any layer") {
  std::mt19937 rng(3);
  lab::Network net({2, 9, 9});
  net.add("relu0", std::make_shared<lab::ReLU>());
  // Kernel 2, stride 3: some input rows are read by no output (their changes propagate nowhere).
  net.add("conv", testnets::random_conv({.in_channels = 2, .out_channels = 3, .kernel_h = 2, .kernel_w = 2,
                                         .stride_h = 3, .stride_w = 3, .pad_h = 2, .pad_w = 1},
                                        rng));
  net.add("relu1", std::make_shared<lab::ReLU>());
  net.add("conv2", testnets::random_conv({.in_channels = 3, .out_channels = 2, .kernel_h = 3, .kernel_w = 2,
                                          .pad_h = 1},
                                         rng));
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("head", testnets::random_linear(2 * 4 * 3, 4, rng));
  for (size_t end : {size_t{2}, size_t{4}, net.size()}) {
    CAPTURE(end);
    const PerturbationPath path = random_path(net.input_shape(), 2, 5);
    PathEvaluator::Params knobs;
    knobs.max_batch = 7;
    knobs.max_elements = 3000;  // forces short chunks
    const lab::Tensor inc = PathEvaluator(net, end, knobs).run(path);
    knobs.incremental = false;
    check_close(inc, PathEvaluator(net, end, knobs).run(path));
  }
}

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

TEST_CASE("restore steps undo earlier steps exactly as full recomputation does") {
  const lab::Network net = testnets::random_convnet(4, true, true);
  PerturbationPath path = random_path(net.input_shape(), 1, 8);
  // Perturb 10 pixels, restore 6 of them, perturb 5 more, restore everything perturbed.
  std::vector<int64_t> order(path.order.begin(), path.order.begin() + 15);
  path.order.clear();
  path.step_ends.clear();
  auto add = [&](int64_t p, uint8_t restore) {
    path.order.push_back(p);
    path.step_ends.push_back(static_cast<int64_t>(path.order.size()));
    path.restore.push_back(restore);
  };
  for (int i = 0; i < 10; ++i) add(order[static_cast<size_t>(i)], 0);
  for (int i = 0; i < 6; ++i) add(order[static_cast<size_t>(i)], 1);
  for (int i = 10; i < 15; ++i) add(order[static_cast<size_t>(i)], 0);
  for (int i = 6; i < 15; ++i) add(order[static_cast<size_t>(i)], 1);
  PathEvaluator::Params knobs;
  knobs.max_batch = 4;
  const lab::Tensor inc = PathEvaluator(net, net.size(), knobs).run(path);
  knobs.incremental = false;
  check_close(inc, PathEvaluator(net, net.size(), knobs).run(path));
  // Everything restored: the last output is the start's.
  for (int64_t j = 0; j < inc.dim(1); ++j) CHECK(inc[(inc.dim(0) - 1) * inc.dim(1) + j] == doctest::Approx(inc[j]).epsilon(1e-5));
  path.restore.pop_back();
  CHECK_THROWS_AS(PathEvaluator(net, net.size()).run(path), lab::Error);
}

TEST_CASE("steps of far-apart pixels run pixel by pixel, bit-identical to full recomputation on the designed networks") {
  // 64×64, 1/64 of the pixels per step in attribution order (the default Insertion/Deletion
  // curve): a step's pixels are scattered, so the engine writes them pixel by pixel.
  lab::Options options = lab::Options::parse({"size=64"}, "-o");
  const auto env = datasets::make_environment("multi-color-sum", options);
  const lab::Network net = env->build_network();
  const datasets::Sample sample = env->generate(3, 0);
  const lab::Tensor x = env->to_input(sample.image);
  const int64_t hw = sample.gt.numel();
  PerturbationPath path;
  path.start = x;
  path.source = lab::Tensor(x.shape(), 0.0f);
  path.order.resize(static_cast<size_t>(hw));
  std::iota(path.order.begin(), path.order.end(), 0);
  std::mt19937 rng(5);
  std::shuffle(path.order.begin(), path.order.end(), rng);
  std::stable_sort(path.order.begin(), path.order.end(), [&](int64_t a, int64_t b) { return sample.gt[a] > sample.gt[b]; });
  for (const int64_t per_step : {int64_t{1}, int64_t{7}, hw / 64, hw / 4, hw}) {
    CAPTURE(per_step);
    path.step_ends = experiments::uniform_steps(hw, per_step);
    path.restore.clear();
    if (per_step == 7)  // every third step undoes its pixels: restore sub-steps must restore
      for (int64_t k = 0; k < path.steps(); ++k) path.restore.push_back(k % 3 == 2);
    PathEvaluator::Params knobs;
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

TEST_CASE("split steps agree with full recomputation on a random convnet with padding, strides and groups") {
  const lab::Network net = testnets::random_convnet(9, true, true);
  for (const int64_t per_step : {int64_t{5}, int64_t{40}}) {
    for (const int64_t chunk : {int64_t{3}, int64_t{256}}) {
      CAPTURE(per_step);
      CAPTURE(chunk);
      const PerturbationPath path = random_path(net.input_shape(), per_step, 21 + static_cast<unsigned>(per_step));
      PathEvaluator::Params knobs;
      knobs.max_batch = chunk;
      PathEvaluator::Stats stats;
      const lab::Tensor split = PathEvaluator(net, net.size(), knobs).run(path, &stats);
      knobs.incremental = false;
      check_close(split, PathEvaluator(net, net.size(), knobs).run(path));
    }
  }
}

TEST_CASE("a path that does not fit the network is refused") {
  const lab::Network net = testnets::random_convnet(1);
  PerturbationPath path = random_path(net.input_shape(), 1, 2);
  path.order[3] = 64;
  CHECK_THROWS_AS(PathEvaluator(net, net.size()).run(path), lab::Error);
  path = random_path(net.input_shape(), 1, 2);
  path.step_ends = {2, 2};
  CHECK_THROWS_AS(PathEvaluator(net, net.size()).run(path), lab::Error);
  path = random_path({2, 4, 4}, 1, 2);
  CHECK_THROWS_AS(PathEvaluator(net, net.size()).run(path), lab::Error);
}
