#include "alerts/exposition.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace drover::alerts {
namespace {

bool NameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

bool ParseValue(std::string_view v, double* out) {
  if (v == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (v == "+Inf" || v == "Inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (v == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return !v.empty() && ec == std::errc() && p == v.data() + v.size();
}

// One line: name{a="x",b="y"} value [timestamp]. False when it is not a sample.
bool ParseLine(std::string_view line, MetricSample* s) {
  size_t i = 0;
  while (i < line.size() && NameChar(line[i], i == 0)) ++i;
  if (i == 0) return false;
  s->name = std::string(line.substr(0, i));
  s->labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t start = i;
      while (i < line.size() && NameChar(line[i], i == start)) ++i;
      if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
      std::string label(line.substr(start, i - start));
      i += 2;
      std::string value;
      for (;;) {
        if (i >= line.size()) return false;
        char c = line[i++];
        if (c == '"') break;
        if (c == '\\') {
          if (i >= line.size()) return false;
          char e = line[i++];
          value += e == 'n' ? '\n' : e;
          continue;
        }
        value += c;
      }
      s->labels[std::move(label)] = std::move(value);
      if (i < line.size() && line[i] == ',') ++i;
    }
  }
  while (i < line.size() && line[i] == ' ') ++i;
  std::string_view rest = line.substr(i);
  size_t space = rest.find(' ');
  return ParseValue(rest.substr(0, space), &s->value);
}

}  // namespace

std::vector<MetricSample> ParseExposition(std::string_view text) {
  std::vector<MetricSample> out;
  MetricSample s;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    if (ParseLine(line, &s)) out.push_back(s);
  }
  return out;
}

}  // namespace drover::alerts
