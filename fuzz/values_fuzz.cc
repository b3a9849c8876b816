// The small value forms users type: durations, capacity maps, names, times, booleans, and the
// rule check of every known cc-* variable. Each parses or is refused; nothing crashes, and every
// string drover writes back is valid JSON.
#include "common/clock.h"
#include "common/duration.h"
#include "common/names.h"
#include "control/values.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  std::string_view s = fuzz::AsText(data, size);
  if (auto d = ParseDuration(s)) {
    if (d->count() < 0) std::abort();
    auto again = ParseDuration(FormatDuration(*d));
    if (!again || *again != *d) std::abort();  // the short form reads back the same
  }
  (void)IsValidName(s);
  (void)ParseBool(s);
  (void)control::ParseSeconds(s);
  if (auto t = ParseRfc3339(s)) fuzz::RequireValidJson("\"" + FormatRfc3339(*t) + "\"");
  if (auto c = control::ParseCapacity(s); c.ok()) {
    (void)control::ResolveCapacity(*c, "aws", "eu-central-1");
    (void)control::ResolveCapacity(*c, "", "");
  } else {
    fuzz::RequireWritable(c.status());
  }
  for (const char* key :
       {"cc-a-force-run", "cc-a-interval", "cc-a-delay", "cc-a-type", "cc-a-desired-capacity",
        "cc-w-a-desired-capacity", "cc-a-start", "cc-w-a-stop", "cc-w-a-start-offset",
        "cc-w-scheduler", "cc-w-s-expression", "cc-a-repository", "cc-a-ref"}) {
    if (auto why = control::CheckValue(key, s))
      fuzz::RequireWritable(Status::Validation({{key, *why}}));
  }
  std::string json;
  AppendJsonString(json, s);
  fuzz::RequireValidJson(json);
  return 0;
}
