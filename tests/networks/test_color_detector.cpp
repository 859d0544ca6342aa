// Colour detector (eqs. 4, 5, 14, 15; Fig. 15): target colours fire their channel, the background
// fires nothing, every other colour fires exactly the redundant channels.
#include <doctest/doctest.h>

#include <random>
#include <set>

#include "lab/core/error.h"
#include "networks/color_detector.h"
#include "networks/palette.h"

using networks::Rgb;

namespace {

// Runs the detector on a 1×n "image" of colours; returns n × channels.
std::vector<std::vector<float>> detect(const lab::Network& net, const std::vector<Rgb>& colours) {
  const int64_t n = static_cast<int64_t>(colours.size());
  lab::Tensor x({1, 3, 1, n});
  for (int64_t i = 0; i < n; ++i) {
    x.at(0, 0, 0, i) = colours[static_cast<size_t>(i)].r;
    x.at(0, 1, 0, i) = colours[static_cast<size_t>(i)].g;
    x.at(0, 2, 0, i) = colours[static_cast<size_t>(i)].b;
  }
  const lab::Tensor y = net.forward(x);
  std::vector<std::vector<float>> out(static_cast<size_t>(n), std::vector<float>(static_cast<size_t>(y.dim(1))));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < y.dim(1); ++c) out[static_cast<size_t>(i)][static_cast<size_t>(c)] = y.at(0, c, 0, i);
  return out;
}

lab::Network detector_on_row(const networks::ColorDetectorParams& p, int64_t n) {
  // 1×n images: build a model whose input is 3×1×n.
  networks::Model model(lab::Shape{3, 1, n});
  networks::append_color_detector(model, "detector", p);
  return model.network;
}

}  // namespace

TEST_CASE("palette: at least 8 distinct colours, none the background or black") {
  const auto& p = networks::palette();
  CHECK(p.size() >= 8);
  CHECK(networks::palette_names().size() == p.size());
  std::set<std::tuple<int, int, int>> seen;
  for (const Rgb& c : p) {
    CHECK_FALSE(c == (Rgb{20, 20, 20}));
    CHECK_FALSE(c == (Rgb{0, 0, 0}));
    seen.insert({c.r, c.g, c.b});
  }
  CHECK(seen.size() == p.size());
  CHECK(networks::to_string(p[0]) == "(230, 25, 75)");
}

TEST_CASE("every colour near the targets and background, and random colours, fire exactly as designed") {
  const std::vector<Rgb> targets(networks::palette().begin(), networks::palette().begin() + 4);
  const Rgb bg{20, 20, 20};
  for (int64_t redundant : {0, 2, 3}) {
    CAPTURE(redundant);
    const networks::ColorDetectorParams params{.targets = targets, .background = bg, .redundant = redundant};
    // Every colour within ±3 of each component of a target or the background (including 0 and 255
    // edges), plus random colours.
    std::vector<Rgb> colours;
    std::vector<Rgb> centres = targets;
    centres.push_back(bg);
    centres.push_back({0, 0, 0});
    centres.push_back({255, 255, 255});
    for (const Rgb& c : centres)
      for (int dr = -3; dr <= 3; ++dr)
        for (int dg = -3; dg <= 3; ++dg)
          for (int db = -3; db <= 3; ++db) {
            const int r = c.r + dr, g = c.g + dg, b = c.b + db;
            if (r < 0 || r > 255 || g < 0 || g > 255 || b < 0 || b > 255) continue;
            colours.push_back({uint8_t(r), uint8_t(g), uint8_t(b)});
          }
    std::mt19937_64 rng(7);
    for (int i = 0; i < 20000; ++i)
      colours.push_back({uint8_t(rng() & 255), uint8_t(rng() & 255), uint8_t(rng() & 255)});
    const lab::Network net = detector_on_row(params, static_cast<int64_t>(colours.size()));
    CHECK(net.size() == 10);
    const auto y = detect(net, colours);
    for (size_t i = 0; i < colours.size(); ++i) {
      CAPTURE(networks::to_string(colours[i]));
      int64_t target = -1;
      for (size_t t = 0; t < targets.size(); ++t)
        if (colours[i] == targets[t]) target = static_cast<int64_t>(t);
      const bool unseen = target < 0 && !(colours[i] == bg);
      for (int64_t c = 0; c < 4; ++c) REQUIRE(y[i][static_cast<size_t>(c)] == (c == target ? 1.0f : 0.0f));
      for (int64_t r = 0; r < redundant; ++r) REQUIRE(y[i][static_cast<size_t>(4 + r)] == (unseen ? 1.0f : 0.0f));
    }
  }
}

TEST_CASE("the detector is five 1x1 convolutions with the designed widths") {
  const std::vector<Rgb> targets(networks::palette().begin(), networks::palette().begin() + 4);
  const lab::Network net = networks::build_color_detector({.targets = targets, .redundant = 2}, 8);
  const int64_t d = 5;  // 4 targets + background
  CHECK(net.shape_after(0) == lab::Shape{1, 12 * d, 8, 8});
  CHECK(net.shape_after(2) == lab::Shape{1, 6 * d, 8, 8});
  CHECK(net.shape_after(4) == lab::Shape{1, 3 * d, 8, 8});
  CHECK(net.shape_after(6) == lab::Shape{1, d, 8, 8});
  CHECK(net.shape_after(8) == lab::Shape{1, 6, 8, 8});
  for (size_t i = 0; i < net.size(); i += 2) CHECK(net.layer(i).kind() == lab::LayerKind::kConv2d);
  for (size_t i = 1; i < net.size(); i += 2) CHECK(net.layer(i).kind() == lab::LayerKind::kReLU);
  CHECK(net.name(4) == "detector.layers.4");
}

TEST_CASE("detector parameters are checked") {
  const Rgb red = networks::palette()[0];
  CHECK_THROWS_AS(networks::build_color_detector({.targets = {}}, 4), lab::Error);
  CHECK_THROWS_AS(networks::build_color_detector({.targets = {red, red}}, 4), lab::Error);
  CHECK_THROWS_WITH_AS(networks::build_color_detector({.targets = {red}, .background = red}, 4),
                       doctest::Contains("background=(230, 25, 75)"), lab::Error);
  CHECK_THROWS_AS(networks::build_color_detector({.targets = {red}, .redundant = -1}, 4), lab::Error);
}
