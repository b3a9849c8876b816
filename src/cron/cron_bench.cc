// Next-fire computation, ns per call (issue 6 benchmark): `build/src/cron_bench`.
#include <benchmark/benchmark.h>

#include "cron/cron.h"

namespace drover::cron {
namespace {

void BM_Next(benchmark::State& state, const char* expr, const char* zone_name) {
  auto cron = Cron::Parse(expr);
  auto zone = Zone::Locate(zone_name);
  if (!cron.ok() || !zone.ok()) {
    state.SkipWithError("bad expression or zone");
    return;
  }
  TimePoint t = *ParseRfc3339("2026-03-27T10:17:00Z");
  for (auto _ : state) {
    auto next = cron->Next(t, *zone);
    benchmark::DoNotOptimize(next);
    t = *next;  // walk forward: every call a fresh instant (across the DST change)
  }
}

BENCHMARK_CAPTURE(BM_Next, every_15_min_utc, "*/15 * * * *", "UTC");
BENCHMARK_CAPTURE(BM_Next, weekdays_13h_berlin, "0 13 * * 1-5", "Europe/Berlin");
BENCHMARK_CAPTURE(BM_Next, daily_0230_berlin, "30 2 * * *", "Europe/Berlin");
BENCHMARK_CAPTURE(BM_Next, first_and_15th_or_monday_ny, "0 0 1,15 * mon", "America/New_York");
BENCHMARK_CAPTURE(BM_Next, every_20s_seconds_field, "*/20 * * * * *", "UTC");
BENCHMARK_CAPTURE(BM_Next, leap_day_noon, "0 12 29 2 *", "UTC");

void BM_EveryAnchored(benchmark::State& state) {
  auto cron = Cron::Parse("@every 10s");
  TimePoint t = *ParseRfc3339("2026-03-27T10:17:00Z"), anchor = t;
  for (auto _ : state) {
    auto next = cron->Next(t, Zone::Utc(), anchor);
    benchmark::DoNotOptimize(next);
    t = *next;
  }
}
BENCHMARK(BM_EveryAnchored);

void BM_Parse(benchmark::State& state) {
  for (auto _ : state) {
    auto c = Cron::Parse("0,30 9-17/2 * jan-mar,oct-dec mon-fri");
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_Parse);

}  // namespace
}  // namespace drover::cron

BENCHMARK_MAIN();
