/// @file html.h
/// @brief report.md → report.html with a CommonMark renderer (cmark-gfm with its "table"
/// extension, GitHub-flavoured tables), in safe mode: raw HTML in the Markdown is not passed
/// through.
///
/// On top of the rendering:
/// - every h2/h3 heading gets an id (`section-N`), and a table of contents of the h2 headings
///   (with their h3 tables indented) follows the page's first paragraph;
/// - a paragraph holding only an image `figures/NAME.png` becomes a numbered
///   `<figure>` whose image is inlined as a data URI (the page is self-contained) and whose
///   `<figcaption>` is the paragraph that follows it ("Figure N." prepended);
/// - the last `footer_rows[k]` rows of the k-th table go into a `<tfoot>` (summary rows such as
///   Spearman's ρ, which sorting leaves below the methods);
/// - body cells get the classes of `cell_classes` (pass: green, fail: red, na: grey);
/// - a small inline script (no external resources) sorts a table by the column whose header is
///   clicked: numerically when every cell of the column starts with a number (a leading '−' or
///   '-' is a minus sign; "n/a" and empty cells sort last), as text otherwise; a second click
///   reverses the order.
/// Tested in test_report_html.cpp (rendering, figures, tfoot) and, in a browser, by
/// tests/cli/test_report_browser.cpp.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace experiments {

struct HtmlPage {
  std::string title;                    ///< <title>
  std::filesystem::path base;           ///< the directory figure paths are relative to
  std::vector<size_t> footer_rows;      ///< per table in page order; missing entries are 0
  /// Per table in page order: a class per body cell (Table::cell_classes); missing = none.
  std::vector<std::vector<std::vector<std::string>>> cell_classes;
};

/// The complete page (<!DOCTYPE html> … </html>) for `markdown`.
std::string markdown_to_html(const std::string& markdown, const HtmlPage& page);

/// Escapes the characters CommonMark reads as inline markup (\ ` * _ [ ] < >) so that `text`
/// shows literally.
std::string markdown_escape(const std::string& text);

}  // namespace experiments
