// Cron expressions: parsed or refused with the field and reason; a parsed one yields strictly
// increasing fire times in UTC and in a zone with DST, without looping forever.
#include "cron/cron.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  auto cron = schedule::Cron::Parse(fuzz::AsText(data, size));
  if (!cron.ok()) {
    fuzz::RequireWritable(cron.status());
    return 0;
  }
  static const auto berlin = *cron::Zone::Locate("Europe/Berlin");
  for (const auto& z : {berlin, cron::Zone::Utc()}) {
    TimePoint t = FromUnixMillis(1'790'000'000'000);  // 2026-09
    for (int i = 0; i < 5; ++i) {
      auto next = cron->Next(t, z, FromUnixMillis(1'780'000'000'000));
      if (!next) break;
      if (*next <= t) std::abort();
      t = *next;
    }
  }
  return 0;
}
