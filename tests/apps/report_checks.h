// What can be checked of a report page without a browser: the HTML is well
// formed (every element closed in order), nothing is wider than the page
// (fixed widths within it; charts, tables and preformatted text shrink or
// wrap), and every chart names its axes.
#pragma once

#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

namespace tpp::testing {

inline constexpr int kPageWidth = 1200;  // report.html's body max-width

// The first tag nesting error, or "" when every element is closed in order.
inline std::string html_nesting_error(const std::string& html) {
  static const std::set<std::string> void_elements = {"meta", "br", "hr", "img", "input", "link", "col"};
  std::vector<std::string> open;
  size_t at = 0;
  while ((at = html.find('<', at)) != std::string::npos) {
    const size_t end = html.find('>', at);
    if (end == std::string::npos) return "a tag is not closed with '>'";
    const std::string tag = html.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.starts_with("!")) continue;  // <!DOCTYPE html>
    const bool closing = tag.starts_with("/");
    const bool self_closing = tag.ends_with("/");
    const std::string name = tag.substr(closing ? 1 : 0, tag.find_first_of(" \n/", closing ? 1 : 0) - (closing ? 1 : 0));
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
    } else if (!self_closing && !void_elements.count(name)) {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

inline std::vector<std::string> svg_elements(const std::string& html) {
  std::vector<std::string> svgs;
  for (size_t at = 0; (at = html.find("<svg", at)) != std::string::npos;) {
    const size_t end = html.find("</svg>", at);
    svgs.push_back(html.substr(at, end - at));
    at = end;
  }
  return svgs;
}

inline std::string axis_label(const std::string& svg, const std::string& axis) {
  const std::regex label("class=\"" + axis + "-label\"[^>]*>([^<]*)<");
  std::smatch m;
  return std::regex_search(svg, m, label) ? m[1].str() : "";
}

inline void check_report_page(const std::string& html, const std::string& name) {
  INFO(name);
  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(html_nesting_error(html) == "");
  // Wide content shrinks or wraps instead of scrolling the page sideways.
  CHECK(html.find(".charts svg { margin: 0 16px 16px 0; border: 1px solid #ddd; max-width: 100%;") != std::string::npos);
  CHECK(html.find("pre { background: #f6f6f6; padding: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }") !=
        std::string::npos);
  CHECK(html.find("overflow-wrap: anywhere; }") != std::string::npos);
  const std::vector<std::string> svgs = svg_elements(html);
  for (const std::string& svg : svgs) {
    std::smatch width;
    REQUIRE(std::regex_search(svg, width, std::regex("width=\"([0-9]+)\"")));
    CHECK(std::stoi(width[1].str()) <= kPageWidth);
    CHECK_MESSAGE(!axis_label(svg, "x").empty(), svg.substr(0, 300));
    CHECK_MESSAGE(!axis_label(svg, "y").empty(), svg.substr(0, 300));
  }
}

}  // namespace tpp::testing
