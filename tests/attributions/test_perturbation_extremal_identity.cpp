// Extremal perturbations: the smooth-mask generator is byte-identical to its implementation at
// ca0ecf8 (kept as the reference in smooth_mask_reference.h: per parameter a lookup of E by
// weight class, the forward in bands of `step` mask rows, the backward by parameter rows over
// span-wide accumulators), masks, Σ E, the unclamped mask and the parameters' gradient, at the
// experiment's default-scale (64×64, step 2, σ 6) and paper-scale (224×224, step 7, σ 21)
// settings and on odd sizes, in float and double, with 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <type_traits>
#include <vector>

#include <opencv2/core.hpp>
#include <tbb/parallel_for.h>

#include "attributions/extremal_perturbation.h"
#include "smooth_mask_reference.h"
#include "lab/core/runtime.h"

namespace {

using smooth_mask_reference::Reference;

template <typename V>
bool same_bytes(const std::vector<V>& a, const std::vector<V>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(V)) == 0;
}

template <typename T>
void check_identity(int64_t height, int64_t width, int64_t step, double sigma, uint32_t seed) {
  CAPTURE(height);
  CAPTURE(width);
  CAPTURE(step);
  CAPTURE(sigma);
  const attributions::BasicSmoothMask<T> gen(height, width, step, sigma);
  const Reference<T> ref(height, width, step, sigma);
  REQUIRE(gen.out_h() == ref.out_h);
  REQUIRE(gen.out_w() == ref.out_w);
  const size_t np = static_cast<size_t>(gen.grid_h() * gen.grid_w()), pixels = static_cast<size_t>(ref.out_h * ref.out_w);
  std::mt19937 rng(seed);
  // p ≡ 1 (the method's start and its normalisation), p uniform in [0, 1], and p as an
  // optimisation leaves it: most parameters at 0 or 1, the rest in between.
  std::vector<std::vector<double>> ps(3, std::vector<double>(np, 1.0));
  for (double& v : ps[1]) v = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  for (double& v : ps[2]) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    v = u < 0.4 ? 0.0 : u < 0.8 ? 1.0 : std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  }
  lab::Runtime& rt = lab::Runtime::get();
  const int before = rt.threads();
  typename attributions::BasicSmoothMask<T>::State state;  // reused across the cases, as the method does
  std::vector<T> mask;
  std::vector<double> grad;
  for (size_t c = 0; c < ps.size(); ++c) {
    CAPTURE(c);
    std::vector<T> unclamped, den, table;
    const std::vector<T> want = ref.generate(ps[c], unclamped, den, table);
    std::vector<T> grad_mask(pixels);
    for (T& v : grad_mask) {
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      v = u < 0.2 ? T(0) : static_cast<T>(std::uniform_real_distribution<double>(-1.0, 1.0)(rng));
    }
    const std::vector<double> want_grad = ref.backward(ps[c], unclamped, den, table, grad_mask);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      rt.set_threads(threads);
      gen.generate(ps[c], state, mask);
      CHECK(same_bytes(mask, want));
      CHECK(same_bytes(state.unclamped, unclamped));
      CHECK(same_bytes(state.den, den));
      gen.backward(state, grad_mask, grad);
      CHECK(same_bytes(grad, want_grad));
    }
    // The one-shot overloads too.
    typename attributions::BasicSmoothMask<T>::State fresh;
    CHECK(same_bytes(gen.generate(ps[c], &fresh), want));
    CHECK(same_bytes(gen.backward(fresh, grad_mask), want_grad));
  }
  rt.set_threads(before);
}

}  // namespace

TEST_CASE("smooth masks: byte-identical to the generator of ca0ecf8 at both scales, float and double") {
  check_identity<float>(64, 64, 2, 6.0, 1);      // the default-scale experiment's settings
  check_identity<float>(224, 224, 7, 21.0, 2);   // the paper's
  check_identity<float>(20, 17, 3, 5.0, 3);      // odd sizes: partial bands and phases
  check_identity<float>(61, 50, 2, 6.0, 4);
  check_identity<double>(64, 64, 2, 6.0, 5);
  check_identity<double>(33, 45, 7, 21.0, 6);
  check_identity<double>(224, 224, 7, 21.0, 7);  // the paper's, in double (4 lanes a vector)
}
