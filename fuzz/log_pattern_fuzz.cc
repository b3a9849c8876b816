// Log search patterns (`q` of GET /v1/logs): parsed or refused with a reason; a parsed one
// matches any line without crashing, and in one pass (a slow input is a timeout finding). Plain
// text and a regular expression of letters alone agree with a substring search.
#include <cctype>

#include "fuzz/fuzz_util.h"
#include "logs/pattern.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  std::string_view in = fuzz::AsText(data, size);
  size_t nl = in.find('\n');
  std::string_view q = in.substr(0, nl);
  std::string_view line = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  auto p = logs::Pattern::Parse(q);
  if (!p.ok()) {
    fuzz::RequireWritable(p.status());
    return 0;
  }
  bool got = p->Matches(line);
  bool letters = q.size() > 2 && q.front() == '/' && q.back() == '/';
  if (letters) {
    for (char c : q.substr(1, q.size() - 2)) {
      if (!std::isalnum(static_cast<unsigned char>(c))) letters = false;
    }
  }
  if (!(q.size() >= 2 && q.front() == '/' && q.back() == '/')) {
    if (got != (line.find(q) != std::string_view::npos)) std::abort();
  } else if (letters) {
    if (got != (line.find(q.substr(1, q.size() - 2)) != std::string_view::npos)) std::abort();
  }
  return 0;
}
