// Line plots as self-contained SVG files (training curves), written atomically.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ssmrl/core/error.hpp"
#include "ssmrl/io/file.hpp"

namespace ssmrl::io {

struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

//! A labelled point drawn over the curves (the best checkpoint, say).
struct PlotMarker {
  double x = 0;
  double y = 0;
  std::string label;
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  std::vector<PlotMarker> markers{};
};

namespace detail {

inline std::string svg_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

inline std::string number(double v, const char* format = "%.4g") {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

//! Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten, about `target`
//! of them; whole steps only when `whole` (an axis of iterations).
inline std::vector<double> nice_ticks(double lo, double hi, bool whole = false, int target = 6) {
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (const double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * magnitude >= raw && !(whole && m == 2.5 && magnitude < 10)) {
      step = m * magnitude;
      break;
    }
  }
  if (whole) step = std::max(step, 1.0);
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9);
  for (double k = first; k * step <= hi + 1e-9 * step; k += 1) ticks.push_back(k == 0 ? 0.0 : k * step);
  return ticks;
}

}  // namespace detail

//! The SVG text of `plot`: axes with ticks, one polyline per series, a legend.
inline std::string svg_text(const LinePlot& plot) {
  const char* fn = "io::svg_text";
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : plot.series) {
    SSMRL_REQUIRE(s.x.size() == s.y.size(), fn, ": series '", s.name, "' has ", s.x.size(), " x and ", s.y.size(),
                  " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y0 -= 1, y1 += 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  bool whole_x = true;
  for (const auto& series : plot.series) {
    for (const double x : series.x) whole_x = whole_x && (!std::isfinite(x) || x == std::floor(x));
  }
  const auto x_ticks = detail::nice_ticks(x0, x1, whole_x);
  const auto y_ticks = detail::nice_ticks(y0, y1);
  // The left margin fits the longest y tick label (about 7 pixels a character at 12 px).
  std::size_t longest = 0;
  for (const double v : y_ticks) longest = std::max(longest, detail::number(v, "%.6g").size());
  constexpr double width = 720, height = 420, right = 30, top = 40, bottom = 60;
  const double left = 40 + 7.0 * static_cast<double>(longest);
  const double pw = width - left - right, ph = height - top - bottom;
  auto sx = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto sy = [&](double y) { return top + (y1 - y) / (y1 - y0) * ph; };
  using detail::number;
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"420\" font-family=\"sans-serif\" "
                    "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out += "<text x=\"360\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + detail::svg_escape(plot.title) + "</text>\n";
  out += "<rect x=\"" + number(left) + "\" y=\"" + number(top) + "\" width=\"" + number(pw) + "\" height=\"" +
         number(ph) + "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (const double xv : x_ticks) {
    out += "<text x=\"" + number(sx(xv)) + "\" y=\"" + number(top + ph + 18) + "\" text-anchor=\"middle\">" +
           number(xv, "%.6g") + "</text>\n";
    out += "<line x1=\"" + number(sx(xv)) + "\" x2=\"" + number(sx(xv)) + "\" y1=\"" + number(top + ph) + "\" y2=\"" +
           number(top + ph + 5) + "\" stroke=\"#444\"/>\n";
  }
  for (const double yv : y_ticks) {
    out += "<text x=\"" + number(left - 8) + "\" y=\"" + number(sy(yv) + 4) + "\" text-anchor=\"end\">" +
           number(yv, "%.6g") + "</text>\n";
    out += "<line x1=\"" + number(left) + "\" x2=\"" + number(left + pw) + "\" y1=\"" + number(sy(yv)) + "\" y2=\"" +
           number(sy(yv)) + "\" stroke=\"#ddd\"/>\n";
  }
  out += "<text x=\"" + number(left + pw / 2) + "\" y=\"" + number(height - 15) + "\" text-anchor=\"middle\">" +
         detail::svg_escape(plot.x_label) + "</text>\n";
  out += "<text transform=\"translate(16," + number(top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
         detail::svg_escape(plot.y_label) + "</text>\n";
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  for (std::size_t k = 0; k < plot.series.size(); ++k) {
    const auto& s = plot.series[k];
    const char* colour = colours[k % 6];
    std::string points;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      points += number(sx(s.x[i]), "%.1f") + "," + number(sy(s.y[i]), "%.1f") + " ";
    }
    out += "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"1.5\" points=\"" + points +
           "\"/>\n";
    const double ly = top + 16 + 16 * static_cast<double>(k);
    out += "<line x1=\"" + number(left + 10) + "\" x2=\"" + number(left + 30) + "\" y1=\"" + number(ly - 4) +
           "\" y2=\"" + number(ly - 4) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    out += "<text x=\"" + number(left + 35) + "\" y=\"" + number(ly) + "\">" + detail::svg_escape(s.name) + "</text>\n";
  }
  for (const auto& m : plot.markers) {
    if (!std::isfinite(m.x) || !std::isfinite(m.y)) continue;
    const double mx = sx(m.x), my = sy(m.y);
    out += "<circle cx=\"" + number(mx) + "\" cy=\"" + number(my) + "\" r=\"5\" fill=\"none\" stroke=\"#000\" "
           "stroke-width=\"1.5\"/>\n";
    // The label stays inside the plot: to the left of a point in the right half, below one near the top.
    const bool right_half = mx > left + pw / 2;
    const double ly = my < top + 24 ? my + 18 : my - 10;
    out += "<text x=\"" + number(right_half ? mx - 8 : mx + 8) + "\" y=\"" + number(ly) + "\" text-anchor=\"" +
           (right_half ? "end" : "start") + "\">" + detail::svg_escape(m.label) + "</text>\n";
  }
  return out + "</svg>\n";
}

inline void write_svg(const std::filesystem::path& path, const LinePlot& plot) {
  write_file_atomically("io::write_svg", path, svg_text(plot));
}

}  // namespace ssmrl::io
