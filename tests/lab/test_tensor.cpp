// lab::Tensor (lab/core/tensor.h): row-major N×C×H×W indexing, slices, stacks and
// concatenations as copies in batch order, reshapes that keep the values, the finiteness check;
// uninitialised tensors and the storage cache (lab/core/storage.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>

#include "lab/core/storage.h"
#include "lab/core/tensor.h"

namespace {

/// A tensor whose value at flat index j is j.
lab::Tensor iota(lab::Shape shape) {
  lab::Tensor t(std::move(shape));
  std::iota(t.data(), t.data() + t.numel(), 0.0f);
  return t;
}

}  // namespace

TEST_CASE("tensor: shape, row-major 4-d indexing, samples") {
  const lab::Tensor t = iota({2, 3, 4, 5});
  CHECK(t.rank() == 4);
  CHECK(t.numel() == 120);
  CHECK(t.batch() == 2);
  CHECK(t.dim(-1) == 5);
  CHECK(t.sample_numel() == 60);
  CHECK(t.sample_shape() == lab::Shape{3, 4, 5});
  // ((n·C + c)·H + h)·W + w
  CHECK(t.at(1, 2, 3, 4) == 119.0f);
  CHECK(t.at(1, 0, 2, 1) == static_cast<float>(((1 * 3 + 0) * 4 + 2) * 5 + 1));
  CHECK(t.sample(1)[0] == 60.0f);
  CHECK(lab::Tensor({2, 2}, 1.5f).values() == std::vector<float>(4, 1.5f));
}

TEST_CASE("tensor: slice, stack and concat copy in batch order; reshape keeps the values") {
  const lab::Tensor t = iota({4, 2, 3});
  const lab::Tensor middle = t.slice(1, 3);
  CHECK(middle.shape() == lab::Shape{2, 2, 3});
  CHECK(middle[0] == 6.0f);
  CHECK(middle[11] == 17.0f);
  CHECK(t.slice(2, 2).numel() == 0);

  const lab::Tensor stacked = lab::Tensor::stack({iota({2, 3}), lab::Tensor({2, 3}, -1.0f)});
  CHECK(stacked.shape() == lab::Shape{2, 2, 3});
  CHECK(stacked[5] == 5.0f);
  CHECK(stacked[6] == -1.0f);

  const lab::Tensor joined = lab::Tensor::concat({t.slice(0, 1), t.slice(1, 4)});
  CHECK(joined.shape() == t.shape());
  CHECK(joined.values() == t.values());

  const lab::Tensor flat = t.reshaped({4, 6});
  CHECK(flat.shape() == lab::Shape{4, 6});
  CHECK(flat.values() == t.values());
  lab::Tensor same = t;
  same.reshape({24});
  CHECK(same.values() == t.values());
}

TEST_CASE("tensor: fill and the finiteness check") {
  lab::Tensor t = iota({3, 3});
  CHECK(t.all_finite());
  t[4] = std::numeric_limits<float>::infinity();
  CHECK_FALSE(t.all_finite());
  t[4] = std::nanf("");
  CHECK_FALSE(t.all_finite());
  t.fill(2.0f);
  CHECK(t.all_finite());
  CHECK(t.values() == std::vector<float>(9, 2.0f));
}

TEST_CASE("storage: a recycled block comes back for a tensor of its size; another size empties the cache") {
  // 2 × 512 × 512 floats = 2 MiB, above kRecycledBytes; the test runs on one thread.
  const lab::Shape big{2, 1, 512, 512};
  REQUIRE(static_cast<size_t>(lab::numel(big)) * sizeof(float) >= lab::kRecycledBytes);
  const bool poisoned = std::getenv("ATTRLAB_POISON") != nullptr;

  lab::Tensor a = iota(big);
  const float* block = a.data();
  lab::recycle(a);
  CHECK(a.empty());
  CHECK(a.shape().empty());
  CHECK(lab::recycled_blocks() >= 1);
  const size_t held = lab::recycled_blocks();
  CHECK(lab::recycled_bytes() >= static_cast<size_t>(lab::numel(big)) * sizeof(float));

  // Its own size takes it, with the old values (no zero-fill).
  lab::Tensor b = lab::uninitialized(big);
  CHECK(b.shape() == big);
  CHECK(b.data() == block);
  CHECK(lab::recycled_blocks() == held - 1);
  if (poisoned)
    CHECK(std::isnan(b[12345]));
  else
    CHECK(b[12345] == 12345.0f);

  // Small tensors are never cached.
  lab::Tensor small = iota({4});
  lab::recycle(small);
  CHECK(small.empty());
  CHECK(lab::recycled_blocks() == held - 1);
  CHECK(lab::uninitialized({4}).numel() == 4);

  // A size the cache does not hold empties it; a fresh large tensor is zero, as the heap gives it.
  lab::recycle(b);
  CHECK(lab::recycled_blocks() == held);
  const lab::Tensor other = lab::uninitialized({3, 1, 512, 512});
  CHECK(other.shape() == lab::Shape{3, 1, 512, 512});
  CHECK(lab::recycled_blocks() == 0);
  CHECK(lab::recycled_bytes() == 0);
  const lab::Tensor fresh = lab::uninitialized(big);
  if (!poisoned) CHECK(std::all_of(fresh.data(), fresh.data() + fresh.numel(), [](float v) { return v == 0.0f; }));
}
