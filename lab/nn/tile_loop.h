/// @file tile_loop.h
/// @brief The loop over the pixel tiles of a batch shared by the tiled runs (lab/nn/layers.cpp's
/// pointwise and patch runs, their traces and backward; lab/nn/network.cpp's tiled LRP), and the
/// tile size. Its own header, included by those two files only, so that changing it rebuilds
/// nothing else.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/nn/patch_run.h"

namespace lab {

/// The L2 cache of one core in bytes: sysconf, else sysfs ("2048K"), else 1 MiB (network.cpp).
int64_t l2_cache_bytes();

/// Pixels per tile (a multiple of 16, at least 64) such that `pair` channels of it fill a quarter
/// of L2 (network.cpp).
int64_t tile_of_pair(int64_t pair);

/// Pixels per tile of a patch run or a lone patch convolution: a thread's whole scratch (the
/// column tile of `rows` rows and two tile buffers of the `widest` layer, layers.cpp's
/// tile_buffers) in a quarter of L2. (Sized as a pointwise run's pair, by the column tile and the
/// convolution's output alone, multi-color-sum's first patch run took 1,168 pixels and its forward
/// 1.15–1.2 times as long as at 128 to 896.)
inline int64_t tile_of_patch(int64_t rows, int64_t widest) { return tile_of_pair(rows + 2 * widest); }

/// Below this many floats of tile buffers in all (the batch's pixels times the floats per pixel
/// of `scratch`), for_each_tile runs on the calling thread alone: waking the other threads and
/// the barrier at the end of a parallel region cost more than such work (single-color-modulo's
/// last accumulator blocks, on 49 or 1 pixels per image). 2^16: at 2^17, single-color-modulo's
/// gradient, in sub-batches of 2 images, ran its runs at 56 × 56 on one thread (0.046 against
/// 0.041 ms per image at batch 32, session 20).
inline constexpr int64_t kSerialTileFloats = int64_t{1} << 16;

/// Calls body(n, p0, width, buffer) for every tile of `tile` pixels (width: fewer for the last) of
/// every image n of a batch of `batch` images of `pixels` pixels, the tiles spread over the OpenMP
/// threads; buffer: `scratch` floats of the calling thread. body returns false if an sgemm failed.
/// Small work (kSerialTileFloats floats touched: the batch's pixels times `per_pixel`, by default
/// the floats per pixel of `scratch`) runs on the calling thread as an OpenMP team of one: body
/// sees what it sees at one thread (a dnnl_sgemm inside runs on one thread either way), so the
/// bytes are the same (not with lab::set_onednn_forward(true), patch_run.h).
template <class Body>
void for_each_tile(int64_t batch, int64_t pixels, int64_t tile, int64_t scratch, const Body& body,
                   int64_t per_pixel = 0) {
  const int64_t tiles = (pixels + tile - 1) / tile, jobs = batch * tiles;
  const int64_t work = batch * pixels * (per_pixel > 0 ? per_pixel : scratch / tile);
  const bool serial = (jobs < 2 || work < kSerialTileFloats) && !onednn_forward();
  const OmpThreads one(serial, 1);
  std::atomic<int> failed{0};
#pragma omp parallel if (!serial)
  {
    // Uninitialised: every step writes a tile buffer (and the column tile) before reading it.
    const std::unique_ptr<float[]> buffer = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(scratch));
#pragma omp for schedule(static)
    for (int64_t job = 0; job < jobs; ++job) {
      const int64_t n = job / tiles, p0 = (job % tiles) * tile;
      if (!body(n, p0, std::min(tile, pixels - p0), buffer.get())) failed = 1;
    }
  }
  LAB_CHECK(failed == 0, "oneDNN sgemm failed in a pointwise run");
}

}  // namespace lab
