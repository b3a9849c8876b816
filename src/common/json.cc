#include "common/json.h"

#include <emmintrin.h>
#include <fmt/format.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/clock.h"
#include "common/duration.h"
#include "common/text.h"

namespace drover {

namespace {

void CheckText(const boost::json::value& v, std::string& path, std::vector<FieldError>& errors) {
  constexpr size_t kMaxReported = 10;
  auto bad = [&](std::string_view s, std::string_view what) {
    std::string_view problem = TextProblem(s);
    if (problem.empty() || errors.size() >= kMaxReported) return;
    errors.push_back({path.empty() ? "(body)" : path,
                      fmt::format("{} {}: text must be UTF-8 without NUL", what, problem)});
  };
  if (v.is_string()) return bad(v.get_string(), "the value");
  size_t len = path.size();
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      if (len) path += '.';
      // The key itself goes into the path as valid text (escaped by the problem's writer).
      path.append(kv.key().data(), kv.key().size());
      bad(kv.key(), "the key");
      CheckText(kv.value(), path, errors);
      path.resize(len);
    }
  } else if (v.is_array()) {
    size_t i = 0;
    for (const auto& item : v.get_array()) {
      path += fmt::format("[{}]", i++);
      CheckText(item, path, errors);
      path.resize(len);
    }
  }
}

}  // namespace

Status CheckJsonText(const boost::json::value& v) {
  std::string path;
  std::vector<FieldError> errors;
  CheckText(v, path, errors);
  if (errors.empty()) return Status::Ok();
  return Status::InvalidArgument("request body has text that is not UTF-8 without NUL",
                                 std::move(errors));
}

Result<boost::json::object> ParseJsonObject(std::string_view body) {
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  // Bytes that are not UTF-8 are let through the parser so that the check below can name the
  // field they are in.
  opts.allow_invalid_utf8 = true;
  boost::json::value v = boost::json::parse(body, ec, {}, opts);
  if (ec) return Status::InvalidArgument("request body is not valid JSON: " + ec.message());
  if (!v.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  DROVER_RETURN_IF_ERROR(CheckJsonText(v));
  return std::move(v.as_object());
}

boost::json::value ParseJsonOrNull(std::string_view text) {
  std::error_code ec;
  auto v = boost::json::parse(text, ec);
  return ec ? boost::json::value(nullptr) : v;
}

boost::json::value JsonTime(int64_t unix_ms) {
  if (unix_ms == 0) return nullptr;
  return boost::json::value(FormatRfc3339(FromUnixMillis(unix_ms)));
}

boost::json::object JsonStrings(const std::map<std::string, std::string>& m) {
  boost::json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

std::string ToJson(const boost::json::value& v) { return boost::json::serialize(v); }

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  // Skip 16 bytes at a time while none needs escaping (a control character, '"' or '\\'), and
  // copy each clean run in one append. Access-log lines and every JSON body pass through here.
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (i + 16 <= s.size()) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
      __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
      special = _mm_or_si128(special, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl_max), v));
      // Bytes with the high bit set start or continue a UTF-8 sequence: checked one by one.
      int mask = _mm_movemask_epi8(special) | _mm_movemask_epi8(v);
      if (mask == 0) {
        i += 16;
        continue;
      }
      i += static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Well-formed UTF-8 is copied; any other byte becomes U+FFFD, so the output is always
      // valid JSON whatever bytes came in.
      if (size_t n = Utf8SequenceLength(s, i)) {
        i += n;
        continue;
      }
      out.append(s.data() + start, i - start);
      out += "\\ufffd";
      start = ++i;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s.data() + start, i - start);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += fmt::format("\\u{:04x}", c);
    }
    start = ++i;
  }
  out.append(s.data() + start, s.size() - start);
  out += '"';
}

JsonDecoder::JsonDecoder(const boost::json::object& obj, std::string prefix)
    : obj_(obj), prefix_(std::move(prefix)) {}

const boost::json::value* JsonDecoder::Find(std::string_view field, bool required,
                                            const char* type) {
  seen_.push_back(field);
  auto it = obj_.find(field);
  if (it == obj_.end() || it->value().is_null()) {
    if (required) AddError(field, fmt::format("is required ({})", type));
    return nullptr;
  }
  return &it->value();
}

std::optional<std::string> JsonDecoder::String(std::string_view field, bool required) {
  const auto* v = Find(field, required, "string");
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    AddError(field, "must be a string");
    return std::nullopt;
  }
  return std::string(v->as_string());
}

std::optional<int64_t> JsonDecoder::Int(std::string_view field, bool required) {
  const auto* v = Find(field, required, "integer");
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->as_uint64());
  }
  if (v->is_double()) {
    double d = v->as_double();
    // In range before the cast: converting a double beyond int64 is undefined.
    if (d > -9e18 && d < 9e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
  }
  AddError(field, "must be an integer");
  return std::nullopt;
}

std::optional<bool> JsonDecoder::Bool(std::string_view field, bool required) {
  const auto* v = Find(field, required, "boolean");
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    AddError(field, "must be a boolean");
    return std::nullopt;
  }
  return v->as_bool();
}

const boost::json::value* JsonDecoder::Raw(std::string_view field, bool required) {
  return Find(field, required, "value");
}

void JsonDecoder::AddError(std::string_view field, std::string message) {
  errors_.push_back({prefix_ + std::string(field), std::move(message)});
}

Status JsonDecoder::Finish() {
  for (const auto& kv : obj_) {
    if (std::find(seen_.begin(), seen_.end(), std::string_view(kv.key())) == seen_.end()) {
      AddError(std::string_view(kv.key()), "unknown field");
    }
  }
  if (errors_.empty()) return Status::Ok();
  return Status::Validation(std::move(errors_));
}

void ReadDurationField(JsonDecoder& d, std::string_view field, int64_t lo_ms, int64_t hi_ms,
                       int64_t* out_ms) {
  const boost::json::value* v = d.Raw(field, false);
  if (!v || v->is_null()) return;
  std::optional<int64_t> ms;
  if (v->is_string()) {
    if (auto p = ParseDuration(std::string_view(v->as_string()))) ms = p->count();
  } else if (v->is_int64() && v->as_int64() >= 0 && v->as_int64() <= hi_ms / 1000) {
    ms = v->as_int64() * 1000;
  } else if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(hi_ms / 1000)) {
    ms = static_cast<int64_t>(v->as_uint64()) * 1000;
  }
  if (!ms) {
    d.AddError(field, "must be a duration like \"30s\", \"5m\" or \"4d\" (or whole seconds)");
  } else if (*ms < lo_ms || *ms > hi_ms) {
    d.AddError(field, fmt::format("must be between {} and {}",
                                  FormatDuration(std::chrono::milliseconds(lo_ms)),
                                  FormatDuration(std::chrono::milliseconds(hi_ms))));
  } else {
    *out_ms = *ms;
  }
}

void AppendErrors(std::vector<FieldError>& out, const Status& s) {
  for (const auto& e : s.errors()) out.push_back(e);
  if (!s.ok() && s.errors().empty()) out.push_back({"", s.message()});
}

const boost::json::object* DocumentSpec(const boost::json::object& top, std::string_view kind,
                                        std::string_view name, std::vector<FieldError>& errors,
                                        bool spec_optional) {
  if (!top.contains("spec") && !top.contains("kind")) return &top;
  JsonDecoder d(top);
  if (auto k = d.String("kind", false); k && *k != kind) {
    d.AddError("kind", fmt::format("must be {}", kind));
  }
  if (auto n = d.String("name", false); n && *n != name) {
    d.AddError("name", fmt::format("'{}' does not match '{}' in the path", *n, name));
  }
  const auto* spec = d.Raw("spec", false);
  static const boost::json::value kEmptySpec = boost::json::object();
  if ((!spec || spec->is_null()) && spec_optional) spec = &kEmptySpec;  // all defaults
  if (!spec) d.AddError("spec", "is required (object)");
  if (spec && !spec->is_object()) d.AddError("spec", "must be an object");
  AppendErrors(errors, d.Finish());
  return spec && spec->is_object() ? &spec->as_object() : nullptr;
}

void AppendJsonField(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  AppendJsonString(out, value);
}

}  // namespace drover
