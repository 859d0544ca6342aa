/// @file evaluate.h
/// @brief Scoring attribution maps of any origin against a data directory with chosen metrics:
/// `attrlab evaluate`. The maps are read and checked here; the scoring is the score stage of
/// pipeline.h, the one `attrlab run` uses, so the same maps, seed and metrics give the same rows.
///
/// Maps. Each MAPS directory holds one method's maps as MAPS/<id>.npy (float32, or float16/64
/// converted to float32; H×W, C×H×W or H×W×C with C = 1 or the input's channels, summed over
/// channels as in metric.h; a shape that reads both ways is refused), <id> being the data's
/// sample ids. MAPS/maps.json (written by `attrlab attribute` and `attrlab run`) is
/// optional for maps made by other tools; when present, its "label" (else its "method") names
/// the method, its
/// "samples" list says which ids are expected and each entry's "target" the explained output
/// unit, and its "data-manifest" must describe the data: the same environment and the same
/// fingerprint (data_dir.h; other data are refused, naming both), or, for records without a
/// fingerprint, the same seed and count. Without it the method is
/// named after the directory, every data sample with a file is scored, and the target is the
/// output unit of the sample's designed label. Two MAPS directories with the same method name
/// are told apart by their directory names.
///
/// Rejected maps (reported by file name, not scored; the rest is scored): a file that is not a
/// readable floating-point .npy (integer, complex, object dtypes), a shape other than H×W or C×H×W of the data, NaN or Inf values, an
/// expected id without a file, and a .npy file whose name is not a sample id of the data.
///
/// Outputs: the results and curves CSVs of `attrlab run` (table.h: model,sample,method,metric,
/// variant,value and model,sample,method,metric,variant,x,y; curves of more than 101 points
/// resampled as in pipeline.h), per method and metric the per-sample rows in data order, then the
/// metric's own "all" rows; and the record (RESULTS with extension .json): attrlab version, data
/// (path, env, seed, count), model, seed, every metric with resolved params and variant
/// directions, every method with its maps directory, maps.json parameters and counts of scored
/// and rejected maps, and the rejected files with reasons. All files are written atomically.
/// Tested in tests/experiments/test_evaluate.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/metrics/metric.h"
#include "experiments/table.h"

namespace experiments {

struct EvaluateRequest {
  std::filesystem::path data;                ///< data directory (datasets/data_dir.h)
  std::vector<std::filesystem::path> maps;   ///< one directory per method
  std::vector<std::string> metrics;          ///< registry names
  std::vector<std::string> params;           ///< `-p key=value` items, shared by all metrics
  std::string model;                         ///< the rows' model column; empty: the data's environment
  uint64_t seed = 0;                         ///< sample i is scored with sample_seed(seed, "metrics", i)
  int64_t limit = -1;                        ///< score only the first `limit` data samples; < 0: all
  int64_t unit = 16;                         ///< execution: samples per metric call
  int64_t batch = 256;                       ///< execution: perturbed inputs per network call
};

/// A map file that was not scored.
struct RejectedMap {
  std::string method;
  std::filesystem::path file;
  std::string reason;
};

struct Evaluation {
  std::vector<ResultRow> rows;
  std::vector<RejectedMap> rejected;
  nlohmann::json record;  ///< what the .json record holds
  /// Maps directories without the data's fingerprint (no maps.json, or one without it): matched
  /// to the data by sample ids and shapes only.
  std::vector<std::filesystem::path> unfingerprinted;
  /// Map files read converted to float32: directory, dtype ("float16", "float64"), file count.
  struct Conversion {
    std::filesystem::path dir;
    std::string dtype;
    int64_t files = 0;
  };
  std::vector<Conversion> conversions;
  /// Direction of each (metric, variant), for summaries.
  std::vector<std::pair<std::string, Variant>> variants;
};

/// Receives the curve points of each scored unit as they are produced.
using CurveSink = std::function<void(const std::vector<CurveRow>& points)>;
/// Called once before scoring with the number of units, then after every scored unit with the
/// unit's method; may be empty.
using UnitObserver = std::function<void(int64_t units, const std::string& method)>;

/// Scores every accepted map with every metric; curves go to `curves` (may be empty). Bad data,
/// unknown metrics or parameters throw lab::Error before anything is scored; bad maps are
/// collected in Evaluation::rejected.
Evaluation evaluate_maps(const EvaluateRequest& request, const CurveSink& curves,
                         const UnitObserver& progress = nullptr);

/// The whole command: evaluates, then writes `results` (and its .json record) and, if given,
/// `curves`, each atomically. Returns the evaluation (rejected maps included) for the summary.
Evaluation run_evaluate(const EvaluateRequest& request, const std::filesystem::path& results,
                        const std::optional<std::filesystem::path>& curves, const UnitObserver& progress = nullptr);

/// The .json record path of a results CSV: the same path with extension ".json".
std::filesystem::path record_path(const std::filesystem::path& results);

}  // namespace experiments
