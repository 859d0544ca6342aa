/// @file report.h
/// @brief The run's report: tables (CSV + Markdown), figures (figures.h), report.md and a
/// self-contained report.html, and the data files results.csv, curves.csv and costs.csv — every
/// one written from the typed rows held in memory (ReportInputs). A finished run directory can be
/// reported again from its files (rebuild_report()).
///
/// What is reported is declared in the experiment's `report.studies` list (config.h); each study
/// becomes one section with one paragraph stating what was found — computed from the rows, never
/// canned — including where it departs from the paper, then its tables and figures. Summary values
/// are the metrics' "all" rows (their own aggregation over samples, the mean for every metric of
/// part 1). Rankings follow each variant's direction (rank 1 = best, ties averaged) and Spearman's ρ
/// is experiments::spearman (rank.h). Where the paper gives a number it is printed next
/// to ours with the difference (ours − paper).
///
/// Study kinds (keys besides "kind" and "title"):
/// - "faithfulness" (Section 4, Fig. 5–8, 17, 23; Definition 2.1): `model`; `metric` (the
///   ground-truth metric whose variants precision-, recall-, f1-<kind> it reads); `kinds` (GT kinds,
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
///   row with differences (summary rows: Table::footer_rows); with the paper's ranks, a table of
///   the agreement per metric: ρ between our ranking and the paper's with its 95% percentile
///   bootstrap interval over images (rank.h bootstrap(), 1000 resamples, the run's seed).
///   Figures: mean Insertion/Deletion curves and Sensitivity-N curves, a panel per (measure,
///   method family).
/// - "spearman" (Table 2): `rows` ([{"label", "model"}]); `reference`, `compare`, `methods` as
///   above; `paper` ({row label: [ρ per compared metric]}); `curves` (labels of compared measures
///   whose mean curves are drawn for every row). Table: ρ ours | its 95% bootstrap interval over
///   images (both rankings recomputed on each resample) | paper | difference; the paragraph
///   counts the paper's values inside our intervals.
/// No metric name is written in the report's code: each study names its metrics, a curve is
/// drawn over N on a log scale when its x runs beyond 1 (a pixel count) and over the fraction
/// perturbed otherwise, and panels carry the measure's label.
/// - "auc" (Table 4): `model`; `compare` (the AUC variants); `paper` ({method: [values]}).
///   Table: mean AUC ours | paper | difference per method.
/// - "coherency" (coherency paper, Sections 3.4, 4.2, 4.3; meta_evaluation.h): `rows`
///   ([{"label", "model"}]); `reference` (the ground-truth measure); `compare` (the measures);
///   `consistency` ([{"label", "configs": [measures]}]: configurations of one metric); `methods`.
///   Tables: internal consistency (mean over methods of ρ across images per configuration pair);
///   per model the inter-metric reliability matrix (mean over methods), with every method's
///   coefficient in tables/studyK-reliability-MODEL-per-method.csv and a heat map; the agreement
///   of each measure's method ranking with the reference ranking, ρ and its bootstrap interval.
/// - "trap-zoo" (README, "The trap zoo"): `rows` ([{"label", "model"}]: the traps); `metric` (the
///   invariant metric: its "pass", "violation", "allowed" rows); `reference` (the GT F1 measure);
///   `methods`; `grid-rows` (≥ 1: draw the figure). Tables: method × trap, each cell ✓ (HTML
///   green) when the promise held on every image, ✗ (red) with the images where it broke, n/a
///   (grey) without a promise, with the mean GT F1; the largest violation and what was allowed.
///   Figure: one map per (trap, method), each trap's first image, maps normalised by eq. 17.
/// - "soundness-completeness" (Gao et al. 2024, Theorems 4.11–4.12, Table 1): `rows` ([{"model",
///   "assumption": "holds"|"fails", "why"}]), the measures `soundness`, `soundness-exact`,
///   `completeness`, `completeness-exact`, `methods`, `tolerance` (0.05), `edits-model`, `edits`
///   ([{"original", "scheme", "remove", "introduce"}], method labels), `edit-curves` (measures whose
///   curves are compared), `paper` ({measure label: Table 1's distance}). Tables: estimator error per
///   model and measure (mean |estimate − exact| over (method, image) pairs, share within the
///   tolerance, ρ of the method rankings), per-method means, the edits' minimal Hausdorff distance
///   between the mean curves of original, Remove and Introduce (y scaled to [0, 1] per measure over
///   the edits' curves), and what each edit did to the exact values and to each metric. Figures:
///   estimate against exact per image (dashed y = x); the edits' mean curves.
/// - "unified-metrics" (unified study, Sec. 5, 6.2.3, Fig. 4, 6, Table 3): `rows`, the measures
///   `pixel-flipping`, `reference-pixel-flipping`, `pointing-game`, `reference` (GT F1), `good`
///   (the map the isolated masks are held against), `isolated` (labels), `methods`, `pointing-hit`
///   (0.9), `f1-low` (0.5). Tables: isolated masks against `good` (share of images won), own order
///   against reference order (area over [0, N/P] of the mean curves), Pointing Game against GT F1.
///   Figures: mean curves of both orders; Pointing Game against GT F1 per method.
/// - "false-sense" (false-sense paper, Sec. 5.2, Table 1): `rows`, `compare` (the fidelity
///   measures), `reference` (GT F1), `uninformed` (labels; the first is the claim's subject),
///   `versus` (the real method of the per-image comparison), `methods`, `top` (2). Tables: means and
///   ranks; share of images on which each uninformed map beats `versus`. Figure: violins.
///   Each of the three ends its paragraph with a verdict computed from these tables.
/// - `grid-rows` (faithfulness, rankings): the first N images shown with every method's map, one
///   grid per method family (attributions::MethodInfo::family) on a common scale per row.
/// report.md is CommonMark with every generated text escaped (markdown_escape); report.html is
/// rendered from it (html.h: contents, numbered figures inlined, sortable tables).
/// The keys of each kind are declared once (study_kinds()); finalize() refuses an unknown kind,
/// key, model, method or metric by name, and check_experiment() an unknown variant, before a run
/// starts.
/// Tested in test_report_tables.cpp (golden Markdown) and test_experiments_run.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "experiments/table.h"
#include "lab/core/tensor.h"

namespace experiments {

/// One line of costs.csv: the network evaluations of one work unit.
struct CostRow {
  std::string model, method;
  int64_t first = 0, last = 0;  ///< the unit's first and last image
  int64_t evaluations = 0;
};

struct ReportInputs {
  Experiment experiment;
  std::filesystem::path run_dir;
  std::vector<ResultRow> rows;  ///< every row of results.csv, in its order
  std::vector<CurveRow> curves;
  std::vector<CostRow> costs;
  /// "metric/variant" → direction, from the metrics that produced the rows.
  std::map<std::string, Direction> directions;
  /// How the run was made: {"attrlab-version", "source", "overrides", ...} (config.json).
  nlohmann::json record;
  /// The C×H×W map of sample `index` of a (model, method label), for the map grids.
  std::function<lab::Tensor(const std::string& model, const std::string& method, int64_t index)> map;
};

struct ReportFiles {
  std::filesystem::path results;  ///< results.csv
  std::filesystem::path curves;   ///< curves.csv
  std::filesystem::path markdown;
  std::filesystem::path html;
  std::vector<Table> tables;
  std::vector<std::filesystem::path> figures;  ///< PNG and SVG
};

/// Writes results.csv, curves.csv, costs.csv, tables/, figures/, report.md and report.html into
/// run_dir (see the file comment).
ReportFiles write_report(const ReportInputs& inputs);

/// Reads a finished run directory (config.json, results.csv, curves.csv, costs.csv, maps/) and
/// writes its report again: the same files a run writes.
ReportFiles rebuild_report(const std::filesystem::path& run_dir);

/// The largest `grid-rows` of the studies: how many images' maps the report shows.
int64_t grid_rows(const nlohmann::json& report);

/// Each study kind with the keys it takes besides "kind" and "title".
const std::vector<std::pair<std::string, std::vector<std::string>>>& study_kinds();
/// Checks `report` ({"studies": [...]}): every kind and key known, every model, method label and
/// metric one of the given (all the config declares, before `select`). Errors name the study.
void check_studies(const nlohmann::json& report, const std::vector<std::string>& models,
                   const std::vector<std::string>& methods, const std::vector<std::string>& metrics);
/// Checks that every metric variant a study names exists: `variants` is model → metric → variant
/// names, from the metrics built for that model.
void check_study_variants(const nlohmann::json& report,
                          const std::map<std::string, std::map<std::string, std::vector<std::string>>>& variants);

/// The standard base64 alphabet with '=' padding (RFC 4648), for data URIs.
std::string base64(const std::string& bytes);

}  // namespace experiments
