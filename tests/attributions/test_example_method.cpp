// A complete attribution method defined in this one file and registered with
// attributions::add_method, as the README's "Adding a method" walks through it: it is then made
// by make_method, listed by the registry, and checked by the generic tests of
// test_method_table.cpp like every built-in method.
//
// `centre-bias` is a control in the spirit of the paper's `random` and `constant` (App. F.2): it
// ignores the network and scores every pixel by a Gaussian of its distance to the image centre,
//   attr(c, y, x) = exp(−d² / (2 (σ·S)²)),   d² = (y − (H−1)/2)² + (x − (W−1)/2)²,   S = max(H, W),
// the "centre bias" of saliency benchmarks: a map that a metric should not rank above a method
// that reads the network.
#include <doctest/doctest.h>

#include <cmath>

#include "attributions/common.h"
#include "attributions/method.h"
#include "gradient_fixtures.h"
#include "lab/core/error.h"

namespace {

class CentreBias final : public attributions::Method {
 public:
  // 1. The settings: each member's initializer is its default, written nowhere else.
  struct Params {
    double sigma = 0.25;  ///< width of the Gaussian as a fraction of the image side, > 0

    // 2. The schema: each parameter declared once, with its range, help and source.
    static const lab::Schema<Params>& schema() {
      static const auto s = lab::Schema<Params>().field(
          "sigma", &Params::sigma,
          {.range = lab::above(0),
           .help = "width σ of the Gaussian, as a fraction of the image side",
           .source = "centre-bias baselines of saliency benchmarks"});
      return s;
    }
  };

  explicit CentreBias(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "centre-bias"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }

  // 3. The method: a map shaped like x.
  attributions::Result attribute(const attributions::Context& context, const attributions::Batch& batch) const override {
    attributions::check_batch(context, batch);
    const lab::Tensor& x = batch.x;
    if (x.rank() != 4) lab::fail_parameter("centre-bias needs C×H×W inputs, got {}", lab::to_string(x.sample_shape()));
    const int64_t channels = x.dim(1), height = x.dim(2), width = x.dim(3);
    const double s = params_.sigma * static_cast<double>(std::max(height, width));
    attributions::Result r;
    r.attr = lab::Tensor(x.shape());
    for (int64_t n = 0; n < x.batch(); ++n)
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t y = 0; y < height; ++y)
          for (int64_t xx = 0; xx < width; ++xx) {
            const double dy = static_cast<double>(y) - 0.5 * static_cast<double>(height - 1);
            const double dx = static_cast<double>(xx) - 0.5 * static_cast<double>(width - 1);
            r.attr.at(n, c, y, xx) = static_cast<float>(std::exp(-(dy * dy + dx * dx) / (2 * s * s)));
          }
    return r;
  }

  // 4. The registry entry: name, one-line summary, parameters from the schema.
  static attributions::MethodInfo info() {
    return attributions::method_info<CentreBias>("centre-bias",
                                                 "control: a Gaussian of the distance to the image centre");
  }

 private:
  Params params_;
};

// 5. Registration: one line (a method in attributions/ adds `CentreBias::info(),` to the table
// of registry.cpp instead).
const bool kRegistered = (attributions::add_method(CentreBias::info()), true);

}  // namespace

TEST_CASE("a method defined in one file and registered with add_method is made and listed like the built-in ones") {
  REQUIRE(kRegistered);
  const auto& table = attributions::registry();
  const auto it = std::find_if(table.begin(), table.end(), [](const auto& m) { return m.name == "centre-bias"; });
  REQUIRE(it != table.end());
  REQUIRE(it->params.size() == 1);
  CHECK(it->params[0].name == "sigma");
  CHECK(it->params[0].default_text() == "0.25");
  CHECK(it->params[0].to_json().at("min-open") == true);

  lab::Options o = fixtures::params({"sigma=0.5"});
  const auto method = attributions::make_method("centre-bias", o);
  CHECK(method->params() == nlohmann::json{{"sigma", 0.5}});
  lab::Options bad = fixtures::params({"sigma=0"});
  CHECK_THROWS_WITH_AS(attributions::make_method("centre-bias", bad), doctest::Contains("-p sigma=0: must be a finite number > 0"),
                       lab::Error);
  lab::Options unknown = fixtures::params({"width=3"});
  CHECK_THROWS_WITH_AS(attributions::make_method("centre-bias", unknown), doctest::Contains("unknown option -p width=3; known: sigma"),
                       lab::Error);

  // The map: 1 at the centre of an odd-sized image, symmetric, the closed form elsewhere.
  const lab::Network net = fixtures::linear_model(2, 5, 3);
  attributions::Context context{.net = &net};
  attributions::Batch batch{.x = fixtures::uniform_inputs({1, 2, 5, 5}, 3), .target = {1}};
  const lab::Tensor a = method->attribute(context, batch).attr;
  CHECK(a.at(0, 1, 2, 2) == 1.0f);
  CHECK(a.at(0, 0, 0, 1) == a.at(0, 1, 4, 3));
  CHECK(a.at(0, 0, 0, 0) == doctest::Approx(std::exp(-8.0 / (2 * 2.5 * 2.5))));
}

TEST_CASE("add_method refuses a duplicate name, a badly spelt name or key, and an entry without a factory") {
  attributions::MethodInfo copy = attributions::registry().front();
  CHECK_THROWS_WITH_AS(attributions::add_method(copy), doctest::Contains("a method named saliency is already registered"),
                       lab::Error);
  copy.name = "Gradient_X";
  CHECK_THROWS_WITH_AS(attributions::add_method(copy), doctest::Contains("method name 'Gradient_X' must be lower-case"),
                       lab::Error);
  copy.name = "gradient-copy";
  copy.params.push_back(lab::ParamDoc{.name = "max_steps"});
  CHECK_THROWS_WITH_AS(attributions::add_method(copy), doctest::Contains("has parameter 'max_steps'"), lab::Error);
  copy.params.pop_back();
  copy.make = nullptr;
  CHECK_THROWS_WITH_AS(attributions::add_method(copy), doctest::Contains("has no factory"), lab::Error);
  CHECK(std::none_of(attributions::registry().begin(), attributions::registry().end(),
                     [](const auto& m) { return m.name == "gradient-copy"; }));
}
