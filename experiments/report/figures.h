/// @file figures.h
/// @brief The run's figures, drawn with PLplot (C++ plstream; pngcairo for PNG, svgcairo for SVG).
///
/// Every figure is written twice from the same drawing code, as STEM.png and STEM.svg, each to a
/// temporary name renamed when complete. House style (STYLE.md): white background, dark axes and
/// text, colour-blind-safe series colours each with its own marker (see Series styles), a
/// legend, axis labels with units, and for signed maps the paper's diverging red–white–blue
/// colour map, symmetric around zero (PLplot cmap1 built with plscmap1l).
///
/// Figures:
/// - draw_map_grid: the paper's Fig. 2 grid — per row one sample: input | ground truth | one map
///   per method. Two scales: kEq17 shows every map after eq. 17 (positive part over its max,
///   negative part over |min|), so red = +1, white = 0, blue = −1 for every map, with one colour
///   bar below; kRow gives each row one common symmetric scale ±s (s the 99th percentile of the
///   row's non-zero |values|, larger values saturate) with its own colour bar at the row's end, so
///   the maps of a row compare in magnitude; a map whose own 99th percentile is below s/20 (it
///   would show white) is magnified by the nearest power of ten, printed in its cell ("×100").
///   The report draws one grid per method family.
/// - draw_violins: violin plots (Gaussian kernel density, Silverman bandwidth, cut at the data's
///   min and max) with bars at the maximum, mean and minimum, as in the paper's Fig. 17 and 23; an
///   optional dashed reference line (the faithfulness threshold γ) labelled outside the panel.
/// - draw_heatmap: a correlation matrix as coloured cells with their values and a colour bar.
/// - draw_curves: line plots of mean curves per method (Insertion/Deletion: Fig. 9; Sensitivity-N:
///   Fig. 18, 20, 21), linear or logarithmic x, each line with its method's colour and marker;
///   panels with the same `y_group` share the y range (small multiples). A panel with `points`
///   is a scatter (every point its series' marker, no line; markers of different series on one spot
///   are spread on a small circle around it, joined to it by grey spokes), with `diagonal` a dashed y = x.
/// Series styles: style i is colour series_palette()[i mod 17] with marker
/// series_markers()[i mod 12], so 17 methods get distinct colours and every pair (colour, marker)
/// is distinct for the first 204; the report gives each method its index in the experiment, so a
/// method looks the same in every figure.
/// Tested in test_report_figures.cpp (files exist, PNG decodes to the requested size, the map
/// colours at known pixels are the colour map's).
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lab/core/tensor.h"

namespace experiments {

/// The Okabe–Ito palette in the order series use it (blue, vermillion, bluish green, reddish
/// purple, orange, sky blue, black, yellow).
const std::vector<std::array<int, 3>>& okabe_ito();
/// The series colours: the Okabe–Ito seven but yellow, Paul Tol's "muted" nine, then Okabe–Ito's
/// yellow (all colour-blind safe; the yellow, faint on white, comes last).
const std::vector<std::array<int, 3>>& series_palette();
/// The series markers (Unicode geometric shapes drawn at points along each line).
const std::vector<std::string>& series_markers();
/// The diverging map's colour (RGB 0..255) at value v in [−1, 1]: blue (−1), white (0), red (+1),
/// piecewise linear through the control points used for cmap1.
std::array<int, 3> diverging_color(double v);

/// One row of the map grid.
struct MapGridRow {
  std::string label;              ///< sample id (and label)
  cv::Mat input;                  ///< CV_8UC3 RGB or CV_8UC1 gray, H×W
  lab::Tensor gt;                 ///< H×W in [−1, 1]
  std::vector<lab::Tensor> maps;  ///< H×W each, raw (normalised by eq. 17 when drawn)
};

struct MapGrid {
  enum class Scale { kEq17, kRow };
  std::string title;
  Scale scale = Scale::kEq17;
  std::vector<std::string> methods;  ///< column titles after "Input" and "Ground truth"
  std::vector<MapGridRow> rows;
};

/// One group of values (a method's per-sample scores).
struct Distribution {
  std::string label;
  std::vector<double> values;
  int style = -1;  ///< series style (colour); −1: the group's position
};

/// One panel of violins.
struct ViolinPanel {
  std::string title;
  std::string y_label;
  std::vector<Distribution> groups;
  double reference = -1.0;  ///< dashed horizontal line at this y when in [0, 1]; none otherwise
};

struct ViolinFigure {
  std::string title;
  int columns = 3;  ///< panels per row
  std::vector<ViolinPanel> panels;
};

/// One line.
struct Series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
  int style = -1;  ///< series style (colour and marker); −1: order of first appearance in the figure
};

struct CurvePanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  std::string y_group;  ///< panels with the same non-empty group share their y range
  std::vector<Series> series;
  bool points = false;    ///< a scatter: each point its series' marker, no line
  bool diagonal = false;  ///< a dashed grey y = x line (estimate against truth)
};

struct CurveFigure {
  std::string title;
  int columns = 2;
  std::vector<CurvePanel> panels;
};

/// A square matrix of correlations in [−1, 1] (the inter-metric reliability matrix): each cell
/// coloured by the diverging map (blue −1, white 0, red +1) with its value printed, NaN cells
/// white with a grey "n/a"; row labels on the left, column labels above (slanted), and a vertical colour
/// bar from −1 to +1 on the right.
struct Heatmap {
  std::string title;
  std::vector<std::string> labels;         ///< rows and columns
  std::vector<std::vector<double>> values; ///< labels.size() squared
  std::string bar_label;                   ///< under the colour bar ("Spearman's ρ")
  std::string note;                        ///< one line under the matrix; may be empty
};

/// Each writes STEM.png and STEM.svg and returns the two paths.
std::vector<std::filesystem::path> draw_map_grid(const MapGrid& grid, const std::filesystem::path& stem);
std::vector<std::filesystem::path> draw_violins(const ViolinFigure& figure, const std::filesystem::path& stem);
std::vector<std::filesystem::path> draw_curves(const CurveFigure& figure, const std::filesystem::path& stem);
std::vector<std::filesystem::path> draw_heatmap(const Heatmap& figure, const std::filesystem::path& stem);

/// The common scale s of a kRow map-grid row: the 99th percentile (nearest rank) of the non-zero
/// finite |values| of all `maps`; 1 when there are none.
double row_scale(const std::vector<lab::Tensor>& maps);
/// Eq. 17 on one H×W map (positive part / max⁺, negative part / |min⁻|).
lab::Tensor normalise_for_display(const lab::Tensor& map);
/// Gaussian kernel density of `values` at `at` (Silverman's rule of thumb; a degenerate sample
/// gets bandwidth 1e-3 of its magnitude, or 1e-3). Integrates to 1 over the real line.
std::vector<double> kernel_density(const std::vector<double>& values, const std::vector<double>& at);

}  // namespace experiments
