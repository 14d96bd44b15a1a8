#include "train/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/text.h"

namespace tpp::train {

namespace {

struct Axis {
  double lo = 0, hi = 1, step = 1;
  int decimals = 0;
};

// A step of 1, 2 or 5 times a power of ten giving about `target` intervals.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalised = raw / magnitude;
  const double factor = normalised < 1.5 ? 1 : normalised < 3 ? 2 : normalised < 7 ? 5 : 10;
  return factor * magnitude;
}

// `tight`: the axis spans exactly [min, max] (epochs); otherwise it widens
// to the enclosing ticks.
Axis make_axis(double min, double max, bool integer_ticks, bool tight) {
  if (!(max > min)) {  // one value (or none): open a window around it
    const double pad = min != 0 ? std::abs(min) * 0.1 : 1.0;
    min -= pad;
    max += pad;
  }
  Axis axis;
  axis.step = nice_step(max - min, 5);
  if (integer_ticks) axis.step = std::max(axis.step, 1.0);
  axis.lo = tight ? min : std::floor(min / axis.step + 1e-9) * axis.step;
  axis.hi = tight ? max : std::ceil(max / axis.step - 1e-9) * axis.step;
  // A value on the enclosing tick would draw its line along the frame: one
  // step more (below, only for values above 0, where the axis may start).
  if (!tight && axis.hi - max < 0.02 * axis.step) axis.hi += axis.step;
  if (!tight && min != 0 && min - axis.lo < 0.02 * axis.step) axis.lo -= axis.step;
  axis.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(axis.step) + 1e-9)));
  return axis;
}

std::string tick_label(double value, int decimals) {
  if (std::abs(value) < 1e-12) value = 0;  // no "-0"
  // Whole numbers from 1,000 up read like the tables: with thousands separators.
  if (decimals == 0 && std::abs(value) >= 1000 && std::abs(value) < 9e15)
    return with_commas(static_cast<int64_t>(std::llround(value)));
  return fmt::format("{:.{}f}", value, decimals);
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

enum class Mark { line, dot };

struct LegendEntry {
  const ChartSeries* series;
  double x, y;  // where its swatch starts
};

constexpr double kLegendRow = 18;

// Legend entries in rows under the title, wrapped to the chart's width.
std::vector<LegendEntry> legend_layout(const std::vector<ChartSeries>& series, double left, double right_edge,
                                       int& rows) {
  std::vector<LegendEntry> entries;
  double x = left;
  rows = 0;
  for (const ChartSeries& s : series) {
    if (s.points.empty()) continue;
    const double width = 22 + 7.0 * static_cast<double>(s.label.size()) + 14;
    if (rows == 0 || x + width > right_edge) x = left, ++rows;
    entries.push_back({&s, x, 40 + kLegendRow * (rows - 1)});
    x += width;
  }
  return entries;
}

bool wants_log_scale(ChartOptions::Scale scale, double y_min, double y_max) {
  if (scale == ChartOptions::Scale::log) return y_min > 0;
  return scale == ChartOptions::Scale::automatic && y_min > 0 && y_max / y_min > 100;
}

// Ticks of a log axis: the powers of ten in [lo, hi] (and 2x, 5x when it spans two decades or less).
std::vector<double> log_ticks(double lo_exponent, double hi_exponent) {
  std::vector<double> ticks;
  const bool fine = hi_exponent - lo_exponent <= 2;
  for (double e = std::floor(lo_exponent); e <= std::ceil(hi_exponent); ++e)
    for (const double m : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
      const double t = std::log10(m) + e;
      if (t >= lo_exponent - 1e-9 && t <= hi_exponent + 1e-9) ticks.push_back(t);
    }
  return ticks;
}

std::string svg_chart(const std::vector<ChartSeries>& series, const ChartOptions& o, Mark mark) {
  constexpr double left = 72, right = 16, bottom = 48;
  int legend_rows = 0;
  const std::vector<LegendEntry> legend = legend_layout(series, left, o.width - right, legend_rows);
  const double top = 44 + kLegendRow * legend_rows;
  const double plot_w = o.width - left - right, plot_h = o.height - top - bottom;

  // A log axis has no place for zero or below: such points are left out.
  const bool only_positive = o.y_scale == ChartOptions::Scale::log;
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const ChartSeries& s : series)
    for (const auto& [x, y] : s.points) {
      if (only_positive && !(y > 0)) continue;
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"{2}\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{3}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{2}</text>\n",
      o.width, o.height, html_escape(o.title), left);
  // Axis labels first: a chart without data still says what it would show.
  svg += fmt::format("<text class=\"x-label\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     left + plot_w / 2, o.height - 8, html_escape(o.x_label));
  const bool log_y = std::isfinite(y_min) && wants_log_scale(o.y_scale, y_min, y_max);
  svg += fmt::format(
      "<text class=\"y-label\" transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}{}</text>\n",
      top + plot_h / 2, html_escape(o.y_label), log_y ? " (log scale)" : "");
  if (!std::isfinite(x_min)) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>\n</svg>\n",
                       left + plot_w / 2, top + plot_h / 2);
    return svg;
  }
  const auto y_of = [&](double y) { return log_y ? std::log10(y) : y; };
  const Axis xa = make_axis(x_min, x_max, mark == Mark::line, mark == Mark::line);
  Axis ya = make_axis(y_of(y_min), y_of(y_max), false, log_y);
  // Whole decades, with a tenth of one to spare so that no line runs along the frame.
  if (log_y) ya.lo = std::floor(y_of(y_min) - 0.1), ya.hi = std::max(std::ceil(y_of(y_max) + 0.1), ya.lo + 1);
  // Ticks sit on multiples of the step, inside the axis.
  const auto first_tick = [](const Axis& a) { return std::ceil(a.lo / a.step - 1e-9) * a.step; };
  const auto px = [&](double x) { return left + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; };
  const auto py = [&](double y) { return top + plot_h - (y_of(y) - ya.lo) / (ya.hi - ya.lo) * plot_h; };
  const auto grid_y = [&](double axis_value, const std::string& label) {
    const double y = top + plot_h - (axis_value - ya.lo) / (ya.hi - ya.lo) * plot_h;
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", left, y,
                       left + plot_w, y);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#444\">{}</text>\n", left - 6, y + 4,
                       label);
  };

  // Grid, ticks and labels.
  if (log_y) {
    for (const double t : log_ticks(ya.lo, ya.hi)) grid_y(t, fmt::format("{:g}", std::pow(10.0, t)));
  } else {
    for (double y = first_tick(ya); y <= ya.hi + ya.step * 1e-6; y += ya.step) grid_y(y, tick_label(y, ya.decimals));
  }
  for (double x = first_tick(xa); x <= xa.hi + xa.step * 1e-6; x += xa.step) {
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", px(x),
                       top, px(x), top + plot_h);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n", px(x),
                       top + plot_h + 16, tick_label(x, xa.decimals));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", left, top,
                     plot_w, plot_h);

  // Series in order, each narrower than the one before and dashed after
  // the first, so that one lying on another shows through.
  const size_t drawn = legend.size();
  for (size_t k = 0; k < drawn; ++k) {
    const ChartSeries& s = *legend[k].series;
    const std::string color = html_escape(s.color);
    const double width = 2 + 1.5 * static_cast<double>(drawn - 1 - k);
    const std::string dash = k == 0 ? "" : fmt::format(" stroke-dasharray=\"{} {}\"", 4 + 2 * k, 3);
    std::vector<std::pair<double, double>> shown;
    for (const auto& point : s.points)
      if (!log_y || point.second > 0) shown.push_back(point);
    if (mark == Mark::line) {
      std::string points;
      for (const auto& [x, y] : shown) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{:.1f}\" stroke-opacity=\"0.85\"{} "
                         "points=\"{}\"/>\n",
                         color, width, dash, points);
    }
    if (mark == Mark::dot || shown.size() <= 40)
      for (const auto& [x, y] : shown)
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"/>\n", px(x), py(y),
                           mark == Mark::dot ? 6.0 : 2 + 0.75 * static_cast<double>(drawn - 1 - k), color);
    const LegendEntry& e = legend[k];
    if (mark == Mark::line)
      svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"3\"{}/>\n",
                         e.x, e.y - 4, e.x + 16, e.y - 4, color, dash);
    else
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>\n", e.x + 8, e.y - 4, color);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#222\">{}</text>\n", e.x + 22, e.y, html_escape(s.label));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace

std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options) {
  return svg_chart(series, options, Mark::line);
}

std::string svg_scatter_chart(const std::vector<ChartSeries>& series, const ChartOptions& options) {
  return svg_chart(series, options, Mark::dot);
}

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string html = "<table>\n<tr>";
  for (const std::string& h : header) html += fmt::format("<th>{}</th>", html_escape(h));
  html += "</tr>\n";
  for (const auto& row : rows) {
    html += "<tr>";
    for (const std::string& cell : row) html += fmt::format("<td>{}</td>", html_escape(cell));
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

// A Markdown text as HTML: each "| a | b |" table as an HTML table (its
// "|---|" rule dropped), every other non-empty line as a paragraph.
std::string markdown_tables_html(std::string_view markdown) {
  const auto cells_of = [](std::string_view line) {
    std::vector<std::string> cells;
    line.remove_prefix(1);
    if (!line.empty() && line.back() == '|') line.remove_suffix(1);
    for (size_t start = 0;;) {
      const size_t bar = line.find('|', start);
      std::string_view cell = line.substr(start, bar == std::string_view::npos ? line.size() - start : bar - start);
      while (!cell.empty() && cell.front() == ' ') cell.remove_prefix(1);
      while (!cell.empty() && cell.back() == ' ') cell.remove_suffix(1);
      cells.emplace_back(cell);
      if (bar == std::string_view::npos) return cells;
      start = bar + 1;
    }
  };
  std::string html;
  std::vector<std::vector<std::string>> rows;
  const auto flush_table = [&] {
    if (rows.empty()) return;
    const std::vector<std::string> header = rows.front();
    html += html_table(header, {rows.begin() + 1, rows.end()});
    rows.clear();
  };
  size_t start = 0;
  while (start <= markdown.size()) {
    const size_t end = std::min(markdown.find('\n', start), markdown.size());
    const std::string_view line = markdown.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.front() == '|') {
      if (line.find("---") == std::string_view::npos) rows.push_back(cells_of(line));
      continue;
    }
    flush_table();
    if (!line.empty()) html += fmt::format("<p>{}</p>\n", html_escape(line));
  }
  flush_table();
  return html;
}

std::string html_page(const ReportPage& page) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n<style>\n"
      "body {{ font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }}\n"
      "table {{ border-collapse: collapse; margin: 8px 0 20px; max-width: 100%; }}\n"
      "td, th {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; overflow-wrap: anywhere; }}\n"
      "td:first-child, th:first-child {{ text-align: left; }}\n"
      ".charts svg {{ margin: 0 16px 16px 0; border: 1px solid #ddd; max-width: 100%; height: auto; }}\n"
      "pre {{ background: #f6f6f6; padding: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }}\n"
      "</style>\n</head>\n<body>\n<h1>{0}</h1>\n<table>\n",
      html_escape(page.title));
  for (const auto& [name, value] : page.facts)
    html += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", html_escape(name), html_escape(value));
  html += "</table>\n";
  if (!page.charts.empty()) {
    html += "<div class=\"charts\">\n";
    for (const std::string& chart : page.charts) html += chart;
    html += "</div>\n";
  }
  for (const auto& [heading, body] : page.sections) html += fmt::format("<h2>{}</h2>\n{}", html_escape(heading), body);
  if (!page.config_toml.empty())
    html += fmt::format("<h2>Config</h2>\n<pre>{}</pre>\n", html_escape(page.config_toml));
  html += "</body>\n</html>\n";
  return html;
}

std::string epochs_table_html(const std::vector<EpochStats>& epochs) {
  std::vector<std::vector<std::string>> rows;
  for (const EpochStats& e : epochs)
    rows.push_back({std::to_string(e.epoch), fmt::format("{:.4f}", e.train_loss), fmt::format("{:.2f}%", e.train_acc),
                    fmt::format("{:.4f}", e.test_loss), fmt::format("{:.2f}%", e.test_acc), fmt::format("{:g}", e.lr),
                    with_commas(static_cast<int64_t>(std::lround(e.images_per_second))),
                    fmt::format("{:.1f}", e.seconds)});
  return html_table({"epoch", "train loss", "train acc", "test loss", "test acc", "lr", "img/s", "seconds"}, rows);
}

std::vector<std::string> epoch_charts(const std::vector<EpochStats>& epochs) {
  ChartSeries train_loss{"train", "#1f77b4", {}}, test_loss{"test", "#d62728", {}};
  ChartSeries train_acc{"train", "#1f77b4", {}}, test_acc{"test", "#d62728", {}};
  for (const EpochStats& e : epochs) {
    const auto x = static_cast<double>(e.epoch);
    train_loss.points.emplace_back(x, e.train_loss);
    test_loss.points.emplace_back(x, e.test_loss);
    train_acc.points.emplace_back(x, e.train_acc);
    test_acc.points.emplace_back(x, e.test_acc);
  }
  return {svg_line_chart({train_loss, test_loss}, {.title = "Loss", .x_label = "epoch", .y_label = "cross-entropy"}),
          svg_line_chart({train_acc, test_acc}, {.title = "Accuracy", .x_label = "epoch", .y_label = "accuracy (%)"})};
}

std::string training_report_html(const TrainingReport& r) {
  return html_page({.title = r.title,
                    .facts = r.facts,
                    .charts = epoch_charts(r.epochs),
                    .sections = {{"Epochs", epochs_table_html(r.epochs)}},
                    .config_toml = r.config_toml});
}

}  // namespace tpp::train
