#include "datasets/data_dir.h"

#include <atomic>
#include <mutex>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "lab/core/error.h"
#include "lab/core/hash.h"
#include "lab/io/files.h"
#include "lab/io/image.h"
#include "lab/io/npy.h"
#include "lab/io/outputs.h"

namespace fs = std::filesystem;

namespace datasets {

namespace {

std::vector<uint8_t> mat_bytes(const cv::Mat& m) {
  LAB_CHECK(m.type() == CV_8UC1 && m.isContinuous(), "patch map must be continuous CV_8UC1");
  return std::vector<uint8_t>(m.data, m.data + m.total());
}

nlohmann::json sample_entry(const Environment& env, const Sample& s) {
  nlohmann::json layout = nlohmann::json::array();
  for (size_t k = 0; k < s.layout.size(); ++k) {
    nlohmann::json p = s.layout[k].to_json();
    p["class"] = env.patch_class(static_cast<int64_t>(k + 1));
    layout.push_back(std::move(p));
  }
  return {{"id", s.id},
          {"image", "images/" + s.id + ".png"},
          {"gt", "gt/" + s.id + ".npy"},
          {"gt-smooth", "gt/" + s.id + ".smooth.npy"},
          {"patches", "patches/" + s.id + ".npy"},
          {"label", s.label},
          {"counts", s.counts},
          {"layout", std::move(layout)}};
}

// Manifest readers: every problem names the manifest and the field.
struct ManifestReader {
  std::string file;

  const nlohmann::json& field(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    if (!object.is_object()) lab::fail("{}: {} must be a JSON object, got {}", file, where, object.type_name());
    auto it = object.find(key);
    if (it == object.end()) lab::fail("{}: {} has no field \"{}\"", file, where, key);
    return *it;
  }
  std::string string(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const nlohmann::json& v = field(object, key, where);
    if (!v.is_string()) lab::fail("{}: {}.{} must be a string, got {}", file, where, key, v.dump());
    return v.get<std::string>();
  }
  int64_t integer(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const nlohmann::json& v = field(object, key, where);
    if (!v.is_number_integer()) lab::fail("{}: {}.{} must be an integer, got {}", file, where, key, v.dump());
    return v.get<int64_t>();
  }
  std::vector<int64_t> integers(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const nlohmann::json& v = field(object, key, where);
    bool ok = v.is_array();
    if (ok)
      for (const auto& e : v) ok = ok && e.is_number_integer();
    if (!ok) lab::fail("{}: {}.{} must be a list of integers, got {}", file, where, key, v.dump());
    return v.get<std::vector<int64_t>>();
  }
  /// Refuses a key of `object` outside `known` (a field nobody reads would be ignored).
  void only_known(const nlohmann::json& object, std::initializer_list<const char*> known, const std::string& where) const {
    if (!object.is_object()) lab::fail("{}: {} must be a JSON object, got {}", file, where, object.type_name());
    for (const auto& [key, value] : object.items()) {
      bool ok = false;
      for (const char* k : known) ok = ok || key == k;
      if (ok) continue;
      std::string names;
      for (const char* k : known) names += (names.empty() ? "" : ", ") + std::string(k);
      lab::fail("{}: {} has an unknown field \"{}\"; known: {}", file, where, key, names);
    }
  }
  std::vector<double> numbers(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const nlohmann::json& v = field(object, key, where);
    bool ok = v.is_array();
    if (ok)
      for (const auto& e : v) ok = ok && e.is_number();
    if (!ok) lab::fail("{}: {}.{} must be a list of numbers, got {}", file, where, key, v.dump());
    return v.get<std::vector<double>>();
  }
  // A path inside the data directory: relative and without "..".
  std::string relative_path(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const std::string p = string(object, key, where);
    const fs::path path(p);
    bool inside = !p.empty() && path.is_relative();
    for (const auto& part : path) inside = inside && part != "..";
    if (!inside) lab::fail("{}: {}.{} = \"{}\" must be a path relative to the data directory, inside it", file, where, key, p);
    return p;
  }
};

void check_npy_header(const fs::path& path, const std::string& dtype, const lab::Shape& shape) {
  const lab::NpyInfo info = lab::read_npy_info(path);
  if (info.dtype != dtype || info.shape != shape)
    lab::fail("{}: holds dtype {} of shape {}; expected dtype {} of shape {}", path.string(), info.dtype,
              lab::to_string(info.shape), dtype, lab::to_string(shape));
}

// Runs `check(i)` for i in [0, n) in parallel and rethrows the error of the smallest index, so
// the message does not depend on the thread count.
template <typename Check>
void check_all(int64_t n, const Check& check) {
  std::vector<std::string> messages(static_cast<size_t>(n));
  std::vector<lab::ErrorKind> kinds(static_cast<size_t>(n), lab::ErrorKind::kInput);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n), [&](const tbb::blocked_range<int64_t>& range) {
    for (int64_t i = range.begin(); i < range.end(); ++i) {
      try {
        check(i);
      } catch (const lab::Error& e) {
        messages[static_cast<size_t>(i)] = e.what();
        kinds[static_cast<size_t>(i)] = e.kind();
      }
    }
  });
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].empty()) throw lab::Error(messages[i], kinds[i]);
}

// The files of a sample that its fingerprint covers, in order.
constexpr const char* kFingerprintFiles[] = {"image", "gt", "gt-smooth", "patches"};

/// FNV-1a over the bytes of sample i's files (paths from its manifest entry).
uint64_t sample_digest(const fs::path& root, const nlohmann::json& entry) {
  uint64_t h = lab::fnv1a("sample");
  for (const char* key : kFingerprintFiles) {
    const std::string bytes = lab::read_text(root / entry[key].get<std::string>());
    h = lab::fnv1a(bytes.data(), bytes.size(), h);
  }
  return h;
}

/// The data's fingerprint from the generating request and the per-sample digests.
std::string combine_fingerprint(const std::string& env, const nlohmann::json& options, uint64_t seed,
                                const std::vector<uint64_t>& digests) {
  const nlohmann::json request = {{"env", env}, {"options", options}, {"seed", seed}, {"count", digests.size()}};
  uint64_t h = lab::fnv1a(request.dump());
  for (const uint64_t d : digests) h = lab::fnv1a(&d, sizeof d, h);
  return fmt::format("fnv1a64:{:016x}", h);
}

}  // namespace

void write_data_dir(const Environment& env, int64_t count, uint64_t seed, const fs::path& out, bool progress) {
  if (count < 1) lab::fail_parameter("--count must be at least 1, got {}", count);
  // The manifest is held in memory until written: about 4 KiB per sample as JSON.
  lab::check_memory(static_cast<uint64_t>(count) * 4096,
                    fmt::format("count {} (the manifest of every sample is built in memory)", count));
  lab::StagedDir staged(out);
  const fs::path root = staged.path();
  for (const char* sub : {"images", "gt", "patches"}) {
    std::error_code ec;
    fs::create_directories(root / sub, ec);
    if (ec) lab::fail("{}: cannot create {}: {}", out.string(), (root / sub).string(), ec.message());
  }
  const int64_t side = env.image_size();
  std::vector<nlohmann::json> entries(static_cast<size_t>(count));
  std::atomic<int64_t> done{0};
  std::mutex print;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, count), [&](const tbb::blocked_range<int64_t>& range) {
    for (int64_t i = range.begin(); i < range.end(); ++i) {
      const Sample s = env.generate(seed, i);
      lab::write_png(root / "images" / (s.id + ".png"), s.image);
      lab::write_npy(root / "gt" / (s.id + ".npy"), s.gt);
      lab::write_npy(root / "gt" / (s.id + ".smooth.npy"), s.gt_smooth);
      lab::write_npy_u8(root / "patches" / (s.id + ".npy"), mat_bytes(s.patches), {side, side});
      entries[static_cast<size_t>(i)] = sample_entry(env, s);
      const int64_t n = ++done;
      if (progress && (n * 10 / count != (n - 1) * 10 / count || n == count)) {
        std::lock_guard<std::mutex> lock(print);
        fmt::print(stderr, "generate: {}/{} samples\n", n, count);
      }
    }
  });
  std::vector<uint64_t> digests(static_cast<size_t>(count));
  tbb::parallel_for(int64_t{0}, count, [&](int64_t i) {
    digests[static_cast<size_t>(i)] = sample_digest(root, entries[static_cast<size_t>(i)]);
  });
  const std::vector<float> background = env.background();
  const nlohmann::json manifest = {{"format", kDataFormat},
                                   {"version", ATTRLAB_VERSION},
                                   {"env", env.name()},
                                   {"options", env.options()},
                                   {"seed", seed},
                                   {"count", count},
                                   {"image-shape", env.input_shape()},
                                   {"classes", env.num_classes()},
                                   {"background", background},
                                   {"fingerprint", combine_fingerprint(env.name(), env.options(), seed, digests)},
                                   {"samples", entries}};
  lab::write_json(root / "manifest.json", manifest);
  staged.commit();
}

DataDir DataDir::open(const fs::path& dir) {
  DataDir d;
  d.dir_ = dir;
  const fs::path manifest_path = dir / "manifest.json";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) lab::fail("{}: no such data directory", dir.string());
  d.manifest_ = lab::read_json(manifest_path);
  const ManifestReader r{manifest_path.string()};
  const nlohmann::json& m = d.manifest_;

  r.only_known(m, {"format", "version", "env", "options", "seed", "count", "image-shape", "classes", "background", "fingerprint", "samples"},
               "the manifest");
  r.string(m, "version", "the manifest");
  const int64_t format = r.integer(m, "format", "the manifest");
  if (format != kDataFormat) lab::fail("{}: format {} is not supported; expected {}", r.file, format, kDataFormat);
  const std::string env_name = r.string(m, "env", "the manifest");
  const nlohmann::json& options = r.field(m, "options", "the manifest");
  if (!options.is_object()) lab::fail("{}: options must be a JSON object, got {}", r.file, options.dump());
  const nlohmann::json& seed = r.field(m, "seed", "the manifest");
  if (!seed.is_number_unsigned()) lab::fail("{}: seed must be a non-negative integer, got {}", r.file, seed.dump());
  d.seed_ = seed.get<uint64_t>();
  try {
    d.env_ = environment_from_json(env_name, options);
  } catch (const lab::Error& e) {
    throw lab::Error(fmt::format("{}: env {} with the manifest's options: {}", r.file, env_name, e.what()),
                     lab::ErrorKind::kInput);  // a bad file, whatever the option's own kind
  }
  const Environment& env = *d.env_;
  const lab::Shape shape = r.integers(m, "image-shape", "the manifest");
  if (shape != env.input_shape())
    lab::fail("{}: image-shape {} does not match the options' {}", r.file, lab::to_string(shape),
              lab::to_string(env.input_shape()));
  const int64_t classes = r.integer(m, "classes", "the manifest");
  if (classes != env.num_classes())
    lab::fail("{}: classes = {} does not match the options' {}", r.file, classes, env.num_classes());
  const std::vector<double> background = r.numbers(m, "background", "the manifest");
  const std::vector<float> env_background = env.background();
  bool same_background = background.size() == env_background.size();
  for (size_t k = 0; same_background && k < background.size(); ++k)
    same_background = static_cast<float>(background[k]) == env_background[k];
  if (!same_background)
    lab::fail("{}: background {} does not match the options' {}", r.file, m["background"].dump(),
              nlohmann::json(env_background).dump());
  const nlohmann::json& samples = r.field(m, "samples", "the manifest");
  if (!samples.is_array() || samples.empty())
    lab::fail("{}: samples must be a non-empty list, got {}", r.file, samples.is_array() ? "[]" : samples.type_name());
  const int64_t count = r.integer(m, "count", "the manifest");
  if (count != static_cast<int64_t>(samples.size()))
    lab::fail("{}: count = {} but samples lists {}", r.file, count, samples.size());

  std::set<std::string> ids;
  for (size_t i = 0; i < samples.size(); ++i) {
    const nlohmann::json& s = samples[i];
    const std::string where = fmt::format("samples[{}]", i);
    r.only_known(s, {"id", "image", "gt", "gt-smooth", "patches", "label", "counts", "layout"}, where);
    const std::string id = r.string(s, "id", where);
    if (!ids.insert(id).second) lab::fail("{}: {}: id \"{}\" appears twice", r.file, where, id);
    for (const char* key : {"image", "gt", "gt-smooth", "patches"}) r.relative_path(s, key, where);
    const int64_t label = r.integer(s, "label", where);
    if (label < 0 || label >= env.num_classes())
      lab::fail("{}: {}.label = {} is outside 0..{}", r.file, where, label, env.num_classes() - 1);
    const std::vector<int64_t> c = r.integers(s, "counts", where);
    if (static_cast<int64_t>(c.size()) != env.num_counts())
      lab::fail("{}: {}.counts has {} entries; expected {}", r.file, where, c.size(), env.num_counts());
    const nlohmann::json& layout = r.field(s, "layout", where);
    if (!layout.is_array()) lab::fail("{}: {}.layout must be a list of patches, got {}", r.file, where, layout.dump());
    for (size_t k = 0; k < layout.size(); ++k) {
      const std::string patch = fmt::format("{}.layout[{}]", where, k);
      r.only_known(layout[k], {"shape", "size", "box", "class"}, patch);
      r.string(layout[k], "shape", patch);
      r.integer(layout[k], "size", patch);
      r.integer(layout[k], "class", patch);
      if (r.integers(layout[k], "box", patch).size() != 4)
        lab::fail("{}: {}.box must be [x, y, width, height], got {}", r.file, patch, layout[k]["box"].dump());
    }
  }

  const int64_t side = env.image_size();
  std::vector<uint64_t> digests(static_cast<size_t>(d.size()));
  check_all(d.size(), [&](int64_t i) {
    const fs::path image_path = d.file(i, "image");
    const cv::Mat image = lab::read_png(image_path, env.image_channels());
    std::vector<int64_t> counts;
    int64_t label = 0;
    try {
      counts = env.count_pixels(image);
      label = env.label_from_counts(counts);
    } catch (const lab::Error& e) {
      throw lab::Error(fmt::format("{}: {}", image_path.string(), e.what()), e.kind());
    }
    if (counts != d.counts(i))
      lab::fail("{}: pixel counts {} differ from the manifest's counts {} (sample {})", image_path.string(),
                counts, d.counts(i), d.id(i));
    if (label != d.label(i))
      lab::fail("{}: the pixels give label {}, the manifest says {} (sample {})", image_path.string(), label,
                d.label(i), d.id(i));
    check_npy_header(d.file(i, "gt"), "<f4", {side, side});
    check_npy_header(d.file(i, "gt-smooth"), "<f4", {side, side});
    check_npy_header(d.file(i, "patches"), "|u1", {side, side});
    digests[static_cast<size_t>(i)] = sample_digest(dir, d.sample(i));
  });
  d.fingerprint_ = combine_fingerprint(env_name, options, d.seed_, digests);
  if (m.contains("fingerprint")) {
    const std::string stored = r.string(m, "fingerprint", "the manifest");
    if (stored != d.fingerprint_)
      lab::fail("{}: fingerprint {} does not match the files, which give {} (a file was changed after generation)",
                r.file, stored, d.fingerprint_);
  }
  return d;
}

const nlohmann::json& DataDir::sample(int64_t i) const {
  if (i < 0 || i >= size()) lab::fail("{}: sample index {} is outside 0..{}", dir_.string(), i, size() - 1);
  return manifest_["samples"][static_cast<size_t>(i)];
}

fs::path DataDir::file(int64_t i, const char* key) const { return dir_ / sample(i)[key].get<std::string>(); }

std::string DataDir::id(int64_t i) const { return sample(i)["id"].get<std::string>(); }

int64_t DataDir::label(int64_t i) const { return sample(i)["label"].get<int64_t>(); }

std::vector<int64_t> DataDir::counts(int64_t i) const { return sample(i)["counts"].get<std::vector<int64_t>>(); }

cv::Mat DataDir::image(int64_t i) const {
  const fs::path path = file(i, "image");
  const cv::Mat image = lab::read_png(path, env_->image_channels());
  if (image.rows != env_->image_size() || image.cols != env_->image_size())
    lab::fail("{}: image is {}x{}; expected {}x{}", path.string(), image.cols, image.rows, env_->image_size(),
              env_->image_size());
  return image;
}

lab::Tensor DataDir::input(int64_t i) const { return env_->to_input(image(i)); }

lab::Tensor DataDir::inputs(int64_t begin, int64_t end) const {
  if (begin < 0 || end > size() || begin >= end)
    lab::fail("{}: sample range [{}, {}) is not inside 0..{}", dir_.string(), begin, end, size());
  std::vector<lab::Tensor> parts(static_cast<size_t>(end - begin));
  tbb::parallel_for(begin, end, [&](int64_t i) { parts[static_cast<size_t>(i - begin)] = input(i); });
  return lab::Tensor::stack(parts);
}

lab::Tensor DataDir::gt(int64_t i, bool smooth) const {
  const fs::path path = file(i, smooth ? "gt-smooth" : "gt");
  const int64_t side = env_->image_size();
  lab::Tensor t = lab::read_npy(path);
  if (t.shape() != lab::Shape{side, side})
    lab::fail("{}: shape {}; expected {}", path.string(), lab::to_string(t.shape()), lab::to_string({side, side}));
  const lab::Tensor expected =
      smooth ? env_->smooth_ground_truth(patches(i), label(i)) : env_->ground_truth(image(i), label(i));
  for (int64_t j = 0; j < t.numel(); ++j)
    if (t[j] != expected[j])
      lab::fail("{}: value {} at (x={}, y={}) differs from the {} ground truth {} of sample {}", path.string(), t[j],
                j % side, j / side, smooth ? "smooth" : "pixel", expected[j], id(i));
  return t;
}

cv::Mat DataDir::patches(int64_t i) const {
  const fs::path path = file(i, "patches");
  const int64_t side = env_->image_size();
  lab::Shape shape;
  std::vector<uint8_t> values = lab::read_npy_u8(path, shape);
  if (shape != lab::Shape{side, side})
    lab::fail("{}: shape {}; expected {}", path.string(), lab::to_string(shape), lab::to_string({side, side}));
  cv::Mat map(static_cast<int>(side), static_cast<int>(side), CV_8UC1);
  std::copy(values.begin(), values.end(), map.data);
  const cv::Mat classes = env_->pixel_classes(image(i));
  for (int y = 0; y < map.rows; ++y)
    for (int x = 0; x < map.cols; ++x) {
      const int k = map.at<uint8_t>(y, x);
      if (k > env_->num_patches())
        lab::fail("{}: value {} at (x={}, y={}); patches are numbered 1..{}", path.string(), k, x, y, env_->num_patches());
      const int c = classes.at<int>(y, x);
      if (c >= 0 && (k == 0 || env_->patch_class(k) != c))
        lab::fail("{}: pixel (x={}, y={}) of class {} lies {} of sample {}", path.string(), x, y, c,
                  k == 0 ? std::string("outside every patch") : fmt::format("in patch {} of class {}", k, env_->patch_class(k)),
                  id(i));
    }
  return map;
}

}  // namespace datasets
