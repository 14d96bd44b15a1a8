#include "train/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

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
  axis.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(axis.step) + 1e-9)));
  return axis;
}

std::string tick_label(double value, int decimals) {
  if (std::abs(value) < 1e-12) value = 0;  // no "-0"
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

std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& o) {
  constexpr double left = 64, right = 16, top = 40, bottom = 48;
  const double plot_w = o.width - left - right, plot_h = o.height - top - bottom;

  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const ChartSeries& s : series)
    for (const auto& [x, y] : s.points) {
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"{2}\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{3}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{2}</text>\n",
      o.width, o.height, html_escape(o.title), left);
  if (!std::isfinite(x_min)) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>\n</svg>\n",
                       left + plot_w / 2, top + plot_h / 2);
    return svg;
  }
  const Axis xa = make_axis(x_min, x_max, true, true), ya = make_axis(y_min, y_max, false, false);
  // Ticks sit on multiples of the step, inside the axis.
  const auto first_tick = [](const Axis& a) { return std::ceil(a.lo / a.step - 1e-9) * a.step; };
  const auto px = [&](double x) { return left + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; };
  const auto py = [&](double y) { return top + plot_h - (y - ya.lo) / (ya.hi - ya.lo) * plot_h; };

  // Grid, ticks and labels.
  for (double y = first_tick(ya); y <= ya.hi + ya.step * 1e-6; y += ya.step) {
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", left,
                       py(y), left + plot_w, py(y));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#444\">{}</text>\n", left - 6,
                       py(y) + 4, tick_label(y, ya.decimals));
  }
  for (double x = first_tick(xa); x <= xa.hi + xa.step * 1e-6; x += xa.step) {
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", px(x),
                       top, px(x), top + plot_h);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n", px(x),
                       top + plot_h + 16, tick_label(x, xa.decimals));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", left, top,
                     plot_w, plot_h);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + plot_w / 2,
                     o.height - 8, html_escape(o.x_label));
  svg += fmt::format("<text transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     top + plot_h / 2, html_escape(o.y_label));

  // Lines, dots when they can be told apart, and the legend (right-aligned in the title row).
  double legend_x = o.width - right;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    const ChartSeries& s = *it;
    if (s.points.empty()) continue;
    std::string points;
    for (const auto& [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                       html_escape(s.color), points);
    if (s.points.size() <= 40)
      for (const auto& [x, y] : s.points)
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", px(x), py(y),
                           html_escape(s.color));
    const double text_width = 7.0 * static_cast<double>(s.label.size());
    legend_x -= text_width;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"20\" fill=\"#222\">{}</text>\n", legend_x, html_escape(s.label));
    legend_x -= 22;
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"16\" x2=\"{:.1f}\" y2=\"16\" stroke=\"{}\" stroke-width=\"3\"/>\n",
                       legend_x, legend_x + 16, html_escape(s.color));
    legend_x -= 14;
  }
  svg += "</svg>\n";
  return svg;
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

std::string html_page(const ReportPage& page) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n<style>\n"
      "body {{ font-family: sans-serif; margin: 24px; color: #222; }}\n"
      "table {{ border-collapse: collapse; margin: 8px 0 20px; }}\n"
      "td, th {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }}\n"
      "td:first-child, th:first-child {{ text-align: left; }}\n"
      ".charts svg {{ margin: 0 16px 16px 0; border: 1px solid #ddd; }}\n"
      "pre {{ background: #f6f6f6; padding: 12px; }}\n"
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
  html += fmt::format("<h2>Config</h2>\n<pre>{}</pre>\n</body>\n</html>\n", html_escape(page.config_toml));
  return html;
}

std::string epochs_table_html(const std::vector<EpochStats>& epochs) {
  std::vector<std::vector<std::string>> rows;
  for (const EpochStats& e : epochs)
    rows.push_back({std::to_string(e.epoch), fmt::format("{:.4f}", e.train_loss), fmt::format("{:.2f}%", e.train_acc),
                    fmt::format("{:.4f}", e.test_loss), fmt::format("{:.2f}%", e.test_acc), fmt::format("{:g}", e.lr),
                    fmt::format("{:.0f}", e.images_per_second), fmt::format("{:.1f}", e.seconds)});
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
