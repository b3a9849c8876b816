#include "logs/pattern.h"

#include <fmt/format.h>

namespace drover::logs {
namespace {

constexpr size_t kMaxPattern = 256;

Status Bad(std::string_view why) {
  return Status::InvalidArgument(fmt::format("query parameter 'q': {}", why));
}

std::bitset<256> ClassOf(char c) {
  std::bitset<256> s;
  auto range = [&](int lo, int hi) {
    for (int i = lo; i <= hi; ++i) s.set(static_cast<size_t>(i));
  };
  switch (c) {
    case 'd':
      range('0', '9');
      break;
    case 'w':
      range('0', '9'), range('a', 'z'), range('A', 'Z'), s.set('_');
      break;
    case 's':
      for (char w : std::string_view(" \t\r\n\f\v")) s.set(static_cast<unsigned char>(w));
      break;
    default:
      s.set(static_cast<unsigned char>(c));
  }
  return s;
}

}  // namespace

Result<Pattern> Pattern::Parse(std::string_view q) {
  Pattern p;
  p.text_ = std::string(q);
  if (q.size() > kMaxPattern) return Bad(fmt::format("at most {} bytes", kMaxPattern));
  if (q.size() < 2 || q.front() != '/' || q.back() != '/') {
    p.literal_ = std::string(q);
    return p;
  }
  p.regex_ = true;
  std::string_view r = q.substr(1, q.size() - 2);
  if (!r.empty() && r.front() == '^') p.anchored_start_ = true, r.remove_prefix(1);
  if (!r.empty() && r.back() == '$' && (r.size() < 2 || r[r.size() - 2] != '\\')) {
    p.anchored_end_ = true;
    r.remove_suffix(1);
  }
  for (size_t i = 0; i < r.size();) {
    Atom a;
    char c = r[i++];
    if (c == '.') {
      a.set.set();
      a.set.reset('\n');
    } else if (c == '\\') {
      if (i == r.size()) return Bad("a trailing \\ escapes nothing");
      a.set = ClassOf(r[i++]);
    } else if (c == '[') {
      bool negate = i < r.size() && r[i] == '^';
      if (negate) ++i;
      bool closed = false;
      bool first = true;
      while (i < r.size()) {
        char x = r[i++];
        if (x == ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        if (x == '\\') {
          if (i == r.size()) break;
          a.set |= ClassOf(r[i++]);
        } else if (i + 1 < r.size() && r[i] == '-' && r[i + 1] != ']') {
          auto lo = static_cast<unsigned char>(x), hi = static_cast<unsigned char>(r[i + 1]);
          if (lo > hi) return Bad(fmt::format("the range {}-{} is backwards", x, r[i + 1]));
          for (unsigned v = lo; v <= hi; ++v) a.set.set(v);
          i += 2;
        } else {
          a.set.set(static_cast<unsigned char>(x));
        }
      }
      if (!closed) return Bad("a [ class is not closed");
      if (negate) a.set.flip();
    } else if (c == '*' || c == '+' || c == '?') {
      return Bad(fmt::format("{} must follow a character or class", c));
    } else if (c == '(' || c == ')' || c == '|' || c == '{' || c == '}') {
      return Bad(fmt::format(
          "{} is not supported (no groups, alternation or counts); escape it as \\{} to match it",
          c, c));
    } else {
      a.set.set(static_cast<unsigned char>(c));
    }
    if (i < r.size() && (r[i] == '*' || r[i] == '+' || r[i] == '?')) {
      char quant = r[i++];
      if (quant == '+') {
        p.atoms_.push_back(a);  // one required copy, then any number
        a.star = true;
      } else if (quant == '*') {
        a.star = true;
      } else {
        a.optional = true;
      }
    }
    p.atoms_.push_back(a);
  }
  return p;
}

bool Pattern::Matches(std::string_view line) const {
  if (!regex_) return line.find(literal_) != std::string_view::npos;
  const size_t n = atoms_.size();
  // states[k]: the first k atoms have matched a prefix ending here. Closing over skippable
  // atoms (star, optional) adds the positions after them.
  std::vector<char> cur(n + 1, 0), next(n + 1, 0);
  auto close = [&](std::vector<char>& s) {
    for (size_t k = 0; k < n; ++k) {
      if (s[k] && (atoms_[k].star || atoms_[k].optional)) s[k + 1] = 1;
    }
  };
  auto accepting = [&](const std::vector<char>& s) { return s[n] != 0; };
  cur[0] = 1;
  close(cur);
  if (accepting(cur) && (!anchored_end_ || line.empty())) return true;
  for (size_t pos = 0; pos < line.size(); ++pos) {
    auto byte = static_cast<unsigned char>(line[pos]);
    std::fill(next.begin(), next.end(), 0);
    for (size_t k = 0; k < n; ++k) {
      if (!cur[k] || !atoms_[k].set.test(byte)) continue;
      if (atoms_[k].star) next[k] = 1;  // stay to match more
      next[k + 1] = 1;
    }
    if (!anchored_start_) next[0] = 1;  // a match may start at the next byte
    close(next);
    cur.swap(next);
    if (accepting(cur) && (!anchored_end_ || pos + 1 == line.size())) return true;
  }
  return false;
}

}  // namespace drover::logs
