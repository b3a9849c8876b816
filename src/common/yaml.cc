#include "common/yaml.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <regex>

namespace drover {
namespace {

boost::json::value Scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return boost::json::value(s);  // quoted: a string, whatever it reads as
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i = 0;
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
  return boost::json::value(s);
}

Result<boost::json::value> Convert(const YAML::Node& n, int depth) {
  if (depth > 64) return Status::InvalidArgument("YAML nests deeper than 64 levels");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return boost::json::value(nullptr);
    case YAML::NodeType::Scalar:
      return Scalar(n);
    case YAML::NodeType::Sequence: {
      boost::json::array a;
      for (const auto& item : n) {
        auto v = Convert(item, depth + 1);
        if (!v.ok()) return v;
        a.push_back(std::move(*v));
      }
      return boost::json::value(std::move(a));
    }
    case YAML::NodeType::Map: {
      boost::json::object o;
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return Status::InvalidArgument(fmt::format(
              "YAML line {}: mapping keys must be plain strings", kv.first.Mark().line + 1));
        }
        auto v = Convert(kv.second, depth + 1);
        if (!v.ok()) return v;
        o[kv.first.Scalar()] = std::move(*v);
      }
      return boost::json::value(std::move(o));
    }
  }
  return boost::json::value(nullptr);
}

}  // namespace

Result<std::vector<boost::json::value>> ParseYamlDocuments(std::string_view text) {
  std::vector<boost::json::value> out;
  try {
    for (const auto& doc : YAML::LoadAll(std::string(text))) {
      if (doc.IsNull()) continue;
      auto v = Convert(doc, 0);
      if (!v.ok()) return v.status();
      out.push_back(std::move(*v));
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(fmt::format("malformed YAML at line {}, column {}: {}",
                                               e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return out;
}

Result<boost::json::value> ParseYaml(std::string_view text) {
  auto docs = ParseYamlDocuments(text);
  if (!docs.ok()) return docs.status();
  if (docs->size() != 1) {
    return Status::InvalidArgument(
        fmt::format("expected one YAML document, found {}", docs->size()));
  }
  return std::move(docs->front());
}

}  // namespace drover
