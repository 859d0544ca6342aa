// The forward paths the tests compare with the plain layer-by-layer forward (lab::ForwardPath).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

#include "lab/core/runtime.h"
#include "lab/nn/network.h"

namespace testnets {

/// The plain path: every layer its own primitive, in the forward, the trace and the backward.
inline constexpr lab::ForwardPath kPlainPath{.tiles = false, .relu_post_op = false, .inference = false,
                                             .backprop_tiles = false};

/// Runs `body` under every other forward path (tiles; ReLU post-ops; inference primitives; all
/// three), each at 1 and 2 threads, then restores the path and the thread count.
inline void for_each_forward_path(const std::function<void()>& body) {
  const lab::ForwardPath saved = lab::forward_path();
  const int threads = lab::Runtime::get().threads();
  for (const lab::ForwardPath path : {lab::ForwardPath{.tiles = true}, lab::ForwardPath{.tiles = false, .relu_post_op = true},
                                      lab::ForwardPath{.tiles = false, .inference = true},
                                      lab::ForwardPath{.tiles = true, .relu_post_op = true, .inference = true}}) {
    CAPTURE(path.tiles);
    CAPTURE(path.relu_post_op);
    CAPTURE(path.inference);
    lab::set_forward_path(path);
    for (const int t : {1, 2}) {
      CAPTURE(t);
      lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
      body();
    }
    lab::Runtime::get().set_threads(threads);
  }
  lab::set_forward_path(saved);
}

/// Runs `body` at 1 and 2 threads, each with and without sub-batches; then restores both.
inline void at_threads_and_budgets(const std::function<void()>& body) {
  const int threads = lab::Runtime::get().threads();
  for (const int t : {1, 2}) {
    CAPTURE(t);
    lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
    for (const int64_t budget : {int64_t{0}, int64_t{-1}}) {
      CAPTURE(budget);
      lab::set_sub_batch_budget(budget);
      body();
    }
  }
  lab::Runtime::get().set_threads(threads);
  lab::set_sub_batch_budget(-1);
}

}  // namespace testnets
