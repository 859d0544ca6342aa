/// @file report.h
/// @brief The run's report: tables (CSV + Markdown), figures (figures.h), report.md and a
/// self-contained report.html, built from the typed rows of results.csv and curves.csv.
///
/// What is reported is declared in the experiment's `report.studies` list (config.h); each study
/// becomes one section with one paragraph stating what was found — computed from the rows, never
/// canned — including where it departs from the paper, then its tables and figures. Summary values
/// are the metrics' "all" rows (their own aggregation over samples, the mean for every metric of
/// part 1). Rankings follow each variant's direction (rank 1 = best, ties averaged) and Spearman's ρ
/// is experiments::spearman (metrics/rank.h). Where the paper gives a number it is printed next
/// to ours with the difference (ours − paper).
///
/// Study kinds (keys besides "kind" and "title"):
/// - "faithfulness" (Section 4, Fig. 5–8, 17, 23; Definition 2.1): `model`; `kinds` (GT kinds,
///   e.g. ["positive", "negative", "overall"]); `gammas` ([0.5, 0.6]); `smooth` (method labels
///   judged on the smooth ground truth, positive kind only: Fig. 8); `pairs` ([[a, b], ...]
///   compared in the paragraph: IG vs IG*, Occlusion vs Occlusion*); `group` ({"label", "methods"}:
///   LIME's segmentations, Fig. 6); `paper` ([{"method", "kind", "gamma", "verdict": "pass"|"fail"}]:
///   the paper's stated verdicts). Tables: P/R/F1 (mean ± sd) per method and kind; pass/fail per
///   method, kind and γ (a method passes when its mean F1 ≥ γ) with the paper's verdict. Figures:
///   violins of P/R/F1 per kind; the map grid.
/// - "rankings" (Tables 3, 5, 6): `model`; `reference` ({"metric", "variant", "label"}: the GT F1);
///   `compare` ([{"metric", "variant", "label"}]); `methods` (labels, in the paper's row order;
///   default all); `paper` ({"ranks": {method: [reference, compare...]}, "correlation": [...],
///   "note"}). Table: per method our rank and the paper's for each metric, then the Spearman
///   row with differences. Figures: mean Insertion/Deletion curves and Sensitivity-N curves.
/// - "spearman" (Table 2): `rows` ([{"label", "model"}]); `reference`, `compare`, `methods` as
///   above; `paper` ({row label: [ρ per compared metric]}). Table: ρ ours | paper | difference.
/// - "auc" (Table 4): `model`; `compare` (the AUC variants); `paper` ({method: [values]}).
///   Table: mean AUC ours | paper | difference per method.
/// - "grid" (Fig. 2, 16, 19): `model`, `rows` (samples shown), `methods` (default all).
/// Tested in test_report_tables.cpp (golden Markdown) and test_experiments_run.cpp.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "experiments/table.h"

namespace experiments {

struct ReportInputs {
  const Experiment& experiment;
  std::filesystem::path run_dir;
  std::vector<ResultRow> rows;  ///< every row of results.csv
  std::vector<CurveRow> curves;
  /// "metric/variant" → direction, from the metrics that produced the rows.
  std::map<std::string, Direction> directions;
};

struct ReportFiles {
  std::filesystem::path markdown;
  std::filesystem::path html;
  std::vector<Table> tables;
  std::vector<std::filesystem::path> figures;  ///< PNG and SVG
};

/// Writes tables/, figures/, report.md and report.html into run_dir (see the file comment).
ReportFiles write_report(const ReportInputs& inputs);

/// The standard base64 alphabet with '=' padding (RFC 4648), for data URIs.
std::string base64(const std::string& bytes);

}  // namespace experiments
