#include "common/yaml.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <sstream>
#include <unordered_map>

#include "common/json.h"
#include "common/text.h"

namespace drover {
namespace {

// YAML 1.2 core schema float, [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, scanned by
// hand in one pass: a backtracking regex on untrusted input can take the stack with it.
bool IsPlainFloat(std::string_view s) {
  size_t i = 0, n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t whole = digits();
  size_t frac = 0;
  if (i < n && s[i] == '.') {
    ++i;
    frac = digits();
    if (whole == 0 && frac == 0) return false;
  } else if (whole == 0) {
    return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == n;
}

// A plain scalar typed as YAML 1.2's core schema types it. A number too large for a double stays
// a string (the decoder then says which type it wanted).
boost::json::value PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i = 0;
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  if (IsPlainFloat(s)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d)) return d;
  }
  return boost::json::value(s);
}

struct Limit {};  // thrown by the builder to stop the parser at once

// Builds JSON values from the parser's events, with bounds on what a document may cost: depth,
// and nodes and scalar bytes counted after alias expansion (an alias costs what it copies), so a
// few hundred bytes of nested aliases cannot ask for gigabytes.
class Builder final : public YAML::EventHandler {
 public:
  static constexpr size_t kMaxDepth = 64;
  static constexpr size_t kMaxNodes = 200000;
  static constexpr size_t kMaxBytes = 16u << 20;

  std::vector<boost::json::value> roots;
  std::string error;  // set before Limit is thrown

  void OnDocumentStart(const YAML::Mark&) override {
    stack_.clear();
    anchors_.clear();
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Count(mark, 1, 0);
    Add(mark, nullptr, anchor, nodes_ - 1, bytes_, nullptr);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) Fail(mark, "an alias names no anchor");
    const Anchored& a = it->second;
    size_t nodes = nodes_, bytes = bytes_;
    Count(mark, a.nodes, a.bytes);
    Add(mark, a.value, 0, nodes, bytes, a.scalar ? &a.text : nullptr);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    size_t nodes = nodes_, bytes = bytes_;
    Count(mark, 1, value.size());
    // Plain scalars are typed; quoted ones ("!") and explicitly tagged ones stay strings.
    boost::json::value v =
        tag == "?" || tag.empty() ? PlainScalar(value) : boost::json::value(value);
    Add(mark, std::move(v), anchor, nodes, bytes, &value);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, boost::json::array(), anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, boost::json::object(), anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    boost::json::value value;  // an object or an array
    YAML::anchor_t anchor = 0;
    YAML::Mark mark;
    size_t nodes_at_start = 0, bytes_at_start = 0;
    std::optional<std::string> key;  // maps: the key waiting for its value
  };
  struct Anchored {
    boost::json::value value;
    bool scalar = false;
    std::string text;  // a scalar's text (for use as a key)
    size_t nodes = 0, bytes = 0;
  };

  [[noreturn]] void Fail(const YAML::Mark& mark, std::string_view why) {
    error = fmt::format("YAML line {}: {}", mark.line + 1, why);
    throw Limit{};
  }

  void Count(const YAML::Mark& mark, size_t nodes, size_t bytes) {
    nodes_ += nodes;
    bytes_ += bytes;
    if (nodes_ > kMaxNodes) {
      Fail(mark, fmt::format("the document has more than {} nodes (aliases count as what they "
                             "repeat)",
                             kMaxNodes));
    }
    if (bytes_ > kMaxBytes) {
      Fail(mark, fmt::format("the document's text is over {} MiB (aliases count as what they "
                             "repeat)",
                             kMaxBytes >> 20));
    }
  }

  void Open(const YAML::Mark& mark, boost::json::value container, YAML::anchor_t anchor) {
    if (stack_.size() >= kMaxDepth) {
      Fail(mark, fmt::format("the document nests deeper than {} levels", kMaxDepth));
    }
    if (!stack_.empty() && stack_.back().value.is_object() && !stack_.back().key) {
      Fail(mark, "mapping keys must be plain strings");
    }
    Count(mark, 1, 0);
    stack_.push_back({std::move(container), anchor, mark, nodes_ - 1, bytes_, std::nullopt});
  }

  void Close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.key) Fail(f.mark, "a mapping key has no value");
    Add(f.mark, std::move(f.value), f.anchor, f.nodes_at_start, f.bytes_at_start, nullptr);
  }

  // Places a finished node: as a document root, an array item, a map key or a map value.
  // `scalar` is the node's text when it is a scalar (keys are that text, whatever it types as).
  void Add(const YAML::Mark& mark, boost::json::value v, YAML::anchor_t anchor, size_t nodes_before,
           size_t bytes_before, const std::string* scalar) {
    if (anchor) {
      // The anchored node is kept for its aliases; the copy costs what it holds.
      Anchored a{v, scalar != nullptr, scalar ? *scalar : std::string(), nodes_ - nodes_before,
                 bytes_ - bytes_before};
      Count(mark, a.nodes, a.bytes);
      anchors_[anchor] = std::move(a);
    }
    if (stack_.empty()) {
      roots.push_back(std::move(v));
      return;
    }
    Frame& top = stack_.back();
    if (top.value.is_array()) {
      top.value.get_array().push_back(std::move(v));
      return;
    }
    auto& obj = top.value.get_object();
    if (!top.key) {
      if (!scalar || v.is_null()) Fail(mark, "mapping keys must be plain strings");
      if (obj.contains(*scalar)) Fail(mark, fmt::format("duplicate key '{}'", *scalar));
      top.key = *scalar;
      return;
    }
    obj[*top.key] = std::move(v);
    top.key.reset();
  }

  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Anchored> anchors_;
  size_t nodes_ = 0, bytes_ = 0;  // across the whole stream
};

}  // namespace

Result<std::vector<boost::json::value>> ParseYamlDocuments(std::string_view text) {
  if (size_t bad = FirstBadTextByte(text); bad != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format(
        "YAML must be UTF-8 text without NUL: {} at {}",
        text[bad] == '\0' ? "a NUL character" : "a byte that is not UTF-8", LineColumn(text, bad)));
  }
  std::istringstream in{std::string(text)};
  Builder builder;
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const Limit&) {
    return Status::InvalidArgument(builder.error);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(fmt::format("malformed YAML at line {}, column {}: {}",
                                               e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  std::vector<boost::json::value> out;
  for (auto& root : builder.roots) {
    if (root.is_null()) continue;  // an empty document
    // Escapes ("\0", "\ud800") can still make strings that are not text.
    DROVER_RETURN_IF_ERROR(CheckJsonText(root));
    out.push_back(std::move(root));
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
