/// @file data_dir.h
/// @brief The data directory: generated samples on disk with a manifest from which every command
/// rebuilds the identical environment and network. The contract outside tools rely on.
///
/// Layout of DIR:
///   manifest.json           format, version, env, options, seed, count, image-shape, classes,
///                           background, samples (see below)
///   images/<id>.png         8-bit RGB (multi-color-sum) or 8-bit gray, white = 255 (modulo)
///   gt/<id>.npy             float32 H×W pixel ground truth (signed for multi-color-sum)
///   gt/<id>.smooth.npy      float32 H×W smooth ground truth (per patch region; environment.h)
///   patches/<id>.npy        uint8 H×W patch map: 0 background, k inside the k-th patch
/// Manifest fields: "format" (1), "version" (attrlab version that wrote it), "env" (environment
/// name), "options" (every option resolved; environment_from_json() rebuilds from it), "seed",
/// "count", "image-shape" ([C, H, W]), "classes", "background" (per channel, network units),
/// "fingerprint" (below), and "samples": per sample {"id", "image", "gt", "gt-smooth", "patches" (paths relative to
/// DIR), "label", "counts" (designed pixel count per class; modulo: [white pixels]),
/// "layout" ([{"shape", "size", "box": [x, y, w, h], "class"}], the k-th entry is patch k)}.
/// Ids are the zero-padded sample indices ("000000"); sample i is generate(seed, i).
///
/// The fingerprint, "fnv1a64:<16 hex digits>", identifies the data: 64-bit FNV-1a over the
/// generating request ({"env", "options", "seed", "count"} as compact JSON) followed by, per
/// sample in order, the FNV-1a digest of the bytes of its image, gt, gt-smooth and patches files.
/// Opening recomputes it from the files; a manifest whose stored value differs is refused (a
/// manifest without one, written before the field existed, is accepted). Maps records carry it
/// (`maps.json` "data-manifest"), so maps are never scored against other data.
///
/// Writing goes through a lab::StagedDir: DIR appears only when complete. Samples are generated
/// in parallel with TBB, each from its own (seed, index) stream, so the bytes never depend on the
/// thread count. Opening validates the manifest fully and every image (decodable, right size and
/// channels, only background and class colours, counts and label as recomputed from the pixels)
/// and the headers of every .npy file (dtype and shape); a problem throws lab::Error naming the
/// file and what is wrong. Loading gt or patches also checks their values against the image and
/// the label. Tested in test_data_dir.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "datasets/environment.h"
#include "lab/core/tensor.h"

namespace datasets {

/// Version of the directory layout and manifest written by write_data_dir.
inline constexpr int kDataFormat = 1;

/// Generates samples 0..count-1 of `env` under `seed` into `out` (replaced atomically if it
/// exists). `progress` prints a line per 10% to stderr.
void write_data_dir(const Environment& env, int64_t count, uint64_t seed, const std::filesystem::path& out,
                    bool progress = false);

class DataDir {
 public:
  /// Reads and validates DIR (see the file comment); errors name the file.
  static DataDir open(const std::filesystem::path& dir);

  const Environment& env() const { return *env_; }
  int64_t size() const { return static_cast<int64_t>(manifest_["samples"].size()); }
  const nlohmann::json& manifest() const { return manifest_; }
  uint64_t seed() const { return seed_; }
  const std::filesystem::path& path() const { return dir_; }
  /// "fnv1a64:…", recomputed from the files when the directory was opened.
  const std::string& fingerprint() const { return fingerprint_; }

  std::string id(int64_t i) const;
  int64_t label(int64_t i) const;
  std::vector<int64_t> counts(int64_t i) const;
  /// The stored image (CV_8UC3 RGB or CV_8UC1).
  cv::Mat image(int64_t i) const;
  /// Network input of sample i, C×H×W.
  lab::Tensor input(int64_t i) const;
  /// Network inputs of samples [begin, end), N×C×H×W.
  lab::Tensor inputs(int64_t begin, int64_t end) const;
  /// H×W ground truth (pixel, or smooth); its values are checked against the image or patch map.
  lab::Tensor gt(int64_t i, bool smooth = false) const;
  /// CV_8UC1 patch map; checked to cover every foreground pixel with a patch of its class.
  cv::Mat patches(int64_t i) const;

 private:
  DataDir() = default;
  const nlohmann::json& sample(int64_t i) const;
  std::filesystem::path file(int64_t i, const char* key) const;
  std::filesystem::path dir_;
  nlohmann::json manifest_;
  uint64_t seed_ = 0;
  std::string fingerprint_;
  std::shared_ptr<const Environment> env_;
};

}  // namespace datasets
