// The trap zoo's environments (datasets/traps.h, networks/traps.h): on many generated images each
// network outputs exactly its designed score, the score and ground truth follow the stated
// equations (checked here from the pixels, independently of the environment), every pixel's
// ground truth is its Shapley value in the network's own game (computed by enumerating the
// subsets of each 2×2 cell), generation is a pure function, and odd sizes are refused.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "datasets/environment.h"
#include "datasets/traps.h"
#include "lab/core/error.h"
#include "lab/nn/canonize.h"
#include "networks/traps.h"

namespace {

std::unique_ptr<datasets::Environment> make(const std::string& name, const std::vector<std::string>& items) {
  lab::Options o = lab::Options::parse(items, "-o");
  return datasets::make_environment(name, o);
}

lab::Tensor batch_of(const datasets::Environment& env, const std::vector<cv::Mat>& images) {
  std::vector<lab::Tensor> xs;
  for (const cv::Mat& im : images) xs.push_back(env.to_input(im).reshaped({1, 1, env.image_size(), env.image_size()}));
  return lab::Tensor::concat(xs);
}

bool white(const cv::Mat& im, int y, int x) { return im.at<uint8_t>(y, x) == 255; }

// The designed score, written out per trap from the pixels (networks/traps.h).
int64_t expected_score(const std::string& trap, const cv::Mat& im) {
  int64_t s = 0;
  const int n = im.rows;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      if (trap == "max-pool") {
        if (y % 2 == 0 && x % 2 == 0)
          s += white(im, y, x) || white(im, y, x + 1) || white(im, y + 1, x) || white(im, y + 1, x + 1);
      } else if (trap == "interaction") {
        if (x % 2 == 0) s += white(im, y, x) && white(im, y, x + 1);
      } else if (trap == "position") {
        s += x < n / 2 && white(im, y, x);
      } else {
        s += white(im, y, x);
      }
    }
  return s;
}

// Shapley values of the white pixels of 2×2 cell (cy, cx) in the game v(S) = network score of the
// image with only S of the cell's white pixels left white. Every trap's score is a sum of terms
// inside one 2×2 cell, so these are the pixels' Shapley values in the whole image's game.
std::vector<double> cell_shapley(const datasets::Environment& env, const lab::Network& net, const cv::Mat& im, int cy,
                                 int cx, std::vector<std::pair<int, int>>& players) {
  players.clear();
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx)
      if (white(im, cy + dy, cx + dx)) players.emplace_back(cy + dy, cx + dx);
  const int k = static_cast<int>(players.size());
  std::vector<cv::Mat> images;
  for (int mask = 0; mask < (1 << k); ++mask) {
    cv::Mat v = im.clone();
    for (int j = 0; j < k; ++j)
      if (!(mask >> j & 1)) v.at<uint8_t>(players[static_cast<size_t>(j)].first, players[static_cast<size_t>(j)].second) = 0;
    images.push_back(v);
  }
  const lab::Tensor out = net.forward(batch_of(env, images));
  std::vector<double> phi(static_cast<size_t>(k), 0.0);
  auto fact = [](int m) { double f = 1; for (int i = 2; i <= m; ++i) f *= i; return f; };
  for (int j = 0; j < k; ++j)
    for (int mask = 0; mask < (1 << k); ++mask) {
      if (mask >> j & 1) continue;
      const int size = __builtin_popcount(static_cast<unsigned>(mask));
      const double weight = fact(size) * fact(k - size - 1) / fact(k);
      phi[static_cast<size_t>(j)] += weight * (static_cast<double>(out[mask | (1 << j)]) - out[mask]);
    }
  return phi;
}

}  // namespace

TEST_CASE("every trap network computes its designed score exactly on generated images") {
  for (const std::string& trap : networks::trap_names()) {
    CAPTURE(trap);
    const auto env = make(trap, {"size=32"});
    const lab::Network net = env->build_network();
    std::vector<cv::Mat> images;
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < 64; ++i) {
      const datasets::Sample s = env->generate(5, i);
      images.push_back(s.image);
      labels.push_back(s.label);
      REQUIRE(s.label == expected_score(trap, s.image));
      CHECK(s.counts == std::vector<int64_t>{s.label});
      double total = 0;
      for (int64_t p = 0; p < s.gt.numel(); ++p) total += s.gt[p];
      CHECK(total == doctest::Approx(static_cast<double>(s.label)).epsilon(1e-6));  // max-pool has thirds
    }
    const lab::Tensor out = net.forward(batch_of(*env, images));
    REQUIRE(out.shape() == lab::Shape{64, 1});
    int64_t nonzero = 0;
    for (int64_t i = 0; i < 64; ++i) {
      CHECK(out[i] == static_cast<float>(labels[static_cast<size_t>(i)]));
      CHECK(env->predicted_label(out.sample(i)) == labels[static_cast<size_t>(i)]);
      nonzero += labels[static_cast<size_t>(i)] > 0;
    }
    CHECK(nonzero > 48);  // the images exercise the design (interaction's pairs are rarest)
  }
}

TEST_CASE("every trap's ground truth is the Shapley value of each pixel in the network's game") {
  for (const std::string& trap : networks::trap_names()) {
    CAPTURE(trap);
    const auto env = make(trap, {"size=16", "patches=2"});
    const lab::Network net = env->build_network();
    bool tie = false, shared = false;
    for (int64_t i = 0; i < 4; ++i) {
      const datasets::Sample s = env->generate(9, i);
      for (int cy = 0; cy < 16; cy += 2)
        for (int cx = 0; cx < 16; cx += 2) {
          std::vector<std::pair<int, int>> players;
          const std::vector<double> phi = cell_shapley(*env, net, s.image, cy, cx, players);
          for (size_t j = 0; j < players.size(); ++j) {
            const float g = s.gt[players[j].first * 16 + players[j].second];
            CHECK(phi[j] == doctest::Approx(g).epsilon(1e-6));
            tie = tie || (g > 0 && g < 1 && trap == "max-pool");
            shared = shared || (g == 0.5f && trap == "interaction");
          }
        }
      // Black pixels carry nothing.
      for (int64_t p = 0; p < s.gt.numel(); ++p)
        if (s.image.data[p] == 0) CHECK(s.gt[p] == 0.0f);
    }
    if (trap == "max-pool") CHECK(tie);
    if (trap == "interaction") CHECK(shared);
  }
}

TEST_CASE("trap position: white pixels of the right half carry no ground truth and no score") {
  const auto env = make("position", {"size=32"});
  bool right = false;
  for (int64_t i = 0; i < 8; ++i) {
    const datasets::Sample s = env->generate(1, i);
    for (int y = 0; y < 32; ++y)
      for (int x = 16; x < 32; ++x) {
        right = right || white(s.image, y, x);
        CHECK(s.gt[y * 32 + x] == 0.0f);
        CHECK(s.gt_smooth[y * 32 + x] == 0.0f);
      }
  }
  CHECK(right);
}

TEST_CASE("trap batch-norm: the canonized network is the stated one and computes the same scores") {
  const auto env = make("batch-norm", {"size=16"});
  const lab::Network net = env->build_network();
  const lab::Network canon = lab::merge_batch_norm(net);
  REQUIRE(canon.size() == net.size() - 2);
  const auto& conv = dynamic_cast<const lab::Conv2d&>(canon.layer(canon.index_of("conv")));
  CHECK(conv.weights().weight[0] == 2.0f);
  CHECK(conv.weights().bias[0] == -1.0f);
  const auto& sum = dynamic_cast<const lab::Conv2d&>(canon.layer(canon.index_of("sum")));
  for (float w : sum.weights().weight.values()) CHECK(w == 1.0f);
  CHECK(sum.weights().bias[0] == 0.0f);
  std::vector<cv::Mat> images;
  for (int64_t i = 0; i < 16; ++i) images.push_back(env->generate(2, i).image);
  const lab::Tensor x = batch_of(*env, images);
  const lab::Tensor a = net.forward(x), b = canon.forward(x);
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
}

TEST_CASE("trap environments: generation is a pure function, options round-trip, odd sizes are refused") {
  for (const std::string& trap : networks::trap_names()) {
    CAPTURE(trap);
    const auto env = make(trap, {"size=24", "patches=3"});
    const datasets::Sample a = env->generate(4, 7), b = env->generate(4, 7);
    CHECK(cv::countNonZero(a.image != b.image) == 0);
    const auto again = datasets::environment_from_json(trap, env->options());
    CHECK(again->options() == env->options());
    CHECK(cv::countNonZero(again->generate(4, 7).image != a.image) == 0);
    CHECK(env->count_pixels(a.image) == a.counts);
    CHECK(env->default_layers().at("gradcam") == env->default_layers().at("iba"));
    CHECK_NOTHROW(env->build_network().index_of(env->default_layers().at("gradcam")));
  }
  try {
    make("max-pool", {"size=31"});
    FAIL("size=31 accepted");
  } catch (const lab::Error& e) {
    CHECK(std::string(e.what()).find("size=31") != std::string::npos);
  }
}
