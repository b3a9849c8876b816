#include "common/text.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

namespace drover {

std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t left = s.size() - i;
  auto cont = [&](std::size_t k) { return (byte(i + k) & 0xC0) == 0x80; };
  // RFC 3629 table 3-7: the second byte's range depends on the first (no overlongs, no
  // surrogates, nothing above U+10FFFF).
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(1) || !cont(2)) return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

namespace {

// The first byte that is not text, or npos; `*nul` tells which problem it is.
std::size_t FirstBad(std::string_view s, bool* nul) {
  std::size_t i = 0;
  while (i < s.size()) {
    // ASCII runs, 8 bytes at a time: no high bit and no zero byte.
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      bool high = w & 0x8080808080808080ULL;
      bool zero = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;
      if (high || zero) break;
      i += 8;
    }
    if (i >= s.size()) break;
    if (s[i] == '\0') {
      *nul = true;
      return i;
    }
    std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      *nul = false;
      return i;
    }
    i += n;
  }
  return std::string_view::npos;
}

}  // namespace

bool IsUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string_view TextProblem(std::string_view s) {
  bool nul = false;
  if (FirstBad(s, &nul) == std::string_view::npos) return {};
  return nul ? "contains the NUL character" : "is not valid UTF-8";
}

std::size_t FirstBadTextByte(std::string_view s) {
  bool nul = false;
  return FirstBad(s, &nul);
}

std::string LineColumn(std::string_view s, std::size_t offset) {
  std::size_t line = 1, start = 0;
  for (std::size_t i = 0; i < offset && i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++line;
      start = i + 1;
    }
  }
  return fmt::format("line {}, column {}", line, offset - start + 1);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::optional<bool> ParseBool(std::string_view v) {
  auto is = [&](std::string_view word) { return EqualsIgnoreCase(v, word); };
  if (is("true") || is("yes") || is("1")) return true;
  if (is("false") || is("no") || is("0")) return false;
  return std::nullopt;
}

std::string ToValidText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = s[i] == '\0' ? 0 : Utf8SequenceLength(s, i);
    if (n == 0) {
      out += '?';
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace drover
