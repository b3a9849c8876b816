#pragma once
// Text as drover accepts it (docs/api.md): well-formed UTF-8 without NUL. Every text input —
// JSON and YAML strings and keys, path and query parameters — is checked once, at the edge
// (http/handler_util.h, http/pipeline.cc), so nothing behind it ever sees other bytes.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace drover {

// The length (1-4) of the well-formed UTF-8 sequence starting at s[i], or 0 when the bytes there
// are not one: a stray continuation byte, a truncated or overlong sequence, a surrogate, or a code
// point above U+10FFFF. REQUIRES: i < s.size().
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i);

// True when `s` is well-formed UTF-8.
bool IsUtf8(std::string_view s);

// What is wrong with `s` as text: "" when it is UTF-8 without NUL, else a reason for a message
// ("is not valid UTF-8", "contains the NUL character").
std::string_view TextProblem(std::string_view s);

// `s` made text: each byte that does not start a well-formed UTF-8 sequence, and each NUL,
// becomes '?' (for output a program wrote, which may be anything).
std::string ToValidText(std::string_view s);

// True when TextProblem(s) is empty.
inline bool IsValidText(std::string_view s) { return TextProblem(s).empty(); }

// 1-based line and column of byte `offset` in `s` (columns count bytes), for messages about a
// document's bytes.
std::string LineColumn(std::string_view s, std::size_t offset);

// The offset of the first byte that is not UTF-8 text (invalid UTF-8 or NUL), or npos.
std::size_t FirstBadTextByte(std::string_view s);

// ASCII case-insensitive equality (header values, URL schemes). Not Beast's iequals, which reads
// one byte past its arguments when they differ only in case (found by http_request_fuzz).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// A boolean as drover reads one everywhere (variables, query parameters): true/false, yes/no,
// 1/0 in any case; nullopt for anything else.
std::optional<bool> ParseBool(std::string_view v);

}  // namespace drover
