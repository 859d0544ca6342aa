// KernelSHAP: exact Shapley values by enumeration against brute force over subsets, convergence
// of the sampled estimate, local accuracy, and chunk/thread invariance; evaluate_coalitions: repeated
// coalitions evaluated once, inputs assembled after the pixel-wise layers, values bit for bit.
#include "attributions/kernelshap.h"
#include "attributions/perturbation.h"
#include "attributions/segmentation.h"
#include "test_perturbation_util.h"

namespace {

/// Labels of an h×w image cut into `m` vertical strips.
cv::Mat strips(int64_t h, int64_t w, int64_t m) {
  cv::Mat labels(static_cast<int>(h), static_cast<int>(w), CV_32S);
  for (int y = 0; y < labels.rows; ++y)
    for (int x = 0; x < labels.cols; ++x) labels.at<int32_t>(y, x) = static_cast<int32_t>(x * m / w);
  return labels;
}

/// φ_k = Σ_{S ∌ k} |S|!(M−|S|−1)!/M! (v(S ∪ k) − v(S)), with v(S) = f_t(x on S, baseline elsewhere)
/// evaluated by the network for every one of the 2^M subsets.
std::vector<double> brute_force_shapley(const lab::Network& net, const lab::Tensor& x1, const lab::Tensor& baseline,
                                        const cv::Mat& labels, int64_t m, int64_t target) {
  const int64_t subsets = int64_t{1} << m, numel = x1.numel(), plane = int64_t{labels.rows} * labels.cols;
  lab::Tensor inputs({subsets, x1.dim(1), x1.dim(2), x1.dim(3)});
  for (int64_t s = 0; s < subsets; ++s)
    for (int64_t i = 0; i < numel; ++i) {
      const int32_t label = labels.ptr<int32_t>(0)[i % plane];
      inputs[s * numel + i] = (s >> label) & 1 ? x1[i] : baseline[i];
    }
  const lab::Tensor y = net.forward(inputs);
  const int64_t units = y.sample_numel();
  std::vector<double> factorial(static_cast<size_t>(m + 1), 1.0);
  for (int64_t k = 1; k <= m; ++k) factorial[static_cast<size_t>(k)] = factorial[static_cast<size_t>(k - 1)] * static_cast<double>(k);
  std::vector<double> phi(static_cast<size_t>(m), 0.0);
  for (int64_t k = 0; k < m; ++k)
    for (int64_t s = 0; s < subsets; ++s) {
      if ((s >> k) & 1) continue;
      const int64_t size = __builtin_popcountll(static_cast<unsigned long long>(s));
      const double weight = factorial[static_cast<size_t>(size)] * factorial[static_cast<size_t>(m - size - 1)] /
                            factorial[static_cast<size_t>(m)];
      phi[static_cast<size_t>(k)] += weight * (double(y[(s | (int64_t{1} << k)) * units + target]) - double(y[s * units + target]));
    }
  return phi;
}

std::vector<double> strip_values(const lab::Tensor& attr, int64_t s, const cv::Mat& labels, int64_t m) {
  const lab::Tensor map = attributions::reduce_channels(attr);
  std::vector<double> out(static_cast<size_t>(m));
  const int64_t plane = int64_t{labels.rows} * labels.cols;
  for (int64_t p = 0; p < plane; ++p) out[static_cast<size_t>(labels.ptr<int32_t>(0)[p])] = map.sample(s)[p];
  return out;
}

}  // namespace

TEST_CASE("KernelSHAP with every coalition enumerated equals the brute-force Shapley values") {
  for (const bool softmax : {false, true}) {
    CAPTURE(softmax);
    const int64_t m = 5;
    const lab::Network net = ptest::random_convnet({2, 6, 10}, 3, 21, softmax);
    attributions::Context context;
    context.net = &net;
    context.batch = 8;
    std::mt19937 rng(4);
    const lab::Tensor x({2, 2, 6, 10}, ptest::random_values(240, rng, -1.0f, 2.0f));
    const cv::Mat labels = strips(6, 10, m);
    const attributions::Batch batch{x, {2, 0}, {1, 2}, {labels, labels}};
    // 2^5 − 2 = 30 proper coalitions fit in 30 samples: enumerated, with the Shapley kernel.
    const auto method = ptest::make("kernelshap", {{"segmentation", "oracle"}, {"samples", "30"},
                                                   {"baseline", "0.25"}, {"output", "probability"}});
    const attributions::Result r = method->attribute(context, batch);
    CHECK(r.evaluations == 2 * 32);
    const lab::Tensor baseline({1, 2, 6, 10}, 0.25f);
    for (int64_t s = 0; s < 2; ++s) {
      const std::vector<double> exact =
          brute_force_shapley(net, x.slice(s, s + 1), baseline, labels, m, batch.target[static_cast<size_t>(s)]);
      const std::vector<double> phi = strip_values(r.attr, s, labels, m);
      double scale = 0;
      for (double v : exact) scale = std::max(scale, std::abs(v));
      REQUIRE(scale > 1e-3);
      for (int64_t k = 0; k < m; ++k) CHECK(phi[static_cast<size_t>(k)] == doctest::Approx(exact[static_cast<size_t>(k)]).scale(scale).epsilon(1e-5));
    }
  }
}

TEST_CASE("KernelSHAP: sampled coalitions converge towards the Shapley values, local accuracy always holds") {
  const int64_t m = 8;
  const lab::Network net = ptest::random_convnet({1, 4, 16}, 2, 8, false);
  attributions::Context context;
  context.net = &net;
  context.batch = 64;
  std::mt19937 rng(9);
  const lab::Tensor x({1, 1, 4, 16}, ptest::random_values(64, rng, 0.0f, 3.0f));
  const cv::Mat labels = strips(4, 16, m);
  const lab::Tensor baseline({1, 1, 4, 16}, 0.0f);
  const std::vector<double> exact = brute_force_shapley(net, x, baseline, labels, m, 1);
  const double delta = double(net.forward(x)[1]) - double(net.forward(baseline)[1]);
  int64_t evaluations_fine = 0;  // of the last seed's map
  auto mean_error = [&](int64_t samples) {
    double err = 0;
    for (uint64_t seed = 0; seed < 6; ++seed) {
      const auto method = ptest::make("kernelshap", {{"segmentation", "oracle"}, {"samples", std::to_string(samples)}});
      const attributions::Result r = method->attribute(context, {x, {1}, {seed}, {labels}});
      // 2 + `samples` coalitions drawn; those drawn again are not evaluated again.
      CHECK(r.evaluations <= 2 + samples);
      CHECK(r.evaluations <= int64_t{1} << m);
      evaluations_fine = r.evaluations;
      const std::vector<double> phi = strip_values(r.attr, 0, labels, m);
      double sum = 0;
      for (int64_t k = 0; k < m; ++k) {
        sum += phi[static_cast<size_t>(k)];
        err += std::abs(phi[static_cast<size_t>(k)] - exact[static_cast<size_t>(k)]);
      }
      CHECK(sum == doctest::Approx(delta).epsilon(1e-5));
    }
    return err / 6;
  };
  // 2^8 − 2 = 254 proper coalitions: 16 and 240 samples are both drawn from the kernel.
  const double coarse = mean_error(16);
  const double fine = mean_error(240);
  CHECK(evaluations_fine < 2 + 240);  // 240 draws among 254 coalitions repeat some
  CAPTURE(coarse);
  CAPTURE(fine);
  CHECK(fine < 0.5 * coarse);
}

TEST_CASE("Shapley regression is exact on an additive game from any spanning set of coalitions") {
  const std::vector<double> a = {1.5, -2.0, 0.25, 4.0};
  std::vector<uint8_t> z = {1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0};
  std::vector<double> v, w;
  for (size_t i = 0; i < z.size() / 4; ++i) {
    double value = 0.5;  // v(∅)
    for (size_t k = 0; k < 4; ++k) value += z[i * 4 + k] * a[k];
    v.push_back(value);
    w.push_back(1.0 + static_cast<double>(i));
  }
  const std::vector<double> phi = attributions::shapley_regression(z, 4, v, w, 0.5, 0.5 + 1.5 - 2.0 + 0.25 + 4.0);
  for (size_t k = 0; k < 4; ++k) CHECK(phi[k] == doctest::Approx(a[k]).epsilon(1e-12));
  CHECK(attributions::shapley_regression({}, 1, {}, {}, 2.0, 5.0) == std::vector<double>{3.0});
}

TEST_CASE("KernelSHAP: the same map for any chunk size and thread count") {
  ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0, 1});
  ptest::check_invariance([] { return ptest::make("kernelshap", {{"samples", "100"}, {"baseline", "background"}}); },
                          e.context, e.batch, {256, 1, 9}, 1e-6);
}

namespace {

/// Values k/den for integers k in [lo, hi]: dyadic, so every sum below is exact in float.
std::vector<float> dyadic_values(int64_t n, std::mt19937& rng, int lo, int hi, float den) {
  std::uniform_int_distribution<int> k(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(k(rng)) / den;
  return v;
}

/// Pixel-wise layers (1×1 conv 2→6, ReLU, 1×1 conv 6→3, ReLU; only with `pixelwise`), then a
/// 3×3 conv, ReLU and a linear head, all with dyadic weights: outputs are exact, the same for
/// an input in any batch.
lab::Network dyadic_convnet(uint32_t seed, bool pixelwise) {
  std::mt19937 rng(seed);
  lab::Network net({2, 6, 10});
  const auto conv = [&](int64_t in, int64_t out, int64_t k) {
    lab::Conv2dParams cp{.in_channels = in, .out_channels = out, .kernel_h = k, .kernel_w = k,
                         .pad_h = k / 2, .pad_w = k / 2};
    return std::make_shared<lab::Conv2d>(cp, lab::Tensor({out, in, k, k}, dyadic_values(out * in * k * k, rng, -8, 8, 8)),
                                         lab::Tensor({out}, dyadic_values(out, rng, -4, 4, 4)));
  };
  if (pixelwise) {
    net.add("pixel.0", conv(2, 6, 1));
    net.add("pixel.1", std::make_shared<lab::ReLU>());
    net.add("pixel.2", conv(6, 3, 1));
    net.add("pixel.3", std::make_shared<lab::ReLU>());
  }
  net.add("conv.0", conv(pixelwise ? 3 : 2, 2, 3));
  net.add("conv.1", std::make_shared<lab::ReLU>());
  net.add("flatten", std::make_shared<lab::Flatten>());
  net.add("head", std::make_shared<lab::Linear>(lab::Tensor({3, 120}, dyadic_values(360, rng, -2, 2, 2)),
                                                lab::Tensor({3}, dyadic_values(3, rng, -2, 2, 2))));
  return net;
}

}  // namespace

TEST_CASE("evaluate_coalitions: coalitions assembled after the pixel-wise layers") {
  CHECK(attributions::coalition_cut(ptest::random_convnet({2, 6, 10}, 3, 21, false)) == 0);  // starts with a 3×3 conv
  CHECK(attributions::coalition_cut(dyadic_convnet(3, false)) == 0);
  CHECK(attributions::coalition_cut(dyadic_convnet(3, true)) == 4);
  // Multi-color-sum: the colour detector (10 layers, 60 channels at most) is skipped, its 6
  // output channels are filled in.
  const ptest::EnvBatch e = ptest::env_batch("multi-color-sum", 32, {0, 1});
  CHECK(attributions::coalition_cut(e.net) == 10);
}

TEST_CASE("evaluate_coalitions: a repeated coalition is evaluated once; every value is the coalition input's output, bit for bit") {
  const int64_t m = 4;
  std::mt19937 rng(5);
  const lab::Tensor x({2, 2, 6, 10}, dyadic_values(240, rng, -4, 8, 4));
  const lab::Tensor baseline({2, 6, 10}, 0.25f);
  const cv::Mat labels = strips(6, 10, m);
  const std::vector<attributions::Segments> segments = {{labels, m}, {labels, m}};
  const std::vector<std::vector<uint8_t>> rows0 = {{1, 1, 1, 1}, {0, 1, 0, 1}, {1, 1, 1, 1},
                                                   {0, 0, 0, 0}, {0, 1, 0, 1}, {1, 0, 1, 0}};
  const std::vector<std::vector<uint8_t>> rows1 = {{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}};
  std::vector<attributions::Coalitions> coalitions(2);
  for (auto& c : coalitions) c.features = m;
  for (const auto& row : rows0) coalitions[0].push(row);
  for (const auto& row : rows1) coalitions[1].push(row);
  const std::vector<int64_t> target = {2, 0};
  // Inputs at the network input (a 3×3 conv first) and after four pixel-wise layers.
  const std::vector<lab::Network> nets = {dyadic_convnet(3, false), dyadic_convnet(3, true)};
  for (size_t k = 0; k < nets.size(); ++k)
    for (const int64_t chunk : {1, 2, 64}) {
      CAPTURE(k);
      CAPTURE(chunk);
      int64_t evaluations = 0;
      const auto f = attributions::evaluate_coalitions(nets[k], x, baseline, segments, coalitions, target, chunk,
                                                       evaluations);
      CHECK(evaluations == 4 + 1);  // the distinct rows of each sample
      REQUIRE(f.size() == 2);
      for (size_t s = 0; s < 2; ++s) {
        REQUIRE(static_cast<int64_t>(f[s].size()) == coalitions[s].count());
        for (int64_t i = 0; i < coalitions[s].count(); ++i) {
          CAPTURE(s);
          CAPTURE(i);
          // The row's own input, evaluated alone by a full pass.
          lab::Tensor input({1, 2, 6, 10});
          attributions::fill_coalition(x.sample(static_cast<int64_t>(s)), baseline.data(), labels, coalitions[s].row(i),
                                       2, input.data());
          CHECK(f[s][static_cast<size_t>(i)] == double(nets[k].forward(input)[target[s]]));
        }
      }
    }
}
