/// @file tile_loop.h
/// @brief The loop over the pixel tiles of a batch shared by the tiled runs (lab/nn/layers.cpp's
/// pointwise and patch runs, their traces and backward; lab/nn/network.cpp's tiled LRP). Its own
/// header, included by those two files only, so that changing it rebuilds nothing else.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "lab/core/error.h"

namespace lab {

/// Calls body(n, p0, width, buffer) for every tile of `tile` pixels (width: fewer for the last) of
/// every image n of a batch of `batch` images of `pixels` pixels, the tiles spread over the OpenMP
/// threads; buffer: `scratch` floats of the calling thread. body returns false if an sgemm failed.
template <class Body>
void for_each_tile(int64_t batch, int64_t pixels, int64_t tile, int64_t scratch, const Body& body) {
  const int64_t tiles = (pixels + tile - 1) / tile, jobs = batch * tiles;
  std::atomic<int> failed{0};
#pragma omp parallel
  {
    std::vector<float> buffer(static_cast<size_t>(scratch));
#pragma omp for schedule(static)
    for (int64_t job = 0; job < jobs; ++job) {
      const int64_t n = job / tiles, p0 = (job % tiles) * tile;
      if (!body(n, p0, std::min(tile, pixels - p0), buffer.data())) failed = 1;
    }
  }
  LAB_CHECK(failed == 0, "oneDNN sgemm failed in a pointwise run");
}

}  // namespace lab
