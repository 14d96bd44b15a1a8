// report.html: a self-contained page (no scripts, no outside files) with the
// run's facts, line charts drawn as inline SVG, the per-epoch table and the
// resolved config.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "train/trainer.h"

namespace tpp::train {

struct ChartSeries {
  std::string label, color;  // color: any CSS color
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 560, height = 320;
  // The y axis: linear, logarithmic, or logarithmic when every value is
  // positive and they span more than a factor of 100 (a loss of 1 next to a
  // penalty of 0.001 would otherwise be a flat line).
  enum class Scale { linear, log, automatic } y_scale = Scale::automatic;
};

// An SVG line chart with "nice" axis ticks, grid lines, axis labels and a
// legend in rows of its own under the title. Series drawn earlier are drawn
// wider, and every series after the first dashed, so that one lying on
// another stays visible. Empty series are skipped; with no points at all
// the chart says so.
std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options);
// The same axes with one marker per point and no lines (one series per run).
std::string svg_scatter_chart(const std::vector<ChartSeries>& series, const ChartOptions& options);

// Text for HTML element content and attribute values.
std::string html_escape(std::string_view text);

struct TrainingReport {
  std::string title;                                     // e.g. "resnet20 on fashion-mnist"
  std::vector<std::pair<std::string, std::string>> facts;  // shown as a table, in order
  std::vector<EpochStats> epochs;
  std::string config_toml;
};

std::string training_report_html(const TrainingReport& report);

// The pieces, for other reports (the pruning pipeline's).
struct ReportPage {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;     // a table under the title
  std::vector<std::string> charts;                            // SVGs side by side
  std::vector<std::pair<std::string, std::string>> sections;  // heading, HTML body
  std::string config_toml;
};
std::string html_page(const ReportPage& page);
// A table of text cells (escaped here).
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// Markdown tables (and the lines around them) as HTML tables and paragraphs.
std::string markdown_tables_html(std::string_view markdown);
std::string epochs_table_html(const std::vector<EpochStats>& epochs);
// Loss and accuracy per epoch, train and test.
std::vector<std::string> epoch_charts(const std::vector<EpochStats>& epochs);

}  // namespace tpp::train
