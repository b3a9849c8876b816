#include "metrics/registry.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <variant>

namespace drover::metrics {

void Gauge::Add(double d) {
  double cur = v_.load(std::memory_order_relaxed);
  while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size()]) {
  for (size_t i = 0; i < bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (v <= bounds_[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micro_.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(std::string& out, std::string_view name, std::string_view labels) const {
  uint64_t cumulative = 0;
  std::string_view sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out +=
        fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cumulative);
  }
  uint64_t count = count_.load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count);
  std::string braces = labels.empty() ? "" : fmt::format("{{{}}}", labels);
  out += fmt::format("{}_sum{} {}\n", name, braces,
                     static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6);
  out += fmt::format("{}_count{} {}\n", name, braces, count);
}

const std::vector<double>& LatencyBounds() {
  static const std::vector<double> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return kBounds;
}

std::string FormatLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    for (char c : values[i]) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

struct Registry::Entry {
  std::string name, help, type;
  std::variant<std::unique_ptr<metrics::Counter>, std::unique_ptr<metrics::Gauge>,
               std::unique_ptr<metrics::Histogram>, std::unique_ptr<Family<metrics::Counter>>,
               std::unique_ptr<Family<metrics::Gauge>>, std::unique_ptr<Family<metrics::Histogram>>>
      metric;
};

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Add(std::unique_ptr<Entry> e) {
  std::lock_guard lock(mu_);
  for (const auto& x : entries_) {
    if (x->name == e->name) {
      std::fprintf(stderr, "metric %s registered twice\n", e->name.c_str());
      std::abort();
    }
  }
  entries_.push_back(std::move(e));
}

metrics::Counter& Registry::Counter(std::string name, std::string help) {
  auto m = std::make_unique<metrics::Counter>();
  auto& ref = *m;
  Add(std::make_unique<Entry>(Entry{std::move(name), std::move(help), "counter", std::move(m)}));
  return ref;
}

metrics::Gauge& Registry::Gauge(std::string name, std::string help) {
  auto m = std::make_unique<metrics::Gauge>();
  auto& ref = *m;
  Add(std::make_unique<Entry>(Entry{std::move(name), std::move(help), "gauge", std::move(m)}));
  return ref;
}

metrics::Histogram& Registry::Histogram(std::string name, std::string help,
                                        std::vector<double> bounds) {
  auto m = std::make_unique<metrics::Histogram>(std::move(bounds));
  auto& ref = *m;
  Add(std::make_unique<Entry>(Entry{std::move(name), std::move(help), "histogram", std::move(m)}));
  return ref;
}

Family<metrics::Counter>& Registry::CounterFamily(std::string name, std::string help,
                                                  std::vector<std::string> labels) {
  auto m = std::make_unique<Family<metrics::Counter>>(
      std::move(labels), [] { return std::make_unique<metrics::Counter>(); });
  auto& ref = *m;
  Add(std::make_unique<Entry>(Entry{std::move(name), std::move(help), "counter", std::move(m)}));
  return ref;
}

Family<metrics::Gauge>& Registry::GaugeFamily(std::string name, std::string help,
                                              std::vector<std::string> labels) {
  auto m = std::make_unique<Family<metrics::Gauge>>(
      std::move(labels), [] { return std::make_unique<metrics::Gauge>(); });
  auto& ref = *m;
  Add(std::make_unique<Entry>(Entry{std::move(name), std::move(help), "gauge", std::move(m)}));
  return ref;
}

Family<metrics::Histogram>& Registry::HistogramFamily(std::string name, std::string help,
                                                      std::vector<std::string> labels,
                                                      std::vector<double> bounds) {
  auto m = std::make_unique<Family<metrics::Histogram>>(
      std::move(labels),
      [bounds = std::move(bounds)] { return std::make_unique<metrics::Histogram>(bounds); });
  auto& ref = *m;
  Add(std::make_unique<Entry>(Entry{std::move(name), std::move(help), "histogram", std::move(m)}));
  return ref;
}

void Registry::AddCollector(std::function<void(std::string&)> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

namespace {

std::string Number(double v) { return fmt::format("{}", v); }

struct RenderOne {
  std::string& out;
  const std::string& name;
  void operator()(const std::unique_ptr<Counter>& c) const {
    out += fmt::format("{} {}\n", name, c->value());
  }
  void operator()(const std::unique_ptr<Gauge>& g) const {
    out += fmt::format("{} {}\n", name, Number(g->value()));
  }
  void operator()(const std::unique_ptr<Histogram>& h) const { h->Render(out, name, ""); }
  void operator()(const std::unique_ptr<Family<Counter>>& f) const {
    f->ForEach([&](const std::string& labels, const Counter& c) {
      out += fmt::format("{}{{{}}} {}\n", name, labels, c.value());
    });
  }
  void operator()(const std::unique_ptr<Family<Gauge>>& f) const {
    f->ForEach([&](const std::string& labels, const Gauge& g) {
      out += fmt::format("{}{{{}}} {}\n", name, labels, Number(g.value()));
    });
  }
  void operator()(const std::unique_ptr<Family<Histogram>>& f) const {
    f->ForEach([&](const std::string& labels, const Histogram& h) { h.Render(out, name, labels); });
  }
};

}  // namespace

std::string Registry::Render() const {
  std::string out;
  out.reserve(16384);
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard lock(mu_);
    for (const auto& e : entries_) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", e->name, e->help, e->name, e->type);
      std::visit(RenderOne{out, e->name}, e->metric);
    }
    collectors = collectors_;
  }
  for (const auto& c : collectors) c(out);
  return out;
}

namespace {

// The fields of /proc/self/stat after the command name (which may hold spaces).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> f;
  auto close = line.rfind(')');
  if (close == std::string::npos) return f;
  std::string rest = line.substr(close + 2);
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t sp = rest.find(' ', pos);
    if (sp == std::string::npos) sp = rest.size();
    f.push_back(rest.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return f;  // f[0] is field 3 (state)
}

double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double v = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

int OpenFds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    --n;  // the directory's own descriptor
  }
  return n;
}

}  // namespace

void AddProcessCollector(Registry& r) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double boot = BootTime();
  r.AddCollector([=](std::string& out) {
    auto f = StatFields();
    if (f.size() < 22) return;
    auto num = [&](size_t field) { return std::strtod(f[field - 3].c_str(), nullptr); };
    rlimit rl{};
    double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<double>(rl.rlim_cur) : 0;
    out += fmt::format(
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes {}\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds {}\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds {}\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n"
        "# HELP process_threads Number of OS threads in the process.\n"
        "# TYPE process_threads gauge\nprocess_threads {}\n",
        Number((num(14) + num(15)) / ticks), Number(num(24) * page), Number(num(23)), OpenFds(),
        Number(max_fds), Number(boot + num(22) / ticks), Number(num(20)));
  });
}

}  // namespace drover::metrics
