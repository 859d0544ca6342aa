/// @file table.h
/// @brief Typed result rows of a run, and the table reporters (CSV, Markdown, HTML) that consume them.
///
/// After Google Benchmark's reporters (include/benchmark/reporter.h, src/csv_reporter.cc): the
/// experiment emits rows, reporters format them; fixed columns, proper quoting, numbers printed
/// the same way on every machine (`{:.9g}` in CSVs, fixed decimals in tables) so a rerun with the
/// same config and seed gives byte-identical files.
/// The Markdown writer is checked against tests/experiments/golden/table.md (test_report_tables.cpp).
#pragma once

#include <string>
#include <vector>

namespace experiments {

/// One row of results.csv: a value of one variant of one metric, for one sample (or "all"),
/// method and model. Columns: model,sample,method,metric,variant,value.
struct ResultRow {
  std::string model;
  std::string sample;
  std::string method;
  std::string metric;
  std::string variant;
  double value = 0.0;
};

/// One row of curves.csv: model,sample,method,metric,variant,x,y.
struct CurveRow {
  std::string model;
  std::string sample;
  std::string method;
  std::string metric;
  std::string variant;
  double x = 0.0;
  double y = 0.0;
};

/// The header line of results.csv / curves.csv (newline-terminated).
std::string result_csv_header();
std::string curve_csv_header();
/// The one number format of every data file: the shortest decimal that reads back to the same
/// double ("0.1", "1e-07", "inf", "nan").
std::string exact_number(double value);
/// One CSV line (newline-terminated): text columns always quoted, numbers as exact_number().
std::string to_csv_line(const ResultRow& row);
std::string to_csv_line(const CurveRow& row);
/// Parses a file written with the functions above; a malformed line throws lab::Error naming
/// `origin` and the line number.
std::vector<ResultRow> parse_result_csv(const std::string& text, const std::string& origin);
std::vector<CurveRow> parse_curve_csv(const std::string& text, const std::string& origin);

/// RFC 4180 field: wrapped in double quotes, inner quotes doubled.
std::string csv_quote(const std::string& field);
/// Splits one CSV line (RFC 4180 quoting, no embedded newlines) into fields.
std::vector<std::string> csv_split(const std::string& line);
/// `value` with `decimals` digits after the point; "−0.00" is printed "0.00"; NaN as "n/a".
std::string fixed(double value, int decimals);
/// Signed difference "+0.12" / "-0.12" / "0.00".
std::string signed_fixed(double value, int decimals);

enum class Align { kLeft, kRight, kCenter };

/// A rectangular table of formatted cells.
struct Table {
  std::string id;       ///< file stem in RUN_DIR/tables/ ("table2-spearman")
  std::string title;    ///< heading line
  std::string caption;  ///< one paragraph printed under the table; may be empty
  std::vector<std::string> columns;
  std::vector<Align> align;  ///< per column; missing entries are left-aligned
  std::vector<std::vector<std::string>> rows;
  /// How many of the last rows are summaries (Spearman's ρ, differences): HTML puts them in a
  /// <tfoot>, which sorting by a column leaves in place.
  size_t footer_rows = 0;
  /// Optional HTML class per body cell (row, column; "" or missing = none): report.html colours
  /// cells of class "pass" green, "fail" red and "na" grey. Markdown and CSV ignore it.
  std::vector<std::vector<std::string>> cell_classes;

  /// Appends a row; its size must equal columns.size() (LAB_CHECK).
  void add(std::vector<std::string> row);
  /// Aligns the first `labels` columns left (names) and the others right (numbers); call once the
  /// columns are set.
  void align_labels(size_t labels);
};

/// GitHub-flavoured Markdown: "### title", a blank line, the pipe table with columns padded to
/// equal width, then the caption in italics if any. In cells, title and caption the characters
/// CommonMark reads as markup (| \\ ` * _ [ ] < >) are backslash-escaped, so "IG*" shows as typed.
std::string to_markdown(const Table& table);
/// Header plus rows, every cell quoted (csv_quote), '\n' line ends.
std::string to_csv(const Table& table);
/// An HTML <table> with <caption> (cells escaped), the last `footer_rows` rows in a <tfoot>.
std::string to_html(const Table& table);
/// Escapes &, <, >, ".
std::string html_escape(const std::string& text);

}  // namespace experiments
