/// @file evaluate.h
/// @brief Scoring attribution maps of any origin against a data directory with chosen metrics:
/// the engine of `attrlab evaluate`.
///
/// Maps. Each MAPS directory holds one method's maps as MAPS/<id>.npy (float32, H×W or C×H×W
/// with C = 1 or the input's channels; C×H×W is summed over channels, metric.h), <id> being the
/// data's sample ids. MAPS/maps.json (written by `attrlab attribute` and `attrlab run`) is
/// optional for maps made by other tools; when present, its "method" names the method, its
/// "samples" list says which ids are expected and each entry's "target" the explained output
/// unit, and its "data-manifest.env" must name the data's environment. Without it the method is
/// named after the directory, every data sample with a file is scored, and the target is the
/// output unit of the sample's designed label. Two MAPS directories with the same method name
/// are told apart by their directory names.
///
/// Rejected maps (reported by file name, not scored; the rest is scored): a file that is not a
/// readable float32 .npy, a shape other than H×W or C×H×W of the data, NaN or Inf values, an
/// expected id without a file, and a .npy file whose name is not a sample id of the data.
///
/// Outputs (tidy CSV, RFC 4180 quoting, text columns quoted, numbers as the shortest decimal
/// that reads back to the same double):
///   results: sample,method,metric,variant,value — per method and metric the per-sample rows in
///            data order, then one row per variant with sample "all" from the metric's own
///            aggregation (the mean; the faithfulness test's pass/fail on the mean F1).
///   curves:  sample,method,metric,variant,x,y — every curve point (Insertion/Deletion: x the
///            fraction of pixels perturbed; Sensitivity-N: x = N), in order of production.
///   record:  RESULTS with extension .json — attrlab version, data (path, env, seed, count),
///            every metric with resolved params and variant directions, every method with its
///            maps directory, maps.json parameters and counts of scored and rejected maps, and
///            the rejected files with reasons.
/// All files are written atomically. Tested in tests/experiments/test_metrics_evaluate.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/metrics/metric.h"

namespace experiments {

struct EvaluateRequest {
  std::filesystem::path data;                ///< data directory (datasets/data_dir.h)
  std::vector<std::filesystem::path> maps;   ///< one directory per method
  std::vector<std::string> metrics;          ///< registry names
  std::vector<std::string> params;           ///< `-p key=value` items, shared by all metrics
  int64_t batch = 16;                        ///< execution: samples per metric call
  int64_t max_chunk = 256;                   ///< execution: perturbed inputs per network call
};

/// One row of the results CSV.
struct ScoreRow {
  std::string sample;
  std::string method;
  std::string metric;
  std::string variant;
  double value = 0.0;
};

/// A map file that was not scored.
struct RejectedMap {
  std::string method;
  std::filesystem::path file;
  std::string reason;
};

struct Evaluation {
  std::vector<ScoreRow> rows;
  std::vector<RejectedMap> rejected;
  nlohmann::json record;  ///< what the .json record holds
  /// Direction of each (metric, variant), for summaries.
  std::vector<std::pair<std::string, Variant>> variants;
};

/// Receives curve points as they are produced: method, metric and the points of one sample batch.
using CurveSink =
    std::function<void(const std::string& method, const std::string& metric, const std::vector<CurvePoint>& points)>;

/// Scores every accepted map with every metric; curves go to `curves` (may be empty). Bad data,
/// unknown metrics or parameters throw lab::Error before anything is scored; bad maps are
/// collected in Evaluation::rejected.
Evaluation evaluate_maps(const EvaluateRequest& request, const CurveSink& curves);

/// "sample,method,metric,variant,value\n" and one line per row.
std::string results_csv_header();
std::string csv_line(const ScoreRow& row);
/// "sample,method,metric,variant,x,y\n" and one line per point.
std::string curves_csv_header();
std::string csv_line(const std::string& method, const std::string& metric, const CurvePoint& point);

/// The whole command: evaluates, then writes `results` (and its .json record) and, if given,
/// `curves`, each atomically. Returns the evaluation (rejected maps included) for the summary.
Evaluation run_evaluate(const EvaluateRequest& request, const std::filesystem::path& results,
                        const std::optional<std::filesystem::path>& curves);

/// The .json record path of a results CSV: the same path with extension ".json".
std::filesystem::path record_path(const std::filesystem::path& results);

}  // namespace experiments
