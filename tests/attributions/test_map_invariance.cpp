// Every registered method's maps are batch- and thread-invariant on every environment: each image's
// map alone, in a batch of 5 (at another position, beside other images) and in that batch at 1
// and 2 threads, byte for byte (memcmp: signed zeros count). The images are each environment's
// designed samples at 32×32 and one of them moved off the integers (scaled by a random factor
// per pixel, uniform noise in [-8, 8) added), so that the network's sums are not exact and a
// product that summed an image in another order in another batch would show. Methods that draw
// random numbers draw them from the image's own seed (Batch::seeds), so a map is a function of
// its image, target and seed alone; the costly methods run with fewer samples and iterations.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>

#include "attributions/method.h"
#include "datasets/environment.h"
#include "gradient_fixtures.h"
#include "lab/core/runtime.h"

using attributions::Batch;
using attributions::Context;

namespace {

struct Task {
  std::string env;
  std::unique_ptr<datasets::Environment> environment;
  lab::Network net;
  Context context;
  Batch images;  // k images, their targets, seeds, segments and ground truth
};

// Environment `name` at `size`: two designed samples, then the first moved off the integers.
Task make_task(const std::string& name, int64_t size, std::mt19937_64& rng) {
  Task t;
  t.env = name;
  lab::Options options("-o");
  options.set("size", std::to_string(size));
  t.environment = datasets::make_environment(name, options);
  t.net = t.environment->build_network();
  const int64_t designed = 2, k = designed + 1;
  lab::Shape shape = t.environment->input_shape();
  shape.insert(shape.begin(), k);
  t.images.x = lab::Tensor(shape);
  t.images.gt = lab::Tensor({k, size, size});
  const int64_t per = t.images.x.sample_numel();
  for (int64_t i = 0; i < k; ++i) {
    const datasets::Sample s = t.environment->generate(7, i % designed);
    const lab::Tensor in = t.environment->to_input(s.image);
    std::copy(in.data(), in.data() + per, t.images.x.sample(i));
    std::copy(s.gt.data(), s.gt.data() + size * size, t.images.gt.sample(i));
    // Image i explains output unit (label + i) mod outputs: also units other than the label's.
    const int64_t outputs = t.net.output_shape(1)[1];
    t.images.target.push_back((t.environment->target_output(s.label) + i) % outputs);
    t.images.seeds.push_back(100 + static_cast<uint64_t>(i));
    cv::Mat segments;
    s.patches.convertTo(segments, CV_32S);
    t.images.segments.push_back(segments);
  }
  // The last image: the first one off the integers (values between and outside the designed ones).
  const float top = *std::max_element(t.images.x.data(), t.images.x.data() + per);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f), noise(-8.0f / 255.0f, 8.0f / 255.0f);
  float* off = t.images.x.sample(designed);
  for (int64_t j = 0; j < per; ++j) off[j] = off[j] * unit(rng) + noise(rng) * top;
  t.context = Context{.net = &t.net, .background = t.environment->background()};
  t.context.layers = t.environment->default_layers();
  t.context.reference_inputs = t.images.x.slice(0, designed);
  return t;
}

// Samples `order` of the task's images as one batch.
Batch select(const Batch& images, const std::vector<int64_t>& order) {
  Batch b;
  lab::Shape shape = images.x.shape();
  shape[0] = static_cast<int64_t>(order.size());
  b.x = lab::Tensor(shape);
  lab::Shape gshape = images.gt.shape();
  gshape[0] = shape[0];
  b.gt = lab::Tensor(gshape);
  for (size_t j = 0; j < order.size(); ++j) {
    const int64_t i = order[j];
    std::copy(images.x.sample(i), images.x.sample(i) + images.x.sample_numel(), b.x.sample(static_cast<int64_t>(j)));
    std::copy(images.gt.sample(i), images.gt.sample(i) + images.gt.sample_numel(), b.gt.sample(static_cast<int64_t>(j)));
    b.target.push_back(images.target[static_cast<size_t>(i)]);
    b.seeds.push_back(images.seeds[static_cast<size_t>(i)]);
    b.segments.push_back(images.segments[static_cast<size_t>(i)]);
  }
  return b;
}

bool same_bytes(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, sizeof(float) * n) == 0; }

}  // namespace

TEST_CASE("every method's maps are batch- and thread-invariant on every environment (memcmp)") {
  // Settings that keep the test fast where the defaults are costly (every setting still draws
  // per image from its seed), and the variants whose code paths the defaults do not take: both
  // LRP composites of the paper (ε, and z⁺ on convolutions with ε on linear layers), z⁺ and α-β
  // everywhere, DeepLIFT and DeepSHAP on the background and on drawn data baselines.
  const std::map<std::string, std::vector<std::string>> fast = {
      {"integrated-gradients", {"steps=4"}},
      {"smoothgrad", {"samples=3"}},
      {"lime", {"samples=24"}},
      {"kernelshap", {"samples=24"}},
      {"rise", {"masks=24"}},
      {"extremal-perturbation", {"iterations=2"}},
      {"iba", {"iterations=2", "samples=2"}}};
  std::vector<std::pair<std::string, std::vector<std::string>>> cases;
  for (const auto& info : attributions::registry())
    cases.emplace_back(info.name, fast.count(info.name) ? fast.at(info.name) : std::vector<std::string>{});
  cases.push_back({"lrp", {"composite=lrp-epsilon-plus"}});
  cases.push_back({"lrp", {"composite=lrp-zplus"}});
  cases.push_back({"lrp", {"composite=lrp-alpha-beta", "alpha=2", "beta=1"}});
  cases.push_back({"integrated-gradients", {"steps=4", "baseline=background"}});
  cases.push_back({"deeplift", {"baseline=background"}});
  cases.push_back({"deepshap", {"baselines=data:2"}});

  std::mt19937_64 rng(81);
  const int threads = lab::Runtime::get().threads();
  const auto start = std::chrono::steady_clock::now();
  int64_t compared = 0;
  for (const std::string& env : datasets::environment_names()) {
    CAPTURE(env);
    Task task = make_task(env, 32, rng);
    const int64_t k = task.images.x.dim(0);
    // The batch of 5: every image at another position than 0, beside the others.
    const std::vector<int64_t> order{1, 2, 0, 1, 2};
    const Batch batch = select(task.images, order);
    for (const auto& [name, settings] : cases) {
      CAPTURE(name);
      CAPTURE(fmt::format("{}", fmt::join(settings, " ")));
      lab::Options p = fixtures::params(settings);
      const auto method = attributions::make_method(name, p);
      lab::Runtime::get().set_threads(std::min(2, lab::max_threads()));
      std::vector<lab::Tensor> alone;
      for (int64_t i = 0; i < k; ++i) alone.push_back(method->attribute(task.context, select(task.images, {i})).attr);
      const lab::Tensor two = method->attribute(task.context, batch).attr;
      lab::Runtime::get().set_threads(1);
      const lab::Tensor one = method->attribute(task.context, batch).attr;
      lab::Runtime::get().set_threads(threads);
      REQUIRE(two.shape() == batch.x.shape());
      CHECK(same_bytes(one.data(), two.data(), two.numel()));  // 1 and 2 threads
      for (size_t j = 0; j < order.size(); ++j) {
        CAPTURE(j);
        const lab::Tensor& a = alone[static_cast<size_t>(order[j])];
        CHECK(same_bytes(two.sample(static_cast<int64_t>(j)), a.data(), a.numel()));  // alone and in the batch
      }
      ++compared;
    }
  }
  lab::Runtime::get().set_threads(threads);
  MESSAGE("compared " << compared << " method cases in "
                      << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s");
  CHECK(compared == static_cast<int64_t>(datasets::environment_names().size() * cases.size()));
}
