// The parameter schema: typed reading with ranges and choices, derived (optional) defaults,
// enums, custom and nested fields, cross-field checks, the resolved record, the documentation
// (typed defaults that read back), and the spelling convention with its hint.
#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/schema.h"
#include "lab/parameter_error.h"

namespace {


enum class Colour { kRed, kBlue };

struct Inner {
  double sigma = 5.0;
  static const lab::Schema<Inner>& schema() {
    static const auto s = lab::Schema<Inner>().field("sigma", &Inner::sigma, {.range = lab::above(0), .help = "σ"});
    return s;
  }
};

lab::Codec<std::pair<int, int>> pair_codec() {
  return {.type = lab::ParamType::kIntList,
          .parse = [](const std::string& t) -> std::optional<std::pair<int, int>> {
            if (t.size() == 3 && t[1] == ',') return std::pair<int, int>{t[0] - '0', t[2] - '0'};
            return std::nullopt;
          },
          .show = [](const std::pair<int, int>& p) { return nlohmann::json::array({p.first, p.second}); },
          .expect = "two digits a,b"};
}

struct Params {
  int64_t steps = 50;
  double gamma = 0.5;
  bool smooth = false;
  std::string quadrature = "gauss-legendre";
  Colour colour = Colour::kBlue;
  std::vector<int64_t> sizes = {3, 5};
  std::optional<int64_t> patch_max;
  std::string file;
  std::pair<int, int> pair = {1, 2};
  Inner inner;

  static const lab::Schema<Params>& schema() {
    static const auto s =
        lab::Schema<Params>()
            .field("steps", &Params::steps, {.range = lab::at_least(1), .help = "points", .source = "eq. 3"})
            .field("gamma", &Params::gamma, {.range = lab::between(0, 1)})
            .field("smooth", &Params::smooth)
            .field("quadrature", &Params::quadrature, {.choices = {"riemann-left", "gauss-legendre"}})
            .choice("colour", &Params::colour, {{Colour::kRed, "red"}, {Colour::kBlue, "blue"}})
            .field("sizes", &Params::sizes, {.range = lab::at_least(1)})
            .field("patch-max", &Params::patch_max, {.range = lab::at_least(4), .derived = "size/4"})
            .path("file", &Params::file)
            .custom("pair", &Params::pair, pair_codec())
            .nested(&Params::inner, Inner::schema())
            .check([](const Params& p, const std::string& flag) {
              if (p.quadrature == "riemann-left" && p.steps < 2)
                lab::fail_value(flag, "steps", std::to_string(p.steps), "≥ 2 for riemann-left");
            });
    return s;
  }
};

}  // namespace

TEST_CASE("Schema::read takes each declared key with its type and keeps the defaults of the rest") {
  lab::Options o = lab::Options::parse(
      {"steps=7", "gamma=1", "smooth=on", "colour=red", "sizes=1,2,9", "patch-max=8", "pair=4,2", "sigma=0.25"}, "-p");
  const Params p = Params::schema().read(o);
  CHECK_NOTHROW(o.finish(Params::schema().names()));
  CHECK(p.steps == 7);
  CHECK(p.gamma == 1.0);
  CHECK(p.smooth);
  CHECK(p.quadrature == "gauss-legendre");
  CHECK(p.colour == Colour::kRed);
  CHECK(p.sizes == std::vector<int64_t>{1, 2, 9});
  CHECK(p.patch_max == 8);
  CHECK(p.pair == std::pair<int, int>{4, 2});
  CHECK(p.inner.sigma == 0.25);
}

TEST_CASE("Schema::read refuses a value outside its type, range or choices in one line") {
  auto error = [](std::vector<std::string> items) {
    return parameter_error_of([&] {
      lab::Options o = lab::Options::parse(items, "-p");
      Params::schema().read(o);
    });
  };
  CHECK(error({"steps=0"}) == "-p steps=0: must be an integer ≥ 1");
  CHECK(error({"steps=1.5"}) == "-p steps=1.5: must be an integer ≥ 1");
  CHECK(error({"gamma=1.0001"}) == "-p gamma=1.0001: must be a finite number in [0, 1]");
  CHECK(error({"gamma=nan"}) == "-p gamma=nan: must be a finite number in [0, 1]");
  CHECK(error({"smooth=maybe"}) == "-p smooth=maybe: must be on or off");
  CHECK(error({"quadrature=simpson"}) == "-p quadrature=simpson: must be one of riemann-left|gauss-legendre");
  CHECK(error({"colour=green"}) == "-p colour=green: must be one of red|blue");
  CHECK(error({"sizes=1,0"}) == "-p sizes=1,0: must be comma-separated integers, each ≥ 1");
  CHECK(error({"patch-max=3"}) == "-p patch-max=3: must be an integer ≥ 4 (or auto: size/4)");
  CHECK(error({"pair=42"}) == "-p pair=42: must be two digits a,b");
  CHECK(error({"sigma=0"}) == "-p sigma=0: must be a finite number > 0");
  // Cross-field check, after every field is read.
  CHECK(error({"quadrature=riemann-left", "steps=1"}) == "-p steps=1: must be ≥ 2 for riemann-left");
}

TEST_CASE("Schema: an optional member is a derived default; auto asks for it") {
  lab::Options o = lab::Options::parse({"patch-max=auto"}, "-o");
  Params start;
  start.patch_max = 12;
  CHECK_FALSE(Params::schema().read(o, start).patch_max.has_value());
  CHECK(Params::schema().to_json(Params{})["patch-max"].is_null());
}

TEST_CASE("Schema::to_json records every parameter, typed, in declaration order") {
  const nlohmann::json j = Params::schema().to_json(Params{});
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  // nlohmann::json objects sort keys; the declaration order is the schema's names().
  CHECK(Params::schema().names() == std::vector<std::string>{"steps", "gamma", "smooth", "quadrature", "colour", "sizes",
                                                             "patch-max", "file", "pair", "sigma"});
  CHECK(j["steps"] == 50);
  CHECK(j["gamma"] == 0.5);
  CHECK(j["smooth"] == false);
  CHECK(j["colour"] == "blue");
  CHECK(j["sizes"] == nlohmann::json::array({3, 5}));
  CHECK(j["pair"] == nlohmann::json::array({1, 2}));
  CHECK(j["sigma"] == 5.0);
}

TEST_CASE("Schema::docs: typed defaults, types, ranges and choices; every default reads back as itself") {
  const std::vector<lab::ParamDoc> docs = Params::schema().docs();
  REQUIRE(docs.size() == 10);
  CHECK(docs[0].to_json() == nlohmann::json{{"name", "steps"}, {"type", "int"}, {"default", 50}, {"min", 1.0},
                                            {"min-open", false}, {"help", "points"}, {"source", "eq. 3"}});
  CHECK(docs[3].to_json()["type"] == "enum");
  CHECK(docs[3].to_json()["choices"] == nlohmann::json::array({"riemann-left", "gauss-legendre"}));
  CHECK(docs[4].to_json()["choices"] == nlohmann::json::array({"red", "blue"}));
  CHECK(docs[5].to_json()["type"] == "int-list");
  CHECK(docs[6].to_json()["default"].is_null());
  CHECK(docs[6].to_json()["derived"] == "size/4");
  CHECK(docs[7].to_json()["type"] == "path");
  CHECK(docs[2].default_text() == "off");
  CHECK(docs[5].default_text() == "3,5");
  CHECK(docs[6].default_text() == "auto");
  // Each default, fed back as key=default, gives the defaults' record.
  std::vector<std::string> items;
  for (const lab::ParamDoc& d : docs)
    if (d.name != "file") items.push_back(d.name + "=" + d.default_text());
  lab::Options o = lab::Options::parse(items, "-p");
  CHECK(Params::schema().to_json(Params::schema().read(o)) == Params::schema().to_json(Params{}));
}

TEST_CASE("Schema::validate checks a Params built in code as -p would") {
  Params p;
  p.steps = -3;
  CHECK(parameter_error_of([&] { Params::schema().validate(p); }) == "-p steps=-3: must be an integer ≥ 1");
  p.steps = 3;
  p.inner.sigma = -1;
  CHECK(parameter_error_of([&] { Params::schema().validate(p, "-o"); }) == "-o sigma=-1: must be a finite number > 0");
}

TEST_CASE("Schema::from_json reads a config object and refuses unknown keys") {
  const Params p = Params::schema().from_json({{"steps", 9}, {"sizes", {2, 4}}, {"smooth", true}}, "params");
  CHECK(p.steps == 9);
  CHECK(p.sizes == std::vector<int64_t>{2, 4});
  CHECK(p.smooth);
  CHECK(parameter_error_of([] { Params::schema().from_json({{"stepz", 9}}, "params"); })
            .starts_with("unknown option params stepz=9"));
}

TEST_CASE("Keys are lower-case words joined by '-'; the '_' spelling is refused naming the right key") {
  CHECK(lab::is_key_spelling("pixels-per-step"));
  CHECK(lab::is_key_spelling("methods.ig.params.steps"));
  CHECK_FALSE(lab::is_key_spelling("pixels_per_step"));
  CHECK_FALSE(lab::is_key_spelling("Steps"));
  CHECK_FALSE(lab::is_key_spelling("a--b"));
  CHECK_FALSE(lab::is_key_spelling("-a"));
  lab::Options o = lab::Options::parse({"patch_max=8"}, "-o");
  Params::schema().read(o);
  CHECK(parameter_error_of([&] { o.finish(Params::schema().names()); }) ==
        "unknown option -o patch_max=8: keys are spelled with '-', use -o patch-max");
}

TEST_CASE("a signed integer member takes negative values within its range") {
  struct Signed {
    int64_t value = 5;
  };
  const auto schema = lab::Schema<Signed>().field("value", &Signed::value, {.range = lab::between(-8, 8)});
  lab::Options o = lab::Options::parse({"value=-3"}, "-o");
  CHECK(schema.read(o).value == -3);
  lab::Options far = lab::Options::parse({"value=-9"}, "-o");
  CHECK_THROWS_WITH_AS(schema.read(far), "-o value=-9: must be an integer in [-8, 8]", lab::Error);
}

TEST_CASE("seed_codec reads the full 64-bit range and refuses anything else") {
  struct Seeded {
    uint64_t seed = 0;
  };
  const auto schema = lab::Schema<Seeded>().custom("seed", &Seeded::seed, lab::seed_codec());
  lab::Options o = lab::Options::parse({"seed=18446744073709551615"}, "-o");
  const Seeded s = schema.read(o);
  CHECK(s.seed == UINT64_MAX);
  CHECK(schema.to_json(s)["seed"].get<uint64_t>() == UINT64_MAX);
  CHECK(schema.docs()[0].default_text() == "0");
  CHECK(schema.docs()[0].to_json()["type"] == "int");
  for (const char* bad : {"-1", "18446744073709551616", "1.5", "0x10"}) {
    CAPTURE(bad);
    lab::Options b = lab::Options::parse({std::string("seed=") + bad}, "-o");
    const std::string expected = std::string("-o seed=") + bad + ": must be an integer in 0..18446744073709551615";
    CHECK_THROWS_WITH_AS(schema.read(b), expected.c_str(), lab::Error);
  }
}
