// `drover server`: the API gateway and, as later capabilities land, controllers and scheduler.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "api/app.h"
#include "cmd/commands.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/log.h"
#include "common/names.h"
#include "common/random.h"
#include "http/server.h"
#include "runtime/blocking_pool.h"
#include "store/store.h"

namespace drover::cmd {
namespace {

struct ServerFlags {
  std::string config;
  std::string listen = "127.0.0.1:7400";
  std::string db;
  std::string data_dir = "./drover-data";
  bool dev = false;
  std::string log_format = "text";
  std::string log_level = "info";
  bool access_log = true;
  int threads = 0;
  int store_threads = -1;  // -1: 32 on PostgreSQL, 0 (the I/O threads) on SQLite
  std::string store_read_timeout = "5s";
  std::string store_write_timeout = "10s";
  int64_t body_limit = 1 << 20;
  std::string idle_timeout = "60s";
  std::string header_timeout = "10s";
  std::string read_timeout = "30s";
  std::string write_timeout = "30s";
  std::string drain_timeout = "30s";
  double rate_limit = 100;
  double rate_burst = 200;
  std::string sqlite_synchronous = "full";
  bool migrate_only = false;
  std::string addr_file;
  std::string lease_ttl = "10s";
  std::string server_id;
  std::vector<std::string> coord_resources;
  std::string signing_key;
  std::string signature_ttl = "5m";
  std::string local_instances = "keep";
  int64_t keep_firings = 1000;
  int max_connections = 0;
  std::string providers;  // "" = static,exec (and local with --dev)
  std::string instance_retention = "24h";
  std::string audit_retention = "90d";
  std::string alert_interval = "15s";
  std::string history_step = "1m";
  std::string log_retention = "7d";
  int64_t log_max_bytes = int64_t{1} << 30;
};

ServerFlags g_flags;

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "drover";
  std::string h;
  for (char c : std::string_view(buf)) {
    if (c == '.') break;
    h += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? std::tolower(c) : '-';
  }
  return h.empty() ? "drover" : h;
}

bool Seconds(const std::string& flag, const std::string& v, std::chrono::seconds* out) {
  auto d = ParseDuration(v);
  if (!d || d->count() < 1000) {
    std::fprintf(stderr, "error: --%s must be a duration of at least 1s (like 30s, 2m); got '%s'\n",
                 flag.c_str(), v.c_str());
    return false;
  }
  *out = std::chrono::duration_cast<std::chrono::seconds>(*d);
  return true;
}

// Servers hold a descriptor per connection: use the hard limit, not the (often 1024) soft one.
void RaiseOpenFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1 << 20);
  setrlimit(RLIMIT_NOFILE, &rl);
}

int RunServer() {
  ServerFlags& f = g_flags;
  LogLevel level;
  if (!ParseLogLevel(f.log_level, &level)) {
    std::fprintf(stderr, "error: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  // Block the stop signals before any thread starts (threads inherit the mask); the main
  // thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  InitLogging(f.log_format == "json" ? LogFormat::kJson : LogFormat::kText, level);

  http::ServerOptions http_opts;
  http_opts.listen = f.listen;
  http_opts.threads = f.threads;
  if (f.body_limit < 1024) {
    std::fprintf(stderr, "error: --body-limit must be at least 1024 bytes\n");
    return 2;
  }
  http_opts.body_limit = static_cast<size_t>(f.body_limit);
  if (f.max_connections < 0) {
    std::fprintf(stderr, "error: --max-connections must be 0 (automatic) or more\n");
    return 2;
  }
  http_opts.max_connections = f.max_connections;
  RaiseOpenFileLimit();
  if (!Seconds("idle-timeout", f.idle_timeout, &http_opts.idle_timeout) ||
      !Seconds("header-timeout", f.header_timeout, &http_opts.header_timeout) ||
      !Seconds("read-timeout", f.read_timeout, &http_opts.read_timeout) ||
      !Seconds("write-timeout", f.write_timeout, &http_opts.write_timeout) ||
      !Seconds("drain-timeout", f.drain_timeout, &http_opts.drain_timeout)) {
    return 2;
  }

  auto alert_interval = ParseDuration(f.alert_interval);
  if (!alert_interval || alert_interval->count() < 100 || alert_interval->count() > 3600 * 1000) {
    std::fprintf(stderr, "error: --alert-interval must be a duration from 100ms to 1h; got '%s'\n",
                 f.alert_interval.c_str());
    return 2;
  }
  auto history_step = ParseDuration(f.history_step);
  if (!history_step || history_step->count() < 1000 || history_step->count() > 3600 * 1000) {
    std::fprintf(stderr, "error: --history-step must be a duration from 1s to 1h; got '%s'\n",
                 f.history_step.c_str());
    return 2;
  }
  auto log_retention = ParseDuration(f.log_retention);
  if (!log_retention || log_retention->count() < 60 * 1000) {
    std::fprintf(stderr, "error: --log-retention must be a duration of at least 1m; got '%s'\n",
                 f.log_retention.c_str());
    return 2;
  }
  auto lease_ttl = ParseDuration(f.lease_ttl);
  if (!lease_ttl || lease_ttl->count() < 1000) {
    std::fprintf(stderr, "error: --lease-ttl must be a duration of at least 1s; got '%s'\n",
                 f.lease_ttl.c_str());
    return 2;
  }
  if (!f.server_id.empty() && !IsValidName(f.server_id)) {
    std::fprintf(stderr, "error: --server-id: %s\n", std::string(kNameRule).c_str());
    return 2;
  }
  for (const auto& r : f.coord_resources) {
    if (!IsValidName(r)) {
      std::fprintf(stderr, "error: --coord-resources: '%s' %s\n", r.c_str(),
                   std::string(kNameRule).c_str());
      return 2;
    }
  }
  control::ControlCenterOptions cc_opts;
  if (!f.signing_key.empty()) {
    auto key = control::SigningKey::Load(f.signing_key);
    if (!key.ok()) {
      std::fprintf(stderr, "error: --signing-key: %s\n", key.status().message().c_str());
      return 2;
    }
    cc_opts.signing_key = std::make_shared<const control::SigningKey>(std::move(*key));
  }
  auto signature_ttl = ParseDuration(f.signature_ttl);
  if (!signature_ttl || signature_ttl->count() < 1000) {
    std::fprintf(stderr, "error: --signature-ttl must be a duration of at least 1s; got '%s'\n",
                 f.signature_ttl.c_str());
    return 2;
  }
  cc_opts.signature_ttl = std::chrono::duration_cast<std::chrono::seconds>(*signature_ttl);
  auto instance_retention = ParseDuration(f.instance_retention);
  if (!instance_retention) {
    std::fprintf(stderr,
                 "error: --instance-retention must be a duration like 24h or 7d; got '%s'\n",
                 f.instance_retention.c_str());
    return 2;
  }
  auto audit_retention = ParseDuration(f.audit_retention);
  if (!audit_retention || audit_retention->count() < 60 * 1000) {
    std::fprintf(stderr,
                 "error: --audit-retention must be a duration of at least 1m like 90d; got '%s'\n",
                 f.audit_retention.c_str());
    return 2;
  }
  auto providers = f.providers.empty() ? env::ProviderPolicy::Default(f.dev)
                                       : env::ProviderPolicy::Parse(f.providers, f.dev);
  if (!providers.ok()) {
    std::fprintf(stderr, "error: --providers: %s\n", providers.status().message().c_str());
    return 2;
  }
  auto read_timeout = ParseDuration(f.store_read_timeout);
  auto write_timeout = ParseDuration(f.store_write_timeout);
  if (!read_timeout || read_timeout->count() < 100 || !write_timeout ||
      write_timeout->count() < 100) {
    std::fprintf(stderr,
                 "error: --store-read-timeout and --store-write-timeout must be durations of at "
                 "least 100ms like 5s; got '%s' and '%s'\n",
                 f.store_read_timeout.c_str(), f.store_write_timeout.c_str());
    return 2;
  }
  std::string db = f.db.empty() ? "sqlite://" + f.data_dir + "/drover.db" : f.db;
  http::Metrics* metrics = nullptr;  // set once the app exists; commits before that are not counted
  store::StoreOptions store_opts;
  store_opts.url = db;
  store_opts.sqlite_sync_normal = f.sqlite_synchronous == "normal";
  store_opts.read_timeout = *read_timeout;
  store_opts.write_queue_timeout = *write_timeout;
  store_opts.on_commit = [&metrics](const store::CommitStats& s) {
    if (auto* m = __atomic_load_n(&metrics, __ATOMIC_ACQUIRE)) m->ObserveCommit(s.seconds, s.batch);
  };
  auto opened = store::OpenStore(store_opts);
  if (!opened.ok()) {
    LogError("cannot open the store: {}", opened.status().ToString());
    FlushLogs();
    return 1;
  }
  auto store = std::move(*opened);
  if (f.migrate_only) {
    LogInfo("migrations applied; exiting (--migrate-only)");
    store->Close();
    return 0;
  }

  http::PipelineOptions pipe_opts;
  pipe_opts.default_rps = f.dev ? 0 : f.rate_limit;
  pipe_opts.default_burst = f.rate_burst;
  pipe_opts.access_log = f.access_log;
  coord::CoordinatorOptions coord_opts;
  coord_opts.server_id = f.server_id.empty() ? HostName() + "-" + RandomHex(4) : f.server_id;
  coord_opts.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(*lease_ttl);
  coord_opts.resources = f.coord_resources;
  fleet::ControllerOptions fleet_opts;
  fleet_opts.local.data_dir = f.data_dir;
  fleet_opts.local.stop_with_server = f.local_instances == "stop";
  fleet_opts.providers = std::move(*providers);
  schedule::SchedulerOptions sched_opts;
  sched_opts.keep_firings = f.keep_firings;
  sched_opts.instance_retention = *instance_retention;
  sched_opts.audit_retention = *audit_retention;
  alerts::RunnerOptions alert_opts;
  alert_opts.interval = std::chrono::duration_cast<std::chrono::milliseconds>(*alert_interval);
  alert_opts.history_step = std::chrono::duration_cast<std::chrono::milliseconds>(*history_step);
  logs::LogOptions log_opts;
  log_opts.retention_ms = log_retention->count();
  log_opts.max_bytes_per_tenant = f.log_max_bytes;
  api::App app(*store, SystemClock::Get(), pipe_opts, coord_opts, std::move(cc_opts),
               std::move(fleet_opts), std::move(sched_opts), alert_opts, log_opts);
  __atomic_store_n(&metrics, &app.metrics(), __ATOMIC_RELEASE);

  // First start on an empty store: an admin key, printed once (or DROVER_BOOTSTRAP_TOKEN).
  std::optional<std::string> token;
  if (const char* t = std::getenv("DROVER_BOOTSTRAP_TOKEN"); t && *t) token = t;
  auto boot = app.keys().Bootstrap(token);
  if (!boot.ok()) {
    LogError("bootstrap failed: {}", boot.status().ToString());
    store->Close();
    FlushLogs();
    return 1;
  }
  std::string dev_key_file = f.data_dir + "/admin.key";
  if (*boot) {
    LogInfo("created the bootstrap admin key (tenant 'default')");
    if (!token) {
      std::cout << "\nBootstrap admin key (shown once, store it now):\n\n  " << **boot << "\n\n"
                << std::flush;
    }
    if (f.dev) {
      std::filesystem::create_directories(f.data_dir);
      if (Status w = WriteFileAtomic(dev_key_file, **boot + "\n", 0600); !w.ok()) {
        LogWarn("{}", w.message());
      }
    }
  }

  // Where requests that may wait on the store run. PostgreSQL: a pool, so a slow or stalled
  // database never holds an I/O thread. SQLite: the I/O threads (local reads are microseconds
  // and a thread hop per request costs more than they do; bench/RESULTS.md).
  int store_threads =
      f.store_threads >= 0 ? f.store_threads : (store->Backend() == "postgres" ? 32 : 0);
  std::shared_ptr<runtime::BlockingPool> store_pool;
  if (store_threads > 0) {
    store_pool = std::make_shared<runtime::BlockingPool>(
        runtime::BlockingPoolOptions{.threads = store_threads});
    http_opts.store_pool = store_pool.get();
    // Blocking reads a change releases run their store read on the pool too.
    app.waiters().SetExecutor([weak = std::weak_ptr(store_pool)](std::function<void()>& ready) {
      auto pool = weak.lock();  // gone before the app on an early return: run it here
      if (!pool) return false;
      auto r = std::make_shared<std::function<void()>>(std::move(ready));
      if (pool->TrySubmit([r](bool) { (*r)(); })) return true;
      ready = std::move(*r);  // a full pool: the waiters' thread runs it
      return false;
    });
  }
  http::Server server(http_opts, app.pipeline());
  if (Status s = server.Start(); !s.ok()) {
    LogError("{}", s.ToString());
    store->Close();
    FlushLogs();
    return 1;
  }
  std::string addr = server.BoundAddress();
  if (!f.addr_file.empty()) {
    if (Status w = WriteFileAtomic(f.addr_file, addr + "\n", 0644); !w.ok()) {
      LogError("--addr-file: {}", w.message());
    }
  }
  app.coordinator().Start();
  // Local agents join this server: at its loopback address when it listens on every interface.
  std::string self = addr.starts_with("0.0.0.0:") ? "127.0.0.1:" + addr.substr(8) : addr;
  app.controller().SetServerUrl("http://" + self);
  app.controller().Start();
  app.scheduler().Start();
  app.executions().Start();
  app.proxy().Start();
  app.alert_runner().Start();
  app.StartGauges();
  LogInfo("drover {} listening on http://{} (store: {} {}, server id {})", DROVER_VERSION, addr,
          store->Backend(), store::RedactUrl(db), coord_opts.server_id);
  if (f.dev) {
    std::ifstream kf(dev_key_file);
    std::string key;
    std::getline(kf, key);
    std::cout << "drover dev server: http://" << addr << "\n";
    if (!key.empty()) {
      std::cout << "admin key (dev mode keeps it in " << dev_key_file
                << "):\n  export DROVER_ADDR=http://" << addr << " DROVER_TOKEN=" << key << "\n";
    }
    std::cout << std::flush;
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  LogInfo("received {}; draining in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
  app.waiters().Shutdown();  // parked blocking reads answer now instead of holding the drain
  app.queues().waiters().Shutdown();  // and so do long-polling receivers
  server.Stop();
  if (store_pool) store_pool->Stop();
  LogInfo("HTTP server stopped; stopping the fleet controller and releasing leases");
  app.scheduler().Stop();
  app.executions().Stop();
  app.controller().Stop();
  app.coordinator().Stop();             // releases its leases: other servers take over at once
  app.environments().instances.Stop();  // buffered heartbeat times are written
  app.queues().Stop();                  // so are the queues' counters
  LogInfo("closing the store");
  store->Close();
  LogInfo("stopped cleanly");
  FlushLogs();
  return 0;
}

}  // namespace

void AddServerCommand(CLI::App& app, Run& run) {
  auto* s = app.add_subcommand("server", "Run the drover server (API gateway and controllers).");
  s->footer(
      "Every flag can also be set by a DROVER_<FLAG> environment variable (DROVER_LISTEN, "
      "DROVER_DB, DROVER_RATE_LIMIT, ...) or by a key in the YAML file given by --config "
      "(listen: 127.0.0.1:7400). Precedence: flag > environment > config file > default. "
      "DROVER_BOOTSTRAP_TOKEN sets the first admin key instead of a random one.");
  s->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto& f = g_flags;
  s->add_option("--config", f.config, "YAML config file (keys are flag names without --)");
  s->add_option("--listen", f.listen, "address to listen on, host:port (port 0 = any free port)")
      ->capture_default_str();
  s->add_option("--db", f.db,
                "database: sqlite://PATH (default sqlite://DATA_DIR/drover.db) or postgres://...");
  s->add_option("--data-dir", f.data_dir, "data directory")->capture_default_str();
  s->add_flag("--dev", f.dev,
              "development mode: rate limits off, admin key kept in DATA_DIR/admin.key and "
              "printed at start");
  s->add_option("--log-format", f.log_format, "log format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  s->add_option("--log-level", f.log_level, "debug, info, warn or error")->capture_default_str();
  s->add_option("--access-log", f.access_log, "log one line per request (true/false)")
      ->capture_default_str();
  s->add_option("--threads", f.threads, "I/O threads (0 = one per core)")->capture_default_str();
  s->add_option("--store-threads", f.store_threads,
                "threads for requests that may wait on the store (default: 32 on PostgreSQL, "
                "0 = on the I/O threads on SQLite)")
      ->check(CLI::Range(-1, 1024));
  s->add_option("--store-read-timeout", f.store_read_timeout,
                "PostgreSQL: a read the database does not answer within this is 503")
      ->capture_default_str();
  s->add_option("--store-write-timeout", f.store_write_timeout,
                "a write the store has not started within this is 503 (and never applied)")
      ->capture_default_str();
  s->add_option("--body-limit", f.body_limit, "largest request body in bytes (larger: 413)")
      ->capture_default_str();
  s->add_option("--max-connections", f.max_connections,
                "open connections at most; beyond it new ones get 503 and are closed (0 = three "
                "quarters of the open-file limit, at most 16384)")
      ->capture_default_str();
  s->add_option("--idle-timeout", f.idle_timeout, "close a kept-alive connection idle this long")
      ->capture_default_str();
  s->add_option("--header-timeout", f.header_timeout, "time allowed to send request headers")
      ->capture_default_str();
  s->add_option("--read-timeout", f.read_timeout, "time allowed to send a request body")
      ->capture_default_str();
  s->add_option("--write-timeout", f.write_timeout, "time allowed to write a response")
      ->capture_default_str();
  s->add_option("--drain-timeout", f.drain_timeout,
                "on SIGTERM/SIGINT, how long in-flight requests may finish")
      ->capture_default_str();
  s->add_option("--rate-limit", f.rate_limit,
                "requests/s per non-admin key without its own limit (0 = unlimited; off in --dev)")
      ->capture_default_str();
  s->add_option("--rate-burst", f.rate_burst, "token-bucket burst for --rate-limit")
      ->capture_default_str();
  s->add_option("--sqlite-synchronous", f.sqlite_synchronous,
                "full: every commit is fsynced (default); normal: faster, but a power loss can "
                "lose the last commits acknowledged")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  s->add_flag("--migrate-only", f.migrate_only, "apply schema migrations and exit");
  s->add_option("--lease-ttl", f.lease_ttl,
                "lease time to live when several servers share a PostgreSQL database: a server "
                "that dies has its work taken over after this long")
      ->capture_default_str();
  s->add_option("--server-id", f.server_id,
                "this server's name among those sharing a database (default: HOST-RANDOM)");
  s->add_option("--coord-resources", f.coord_resources,
                "extra named resources to spread over the servers, comma-separated (for "
                "diagnostics and tests; environments are spread without it)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  s->add_option("--signing-key", f.signing_key,
                "ed25519 private key (PEM) to sign control-center answers with "
                "(drover key gen-signing makes one)");
  s->add_option("--signature-ttl", f.signature_ttl,
                "how long a signed control-center answer stays valid")
      ->capture_default_str();
  s->add_option("--providers", f.providers,
                "providers this server runs, comma-separated from static, exec, local (default: "
                "static,exec; with --dev also local). local and exec run commands on this host: "
                "admin keys only (local: any key with --dev)");
  s->add_option("--local-instances", f.local_instances,
                "what happens to the local provider's agents when the server stops: keep (they "
                "run on and a restarted server adopts them) or stop (they stop with it, also when "
                "it dies)")
      ->check(CLI::IsMember({"keep", "stop"}))
      ->capture_default_str();
  s->add_option("--instance-retention", f.instance_retention,
                "terminated instances (and their runs) are removed by the cleanup after this long")
      ->capture_default_str();
  s->add_option("--audit-retention", f.audit_retention,
                "change records (GET /v1/audit, the history of GET /v1/events) are removed by "
                "the cleanup after this long")
      ->capture_default_str();
  s->add_option("--alert-interval", f.alert_interval,
                "how often the leader evaluates the alert rules")
      ->capture_default_str();
  s->add_option("--history-step", f.history_step,
                "how often the leader records the metric history the dashboard charts (kept a "
                "day; recorded at most once per alert interval)")
      ->capture_default_str();
  s->add_option("--log-retention", f.log_retention,
                "log lines older than this are removed by the cleanup (every minute)")
      ->capture_default_str();
  s->add_option("--log-max-bytes", f.log_max_bytes,
                "the log store's size cap per tenant: above it the cleanup removes the oldest "
                "lines down to 90 % of it")
      ->check(CLI::Range(int64_t{10000}, int64_t{1} << 50))
      ->capture_default_str();
  s->add_option("--keep-firings", f.keep_firings,
                "firings kept per schedule by the built-in cleanup (every minute)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  s->add_option("--addr-file", f.addr_file,
                "write the bound host:port to this file once listening (for scripts and tests)");
  s->callback([&run] { run = RunServer; });
}

bool LayerServerConfig(CLI::App& server, int argc, char** argv, std::vector<std::string>* out,
                       std::string* error) {
  out->assign(argv, argv + argc);
  if (argc < 2 || std::string_view(argv[1]) != "server") return true;
  // Find --config on the command line, else DROVER_CONFIG.
  std::string config;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) config = argv[i + 1];
    if (a.starts_with("--config=")) config = std::string(a.substr(9));
  }
  if (config.empty()) {
    if (const char* c = std::getenv("DROVER_CONFIG")) config = c;
  }
  std::vector<std::string> layered;
  std::set<std::string> known;
  for (const auto* opt : server.get_options()) {
    for (const auto& n : opt->get_lnames()) known.insert(n);
  }
  known.erase("help");
  known.erase("config");
  if (!config.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(config);
      if (!root.IsMap()) {
        *error = config + ": the config file must be a YAML mapping of flag: value";
        return false;
      }
      for (const auto& kv : root) {
        auto key = kv.first.as<std::string>();
        std::string name = key;
        std::replace(name.begin(), name.end(), '_', '-');
        if (!known.contains(name)) {
          *error = config + ": unknown setting '" + key + "'";
          return false;
        }
        if (!kv.second.IsScalar()) {
          *error = config + ": setting '" + key + "' must be a single value";
          return false;
        }
        layered.push_back("--" + name + "=" + kv.second.as<std::string>());
      }
    } catch (const YAML::Exception& e) {
      *error = config + ": " + e.what();
      return false;
    }
  }
  for (const auto& name : known) {
    std::string env = "DROVER_" + name;
    for (auto& c : env) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
    if (const char* v = std::getenv(env.c_str())) layered.push_back("--" + name + "=" + v);
  }
  out->insert(out->begin() + 2, layered.begin(), layered.end());
  return true;
}

}  // namespace drover::cmd
