// report.html: a self-contained page (no scripts, no outside files) with the
// run's facts, line charts drawn as inline SVG, the per-epoch table and the
// resolved config.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "apps/trainer.h"

namespace tpp::apps {

struct ChartSeries {
  std::string label, color;  // color: any CSS color
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 560, height = 320;
};

// An SVG line chart with "nice" axis ticks, grid lines and a legend. Empty
// series are skipped; with no points at all the chart says so.
std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options);

// Text for HTML element content and attribute values.
std::string html_escape(std::string_view text);

struct TrainingReport {
  std::string title;                                     // e.g. "resnet20 on fashion-mnist"
  std::vector<std::pair<std::string, std::string>> facts;  // shown as a table, in order
  std::vector<EpochStats> epochs;
  std::string config_toml;
};

std::string training_report_html(const TrainingReport& report);

}  // namespace tpp::apps
