/// @file maps.h
/// @brief Attribution maps made anywhere, read back: the file rules shared by `attrlab evaluate`
/// and by the outside methods of an experiment (a method whose maps are files, config.h).
///
/// A map file is DIR/<id>.npy, <id> a sample id of the data: float32, or float16/float64 converted
/// to float32; shape H×W, C×H×W or H×W×C with C = 1 or the input's channels (a shape that reads
/// both ways is refused); finite. A DIR/maps.json, when present, must describe the data the maps
/// are scored on (check_made_for). Tested in tests/experiments/test_evaluate.cpp and
/// tests/cli/test_cmd_run.cpp.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "lab/core/tensor.h"

namespace experiments {

/// Refuses (lab::Error, exit 1) maps whose record `json` (a maps.json) says they were made for
/// other data than `data`: another environment, or another fingerprint (data_dir.h); without a
/// fingerprint (records written before it existed), another seed or count.
void check_made_for(const std::filesystem::path& json, const nlohmann::json& record, const datasets::DataDir& data);

/// The map of `file` as C×H×W for an input of shape `input` (C×H×W): C×H×W files as they are,
/// H×W×C files moved to C×H×W, H×W and 1×H×W files in channel 0 with zeros elsewhere (the
/// channel sum, metric.h, is the map). std::nullopt with `reason` set for a file that breaks the
/// rules; `converted_from` is set to "float16"/"float64" for converted files, else "".
std::optional<lab::Tensor> read_map_channels(const std::filesystem::path& file, const lab::Shape& input,
                                             std::string& reason, std::string* converted_from = nullptr);
/// The same map summed over channels: H×W.
std::optional<lab::Tensor> read_map(const std::filesystem::path& file, const lab::Shape& input, std::string& reason,
                                    std::string* converted_from = nullptr);

/// A method whose maps are files made by another tool: DIR/<id>.npy for the samples it is asked
/// for (attributions::Batch::ids). Constructing it checks DIR/maps.json against the data and
/// every sample's file (and that DIR holds no .npy file of another sample id: maps of other data),
/// so a run refuses bad outside maps before any work; a file that changes afterwards fails when
/// read. It spends no network evaluation.
class MapsFromFiles final : public attributions::Method {
 public:
  MapsFromFiles(std::filesystem::path dir, const datasets::DataDir& data);
  std::string name() const override { return "maps"; }
  nlohmann::json params() const override;
  attributions::Result attribute(const attributions::Context& context, const attributions::Batch& batch) const override;

  const std::filesystem::path& dir() const { return dir_; }
  /// DIR/maps.json named the data's fingerprint (checked equal); false: matched to the data by
  /// sample ids, count and shapes only.
  bool fingerprinted() const { return fingerprinted_; }
  /// dtype ("float16", "float64") → how many of the files were converted from it to float32.
  const std::map<std::string, int64_t>& conversions() const { return conversions_; }

 private:
  std::filesystem::path dir_;
  lab::Shape input_;
  bool fingerprinted_ = false;
  std::map<std::string, int64_t> conversions_;
};

}  // namespace experiments
