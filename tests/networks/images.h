// Test-local image makers: random patches of target colours (or white pixels) on the background,
// with their exact pixel counts. Each patch is a random rectangle or disc whose pixels take the
// patch's colour with probability 1/2 (as in the paper's App. F.1, G.1), drawn in order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "lab/core/tensor.h"
#include "networks/palette.h"

namespace testimg {

inline int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// Marks a random rectangle or disc with side in [min_side, max_side] in a size×size mask.
inline std::vector<uint8_t> random_region(std::mt19937_64& rng, int64_t size, int64_t min_side, int64_t max_side) {
  std::vector<uint8_t> region(static_cast<size_t>(size * size), 0);
  const int64_t side = uniform(rng, min_side, max_side);
  const int64_t y0 = uniform(rng, 0, size - side), x0 = uniform(rng, 0, size - side);
  const bool disc = uniform(rng, 0, 1) == 1;
  const double r = side / 2.0;
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x) {
      const double dy = y + 0.5 - r, dx = x + 0.5 - r;
      if (!disc || dy * dy + dx * dx <= r * r) region[static_cast<size_t>((y0 + y) * size + x0 + x)] = 1;
    }
  return region;
}

struct ColorBatch {
  lab::Tensor x;                             // N×3×size×size, RGB 0..255
  std::vector<std::vector<int64_t>> counts;  // per image, per target colour
};

inline void set_pixel(lab::Tensor& x, int64_t n, int64_t y, int64_t xx, networks::Rgb c) {
  x.at(n, 0, y, xx) = c.r, x.at(n, 1, y, xx) = c.g, x.at(n, 2, y, xx) = c.b;
}

inline networks::Rgb get_pixel(const lab::Tensor& x, int64_t n, int64_t y, int64_t xx) {
  return {static_cast<uint8_t>(x.at(n, 0, y, xx)), static_cast<uint8_t>(x.at(n, 1, y, xx)),
          static_cast<uint8_t>(x.at(n, 2, y, xx))};
}

// `n` images: one patch per target colour on `background`; counts are recounted from the pixels.
inline ColorBatch color_batch(const std::vector<networks::Rgb>& colours, networks::Rgb background, int64_t size,
                              int64_t n, std::mt19937_64& rng) {
  ColorBatch b{lab::Tensor({n, 3, size, size}), {}};
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) set_pixel(b.x, i, y, x, background);
    for (const networks::Rgb& c : colours) {
      const auto region = random_region(rng, size, std::max<int64_t>(2, size / 8), size / 2);
      for (int64_t p = 0; p < size * size; ++p)
        if (region[static_cast<size_t>(p)] && uniform(rng, 0, 1)) set_pixel(b.x, i, p / size, p % size, c);
    }
    std::vector<int64_t> counts(colours.size(), 0);
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x)
        for (size_t c = 0; c < colours.size(); ++c) counts[c] += get_pixel(b.x, i, y, x) == colours[c];
    b.counts.push_back(counts);
  }
  return b;
}

struct GrayBatch {
  lab::Tensor x;                // N×1×size×size, white = 1
  std::vector<int64_t> counts;  // white pixels per image
};

// `n` images: `patches` patches of Bernoulli(1/2) white pixels on black, sides in [2, max_side].
inline GrayBatch gray_batch(int64_t size, int64_t n, int64_t patches, int64_t max_side, std::mt19937_64& rng) {
  GrayBatch b{lab::Tensor({n, 1, size, size}), {}};
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < patches; ++k) {
      const auto region = random_region(rng, size, 2, max_side);
      for (int64_t p = 0; p < size * size; ++p)
        if (region[static_cast<size_t>(p)] && uniform(rng, 0, 1)) b.x.at(i, 0, p / size, p % size) = 1.0f;
    }
    int64_t count = 0;
    for (int64_t p = 0; p < size * size; ++p) count += b.x.sample(i)[p] == 1.0f;
    b.counts.push_back(count);
  }
  return b;
}

}  // namespace testimg
