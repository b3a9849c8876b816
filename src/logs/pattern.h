#pragma once
// What `q` of GET /v1/logs matches (docs/logs.md#searching): a substring, or — written between
// slashes, `/error [0-9]+ ms$/` — a simple regular expression: literals, `.`, classes `[a-z0-9_]`
// and `[^...]`, escapes `\d \w \s` and `\.`-style literals, the quantifiers `* + ?` on one atom,
// and anchors `^ $`. No groups or alternation, so matching simulates the pattern's positions in
// one pass: linear in the line's length whatever the pattern (no backtracking).
#include <bitset>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace drover::logs {

class Pattern {
 public:
  // InvalidArgument saying what is wrong with `q` (for the `q` parameter).
  static Result<Pattern> Parse(std::string_view q);
  bool Matches(std::string_view line) const;
  const std::string& text() const { return text_; }

 private:
  struct Atom {
    std::bitset<256> set;   // the bytes it matches
    bool star = false;      // any number of times (`*`, or `+` after its one required copy)
    bool optional = false;  // `?`
  };
  std::string text_;
  bool regex_ = false;
  std::string literal_;  // substring mode
  std::vector<Atom> atoms_;
  bool anchored_start_ = false, anchored_end_ = false;
};

}  // namespace drover::logs
