// key=value settings: parsing, typed getters with fallbacks, one-line errors for bad values that
// name the flag, key and value, and finish() refusing keys nobody read.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/parameter_error.h"

TEST_CASE("Options::parse splits key=value items at the first '='") {
  lab::Options o = lab::Options::parse({"size=64", "expr=a=b", "empty="}, "-o");
  CHECK(o.flag() == "-o");
  CHECK(o.items().size() == 3);
  CHECK(o.get_string("expr", "") == "a=b");
  CHECK(o.get_string("empty", "x") == "");
  CHECK(o.get_int("size", 0) == 64);
  CHECK_NOTHROW(o.finish());
}

TEST_CASE("Options::parse refuses items without a key or given twice") {
  CHECK(parameter_error_of([] { lab::Options::parse({"size"}, "-o"); }) == "-o 'size': expected key=value");
  CHECK(parameter_error_of([] { lab::Options::parse({"=3"}, "-p"); }) == "-p '=3': expected key=value");
  CHECK(parameter_error_of([] { lab::Options::parse({"n=1", "n=2"}, "-p"); }) == "-p n given twice");
}

TEST_CASE("typed getters parse their values") {
  lab::Options o = lab::Options::parse(
      {"n=-12", "x=2.5e-3", "big=9007199254740993", "on=yes", "off=0", "list=3, 5.5,-1", "ints=4,0,7", "mode=fast"},
      "-p");
  CHECK(o.get_int("n", 0) == -12);
  CHECK(o.get_double("x", 0) == doctest::Approx(0.0025).epsilon(1e-15));
  CHECK(o.get_int("big", 0) == 9007199254740993LL);
  CHECK(o.get_bool("on", false));
  CHECK_FALSE(o.get_bool("off", true));
  CHECK(o.get_doubles("list", {}) == std::vector<double>{3.0, 5.5, -1.0});
  CHECK(o.get_ints("ints", {}) == std::vector<int64_t>{4, 0, 7});
  CHECK(o.get_choice("mode", "slow", {"slow", "fast"}) == "fast");
  CHECK(o.unread().empty());
  CHECK_NOTHROW(o.finish());
}

TEST_CASE("every accepted spelling of a boolean") {
  for (const char* yes : {"on", "true", "yes", "1"}) {
    CAPTURE(yes);
    lab::Options o = lab::Options::parse({std::string("b=") + yes}, "-o");
    CHECK(o.get_bool("b", false));
  }
  for (const char* no : {"off", "false", "no", "0"}) {
    CAPTURE(no);
    lab::Options o = lab::Options::parse({std::string("b=") + no}, "-o");
    CHECK_FALSE(o.get_bool("b", true));
  }
}

TEST_CASE("absent keys give the fallback and are not marked read") {
  lab::Options o("-o");
  CHECK(o.get_int("n", 7) == 7);
  CHECK(o.get_double("x", 0.25) == 0.25);
  CHECK(o.get_bool("b", true));
  CHECK(o.get_string("s", "dflt") == "dflt");
  CHECK(o.get_choice("m", "a", {"a", "b"}) == "a");
  CHECK(o.get_doubles("d", {1.0, 2.0}) == std::vector<double>{1.0, 2.0});
  CHECK(o.get_ints("i", {3}) == std::vector<int64_t>{3});
  CHECK(o.raw("n") == nullptr);
  CHECK_FALSE(o.has("n"));
  CHECK_NOTHROW(o.finish({"n", "x"}));
}

TEST_CASE("bad values name the flag, the key, the value and the expected form") {
  struct Case {
    std::string item;
    std::function<void(lab::Options&)> read;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"n=1.5", [](lab::Options& o) { o.get_int("n", 0); }, "-o n=1.5: expected an integer"},
      {"n=abc", [](lab::Options& o) { o.get_int("n", 0); }, "-o n=abc: expected an integer"},
      {"n=", [](lab::Options& o) { o.get_int("n", 0); }, "-o n=: expected an integer"},
      {"n=99999999999999999999", [](lab::Options& o) { o.get_int("n", 0); },
       "-o n=99999999999999999999: expected an integer"},
      {"x=1.0.0", [](lab::Options& o) { o.get_double("x", 0); }, "-o x=1.0.0: expected a finite number"},
      {"x=nan", [](lab::Options& o) { o.get_double("x", 0); }, "-o x=nan: expected a finite number"},
      {"x=inf", [](lab::Options& o) { o.get_double("x", 0); }, "-o x=inf: expected a finite number"},
      {"x=1e999", [](lab::Options& o) { o.get_double("x", 0); }, "-o x=1e999: expected a finite number"},
      {"b=maybe", [](lab::Options& o) { o.get_bool("b", false); }, "-o b=maybe: expected on or off"},
      {"m=medium", [](lab::Options& o) { o.get_choice("m", "slow", {"slow", "fast"}); },
       "-o m=medium: expected one of slow|fast"},
      {"d=1,,2", [](lab::Options& o) { o.get_doubles("d", {}); }, "-o d=1,,2: expected comma-separated numbers"},
      {"i=1,2.5", [](lab::Options& o) { o.get_ints("i", {}); }, "-o i=1,2.5: expected comma-separated integers"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.item);
    lab::Options o = lab::Options::parse({c.item}, "-o");
    CHECK(parameter_error_of([&] { c.read(o); }) == c.message);
  }
}

TEST_CASE("finish() refuses keys that no getter read") {
  lab::Options o = lab::Options::parse({"size=64", "colour=red"}, "-o");
  CHECK(o.get_int("size", 32) == 64);
  CHECK(o.unread() == std::vector<std::string>{"colour"});
  CHECK(parameter_error_of([&] { o.finish({"size", "count"}); }) ==
        "unknown option -o colour=red; known: size, count");
  CHECK(parameter_error_of([&] { o.finish(); }) == "unknown option -o colour=red");

  SUBCASE("raw() counts as reading") {
    REQUIRE(o.raw("colour") != nullptr);
    CHECK(*o.raw("colour") == "red");
    CHECK_NOTHROW(o.finish({"size", "colour"}));
  }
}

TEST_CASE("Options::from_json turns numbers, booleans and arrays into values") {
  const nlohmann::json settings = {{"n", 3}, {"x", 0.5}, {"b", true}, {"s", "hi"}, {"sizes", {3, 5, 5}}, {"names", {"a", "b"}}};
  lab::Options o = lab::Options::from_json(settings, "-p");
  CHECK(o.flag() == "-p");
  CHECK(o.get_int("n", 0) == 3);
  CHECK(o.get_double("x", 0) == 0.5);
  CHECK(o.get_bool("b", false));
  CHECK(o.get_string("s", "") == "hi");
  CHECK(o.get_ints("sizes", {}) == std::vector<int64_t>{3, 5, 5});
  CHECK(o.get_string("names", "") == "a,b");
  CHECK_NOTHROW(o.finish());

  CHECK(parameter_error_of([] { lab::Options::from_json(nlohmann::json::array({1, 2}), "-p"); }) ==
        "-p settings must be a JSON object, got [1,2]");
}

TEST_CASE("require() passes or names the parameter, the expectation and the value") {
  CHECK_NOTHROW(lab::require(true, "epsilon", "positive", "0"));
  CHECK(parameter_error_of([] { lab::require(false, "epsilon", "positive", "-1"); }) ==
        "epsilon must be positive, got -1");
}
