#include "experiments/report/html.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>
#include <cmark-gfm.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "experiments/report/report.h"
#include "experiments/table.h"
#include "lab/core/error.h"
#include "lab/io/files.h"

namespace experiments {

namespace fs = std::filesystem;

namespace {

struct Heading {
  int level = 0;
  std::string text;
};

/// The plain text of a node's inline content (text and code spans).
std::string plain_text(cmark_node* node) {
  std::string out;
  cmark_iter* it = cmark_iter_new(node);
  cmark_event_type ev;
  while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
    cmark_node* n = cmark_iter_get_node(it);
    if (ev != CMARK_EVENT_ENTER) continue;
    const cmark_node_type t = cmark_node_get_type(n);
    if (t == CMARK_NODE_TEXT || t == CMARK_NODE_CODE) out += cmark_node_get_literal(n);
    else if (t == CMARK_NODE_SOFTBREAK || t == CMARK_NODE_LINEBREAK) out += ' ';
  }
  cmark_iter_free(it);
  return out;
}

/// The HTML of one node (its own renderer call), freed properly.
std::string render_node(cmark_node* node, cmark_llist* extensions) {
  char* html = cmark_render_html(node, CMARK_OPT_DEFAULT, extensions);
  std::string out(html);
  free(html);
  return out;
}

/// Replaces each paragraph that holds only an image of figures/*.png (and the caption paragraph
/// after it) by a custom block rendering <figure>…</figure>.
void make_figures(cmark_node* root, const HtmlPage& page, cmark_llist* extensions) {
  std::vector<cmark_node*> images;
  for (cmark_node* n = cmark_node_first_child(root); n != nullptr; n = cmark_node_next(n)) {
    if (cmark_node_get_type(n) != CMARK_NODE_PARAGRAPH) continue;
    cmark_node* child = cmark_node_first_child(n);
    if (child == nullptr || cmark_node_next(child) != nullptr || cmark_node_get_type(child) != CMARK_NODE_IMAGE) continue;
    const std::string url = cmark_node_get_url(child);
    if (url.rfind("figures/", 0) == 0 && url.size() > 4 && url.substr(url.size() - 4) == ".png") images.push_back(n);
  }
  int number = 0;
  for (cmark_node* paragraph : images) {
    ++number;
    cmark_node* image = cmark_node_first_child(paragraph);
    const std::string url = cmark_node_get_url(image);
    const std::string alt = plain_text(image);
    const fs::path file = page.base / url;
    if (!fs::exists(file)) lab::fail("{}: the report's figure is missing", file.string());
    std::string caption;
    cmark_node* next = cmark_node_next(paragraph);
    if (next != nullptr && cmark_node_get_type(next) == CMARK_NODE_PARAGRAPH) {
      caption = render_node(next, extensions);
      // "<p>…</p>\n" → "…"
      if (caption.rfind("<p>", 0) == 0) caption = caption.substr(3);
      while (!caption.empty() && caption.back() == '\n') caption.pop_back();
      if (caption.size() >= 4 && caption.substr(caption.size() - 4) == "</p>") caption.resize(caption.size() - 4);
      cmark_node_free(next);  // unlinks it too
    }
    cmark_node* figure = cmark_node_new(CMARK_NODE_CUSTOM_BLOCK);
    const std::string html =
        fmt::format("<figure id=\"figure-{}\"><img alt=\"{}\" src=\"data:image/png;base64,{}\">\n"
                    "<figcaption><b>Figure {}.</b> {}</figcaption></figure>",
                    number, html_escape(alt), base64(lab::read_text(file)), number, caption);
    cmark_node_set_on_enter(figure, html.c_str());
    cmark_node_set_on_exit(figure, "");
    cmark_node_insert_before(paragraph, figure);
    cmark_node_free(paragraph);
  }
}

/// The h2/h3 headings in document order.
std::vector<Heading> headings(cmark_node* root) {
  std::vector<Heading> out;
  for (cmark_node* n = cmark_node_first_child(root); n != nullptr; n = cmark_node_next(n))
    if (cmark_node_get_type(n) == CMARK_NODE_HEADING && cmark_node_get_heading_level(n) >= 2 &&
        cmark_node_get_heading_level(n) <= 3)
      out.push_back({cmark_node_get_heading_level(n), plain_text(n)});
  return out;
}

/// Adds id="section-N" to the N-th <h2>/<h3> of `html`, in order. Literal text never contains
/// "<h2>" (the renderer escapes '<'), so every match is a heading the renderer wrote.
std::string number_headings(const std::string& html) {
  std::string out;
  size_t pos = 0;
  int n = 0;
  while (true) {
    size_t h2 = html.find("<h2>", pos), h3 = html.find("<h3>", pos);
    const size_t at = std::min(h2, h3);
    if (at == std::string::npos) break;
    out += html.substr(pos, at - pos);
    out += fmt::format("<h{} id=\"section-{}\">", html[at + 2], ++n);
    pos = at + 4;
  }
  out += html.substr(pos);
  return out;
}

/// Adds class="C" to the body cells of the k-th table whose class is given in classes[k][row][column].
std::string table_cell_classes(const std::string& html, const std::vector<std::vector<std::vector<std::string>>>& classes) {
  std::string out;
  size_t pos = 0;
  for (size_t k = 0; k < classes.size(); ++k) {
    const size_t open = html.find("<tbody>", pos);
    if (open == std::string::npos) break;
    const size_t close = html.find("</tbody>", open);
    LAB_CHECK(close != std::string::npos, "rendered table without </tbody>");
    out += html.substr(pos, open - pos);
    pos = open;
    size_t row_start = html.find("<tr>", pos);
    for (size_t r = 0; row_start != std::string::npos && row_start < close; ++r) {
      const size_t row_end = std::min(close, html.find("</tr>", row_start));
      size_t cell = html.find("<td", row_start);
      for (size_t c = 0; cell != std::string::npos && cell < row_end; ++c) {
        const std::string cls = r < classes[k].size() && c < classes[k][r].size() ? classes[k][r][c] : "";
        out += html.substr(pos, cell + 3 - pos);
        if (!cls.empty()) out += " class=\"" + cls + "\"";
        pos = cell + 3;
        cell = html.find("<td", pos);
      }
      row_start = html.find("<tr>", row_end);
    }
    out += html.substr(pos, close - pos);
    pos = close;
  }
  out += html.substr(pos);
  return out;
}

/// Moves the last footer_rows[k] rows of the k-th table body into a <tfoot>.
std::string table_footers(const std::string& html, const std::vector<size_t>& footer_rows) {
  std::string out;
  size_t pos = 0;
  for (size_t k = 0;; ++k) {
    const size_t open = html.find("<tbody>", pos);
    if (open == std::string::npos) break;
    const size_t close = html.find("</tbody>", open);
    LAB_CHECK(close != std::string::npos, "rendered table without </tbody>");
    const size_t footer = k < footer_rows.size() ? footer_rows[k] : 0;
    out += html.substr(pos, close - pos);
    pos = close;
    if (footer == 0) continue;
    // Walk back `footer` rows from the end of the body.
    size_t split = close;
    for (size_t r = 0; r < footer; ++r) {
      split = html.rfind("<tr>", split - 1);
      LAB_CHECK(split != std::string::npos && split > open, "table {} has fewer than {} rows", k, footer);
    }
    out.resize(out.size() - (close - split));
    out += "</tbody>\n<tfoot>\n" + html.substr(split, close - split) + "</tfoot>";
    pos = close + std::strlen("</tbody>");
  }
  out += html.substr(pos);
  return out;
}

std::string toc(const std::vector<Heading>& list) {
  if (list.empty()) return "";
  std::string out = "<nav id=\"contents\"><h2>Contents</h2>\n<ul>\n";
  bool open_sub = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string link = fmt::format("<a href=\"#section-{}\">{}</a>", i + 1, html_escape(list[i].text));
    if (list[i].level == 2) {
      if (open_sub) out += "</ul></li>\n";
      if (i > 0 && !open_sub) out += "</li>\n";
      open_sub = false;
      out += "<li>" + link;
    } else {
      if (!open_sub) out += "\n<ul>\n";
      open_sub = true;
      out += "<li>" + link + "</li>\n";
    }
  }
  out += open_sub ? "</ul></li>\n" : "</li>\n";
  out += "</ul>\n</nav>\n";
  return out;
}

constexpr const char* kStyle = R"(body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;background:#fff;line-height:1.45}
table{border-collapse:collapse;margin:0.5em 0 0.3em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f2f2f2;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \25B2";font-size:0.7em}
th[aria-sort=descending]::after{content:" \25BC";font-size:0.7em}
tfoot td{background:#fafafa;font-style:italic}
td.pass{background:#c9efc9}
td.fail{background:#f7c6c6}
td.na{background:#e8e8e8;color:#666}
code{background:#f4f4f4;padding:0 3px;border-radius:3px}
img{max-width:100%;border:1px solid #eee}
figure{margin:1.5em 0}
figcaption{font-size:0.9em;color:#444}
nav#contents{background:#f8f8f8;border:1px solid #e4e4e4;padding:0.3em 1em;margin:1em 0}
nav#contents h2{font-size:1.1em;margin:0.4em 0}
nav#contents ul{margin:0.2em 0;padding-left:1.4em}
h3{font-size:1.0em;margin-top:1.6em}
)";

// Sorting by a clicked header: numbers when every non-empty cell of the column starts with one.
constexpr const char* kScript = R"(<script>
(function () {
  function key(text) {
    var t = text.trim().replace(/^\u2212/, '-');
    var m = t.match(/^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?/);
    return m ? parseFloat(m[0]) : null;
  }
  document.querySelectorAll('table').forEach(function (table) {
    var body = table.tBodies[0];
    if (!body || !table.tHead) return;
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, column) {
      th.title = 'Sort by this column';
      th.addEventListener('click', function () {
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var rows = Array.prototype.slice.call(body.rows);
        var texts = rows.map(function (r) { return r.cells[column] ? r.cells[column].textContent : ''; });
        var numeric = texts.every(function (t) { return t.trim() === '' || t.trim() === 'n/a' || t.trim() === '\u2014' || key(t) !== null; });
        var order = rows.map(function (r, i) { return i; });
        order.sort(function (a, b) {
          var x = texts[a], y = texts[b], c;
          if (numeric) {
            var kx = key(x), ky = key(y);
            if (kx === null || ky === null) return (kx === null) - (ky === null) || a - b;
            c = kx - ky;
          } else {
            c = x.localeCompare(y);
          }
          return (ascending ? c : -c) || a - b;
        });
        order.forEach(function (i) { body.appendChild(rows[i]); });
      });
    });
  });
})();
</script>
)";

}  // namespace

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '`' || c == '*' || c == '_' || c == '[' || c == ']' || c == '<' || c == '>') out += '\\';
    out += c;
  }
  return out;
}

std::string markdown_to_html(const std::string& markdown, const HtmlPage& page) {
  cmark_gfm_core_extensions_ensure_registered();
  std::unique_ptr<cmark_parser, void (*)(cmark_parser*)> parser(cmark_parser_new(CMARK_OPT_DEFAULT), cmark_parser_free);
  cmark_syntax_extension* table = cmark_find_syntax_extension("table");
  LAB_CHECK(table != nullptr, "cmark-gfm has no table extension");
  cmark_parser_attach_syntax_extension(parser.get(), table);
  cmark_parser_feed(parser.get(), markdown.data(), markdown.size());
  std::unique_ptr<cmark_node, void (*)(cmark_node*)> root(cmark_parser_finish(parser.get()), cmark_node_free);
  cmark_llist* extensions = cmark_parser_get_syntax_extensions(parser.get());

  make_figures(root.get(), page, extensions);
  const std::vector<Heading> list = headings(root.get());
  std::string body = table_footers(table_cell_classes(number_headings(render_node(root.get(), extensions)), page.cell_classes),
                                   page.footer_rows);
  // The table of contents goes after the title and the first paragraph (what the run was).
  const size_t first_p = body.find("</p>");
  const std::string contents = toc(list);
  if (first_p != std::string::npos) body.insert(first_p + 4, "\n" + contents);
  else body = contents + body;

  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html_escape(page.title) +
         "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n" + body + kScript + "</body>\n</html>\n";
}

}  // namespace experiments
