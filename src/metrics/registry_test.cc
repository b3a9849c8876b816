#include "metrics/registry.h"

#include <gtest/gtest.h>

namespace drover::metrics {
namespace {

TEST(RegistryTest, RendersEachMetricWithHelpTypeAndEscapedLabels) {
  Registry r;
  auto& c = r.Counter("t_total", "Things.");
  c.Inc();
  c.Inc(2);
  r.Gauge("t_level", "Level.").Set(1.5);
  auto& fam = r.GaugeFamily("t_by", "By state.", {"state"});
  fam.With({"run\"ning\\\n"}).Set(2);
  fam.With({"failed"}).Add(1);
  auto& h = r.HistogramFamily("t_seconds", "Latency.", {"route"}, {0.1, 1});
  h.With({"/a"}).Observe(0.05);
  h.With({"/a"}).Observe(5);
  r.AddCollector(
      [](std::string& out) { out += "# HELP t_extra X.\n# TYPE t_extra gauge\nt_extra 7\n"; });
  std::string out = r.Render();
  EXPECT_NE(out.find("# HELP t_total Things.\n# TYPE t_total counter\nt_total 3\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("t_level 1.5\n"), std::string::npos);
  EXPECT_NE(out.find("t_by{state=\"failed\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_by{state=\"run\\\"ning\\\\\\n\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_seconds_bucket{route=\"/a\",le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("t_seconds_count{route=\"/a\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("t_extra 7\n"), std::string::npos);
}

TEST(RegistryTest, AFamilyKeepsOneSeriesPerLabelValues) {
  Registry r;
  auto& fam = r.CounterFamily("t_total", "T.", {"a", "b"});
  auto& x = fam.With({"1", "2"});
  x.Inc();
  EXPECT_EQ(&fam.With({"1", "2"}), &x);
  EXPECT_NE(&fam.With({"2", "1"}), &x);
  fam.Clear();
  EXPECT_EQ(fam.With({"1", "2"}).value(), 0u);
}

TEST(RegistryTest, TheProcessCollectorReportsThisProcess) {
  Registry r;
  AddProcessCollector(r);
  std::string out = r.Render();
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_max_fds ", "process_start_time_seconds ", "process_threads "}) {
    EXPECT_NE(out.find(std::string("\n") + name), std::string::npos) << name << "\n" << out;
  }
  auto at = out.find("\nprocess_resident_memory_bytes ");
  EXPECT_GT(std::stod(out.substr(at + 31)), 1e6) << "a process has more than a megabyte resident";
}

}  // namespace
}  // namespace drover::metrics
