// The incremental evaluation engine (lab/nn/incremental.h) against full recomputation on random
// networks with padding, strides and groups, for any chunking: paths of cumulative perturbations
// (with restore steps and split steps) and batches of independent local changes (Occlusion's
// windows), including the fall-back of graph networks. The designed networks' bit-identity is
// tested with the environments (tests/experiments/test_metrics_incremental.cpp,
// tests/attributions/test_perturbation_occlusion.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "lab/core/error.h"
#include "lab/nn/incremental.h"
#include "random_nets.h"

namespace {

using lab::LocalChanges;
using lab::PathEvaluator;
using lab::PerturbationPath;

PerturbationPath random_path(const lab::Shape& image, int64_t per_step, unsigned seed) {
  std::mt19937 rng(seed);
  PerturbationPath path;
  path.start = testnets::random_tensor(image, rng);
  path.source = testnets::random_tensor(image, rng);
  path.order.resize(static_cast<size_t>(image[1] * image[2]));
  std::iota(path.order.begin(), path.order.end(), 0);
  std::shuffle(path.order.begin(), path.order.end(), rng);
  path.step_ends = lab::uniform_steps(static_cast<int64_t>(path.order.size()), per_step);
  return path;
}

void check_close(const lab::Tensor& a, const lab::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    CAPTURE(i);
    REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-4));
  }
}

/// Occlusion-like boxes: every position of an h×w window (stride s, the last clipped at the
/// border) over channels [c0, c1), plus a few odd boxes (one pixel, a corner, the whole map).
LocalChanges random_changes(const lab::Shape& image, int64_t h, int64_t w, int64_t s, int64_t c0, int64_t c1,
                            unsigned seed) {
  std::mt19937 rng(seed);
  LocalChanges changes;
  changes.reference = testnets::random_tensor(image, rng);
  changes.source = testnets::random_tensor(image, rng);
  for (int64_t y = 0; y < image[1]; y += s)
    for (int64_t x = 0; x < image[2]; x += s)
      changes.boxes.push_back({c0, c1, y, std::min(y + h, image[1]), x, std::min(x + w, image[2])});
  changes.boxes.push_back({0, image[0], 3, 4, 5, 6});
  changes.boxes.push_back({0, 1, image[1] - 1, image[1], image[2] - 1, image[2]});
  changes.boxes.push_back({0, image[0], 0, image[1], 0, image[2]});
  return changes;
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
TEST_CASE("independent local changes equal full recomputation on a random convnet, for any chunking") {
  const lab::Network net = testnets::random_convnet(5, true, true);
  const lab::Shape image = net.input_shape();
  for (const auto& [h, s, c0, c1] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, 2, 0, 2}, {2, 3, 1, 2}, {5, 3, 0, 1}}) {
    const LocalChanges changes = random_changes(image, h, h, s, c0, c1, 7 + static_cast<unsigned>(h));
    for (const int64_t chunk : {int64_t{1}, int64_t{4}, int64_t{256}}) {
      CAPTURE(h);
      CAPTURE(s);
      CAPTURE(chunk);
      PathEvaluator::Params knobs;
      knobs.max_batch = chunk;
      PathEvaluator::Stats inc_stats, full_stats;
      const lab::Tensor inc = PathEvaluator(net, net.size(), knobs).run(changes, &inc_stats);
      knobs.incremental = false;
      const lab::Tensor full = PathEvaluator(net, net.size(), knobs).run(changes, &full_stats);
      CHECK(inc.dim(0) == changes.variants() + 1);
      check_close(inc, full);
      // Row v + 1 really is variant v: its own full forward pass.
      const LocalChanges::Box& b = changes.boxes[2];
      lab::Tensor input = changes.reference.reshaped({1, image[0], image[1], image[2]});
      for (int64_t c = b.c0; c < b.c1; ++c)
        for (int64_t y = b.y0; y < b.y1; ++y)
          for (int64_t x = b.x0; x < b.x1; ++x) {
            const int64_t i = (c * image[1] + y) * image[2] + x;
            input[i] = changes.source[i];
          }
      const lab::Tensor one = net.forward(input);
      for (int64_t k = 0; k < one.numel(); ++k) CHECK(inc[3 * inc.dim(1) + k] == doctest::Approx(one[k]).epsilon(1e-4));
      // The whole-map box costs a full pass; the others run on windows.
      CHECK(inc_stats.full_passes == 1);
      CHECK(inc_stats.sub_steps == changes.variants() - 1);
      CHECK(full_stats.full_passes == changes.variants());
    }
  }
}

TEST_CASE("local changes: a ReLU first, stride without overlap, tight memory, and any end layer") {
  std::mt19937 rng(4);
  lab::Network net({2, 9, 9});
  net.add("relu0", std::make_shared<lab::ReLU>());
  net.add("conv", testnets::random_conv({.in_channels = 2, .out_channels = 3, .kernel_h = 2, .kernel_w = 2,
                                         .stride_h = 3, .stride_w = 3, .pad_h = 2, .pad_w = 1},
                                        rng));
  net.add("relu1", std::make_shared<lab::ReLU>());
  net.add("conv2", testnets::random_conv({.in_channels = 3, .out_channels = 2, .kernel_h = 3, .kernel_w = 2,
                                          .pad_h = 1},
                                         rng));
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("head", testnets::random_linear(2 * 4 * 3, 4, rng));
  const LocalChanges changes = random_changes(net.input_shape(), 2, 1, 1, 0, 2, 3);
  for (size_t end : {size_t{1}, size_t{2}, size_t{4}, net.size()}) {
    CAPTURE(end);
    PathEvaluator::Params knobs;
    knobs.max_batch = 7;
    knobs.max_elements = 600;  // forces short chunks
    const PathEvaluator inc(net, end, knobs);
    CHECK(inc.spatial_layers() == std::min<size_t>(end, 4));
    const lab::Tensor a = inc.run(changes);
    knobs.incremental = false;
    check_close(a, PathEvaluator(net, end, knobs).run(changes));
  }
}

TEST_CASE("local changes on a graph network run as full passes") {
  std::mt19937 rng(6);
  lab::Network net({2, 6, 6});
  net.add("c1", testnets::random_conv({.in_channels = 2, .out_channels = 3, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng));
  net.add("a", std::make_shared<lab::ReLU>());
  net.add("c2", testnets::random_conv({.in_channels = 3, .out_channels = 3, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1}, rng));
  net.add("sum", std::make_shared<lab::Add>(), {"c2", "a"});
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("fc", testnets::random_linear(108, 3, rng));
  REQUIRE_FALSE(net.is_chain());
  const LocalChanges changes = random_changes(net.input_shape(), 2, 2, 2, 0, 2, 9);
  const PathEvaluator inc(net, net.size());
  CHECK(inc.spatial_layers() == 0);
  PathEvaluator::Stats stats;
  const lab::Tensor a = inc.run(changes, &stats);
  CHECK(stats.full_passes == changes.variants());
  CHECK(stats.sub_steps == 0);
  PathEvaluator::Params knobs;
  knobs.incremental = false;
  CHECK(a.values() == PathEvaluator(net, net.size(), knobs).run(changes).values());
}

TEST_CASE("local changes that do not fit the network are refused") {
  const lab::Network net = testnets::random_convnet(1);
  LocalChanges changes = random_changes(net.input_shape(), 2, 2, 2, 0, 2, 1);
  for (const LocalChanges::Box bad : {LocalChanges::Box{0, 3, 0, 1, 0, 1}, LocalChanges::Box{0, 1, 2, 2, 0, 1},
                                      LocalChanges::Box{0, 1, 0, 1, 7, 9}, LocalChanges::Box{-1, 1, 0, 1, 0, 1}}) {
    LocalChanges c = changes;
    c.boxes.push_back(bad);
    CHECK_THROWS_AS(PathEvaluator(net, net.size()).run(c), lab::Error);
  }
  std::mt19937 rng(2);
  changes.source = testnets::random_tensor({2, 4, 4}, rng);
  CHECK_THROWS_AS(PathEvaluator(net, net.size()).run(changes), lab::Error);
}
