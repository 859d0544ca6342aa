// The two environments (datasets/multi_color_sum.h, datasets/single_color_modulo.h): the ground
// truth covers exactly the drawn pixels, the label follows from the counts, patches do not
// overlap and carry their own colour, generation is a pure function of (options, seed, index),
// the options round-trip, and impossible options are refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <opencv2/imgproc.hpp>

#include "datasets/environment.h"
#include "datasets/multi_color_sum.h"
#include "datasets/single_color_modulo.h"
#include "lab/core/error.h"
#include "networks/palette.h"

namespace {

std::unique_ptr<datasets::Environment> make(const std::string& name, const std::vector<std::string>& items) {
  lab::Options o = lab::Options::parse(items, "-o");
  return datasets::make_environment(name, o);
}

std::string refusal(const std::string& name, const std::vector<std::string>& items) {
  try {
    make(name, items);
  } catch (const lab::Error& e) {
    return e.what();
  }
  return "";
}

bool is_color(const cv::Vec3b& p, const networks::Rgb& c) { return p[0] == c.r && p[1] == c.g && p[2] == c.b; }

// Checks every property of a multi-color-sum sample directly from its pixels, independently of
// the environment's own helpers.
void check_multi_color(const datasets::Environment& env, const datasets::Sample& s, int64_t colors) {
  const int64_t side = env.image_size();
  REQUIRE(s.image.type() == CV_8UC3);
  REQUIRE(s.image.rows == side);
  REQUIRE(s.gt.shape() == lab::Shape{side, side});
  REQUIRE(s.gt_smooth.shape() == lab::Shape{side, side});
  REQUIRE(s.patches.type() == CV_8UC1);
  REQUIRE(static_cast<int64_t>(s.layout.size()) == colors);
  const auto& palette = networks::palette();
  std::vector<int64_t> counts(static_cast<size_t>(colors), 0);
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      const cv::Vec3b p = s.image.at<cv::Vec3b>(y, x);
      const int k = s.patches.at<uint8_t>(y, x);
      const float g = s.gt[y * side + x], gs = s.gt_smooth[y * side + x];
      int color = -1;
      for (int c = 0; c < colors; ++c)
        if (is_color(p, palette[static_cast<size_t>(c)])) color = c;
      if (color < 0) {
        // Not a target colour: must be the background, with zero pixel ground truth.
        REQUIRE(is_color(p, networks::Rgb{20, 20, 20}));
        REQUIRE(g == 0.0f);
      } else {
        ++counts[static_cast<size_t>(color)];
        // Drawn pixels lie in the patch of their own colour and carry +1 / -1.
        REQUIRE(k == color + 1);
        REQUIRE(g == (color == s.label ? 1.0f : -1.0f));
      }
      // Smooth ground truth: the sign of the patch's colour over the whole region.
      REQUIRE(gs == (k == 0 ? 0.0f : (k - 1 == s.label ? 1.0f : -1.0f)));
    }
  CHECK(counts == s.counts);
  // The label is the unique largest count.
  for (int64_t c = 0; c < colors; ++c)
    if (c != s.label) CHECK(counts[static_cast<size_t>(c)] < counts[static_cast<size_t>(s.label)]);
  CHECK(env.count_pixels(s.image) == s.counts);
}

void check_modulo(const datasets::Environment& env, const datasets::Sample& s, int64_t modulus) {
  const int64_t side = env.image_size();
  REQUIRE(s.image.type() == CV_8UC1);
  int64_t white = 0;
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      const int v = s.image.at<uint8_t>(y, x);
      const int k = s.patches.at<uint8_t>(y, x);
      REQUIRE((v == 0 || v == 255));
      if (v == 255) REQUIRE(k != 0);
      white += v == 255;
      REQUIRE(s.gt[y * side + x] == (v == 255 ? 1.0f : 0.0f));
      REQUIRE(s.gt_smooth[y * side + x] == (k != 0 ? 1.0f : 0.0f));
    }
  CHECK(s.counts == std::vector<int64_t>{white});
  CHECK(s.label == white % modulus);
}

}  // namespace

TEST_CASE("multi-color-sum samples: ground truth, counts, label, patches") {
  for (int64_t size : {32, 64}) {
    CAPTURE(size);
    const auto env = make("multi-color-sum", {"size=" + std::to_string(size)});
    std::vector<int64_t> labels(4, 0);
    std::map<std::string, int64_t> shapes;
    int64_t bernoulli_drawn = 0, region = 0;
    for (int64_t i = 0; i < 200; ++i) {
      CAPTURE(i);
      const datasets::Sample s = env->generate(42, i);
      CHECK(s.id == datasets::sample_id(i));
      check_multi_color(*env, s, 4);
      ++labels[static_cast<size_t>(s.label)];
      // Patch sizes within the resolved defaults [max(4, size/8), size/4], regions inside their boxes.
      for (size_t k = 0; k < s.layout.size(); ++k) {
        CHECK(s.layout[k].size >= std::max<int64_t>(4, size / 8));
        CHECK(s.layout[k].size <= size / 4);
        CHECK(cv::boundingRect(s.patches == static_cast<int>(k + 1)) == s.layout[k].box);
        ++shapes[datasets::shape_name(s.layout[k].shape)];
      }
      for (int64_t c : s.counts) bernoulli_drawn += c;
      region += cv::countNonZero(s.patches);
    }
    // The three default shapes, each about a third of the 800 patches.
    CHECK(shapes.size() == 3);
    for (const auto& [name, n] : shapes) CHECK(n == doctest::Approx(800 / 3.0).epsilon(0.2));
    // Every class wins sometimes, and about half of the region pixels carry a colour.
    for (int64_t n : labels) CHECK(n > 20);
    CHECK(static_cast<double>(bernoulli_drawn) / static_cast<double>(region) == doctest::Approx(0.5).epsilon(0.03));
  }
}

TEST_CASE("single-color-modulo samples: ground truth, counts, label, patches") {
  for (int64_t size : {32, 64}) {
    CAPTURE(size);
    const auto env = make("single-color-modulo", {"size=" + std::to_string(size), "modulus=7"});
    std::set<int64_t> labels;
    for (int64_t i = 0; i < 200; ++i) {
      CAPTURE(i);
      const datasets::Sample s = env->generate(3, i);
      check_modulo(*env, s, 7);
      CHECK(s.layout.size() == 4);
      for (const datasets::Patch& p : s.layout) CHECK(p.shape == datasets::ShapeKind::kBezier);
      CHECK(s.counts[0] <= 4 * (size / 4) * (size / 4));
      labels.insert(s.label);
    }
    CHECK(labels.size() == 7);
  }
}

TEST_CASE("options are every resolved value and rebuild the identical environment") {
  SUBCASE("multi-color-sum") {
    const auto env = make("multi-color-sum", {"size=64", "patch-max=20", "shapes=circle,square", "colors=3"});
    const nlohmann::json o = env->options();
    CHECK(o["size"] == 64);
    CHECK(o["colors"] == 3);
    CHECK(o["patch-max"] == 20);
    CHECK(o["patch-min"] == 10);
    CHECK(o["gap"] == 2);
    CHECK(o["anchors"] == 5);
    CHECK(o["shapes"] == nlohmann::json{"circle", "square"});
    CHECK(o["background"] == nlohmann::json{20, 20, 20});
    CHECK(o.contains("logit-scale"));
    CHECK(o.contains("accumulator"));
    const auto again = datasets::environment_from_json("multi-color-sum", o);
    CHECK(again->options() == o);
    for (int64_t i = 0; i < 5; ++i) {
      const datasets::Sample a = env->generate(9, i), b = again->generate(9, i);
      CHECK(cv::countNonZero(a.patches != b.patches) == 0);
      CHECK(a.counts == b.counts);
      CHECK(a.label == b.label);
      check_multi_color(*env, a, 3);
    }
  }
  SUBCASE("single-color-modulo: modulus and the derived patch_max default") {
    const auto env = make("single-color-modulo", {});
    const nlohmann::json o = env->options();
    CHECK(o["modulus"] == 30);
    CHECK(o["size"] == 224);
    // min(224 / 4, floor(sqrt(4500 / 4))) = min(56, 33).
    CHECK(o["patch-max"] == 33);
    CHECK(o["patch-min"] == 16);
    CHECK(o["patches"] == 4);
    CHECK(o["shapes"] == nlohmann::json{"bezier"});
    CHECK(datasets::environment_from_json("single-color-modulo", o)->options() == o);
  }
}

TEST_CASE("generation is a pure function of (options, seed, index)") {
  for (const std::string name : {"multi-color-sum", "single-color-modulo"}) {
    CAPTURE(name);
    const auto env = make(name, {"size=32"});
    // Out of order and repeated: the same bytes.
    const datasets::Sample a = env->generate(5, 17);
    env->generate(5, 3);
    const datasets::Sample b = env->generate(5, 17);
    CHECK(cv::countNonZero(cv::Mat(a.image != b.image).reshape(1)) == 0);
    CHECK(a.gt.values() == b.gt.values());
    // Another index or seed gives another image.
    const datasets::Sample c = env->generate(5, 18), d = env->generate(6, 17);
    CHECK(cv::countNonZero(cv::Mat(a.image != c.image).reshape(1)) > 0);
    CHECK(cv::countNonZero(cv::Mat(a.image != d.image).reshape(1)) > 0);
  }
}

TEST_CASE("environment metadata follows the paper") {
  const auto multi = make("multi-color-sum", {"size=32"});
  CHECK(multi->input_shape() == lab::Shape{3, 32, 32});
  CHECK(multi->background() == std::vector<float>{20, 20, 20});
  CHECK(multi->num_classes() == 4);
  CHECK(multi->target_output(2) == 2);
  CHECK(multi->default_layers().at("gradcam") == "accumulator.layers.5");
  CHECK(multi->default_layers().at("iba") == "accumulator.layers.7");
  const auto modulo = make("single-color-modulo", {"size=32"});
  CHECK(modulo->input_shape() == lab::Shape{1, 32, 32});
  CHECK(modulo->background() == std::vector<float>{0});
  CHECK(modulo->num_classes() == 30);
  CHECK(modulo->target_output(17) == 0);
  CHECK(modulo->default_layers().at("gradcam") == "accumulator.layers.5");
  CHECK(modulo->default_layers().at("iba") == "accumulator.layers.11");
  // The named layers exist in the networks.
  for (const auto* env : {multi.get(), modulo.get()}) {
    const lab::Network net = env->build_network();
    for (const auto& [method, layer] : env->default_layers()) CHECK_NOTHROW(net.index_of(layer));
  }
  // Network input units: RGB 0..255; gray white = 1.
  const datasets::Sample s = modulo->generate(0, 0);
  const lab::Tensor x = modulo->to_input(s.image);
  for (int64_t j = 0; j < x.numel(); ++j) REQUIRE(x[j] == (s.image.data[j] == 255 ? 1.0f : 0.0f));
  const datasets::Sample m = multi->generate(0, 0);
  const lab::Tensor xm = multi->to_input(m.image);
  CHECK(xm[(1 * 32 + 5) * 32 + 7] == 0.0f + m.image.at<cv::Vec3b>(5, 7)[1]);
}

TEST_CASE("impossible options are refused with a clear message, never changed") {
  CHECK(refusal("multi-color-sum", {"size=32"}).empty());
  CHECK(refusal("multi-color-sum", {"size=32", "colors=13"}).find("colors") != std::string::npos);
  CHECK(refusal("multi-color-sum", {"size=32", "patch-max=20"}).find("cannot always fit in a 32x32 image") !=
        std::string::npos);
  CHECK(refusal("multi-color-sum", {"size=32", "patch-min=2"}).find("-o patch-min=2: must be an integer ≥ 4") !=
        std::string::npos);
  CHECK(refusal("multi-color-sum", {"size=8"}).find("-o patch-max=2: must be an integer ≥ 4") != std::string::npos);
  CHECK(refusal("multi-color-sum", {"size=32", "shapes=triangle,hexagon"})
            .find("-o shapes=triangle,hexagon: must be a comma-separated list of triangle|square|circle|bezier") !=
        std::string::npos);
  // The '_' spelling is refused naming the right key.
  CHECK(refusal("multi-color-sum", {"patch_max=20"}).find("use -o patch-max") != std::string::npos);
  CHECK(refusal("multi-color-sum", {"size=32", "patches=4"}).find("unknown option -o patches=4") != std::string::npos);
  CHECK(refusal("multi-color-sum", {"size=32", "bogus=1"}).find("unknown option -o bogus=1") != std::string::npos);
  CHECK(refusal("single-color-modulo", {"size=32", "patches=0"}).find("-o patches=0: must be an integer in [1, 255]") !=
        std::string::npos);
  // U = 1000: the default patch_max becomes min(64 / 4, floor(sqrt(1000 / 4))) = 15 (4 · 225 <= 1000);
  // asking for 16 (4 · 256 = 1024 > 1000) is refused.
  CHECK(refusal("single-color-modulo", {"size=64", "max-count=1000"}).empty());
  CHECK(make("single-color-modulo", {"size=64", "max-count=1000"})->options()["patch-max"] == 15);
  CHECK(refusal("single-color-modulo", {"size=64", "max-count=1000", "patch-max=16"})
            .find("can hold 1024 white pixels, more than the 1000 the modulo network counts") != std::string::npos);
  CHECK(refusal("nonexistent", {}).find("--env nonexistent: unknown environment; expected one of batch-norm, "
                                        "interaction, max-pool, multi-color-sum, position, residual, reused-relu, "
                                        "saturation, single-color-modulo") != std::string::npos);
  CHECK(datasets::environment_names() ==
        std::vector<std::string>{"batch-norm", "interaction", "max-pool", "multi-color-sum", "position", "residual",
                                 "reused-relu", "saturation", "single-color-modulo"});
}

TEST_CASE("every registered environment: documented defaults read back, records every key, refuses out-of-range values") {
  for (const datasets::EnvironmentInfo& info : datasets::environments()) {
    CAPTURE(info.name);
    CHECK(!info.summary.empty());
    CHECK(!info.source.empty());
    const nlohmann::json base = make(info.name, {})->options();
    // The record holds every documented key, resolved (no derived default left null).
    std::vector<std::string> recorded;
    for (const auto& item : base.items()) {
      recorded.push_back(item.key());
      CHECK(!item.value().is_null());
    }
    std::vector<std::string> documented = lab::param_names(info.params);
    std::sort(documented.begin(), documented.end());
    CHECK(recorded == documented);
    std::vector<std::string> all;
    for (const lab::ParamDoc& p : info.params) {
      CAPTURE(p.name);
      CHECK(!p.info.help.empty());
      CHECK((p.default_value.is_null() == !p.info.derived.empty()));
      const std::string item = p.name + "=" + p.default_text();
      all.push_back(item);
      CHECK(make(info.name, {item})->options() == base);
      // Values just outside the declared range or choices are refused, naming key and value.
      std::vector<std::string> bad;
      const lab::Range& r = p.info.range;
      const bool integral = p.type == lab::ParamType::kInt;
      if (r.min) bad.push_back(lab::option_text(integral ? nlohmann::json(static_cast<int64_t>(*r.min) - 1)
                                                        : nlohmann::json(r.min_open ? *r.min : *r.min - 1)));
      if (r.max) bad.push_back(lab::option_text(integral ? nlohmann::json(static_cast<int64_t>(*r.max) + 1)
                                                        : nlohmann::json(r.max_open ? *r.max : *r.max * 2 + 1)));
      if (p.type == lab::ParamType::kEnum) bad.push_back("no-such-choice");
      if (p.type == lab::ParamType::kBool) bad.push_back("maybe");
      for (const std::string& v : bad) {
        CAPTURE(v);
        CHECK(refusal(info.name, {p.name + "=" + v}).find("-o " + p.name + "=" + v + ": must be") != std::string::npos);
      }
    }
    CHECK(make(info.name, all)->options() == base);
  }
}
