#include "lab/core/storage.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>

#include "lab/core/error.h"

namespace lab {

namespace {

struct Block {
  std::vector<float> values;
};

struct Cache {
  std::mutex mutex;
  std::vector<Block> blocks;  // oldest first
  size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = [] {  // never destroyed: tensors may be recycled during static destruction
    auto* made = new Cache;
    made->blocks.reserve(kRecycledBlocks + 1);
    return made;
  }();
  return *c;
}

bool large(size_t n) { return n * sizeof(float) >= kRecycledBytes; }

// A cached block of exactly n floats holding whatever it held; else an empty vector, and the
// cache is emptied (its blocks are freed after the lock is released, so the heap can serve the
// fresh block from them).
std::vector<float> take(size_t n) {
  Cache& c = cache();
  std::vector<float> found;
  std::vector<Block> dropped;
  std::lock_guard lock(c.mutex);
  for (size_t i = c.blocks.size(); i-- > 0;) {  // the newest first
    if (c.blocks[i].values.size() != n) continue;
    found = std::move(c.blocks[i].values);
    c.blocks.erase(c.blocks.begin() + static_cast<std::ptrdiff_t>(i));
    c.bytes -= n * sizeof(float);
    return found;
  }
  dropped.swap(c.blocks);
  c.blocks.reserve(kRecycledBlocks + 1);
  c.bytes = 0;
  return found;  // `dropped` is freed after `lock` is released (reverse order of declaration)
}

bool poison() {
  static const bool on = [] {
    const char* v = std::getenv("ATTRLAB_POISON");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

}  // namespace

Tensor uninitialized(Shape shape) {
  for (int64_t d : shape) LAB_CHECK(d >= 0, "negative dimension in {}", to_string(shape));
  const size_t n = static_cast<size_t>(numel(shape));
  std::vector<float> values;
  if (large(n)) values = take(n);
  if (values.size() != n) values = std::vector<float>(n);  // a fresh block: zero, as the heap gives it
  if (poison()) std::fill(values.begin(), values.end(), std::numeric_limits<float>::quiet_NaN());
  return Tensor(std::move(shape), std::move(values));
}

void recycle(Tensor& t) {
  std::vector<float> values = std::move(t.values());
  t = Tensor();
  const size_t n = values.size();
  if (!large(n) || n * sizeof(float) > kRecycledTotal) return;
  Cache& c = cache();
  std::vector<Block> dropped;
  dropped.reserve(kRecycledBlocks + 1);
  std::lock_guard lock(c.mutex);
  size_t drop = 0;
  size_t bytes = c.bytes + n * sizeof(float);
  while (drop < c.blocks.size() && (c.blocks.size() - drop >= kRecycledBlocks || bytes > kRecycledTotal))
    bytes -= c.blocks[drop++].values.size() * sizeof(float);
  for (size_t i = 0; i < drop; ++i) dropped.push_back(std::move(c.blocks[i]));
  c.blocks.erase(c.blocks.begin(), c.blocks.begin() + static_cast<std::ptrdiff_t>(drop));
  c.blocks.push_back(Block{std::move(values)});
  c.bytes = bytes;
}

void recycle(std::vector<Tensor>& ts) {
  for (Tensor& t : ts) recycle(t);
}

size_t recycled_blocks() {
  std::lock_guard lock(cache().mutex);
  return cache().blocks.size();
}

size_t recycled_bytes() {
  std::lock_guard lock(cache().mutex);
  return cache().bytes;
}

}  // namespace lab
