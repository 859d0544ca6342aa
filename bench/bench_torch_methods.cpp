// attrlab's side of bench/bench_torch_methods.py: every method with a plain PyTorch formulation,
// timed on the images bench_torch_methods.py then gives to PyTorch, on the network `attrlab
// export` writes for the same environment. Writes into DIR the inputs (inputs.npy, N×C×H×W), the
// targets and designed patches (targets.npy, segments.npy), the ordering map of the curves
// (order.npy) and each row's output (<row>.npy: maps, or the curves' y values), and prints one
// JSON object: per row the median seconds per image (the whole batch in one call, as a user of
// the method runs it, divided by N), the network evaluations per image and the parameters.
// Times are of the methods called from C++ (no process start, no file I/O); primitive creation
// and first-touch are left to a warm-up call of each row.
//
//   bench_torch_methods --out DIR [--size S] [--images N] [--threads T] [--only ROW,ROW]
//   (--help lists the options and their defaults)
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "bench/bench_cli.h"
#include "bench/bench_model.h"
#include "datasets/environment.h"
#include "experiments/metrics/insertion_deletion.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"
#include "lab/io/npy.h"

namespace {

/// Median wall and CPU seconds of `work` after one warm-up call: at least 3 runs, more while
/// under 2 s; work that takes over a second is timed once after the warm-up.
bench::Timing seconds_of(const std::function<void()>& work) {
  const auto w0 = std::chrono::steady_clock::now();
  work();
  const bool long_run = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() > 1.0;
  return bench::median_time(work, [long_run](size_t runs, double seconds) {
    return !long_run && (runs < 3 || (runs < 15 && seconds < 2.0));
  });
}

struct Row {
  std::string name;    ///< row label, shared with bench_torch_methods.py
  std::string method;  ///< attrlab method name (empty: an Insertion/Deletion curve)
  std::vector<std::string> params;
};

}  // namespace

int main(int argc, char** argv) {
  lab::prepare_process(argv);
  int64_t size = 64, images = 8;
  int threads = 0;
  std::string out_text, only;
  bench::App app{
      "attrlab's side of bench/bench_torch_methods.py: every method with a plain PyTorch formulation timed on the "
      "images bench_torch_methods.py then gives to PyTorch; writes the inputs, targets, patches, ordering map and "
      "each row's output into --out and prints one JSON object (seconds per image, evaluations, parameters)",
      "bench_torch_methods"};
  app.add_option("--out", out_text, "Directory for the .npy files (created)")->required();
  app.add_option("--size", size, "Image side")->check(bench::integer(1));
  app.add_option("--images", images, "Images, timed as one batch")->check(bench::integer(1));
  app.add_option("--threads", threads, "oneDNN/TBB threads")
      ->check(bench::threads())
      ->default_str("ATTRLAB_THREADS or all cores");
  app.add_option("--only", only,
                 "Only these rows, comma-separated (saliency, input-x-gradient, integrated-gradients, "
                 "guided-backprop, deconvnet, gradcam, lrp-epsilon, occlusion, lime, kernelshap, insertion, deletion)")
      ->default_str("all");
  if (const auto exit = bench::parse(app, argc, argv)) return *exit;
  try {
    if (threads > 0) lab::Runtime::get().set_threads(threads);
    const std::filesystem::path out = out_text;
    if (out.empty()) lab::fail_parameter("--out: expected a directory, got ''");
    std::filesystem::create_directories(out);

    // The model at `size` (32 inputs per network call), the images (data seed 1), their designed
    // targets and patches.
    const bench::Model model(32, size);
    const auto& env = model.env;
    const lab::Network& net = model.net;
    const attributions::Context& context = model.context;
    const lab::Shape in = env->input_shape();
    const int64_t plane = in[1] * in[2];
    std::vector<lab::Tensor> xs;
    const attributions::Batch batch = model.batch(images, xs);
    lab::Tensor targets({images}), segments({images, in[1], in[2]});
    for (int64_t i = 0; i < images; ++i) {
      targets[i] = static_cast<float>(batch.target[static_cast<size_t>(i)]);
      const cv::Mat& seg = batch.segments[static_cast<size_t>(i)];
      for (int64_t p = 0; p < plane; ++p) segments[i * plane + p] = static_cast<float>(seg.at<int32_t>(static_cast<int>(p)));
    }
    lab::write_npy(out / "inputs.npy", batch.x);
    lab::write_npy(out / "targets.npy", targets);
    lab::write_npy(out / "segments.npy", segments);

    // The curves order pixels by a map of distinct values (a fixed permutation per image), so the
    // order has no ties and both frameworks perturb the same pixels at every step.
    lab::Tensor order({images, in[1], in[2]});
    for (int64_t i = 0; i < images; ++i) {
      std::vector<int64_t> perm(static_cast<size_t>(plane));
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), std::mt19937_64(static_cast<uint64_t>(i) + 1));
      for (int64_t p = 0; p < plane; ++p) order[i * plane + p] = static_cast<float>(perm[static_cast<size_t>(p)]);
    }
    lab::write_npy(out / "order.npy", order);

    // Occlusion: the paper's 5×5 window and stride 3 at 64×64 (441 windows); at larger sizes a 32×32
    // window and stride 16 (169 windows). Integrated Gradients: the paper's 50 steps at 64×64, 16
    // at larger sizes; LIME and KernelSHAP: 100 coalitions. Smaller than the paper's settings so
    // that the whole table is measured in one sitting on 2 cores; the cost per evaluation is
    // what the ratio compares.
    const std::string window = size <= 64 ? "3,5,5" : "3,32,32";
    const std::string strides = size <= 64 ? "3,3,3" : "3,16,16";
    const std::string steps = size <= 64 ? "50" : "16";
    const std::string samples = "100";
    const std::string per_step = std::to_string(plane / 64);
    const std::vector<Row> rows = {
        {"saliency", "saliency", {}},
        {"input-x-gradient", "input-x-gradient", {}},
        {"integrated-gradients", "integrated-gradients", {"steps=" + steps}},
        {"guided-backprop", "guided-backprop", {}},
        {"deconvnet", "deconvnet", {}},
        {"gradcam", "gradcam", {}},
        {"lrp-epsilon", "lrp", {"composite=lrp-epsilon"}},
        {"occlusion", "occlusion", {"window=" + window, "strides=" + strides}},
        {"lime", "lime", {"segmentation=oracle", "samples=" + samples}},
        {"kernelshap", "kernelshap", {"segmentation=oracle", "samples=" + samples}},
        {"insertion", "", {"pixels-per-step=" + per_step}},
        {"deletion", "", {"pixels-per-step=" + per_step}},
    };

    nlohmann::json result = {{"size", size}, {"images", images}, {"threads", lab::Runtime::get().threads()},
                             {"batch", context.batch}};
    for (const Row& row : rows) {
      if (!only.empty() && ("," + only + ",").find("," + row.name + ",") == std::string::npos) continue;
      bench::Timing seconds;
      int64_t evaluations = 0;
      if (!row.method.empty()) {
        lab::Options p = lab::Options::parse(row.params, "-p");
        const auto method = attributions::make_method(row.method, p);
        attributions::Result r;
        seconds = seconds_of([&] { r = method->attribute(context, batch); });
        evaluations = r.evaluations;
        lab::write_npy(out / (row.name + ".npy"), r.attr);
      } else {
        experiments::Context mc;
        mc.net = &net;
        mc.env = env->name();
        mc.background = env->background();
        mc.predicted_label = [&](const float* r) { return env->predicted_label(r); };
        mc.batch = context.batch;
        experiments::Batch mb;
        for (int64_t i = 0; i < images; ++i) mb.ids.push_back(datasets::sample_id(i));
        mb.x = batch.x;
        mb.attr = order;
        mb.target = batch.target;
        mb.gt = lab::Tensor({images, in[1], in[2]}, 0.0f);
        mb.seeds = batch.seeds;
        experiments::InsertionDeletion::Params params;
        params.pixels_per_step = plane / 64;
        const experiments::InsertionDeletion metric(row.name == "insertion"
                                                        ? experiments::InsertionDeletion::Kind::kInsertion
                                                        : experiments::InsertionDeletion::Kind::kDeletion,
                                                    params);
        experiments::MetricOutput mo;
        seconds = seconds_of([&] { mo = metric.evaluate(mc, mb); });
        const int64_t points = static_cast<int64_t>(mo.curves.size()) / images;
        lab::Tensor ys({images, points});
        for (size_t k = 0; k < mo.curves.size(); ++k) ys[static_cast<int64_t>(k)] = static_cast<float>(mo.curves[k].y);
        lab::write_npy(out / (row.name + ".npy"), ys);
        evaluations = images * points;
      }
      result["rows"][row.name] = {{"seconds", seconds.wall / static_cast<double>(images)},
                                  {"cpu-seconds", seconds.cpu / static_cast<double>(images)},
                                  {"evaluations", evaluations / images},
                                  {"params", row.params}};
      fmt::print(stderr, "  {} {}x{} {} thread(s): {:.4f} s/image\n", row.name, size, size,
                 lab::Runtime::get().threads(), seconds.wall / static_cast<double>(images));
    }
    fmt::print("{}\n", result.dump());
  } catch (const lab::Error& e) {
    fmt::print(stderr, "bench_torch_methods: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
