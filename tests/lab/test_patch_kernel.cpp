// lab/nn/patch_kernel.h: the fused patch runs (a patch convolution to 6 or 8 channels, its ReLU,
// a 1×1 convolution to one channel, its ReLU) against the same runs unfused
// (lab::set_patch_kernels(false): the convolution into a tile buffer by lab::pointwise_gemm, then
// the 1×1 by its product of one row), byte for byte: every tile width, batches 1, 5 and 64, 1 and
// 2 threads, the AVX-512 and AVX2 kernels, with and without biases and each ReLU, weights and inputs with −0, +0, ±1, ±∞ and
// NaN; whole networks of such blocks (the accumulators' shape) in Network::forward; and the
// gradient's trace of such a run (its output and the signs of its ReLUs' inputs) fused and not.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "lab/core/runtime.h"
#include "lab/nn/gradient_trace.h"
#include "lab/nn/network.h"
#include "lab/nn/patch_kernel.h"
#include "lab/nn/patch_run.h"
#include "lab/nn/pointwise_gemm.h"

namespace {

using lab::Tensor;

// Values as test_pointwise_gemm.cpp draws them: normal, some exact zeros and −0, ±1, and with
// `special` a few ±∞ and NaN.
float draw(std::mt19937& rng, bool special) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  const int p = pick(rng);
  float v = p == 0 ? 0.0f : p == 1 ? -0.0f : p == 2 ? 1.0f : p == 3 ? -1.0f : normal(rng);
  if (special && pick(rng) == 0 && pick(rng) < 2) {
    const int q = pick(rng) % 3;
    v = q == 0 ? std::numeric_limits<float>::quiet_NaN()
               : q == 1 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  }
  return v;
}

Tensor draw_tensor(lab::Shape shape, std::mt19937& rng, bool special) {
  Tensor t(std::move(shape));
  for (float& v : t.values()) v = draw(rng, special);
  return t;
}

std::shared_ptr<lab::Conv2d> draw_conv(const lab::Conv2dParams& p, std::mt19937& rng, bool bias) {
  Tensor w = draw_tensor({p.out_channels, p.in_channels, p.kernel_h, p.kernel_w}, rng, false);
  Tensor b = bias ? draw_tensor({p.out_channels}, rng, false) : Tensor();
  return std::make_shared<lab::Conv2d>(p, std::move(w), std::move(b));
}

// A patch run: a kh×kw stride-(kh, kw) convolution in → out, a ReLU if relu0, a 1×1 convolution
// out → 1, a ReLU if relu1; `bias` for both convolutions.
std::vector<std::shared_ptr<lab::Layer>> block(int64_t in, int64_t out, int64_t kh, int64_t kw, bool bias, bool relu0,
                                               bool relu1, std::mt19937& rng) {
  std::vector<std::shared_ptr<lab::Layer>> layers;
  layers.push_back(draw_conv({.in_channels = in, .out_channels = out, .kernel_h = kh, .kernel_w = kw, .stride_h = kh,
                              .stride_w = kw},
                             rng, bias));
  if (relu0) layers.push_back(std::make_shared<lab::ReLU>());
  layers.push_back(draw_conv({.in_channels = out, .out_channels = 1}, rng, bias));
  if (relu1) layers.push_back(std::make_shared<lab::ReLU>());
  return layers;
}

// The patch run `layers` on x (its shape) with tiles of `tile` pixels, fused or not.
Tensor patch_run(const std::vector<std::shared_ptr<lab::Layer>>& layers, const Tensor& x, int64_t tile, bool fused) {
  std::vector<const lab::Layer*> run;
  for (const auto& l : layers) run.push_back(l.get());
  lab::Shape out = x.shape();
  for (const auto& l : layers) out = l->output_shape(out);
  Tensor y(out, 7.0f);
  lab::set_patch_kernels(fused);
  lab::Pass pass;
  lab::add_patch_run(pass, run, x.shape(), x.data(), y.data(), tile);
  pass.run();
  lab::set_patch_kernels(true);
  return y;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

template <class F>
void at_threads(const F& body) {
  const int threads = lab::Runtime::get().threads();
  for (const int t : {1, 2}) {
    CAPTURE(t);
    lab::Runtime::get().set_threads(std::min(t, lab::max_threads()));
    body();
  }
  lab::Runtime::get().set_threads(threads);
}

}  // namespace

TEST_CASE("patch kernel: fused patch runs give the bytes of the unfused ones at every tile, batch and thread count") {
  if (!lab::pointwise_kernel()) return;  // pointwise_gemm's kernel off (no AVX2 sgemm): nothing fuses
  std::mt19937 rng(21);
  struct Geometry {
    int64_t in, out, kh, kw, h, w;
  };
  // The accumulators' blocks (2×2 from 1 and 8 channels, 4×4 and 7×7 from 8 and 1) and others:
  // odd depths (3×3, 7×7 from one channel: the pair's last product), 64 column rows, 6 channels,
  // outputs of every width modulo 16 (the image's last tile padded), (the next five) rows of 32,
  // 48 and 16 windows, and rows of 10. One channel's 2×2 windows are read from the image
  // (patch_kernel_image) where rows have at least 16 windows: rows of 23, 17, 32 and 16 (a block
  // of 16 across two rows or not), and of 10 (not).
  const std::vector<Geometry> geometries{
      {1, 8, 2, 2, 30, 46}, {8, 8, 2, 2, 14, 18}, {8, 8, 2, 2, 4, 6},  {1, 8, 4, 4, 28, 36}, {8, 8, 4, 2, 12, 10},
      {1, 8, 7, 7, 21, 28}, {1, 8, 3, 3, 27, 15}, {1, 6, 2, 2, 26, 34}, {8, 6, 2, 2, 10, 38}, {1, 8, 8, 8, 24, 40},
      {3, 8, 3, 1, 18, 17}, {1, 8, 2, 1, 2, 3},   {1, 8, 2, 2, 7, 64},  {8, 8, 2, 2, 6, 96},  {1, 6, 2, 2, 10, 32},
      {3, 8, 3, 2, 9, 32},  {1, 8, 2, 2, 8, 64},  {1, 8, 2, 2, 12, 20},
  };
  int64_t compared = 0, combination = 0;
  for (const Geometry& g : geometries) {
    CAPTURE(g.in);
    CAPTURE(g.out);
    CAPTURE(g.kh);
    CAPTURE(g.kw);
    CAPTURE(g.h);
    CAPTURE(g.w);
    REQUIRE(lab::patch_kernel_fits(g.in * g.kh * g.kw, g.out));
    for (int flags = 0; flags < 8; ++flags, ++combination) {
      const bool bias = flags & 1, relu0 = flags & 2, relu1 = flags & 4;
      CAPTURE(flags);
      const auto layers = block(g.in, g.out, g.kh, g.kw, bias, relu0, relu1, rng);
      const int64_t pixels = (g.h / g.kh) * (g.w / g.kw), padded = (pixels + 15) / 16 * 16;
      for (const int64_t batch : {1, 5, 64}) {
        // Every geometry at batch 1 and 5; batch 64 for two combinations of each.
        if (batch == 64 && combination % 4 != 0) continue;
        CAPTURE(batch);
        const Tensor x = draw_tensor({batch, g.in, g.h, g.w}, rng, true);
        at_threads([&] {
          for (int64_t tile = 16; tile <= padded; tile += 16) {
            CAPTURE(tile);
            const Tensor want = patch_run(layers, x, tile, false);
            // The AVX-512 kernel where the processor has it (blocks of 32 columns, then the AVX2
            // kernel on the rest) and the AVX2 kernel alone.
            for (const bool wide : {true, false}) {
              CAPTURE(wide);
              lab::set_avx512_kernels(wide);
              CHECK(same_bytes(patch_run(layers, x, tile, true), want));
            }
            lab::set_avx512_kernels(true);
            ++compared;
          }
        });
      }
    }
  }
  CHECK(compared > 500);
}

TEST_CASE("patch kernel: weights that are not finite, with NaNs of other payloads in the input, give the unfused bytes") {
  // Where a NaN weight meets a NaN input, x86 returns one of the two by its place in the
  // instruction: the AVX-512 kernel multiplies x·w (the weight an embedded broadcast), the AVX2
  // kernel and pointwise_gemm w·x, so patch_kernel.cpp takes the AVX-512 form for finite weights
  // only. Every window has a NaN input and channel 7 NaN weights, so the output's NaN is channel
  // 7's product's (with the AVX-512 form for these weights, the input's payload instead of the
  // weight's: both checks fail). No ReLU, which would turn either NaN into +0.
  if (!lab::pointwise_kernel()) return;
  std::mt19937 rng(24);
  const auto nan = [](uint32_t payload) {
    const uint32_t bits = 0x7fc00000u | payload;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  };
  Tensor w = draw_tensor({8, 1, 2, 2}, rng, false);
  for (const size_t i : {0, 13, 20, 28, 29, 30, 31}) w.values()[i] = nan(1 + i % 2);
  w.values()[26] = std::numeric_limits<float>::infinity();
  std::vector<std::shared_ptr<lab::Layer>> layers{
      std::make_shared<lab::Conv2d>(
          lab::Conv2dParams{.in_channels = 1, .out_channels = 8, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2},
          std::move(w), draw_tensor({8}, rng, false)),
      draw_conv({.in_channels = 8, .out_channels = 1}, rng, true)};
  Tensor x = draw_tensor({3, 1, 16, 64}, rng, false);
  for (int64_t i = 0; i < x.numel(); i += 3) x.values()[static_cast<size_t>(i)] = nan(3 + static_cast<uint32_t>(i % 5));
  const Tensor want = patch_run(layers, x, 256, false);
  for (const bool wide : {true, false}) {
    CAPTURE(wide);
    lab::set_avx512_kernels(wide);
    CHECK(same_bytes(patch_run(layers, x, 256, true), want));
  }
  lab::set_avx512_kernels(true);
}

TEST_CASE("patch kernel: what does not fit stays unfused") {
  // Beyond pointwise_gemm's kernel (more than 64 column rows), or channel counts whose product
  // is not its blocks of 6 and pairs (7: a lone row below the block; 14: two blocks).
  CHECK_FALSE(lab::patch_kernel_fits(65, 8));
  CHECK_FALSE(lab::patch_kernel_fits(4, 7));
  CHECK_FALSE(lab::patch_kernel_fits(4, 14));
  CHECK_FALSE(lab::patch_kernel_fits(4, 2));
  if (!lab::pointwise_kernel()) return;
  CHECK(lab::patch_kernel_fits(64, 8));
  lab::set_patch_kernels(false);
  CHECK_FALSE(lab::patch_kernel_fits(4, 8));
  lab::set_patch_kernels(true);
  lab::set_pointwise_edges(false);  // the two-row edge by dnnl_sgemm: not the kernel's bytes
  CHECK_FALSE(lab::patch_kernel_fits(4, 8));
  lab::set_pointwise_edges(true);
}

TEST_CASE("patch kernel: accumulator-shaped networks, fused and unfused, in Network::forward") {
  std::mt19937 rng(22);
  // Blocks 2×2 (1 → 8), 2×2 (1 → 8), 4×4 (1 → 8), 3×3 (1 → 6), each 1×1 to one channel and
  // ReLUs, then flatten, on 96×96: the single-color-modulo accumulator's shape without its Linear
  // head (oneDNN's inner products, not a patch run).
  lab::Network net({1, 96, 96});
  const int64_t kernels[] = {2, 2, 4, 3};
  int index = 0;
  for (int s = 0; s < 4; ++s) {
    const int64_t k = kernels[s];
    for (const auto& layer : block(1, s == 3 ? 6 : 8, k, k, s % 2 == 1, true, true, rng))
      net.add("layers." + std::to_string(index++), layer);
  }
  net.add("flatten", std::make_shared<lab::Flatten>());
  const lab::ForwardPath saved = lab::forward_path();
  lab::set_forward_path(lab::ForwardPath{.tiles = true});
  for (const int64_t batch : {1, 5, 64}) {
    CAPTURE(batch);
    Tensor x = draw_tensor({batch, 1, 96, 96}, rng, true);
    at_threads([&] {
      for (const bool sequences : {true, false}) {
        CAPTURE(sequences);
        lab::set_tiled_sequences(sequences);
        lab::set_patch_kernels(false);
        const Tensor want = net.forward(x);
        lab::set_patch_kernels(true);
        CHECK(same_bytes(net.forward(x), want));
        // Each image alone: the bytes of its slice of the batch.
        for (int64_t i = 0; i < std::min<int64_t>(batch, 5); ++i) {
          const Tensor alone = net.forward(x.slice(i, i + 1));
          CHECK(std::memcmp(alone.data(), want.sample(i), sizeof(float) * alone.numel()) == 0);
        }
      }
    });
  }
  lab::set_tiled_sequences(true);
  lab::set_forward_path(saved);
}

TEST_CASE("patch kernel: the gradient trace's run writes the unfused run's output and ReLU signs") {
  if (!lab::pointwise_kernel()) return;
  std::mt19937 rng(23);
  // 8 and 6 channels, odd depths, outputs of several widths modulo 16 (the image's last tile
  // padded; its signs' last byte partial), with the last ReLU and without (a 1×1 convolution
  // last: no second row of signs).
  struct Geometry {
    int64_t in, out, kh, kw, h, w;
  };
  const std::vector<Geometry> geometries{{1, 8, 2, 2, 30, 46}, {1, 6, 2, 2, 26, 34}, {8, 6, 2, 2, 10, 38},
                                         {1, 8, 7, 7, 21, 28}, {3, 8, 3, 1, 18, 17}, {1, 8, 2, 1, 2, 3}};
  int64_t compared = 0;
  for (const Geometry& g : geometries)
    for (int flags = 0; flags < 4; ++flags) {
      const bool bias = flags & 1, relu1 = flags & 2;
      CAPTURE(g.out);
      CAPTURE(g.h);
      CAPTURE(flags);
      const auto layers = block(g.in, g.out, g.kh, g.kw, bias, true, relu1, rng);
      std::vector<const lab::Layer*> run;
      for (const auto& l : layers) run.push_back(l.get());
      const int64_t oh = g.h / g.kh, ow = g.w / g.kw, pixels = oh * ow, stride = lab::sign_row_bytes(pixels);
      for (const int64_t batch : {1, 5}) {
        const Tensor x = draw_tensor({batch, g.in, g.h, g.w}, rng, true);
        // The run's output and the signs of its ReLUs' inputs (both left out), fused or not.
        const auto trace = [&](bool fused, int64_t tile) {
          Tensor y({batch, 1, oh, ow}, 7.0f);
          std::vector<uint8_t> signs(static_cast<size_t>(batch * g.out * stride), 0xA5),
              signs1(static_cast<size_t>(batch * stride), 0x5A);
          std::vector<float*> outputs(run.size(), nullptr);
          outputs.back() = y.data();
          std::vector<uint8_t*> masks(run.size(), nullptr);
          masks[1] = signs.data();
          if (relu1) masks[3] = signs1.data();
          lab::set_patch_kernels(fused);
          lab::Pass pass;
          lab::add_pointwise_sign_trace_run(pass, run, x.shape(), x.data(), outputs, masks, tile);
          pass.run();
          lab::set_patch_kernels(true);
          return std::make_tuple(std::move(y), signs, signs1);
        };
        at_threads([&] {
          for (int64_t tile = 16; tile <= (pixels + 15) / 16 * 16; tile += 16) {
            CAPTURE(tile);
            const auto [y0, s0, t0] = trace(false, tile);
            const auto [y1, s1, t1] = trace(true, tile);
            CHECK(same_bytes(y1, y0));
            CHECK(s1 == s0);
            CHECK(t1 == t0);
            ++compared;
          }
        });
      }
    }
  CHECK(compared > 200);
}
