/// @file storage.h
/// @brief Tensors whose storage is not zero-filled, and the reuse of large tensor storage.
///
/// `Tensor(shape)` zero-fills its vector, and a fresh block of memory costs a page fault per
/// 4 KiB on first touch. Layer outputs, gradients and trace activations are overwritten in full
/// right after they are made, so both are wasted where a block of the right size was just
/// released. `recycle` hands the storage of a large tensor (at least kRecycledBytes) that the
/// caller is done with to a small process-wide cache; `uninitialized` takes a block of exactly
/// the requested size from it, values left as they were, and otherwise makes a fresh one. The
/// cache holds at most kRecycledBlocks blocks and kRecycledTotal bytes (the oldest leave first).
/// A request for a size the cache does not hold empties it: the shapes of the work changed, and
/// the heap serves the fresh block from the memory of the dropped ones instead of growing (which
/// would cost new page faults). Work that repeats its shapes chunk after chunk (IG's path
/// points, SmoothGrad's samples, the perturbation batches) takes every block back.
/// Thread-safe. Tested in test_tensor.cpp.
///
/// With the environment variable ATTRLAB_POISON=1, every tensor made by `uninitialized` is
/// filled with NaN: a check that no unwritten element reaches a result (the tests and the maps
/// of `attrlab attribute` are the same with and without it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lab/core/tensor.h"

namespace lab {

/// Storage of at least this many bytes is cached by `recycle`.
inline constexpr size_t kRecycledBytes = size_t{1} << 20;
inline constexpr size_t kRecycledBlocks = 64;
inline constexpr size_t kRecycledTotal = size_t{2} << 30;

/// A tensor of `shape` whose values are unspecified: only for results whose every element is
/// written before any is read (a layer's output, a gradient, a buffer filled in full).
Tensor uninitialized(Shape shape);

/// Gives the storage of `t` to the cache when it is large (else frees it); `t` is left empty.
void recycle(Tensor& t);
void recycle(std::vector<Tensor>& ts);

/// Blocks and bytes held by the cache now (for tests).
size_t recycled_blocks();
size_t recycled_bytes();

}  // namespace lab
