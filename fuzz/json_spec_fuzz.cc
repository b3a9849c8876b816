// Request bodies as JSON: the strict object parse with its text check, then the decoders of every
// spec kind. Each either decodes or says what is wrong, in text that writes as valid JSON.
#include "env/spec.h"
#include "fuzz/fuzz_util.h"
#include "schedule/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  auto obj = ParseJsonObject(fuzz::AsText(data, size));
  if (!obj.ok()) {
    fuzz::RequireWritable(obj.status());
    return 0;
  }
  boost::json::value doc(std::move(*obj));
  auto env = env::ParseEnvironmentDocument(doc, "fuzz");
  if (env.ok()) {
    fuzz::RequireValidJson(env::SpecToJson(*env));
    // What is stored reads back as the same spec.
    auto again = env::ParseEnvironmentDocument(boost::json::parse(env::SpecToJson(*env)), "fuzz");
    if (!again.ok() || env::SpecToJson(*again) != env::SpecToJson(*env)) std::abort();
  } else {
    fuzz::RequireWritable(env.status());
  }
  auto sched = schedule::ParseScheduleDocument(doc, "fuzz");
  if (sched.ok()) {
    fuzz::RequireValidJson(schedule::SpecToJson(*sched));
  } else {
    fuzz::RequireWritable(sched.status());
  }
  return 0;
}
