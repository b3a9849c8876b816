#pragma once
// Strict JSON decoding for request bodies: every field is checked for presence and type, fields
// nobody asked for are rejected, and all problems are reported at once as field errors.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace drover {

// Parses `body` as a JSON object. Malformed JSON or another top-level type: InvalidArgument.
// Strings and keys must be UTF-8 without NUL (CheckJsonText).
Result<boost::json::object> ParseJsonObject(std::string_view body);

// InvalidArgument naming each field (`spec.agent.ref`, `items[2]`) whose key or string value is
// not UTF-8 without NUL; OK otherwise. REQUIRES: `v` nests at most a few hundred levels.
Status CheckJsonText(const boost::json::value& v);

// Parses stored JSON text (written by us): the value, or null when it does not parse.
boost::json::value ParseJsonOrNull(std::string_view text);

// A time as RFC 3339 text, or null for 0 (never happened): how every API shows stored times.
boost::json::value JsonTime(int64_t unix_ms);

// A string map as a JSON object (labels, annotations).
boost::json::object JsonStrings(const std::map<std::string, std::string>& m);

// Serializes a value compactly.
std::string ToJson(const boost::json::value& v);

// Appends `s` to `out` as a JSON string literal (with quotes).
void AppendJsonString(std::string& out, std::string_view s);

// Appends `,"name":"value"` (the value escaped): a field after the first of a hand-built object.
void AppendJsonField(std::string& out, std::string_view name, std::string_view value);

// Reads fields of one object. Not thread-safe; one per decode.
class JsonDecoder {
 public:
  // `prefix` is prepended to field names in errors ("spec." for nested objects).
  // Field names passed to the readers below must outlive the decoder (string literals do).
  explicit JsonDecoder(const boost::json::object& obj, std::string prefix = "");

  std::optional<std::string> String(std::string_view field, bool required);
  std::optional<int64_t> Int(std::string_view field, bool required);
  std::optional<bool> Bool(std::string_view field, bool required);
  // The raw value of a field (no type check), or null when absent.
  const boost::json::value* Raw(std::string_view field, bool required);

  void AddError(std::string_view field, std::string message);
  // Marks unconsumed fields as unknown and returns every error as one Validation status.
  Status Finish();

 private:
  const boost::json::value* Find(std::string_view field, bool required, const char* type);
  const boost::json::object& obj_;
  std::string prefix_;
  std::vector<std::string_view> seen_;  // field names asked for (callers pass literals)
  std::vector<FieldError> errors_;
};

// A duration field: "30s", "5m", "4d" (common/duration.h) or a whole number of seconds, within
// [lo_ms, hi_ms]; stored in *out_ms when valid, a field error otherwise. Absent or null: *out_ms
// keeps its value.
void ReadDurationField(JsonDecoder& d, std::string_view field, int64_t lo_ms, int64_t hi_ms,
                       int64_t* out_ms);

// Appends the field errors of `s` (or its message, as one error) to `out`: the errors of
// nested decoders gathered into one Validation status.
void AppendErrors(std::vector<FieldError>& out, const Status& s);

// The spec of a `{kind, name, spec}` document, or `top` itself when it is a bare spec (neither
// `kind` nor `spec`). Checks the kind and that the name matches the one in the path; their
// errors go to `errors`. Null when there is no spec object to read. `spec_optional`: a document
// without a spec reads as an empty one (every setting at its default).
const boost::json::object* DocumentSpec(const boost::json::object& top, std::string_view kind,
                                        std::string_view name, std::vector<FieldError>& errors,
                                        bool spec_optional = false);

}  // namespace drover
