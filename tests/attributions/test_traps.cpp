// The trap zoo (datasets/traps.h) against the methods' promises: DeepLIFT on reused-relu sums to
// delta and equals the ground truth (multipliers per application of the shared ReLU), LRP on the
// residual trap conserves relevance across the sums and equals the ground truth, the gradient on
// the saturation trap vanishes exactly while Integrated Gradients stays complete, and on the
// max-pool trap the gradient reaches only the first white pixel of each cell (the documented tie
// rule).
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attributions/method.h"
#include "datasets/environment.h"
#include "lab/core/options.h"

namespace {

struct TrapData {
  std::unique_ptr<datasets::Environment> env;
  lab::Network net;
  attributions::Context context;
  attributions::Batch batch;
  std::vector<datasets::Sample> samples;
};

TrapData trap_data(const std::string& trap, int64_t count) {
  TrapData d;
  lab::Options o = lab::Options::parse({"size=32"}, "-o");
  d.env = datasets::make_environment(trap, o);
  d.net = d.env->build_network();
  d.context.net = &d.net;
  d.context.background = d.env->background();
  d.context.layers = d.env->default_layers();
  std::vector<lab::Tensor> xs;
  for (int64_t i = 0; i < count; ++i) {
    d.samples.push_back(d.env->generate(3, i));
    xs.push_back(d.env->to_input(d.samples.back().image).reshaped({1, 1, 32, 32}));
    d.batch.target.push_back(0);
    d.batch.seeds.push_back(static_cast<uint64_t>(i));
  }
  d.batch.x = lab::Tensor::concat(xs);
  return d;
}

attributions::Result run(const std::string& method, const std::vector<std::string>& p, const TrapData& d) {
  lab::Options options = lab::Options::parse(p, "-p");
  return attributions::make_method(method, options)->attribute(d.context, d.batch);
}

double sum_of(const lab::Tensor& t, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < t.sample_numel(); ++j) s += t.sample(n)[j];
  return s;
}

// Largest |attr − gt| over the sample's pixels.
double gt_error(const lab::Tensor& attr, int64_t n, const datasets::Sample& s) {
  double e = 0;
  for (int64_t j = 0; j < s.gt.numel(); ++j) e = std::max(e, std::abs(static_cast<double>(attr.sample(n)[j]) - s.gt[j]));
  return e;
}

}  // namespace

TEST_CASE("trap reused-relu: DeepLIFT satisfies summation-to-delta to 1e-5 and gives the ground truth") {
  const TrapData d = trap_data("reused-relu", 16);
  const attributions::Result r = run("deeplift", {}, d);
  const lab::Tensor fx = d.net.forward(d.batch.x);
  for (int64_t n = 0; n < 16; ++n) {
    CAPTURE(n);
    const double f = fx[n];  // f(baseline) = f(black) = 0
    REQUIRE(f > 0);
    CHECK(std::abs(sum_of(r.attr, n) - f) <= 1e-5 * std::max(1.0, f));
    CHECK(std::abs(r.convergence_delta[static_cast<size_t>(n)]) <= 1e-5 * std::max(1.0, f));
    CHECK(gt_error(r.attr, n, d.samples[static_cast<size_t>(n)]) <= 1e-6);
  }
}

TEST_CASE("trap residual: LRP conserves relevance to 1e-5 across the residual sums and gives the ground truth") {
  const TrapData d = trap_data("residual", 16);
  const lab::Tensor fx = d.net.forward(d.batch.x);
  for (const char* composite : {"lrp-epsilon", "lrp-zplus"}) {
    CAPTURE(composite);
    const attributions::Result r = run("lrp", {std::string("composite=") + composite}, d);
    for (int64_t n = 0; n < 16; ++n) {
      CAPTURE(n);
      const double f = fx[n];
      REQUIRE(f > 0);
      CHECK(std::abs(sum_of(r.attr, n) - f) <= 1e-5 * std::max(1.0, f));
      CHECK(gt_error(r.attr, n, d.samples[static_cast<size_t>(n)]) <= 1e-5);
    }
  }
}

TEST_CASE("trap saturation: the gradient vanishes exactly, Integrated Gradients stays complete") {
  const TrapData d = trap_data("saturation", 8);
  const attributions::Result g = run("saliency", {}, d);
  for (float v : g.attr.values()) CHECK(v == 0.0f);
  const attributions::Result ig = run("integrated-gradients", {"steps=64"}, d);
  const lab::Tensor fx = d.net.forward(d.batch.x);
  for (int64_t n = 0; n < 8; ++n) {
    CAPTURE(n);
    REQUIRE(fx[n] > 0);
    CHECK(std::abs(ig.convergence_delta[static_cast<size_t>(n)]) <= 1e-4 * fx[n]);
    CHECK(gt_error(ig.attr, n, d.samples[static_cast<size_t>(n)]) <= 1e-3);
  }
}

TEST_CASE("trap max-pool: the gradient reaches only the first white pixel (row-major) of each cell") {
  const TrapData d = trap_data("max-pool", 8);
  const attributions::Result g = run("saliency", {}, d);
  int64_t ties = 0;
  for (int64_t n = 0; n < 8; ++n) {
    const cv::Mat& im = d.samples[static_cast<size_t>(n)].image;
    for (int cy = 0; cy < 32; cy += 2)
      for (int cx = 0; cx < 32; cx += 2) {
        bool first = true;
        int whites = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) {
            const int y = cy + dy, x = cx + dx;
            const bool white = im.at<uint8_t>(y, x) == 255;
            whites += white;
            const float v = g.attr.sample(n)[y * 32 + x];
            CHECK(v == (white && first ? 1.0f : 0.0f));
            if (white) first = false;
          }
        ties += whites > 1;
      }
  }
  CHECK(ties > 20);
}
