#include "experiments/table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "lab/core/error.h"

namespace experiments {

namespace {


double parse_number(const std::string& text, const std::string& origin, size_t line) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    if (text == "nan" || text == "-nan") return std::nan("");
    lab::fail("{}:{}: expected a number, got '{}'", origin, line, text);
  }
}

template <typename Row, typename Fill>
std::vector<Row> parse_lines(const std::string& text, const std::string& origin, const std::string& header,
                             size_t fields, Fill fill) {
  std::vector<Row> rows;
  std::istringstream in(text);
  std::string line;
  size_t number_of_line = 0;
  while (std::getline(in, line)) {
    ++number_of_line;
    if (number_of_line == 1) {
      if (line + "\n" != header) lab::fail("{}:1: expected the header '{}', got '{}'", origin, header.substr(0, header.size() - 1), line);
      continue;
    }
    if (line.empty()) continue;
    const std::vector<std::string> f = csv_split(line);
    if (f.size() != fields) lab::fail("{}:{}: expected {} fields, got {}", origin, number_of_line, fields, f.size());
    rows.push_back(fill(f, number_of_line));
  }
  if (number_of_line == 0) lab::fail("{}: empty file, expected the header '{}'", origin, header.substr(0, header.size() - 1));
  return rows;
}

size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;  // count UTF-8 code points, not bytes
  return n;
}

std::string pad(const std::string& s, size_t width, Align align) {
  const size_t w = display_width(s);
  if (w >= width) return s;
  const size_t fill = width - w;
  if (align == Align::kRight) return std::string(fill, ' ') + s;
  if (align == Align::kCenter) return std::string(fill / 2, ' ') + s + std::string(fill - fill / 2, ' ');
  return s + std::string(fill, ' ');
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|' || c == '\\' || c == '`' || c == '*' || c == '_' || c == '[' || c == ']' || c == '<' || c == '>')
      out += std::string("\\") + c;
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string exact_number(double value) { return fmt::format("{}", value); }

std::string result_csv_header() { return "model,sample,method,metric,variant,value\n"; }
std::string curve_csv_header() { return "model,sample,method,metric,variant,x,y\n"; }

std::string to_csv_line(const ResultRow& r) {
  return fmt::format("{},{},{},{},{},{}\n", csv_quote(r.model), csv_quote(r.sample), csv_quote(r.method),
                     csv_quote(r.metric), csv_quote(r.variant), exact_number(r.value));
}

std::string to_csv_line(const CurveRow& r) {
  return fmt::format("{},{},{},{},{},{},{}\n", csv_quote(r.model), csv_quote(r.sample), csv_quote(r.method),
                     csv_quote(r.metric), csv_quote(r.variant), exact_number(r.x), exact_number(r.y));
}

std::vector<ResultRow> parse_result_csv(const std::string& text, const std::string& origin) {
  return parse_lines<ResultRow>(text, origin, result_csv_header(), 6, [&](const auto& f, size_t line) {
    return ResultRow{f[0], f[1], f[2], f[3], f[4], parse_number(f[5], origin, line)};
  });
}

std::vector<CurveRow> parse_curve_csv(const std::string& text, const std::string& origin) {
  return parse_lines<CurveRow>(text, origin, curve_csv_header(), 7, [&](const auto& f, size_t line) {
    return CurveRow{f[0], f[1], f[2], f[3], f[4], parse_number(f[5], origin, line), parse_number(f[6], origin, line)};
  });
}

std::string csv_quote(const std::string& field) {
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> csv_split(const std::string& line) {
  std::vector<std::string> fields;
  std::string current;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        current += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        current += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(current);
      current.clear();
    } else if (c != '\r') {
      current += c;
    }
  }
  fields.push_back(current);
  return fields;
}

std::string fixed(double value, int decimals) {
  if (std::isnan(value)) return "n/a";
  std::string s = fmt::format("{:.{}f}", value, decimals);
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string signed_fixed(double value, int decimals) {
  const std::string s = fixed(value, decimals);
  if (s == "n/a" || s[0] == '-' || s.find_first_not_of("0.") == std::string::npos) return s;
  return "+" + s;
}

void Table::add(std::vector<std::string> row) {
  LAB_CHECK(row.size() == columns.size(), "table {}: row of {} cells, {} columns", id, row.size(), columns.size());
  rows.push_back(std::move(row));
}

void Table::align_labels(size_t labels) {
  align.assign(columns.size(), Align::kRight);
  std::fill_n(align.begin(), std::min(labels, align.size()), Align::kLeft);
}

std::string to_markdown(const Table& table) {
  const size_t n = table.columns.size();
  std::vector<size_t> width(n, 3);
  auto align_of = [&](size_t c) { return c < table.align.size() ? table.align[c] : Align::kLeft; };
  for (size_t c = 0; c < n; ++c) width[c] = std::max(width[c], display_width(md_escape(table.columns[c])));
  for (const auto& row : table.rows)
    for (size_t c = 0; c < n; ++c) width[c] = std::max(width[c], display_width(md_escape(row[c])));
  std::string out;
  if (!table.title.empty()) out += "### " + md_escape(table.title) + "\n\n";
  auto line = [&](const std::vector<std::string>& cells) {
    out += "|";
    for (size_t c = 0; c < n; ++c) out += " " + pad(md_escape(cells[c]), width[c], align_of(c)) + " |";
    out += "\n";
  };
  line(table.columns);
  out += "|";
  for (size_t c = 0; c < n; ++c) {
    const Align a = align_of(c);
    std::string rule(width[c], '-');
    if (a == Align::kRight) rule.back() = ':';
    if (a == Align::kCenter) rule.front() = rule.back() = ':';
    out += " " + rule + " |";
  }
  out += "\n";
  for (const auto& row : table.rows) line(row);
  if (!table.caption.empty()) out += "\n*" + md_escape(table.caption) + "*\n";
  return out;
}

std::string to_csv(const Table& table) {
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t c = 0; c < cells.size(); ++c) out += (c ? "," : "") + csv_quote(cells[c]);
    out += "\n";
  };
  line(table.columns);
  for (const auto& row : table.rows) line(row);
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string to_html(const Table& table) {
  auto align_of = [&](size_t c) {
    const Align a = c < table.align.size() ? table.align[c] : Align::kLeft;
    return a == Align::kRight ? "right" : a == Align::kCenter ? "center" : "left";
  };
  std::string out = "<table>\n";
  if (!table.title.empty()) out += "<caption>" + html_escape(table.title) + "</caption>\n";
  out += "<thead><tr>";
  for (size_t c = 0; c < table.columns.size(); ++c)
    out += fmt::format("<th style=\"text-align:{}\">{}</th>", align_of(c), html_escape(table.columns[c]));
  out += "</tr></thead>\n<tbody>\n";
  const size_t body = table.rows.size() - std::min(table.footer_rows, table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    if (r == body) out += "</tbody>\n<tfoot>\n";
    out += "<tr>";
    for (size_t c = 0; c < row.size(); ++c)
      out += fmt::format("<td style=\"text-align:{}\">{}</td>", align_of(c), html_escape(row[c]));
    out += "</tr>\n";
  }
  out += body < table.rows.size() ? "</tfoot>\n</table>\n" : "</tbody>\n</table>\n";
  if (!table.caption.empty()) out += "<p class=\"caption\">" + html_escape(table.caption) + "</p>\n";
  return out;
}

}  // namespace experiments
