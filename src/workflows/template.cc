#include "workflows/template.h"

#include <boost/json.hpp>

#include "common/json.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// "input.a.b" or "steps.NAME.output.a" into a reference.
Result<TemplateRef> ParseRef(std::string_view expr) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (true) {
    size_t dot = expr.find('.', start);
    std::string_view seg = expr.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (seg.empty())
      return Status::InvalidArgument("empty name in {{ " + std::string(expr) + " }}");
    for (char c : seg) {
      if (!IsSegmentChar(c)) {
        return Status::InvalidArgument("names in {{ }} are letters, digits, '_' and '-': " +
                                       std::string(expr));
      }
    }
    segments.emplace_back(seg);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  TemplateRef ref;
  if (segments[0] == "input") {
    ref.path.assign(segments.begin() + 1, segments.end());
    return ref;
  }
  if (segments[0] == "steps" && segments.size() >= 3 && segments[2] == "output") {
    ref.step = segments[1];
    ref.path.assign(segments.begin() + 3, segments.end());
    return ref;
  }
  return Status::InvalidArgument("{{ " + std::string(expr) +
                                 " }} must read input.PATH or steps.NAME.output.PATH");
}

const json::value* Walk(const json::value* v, const std::vector<std::string>& path) {
  for (const auto& key : path) {
    if (!v) return nullptr;
    if (const auto* o = v->if_object()) {
      v = o->if_contains(key);
    } else if (const auto* a = v->if_array()) {
      size_t i = 0;
      if (key.empty() || key.size() > 9) return nullptr;
      for (char c : key) {
        if (c < '0' || c > '9') return nullptr;
        i = i * 10 + static_cast<size_t>(c - '0');
      }
      v = i < a->size() ? &(*a)[i] : nullptr;
    } else {
      return nullptr;
    }
  }
  return v;
}

const json::value* Resolve(const TemplateRef& ref, const RenderContext& ctx) {
  const json::value* root = nullptr;
  if (ref.step.empty()) {
    root = ctx.input;
  } else if (ctx.output) {
    root = ctx.output(ref.step);
  }
  return Walk(root, ref.path);
}

void AppendText(std::string& out, const json::value* v) {
  if (!v || v->is_null()) return;
  if (const auto* s = v->if_string()) {
    out.append(s->data(), s->size());
  } else {
    out += ToJson(*v);
  }
}

}  // namespace

Result<std::vector<TemplatePart>> ParseTemplate(std::string_view s) {
  std::vector<TemplatePart> parts;
  std::string text;
  size_t i = 0;
  while (i < s.size()) {
    size_t open = s.find("{{", i);
    if (open == std::string_view::npos) {
      text.append(s.substr(i));
      break;
    }
    text.append(s.substr(i, open - i));
    size_t close = s.find("}}", open + 2);
    if (close == std::string_view::npos) return Status::InvalidArgument("unclosed {{");
    std::string_view expr = Trim(s.substr(open + 2, close - open - 2));
    if (expr.empty()) return Status::InvalidArgument("empty {{ }}");
    auto ref = ParseRef(expr);
    if (!ref.ok()) return ref.status();
    if (!text.empty()) parts.push_back({std::move(text), std::nullopt});
    text.clear();
    parts.push_back({"", std::move(*ref)});
    i = close + 2;
  }
  if (!text.empty()) parts.push_back({std::move(text), std::nullopt});
  return parts;
}

void CollectRefs(const json::value& v, const std::string& field, std::vector<FoundRef>& out,
                 std::vector<FieldError>& errors) {
  if (const auto* s = v.if_string()) {
    if (s->find("{{") == json::string::npos) return;
    auto parts = ParseTemplate(*s);
    if (!parts.ok()) {
      errors.push_back({field, parts.status().message()});
      return;
    }
    for (auto& p : *parts) {
      if (p.ref) out.push_back({field, std::move(*p.ref)});
    }
  } else if (const auto* o = v.if_object()) {
    for (const auto& kv : *o) {
      CollectRefs(kv.value(), field + "." + std::string(kv.key()), out, errors);
    }
  } else if (const auto* a = v.if_array()) {
    for (size_t i = 0; i < a->size(); ++i) {
      CollectRefs((*a)[i], field + "[" + std::to_string(i) + "]", out, errors);
    }
  }
}

json::value Render(const json::value& v, const RenderContext& ctx) {
  if (const auto* s = v.if_string()) {
    if (s->find("{{") == json::string::npos) return v;
    auto parts = ParseTemplate(*s);
    if (!parts.ok()) return v;
    if (parts->size() == 1 && (*parts)[0].ref) {
      const json::value* found = Resolve(*(*parts)[0].ref, ctx);
      return found ? *found : json::value(nullptr);
    }
    std::string out;
    for (const auto& p : *parts) {
      if (p.ref) {
        AppendText(out, Resolve(*p.ref, ctx));
      } else {
        out += p.text;
      }
    }
    return json::value(json::string(out));
  }
  if (const auto* o = v.if_object()) {
    json::object r;
    r.reserve(o->size());
    for (const auto& kv : *o) r.emplace(kv.key(), Render(kv.value(), ctx));
    return r;
  }
  if (const auto* a = v.if_array()) {
    json::array r;
    r.reserve(a->size());
    for (const auto& e : *a) r.push_back(Render(e, ctx));
    return r;
  }
  return v;
}

std::string RenderText(std::string_view s, const RenderContext& ctx) {
  json::value rendered = Render(json::value(json::string(s)), ctx);
  std::string out;
  AppendText(out, &rendered);
  return out;
}

}  // namespace drover::workflows
