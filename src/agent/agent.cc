#include "agent/agent.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "agent/cc_source.h"
#include "agent/git.h"
#include "agent/log_shipper.h"
#include "agent/state.h"
#include "agent/task_worker.h"
#include "agent/watcher.h"
#include "client/client.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/json_command.h"
#include "common/log.h"
#include "common/process.h"
#include "common/random.h"
#include "common/text.h"
#include "common/trace.h"
#include "common/yaml.h"
#include "control/values.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Vars = std::map<std::string, std::string>;

constexpr std::size_t kLogTail = 64 * 1024;

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

boost::json::object Facts() {
  struct utsname u {};
  ::uname(&u);
  return {{"os", u.sysname},
          {"kernel", u.release},
          {"arch", u.machine},
          {"cpus", static_cast<int64_t>(std::thread::hardware_concurrency())}};
}

// Valid UTF-8 with no NUL: what the server stores as text. Invalid bytes become '?'.
std::string CleanText(std::string_view in) { return ToValidText(in); }

std::string TailOf(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  auto size = static_cast<std::size_t>(in.tellg());
  std::size_t from = size > max ? size - max : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (from > 0) {
    // Start at a line (and so a character) boundary.
    auto nl = out.find('\n');
    if (nl != std::string::npos && nl < out.size() / 2) out.erase(0, nl + 1);
  }
  return CleanText(out);
}

Result<Vars> LoadDefaults(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return Status::InvalidArgument("cannot read the defaults file " + path);
  auto doc = ParseYaml(*text);
  if (!doc.ok()) return Status::InvalidArgument(path + ": " + doc.status().message());
  if (!doc->is_object()) {
    return Status::InvalidArgument(path + ": must be a YAML mapping of cc-a-* keys to values");
  }
  Vars out;
  std::vector<std::string> errors;
  for (const auto& [k, v] : doc->as_object()) {
    std::string key(k);
    std::string value = v.is_string() ? std::string(v.as_string()) : boost::json::serialize(v);
    if (v.is_null()) value = "";
    if (!key.starts_with("cc-a-")) {
      errors.push_back(fmt::format("'{}': keys must start with cc-a-", key));
    } else if (auto why = control::CheckValue(key, value)) {
      errors.push_back(fmt::format("{}: {}", key, *why));
    } else if (!control::IsUnsetValue(value)) {
      out[key] = value;
    }
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += "\n  " + e;
    return Status::InvalidArgument(path + ":" + all);
  }
  return out;
}

// The run this agent is doing, for heartbeats.
struct CurrentRun {
  std::string run_id, started_at, step;
};

class Agent {
 public:
  explicit Agent(AgentOptions o) : o_(std::move(o)) {}

  int Main();

 private:
  // --- identity and reporting ---------------------------------------------------------------
  std::string StatePath() const { return o_.work_dir + "/state.json"; }
  void Save() {
    std::lock_guard lock(state_mu_);
    if (Status s = SaveState(StatePath(), state_); !s.ok()) LogWarn("{}", s.message());
  }
  Status Join();
  std::string AgentKey() {
    std::lock_guard lock(state_mu_);
    return state_.agent_key.empty() ? o_.token : state_.agent_key;
  }
  void HeartbeatLoop();
  Status SendHeartbeat();
  // The agent stops for good: its instance is terminated (not left to turn unhealthy).
  void Leave();
  // The effective cc-a-interval of the last set read (default 600 s).
  std::chrono::milliseconds Interval();
  void DeliverReports();
  void QueueReport(const boost::json::object& report);
  int64_t SkippedRuns() const {
    struct stat st {};
    return ::stat((o_.work_dir + "/skipped-runs").c_str(), &st) == 0 ? st.st_size : 0;
  }

  // --- runs ---------------------------------------------------------------------------------
  // One run; returns its status ("ok", "failed", "skipped", or "overlap").
  std::string RunOnce();
  Vars Effective(const Vars& cc) const;
  void Watch(const Vars& vars);  // the agent-side watcher, when configured
  int64_t StepExit(const std::string& step, std::vector<std::string> argv, const std::string& cwd,
                   const std::vector<std::string>& env, const std::string& log,
                   Clock::time_point deadline, std::string* why);
  void RotateLogs();
  bool SleepFor(std::chrono::milliseconds d);  // false when stopping
  // Waits on cv_ (lock held) until `pred` or `d` passed, through the clock; returns pred().
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds d,
               const std::function<bool()>& pred);
  void WaitForNextRun(std::chrono::milliseconds interval);

  // --- signals ------------------------------------------------------------------------------
  void SignalLoop();

  AgentOptions o_;
  Vars defaults_;
  std::unique_ptr<CcSource> source_;
  std::shared_ptr<const control::VerifyKey> verify_;

  std::mutex state_mu_;
  AgentState state_;          // GUARDED_BY(state_mu_)
  std::string checkout_dir_;  // GUARDED_BY(state_mu_): the last run's checkout (task commands)

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;              // GUARDED_BY(mu_)
  bool run_active_ = false;            // GUARDED_BY(mu_)
  std::optional<CurrentRun> current_;  // GUARDED_BY(mu_)
  std::atomic<bool> kill_run_{false};
  std::chrono::milliseconds heartbeat_every_{5000};  // GUARDED_BY(mu_)
  std::mutex deliver_mu_;                            // one delivery of the spool at a time
  std::optional<int64_t> seen_index_;                // index of the last set read (main thread)
};

Status Agent::Join() {
  boost::json::object body{{"hostname", HostName()}, {"facts", Facts()}};
  if (!o_.instance_id.empty()) body["instance_id"] = o_.instance_id;
  client::Client joiner({o_.server, o_.join_token, std::chrono::seconds(15)});
  auto r = joiner.Do("POST", "/v1/environments/" + o_.environment + "/join",
                     boost::json::serialize(body));
  if (!r.ok()) return r.status();
  if (!r->ok()) return client::Client::ToStatus(*r);
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (ec || !v.is_object()) return Status::Unavailable("join: the server's answer is not JSON");
  const auto& obj = v.as_object();
  const auto* id_v = obj.if_contains("instance_id");
  const auto* key_v = obj.if_contains("agent_key");
  if (!id_v || !id_v->is_string() || !key_v || !key_v->is_string()) {
    return Status::Unavailable("join: the server's answer has no instance_id and agent_key");
  }
  std::string id(id_v->as_string());
  {
    std::lock_guard lock(state_mu_);
    state_.server = o_.server;
    state_.environment = o_.environment;
    state_.instance_id = id;
    state_.agent_key = std::string(key_v->as_string());
  }
  if (auto* hb = obj.if_contains("heartbeat_interval"); hb && hb->is_string()) {
    if (auto d = ParseDuration(hb->as_string()); d && o_.heartbeat_interval.count() == 0) {
      std::lock_guard lock(mu_);
      heartbeat_every_ = *d;
    }
  }
  Save();
  source_->SetToken(AgentKey());
  LogInfo("joined environment {} as instance {}", o_.environment, id);
  return Status::Ok();
}

Status Agent::SendHeartbeat() {
  std::string id;
  {
    std::lock_guard lock(state_mu_);
    id = state_.instance_id;
  }
  if (id.empty()) {
    if (o_.join_token.empty()) return Status::Ok();  // nothing to heartbeat as
    DROVER_RETURN_IF_ERROR(Join());
    std::lock_guard lock(state_mu_);
    id = state_.instance_id;
  }
  boost::json::object body{{"agent_version", DROVER_VERSION},
                           {"hostname", HostName()},
                           {"facts", Facts()},
                           {"skipped_runs", SkippedRuns()},
                           {"mode", o_.once ? "once" : "daemon"}};
  // Run by cron, the agent is silent between runs: the server judges it by its interval.
  if (o_.once) body["interval"] = FormatDuration(Interval());
  {
    std::lock_guard lock(mu_);
    if (current_) {
      body["current_run"] = {{"run_id", current_->run_id},
                             {"started_at", current_->started_at},
                             {"step", current_->step}};
    } else {
      body["current_run"] = nullptr;
    }
  }
  client::Client authed({o_.server, AgentKey(), std::chrono::seconds(15)});
  auto r = authed.Do("POST", "/v1/instances/" + id + "/heartbeat", boost::json::serialize(body));
  if (!r.ok()) return r.status();
  if ((r->status == 401 || r->status == 404) && !o_.join_token.empty()) {
    // The key or instance is gone (environment re-created, key revoked): join again.
    LogWarn("heartbeat refused ({}); joining again", r->status);
    {
      std::lock_guard lock(state_mu_);
      state_.instance_id.clear();
      state_.agent_key.clear();
    }
    return Join();
  }
  if (!r->ok()) return client::Client::ToStatus(*r);
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (!ec && v.is_object() && o_.heartbeat_interval.count() == 0) {
    if (auto* hb = v.as_object().if_contains("heartbeat_interval"); hb && hb->is_string()) {
      if (auto d = ParseDuration(hb->as_string())) {
        std::lock_guard lock(mu_);
        heartbeat_every_ = *d;
      }
    }
  }
  return Status::Ok();
}

std::chrono::milliseconds Agent::Interval() {
  Vars vars;
  {
    std::lock_guard lock(state_mu_);
    vars = Effective(state_.last_set);
  }
  if (auto it = vars.find("cc-a-interval"); it != vars.end()) {
    if (auto ms = control::ParseSeconds(it->second); ms && ms->count() >= 1000) return *ms;
  }
  return std::chrono::milliseconds(600000);
}

void Agent::Leave() {
  std::string id;
  {
    std::lock_guard lock(state_mu_);
    id = state_.instance_id;
  }
  if (id.empty() || o_.server.empty()) return;
  client::Client authed({o_.server, AgentKey(), std::chrono::seconds(5)});
  auto r = authed.Do("POST", "/v1/instances/" + id + "/leave",
                     R"j({"reason":"its agent stopped (SIGTERM)"})j");
  if (!r.ok() || !r->ok()) {
    LogWarn("could not deregister instance {}: {} (it turns unhealthy instead)", id,
            r.ok() ? client::Client::ToStatus(*r).message() : r.status().message());
    return;
  }
  {
    // The key is revoked: a later start joins afresh instead of failing a heartbeat first.
    std::lock_guard lock(state_mu_);
    state_.instance_id.clear();
    state_.agent_key.clear();
  }
  Save();
  LogInfo("deregistered: instance {} is terminated", id);
}

void Agent::QueueReport(const boost::json::object& report) {
  std::string dir = o_.work_dir + "/reports";
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Names sort in run order: delivery keeps it.
  auto name = fmt::format("{}/{:013d}-{}.json", dir, ToUnixMillis(SystemClock::Get().Now()),
                          std::string(report.at("run_id").as_string()));
  if (Status s = WriteFileAtomic(name, boost::json::serialize(report), 0600); !s.ok()) {
    LogError("cannot queue the run report: {}", s.message());
  }
}

void Agent::DeliverReports() {
  std::lock_guard deliver(deliver_mu_);
  std::string id;
  {
    std::lock_guard lock(state_mu_);
    id = state_.instance_id;
  }
  if (id.empty() || o_.server.empty()) return;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.work_dir + "/reports", ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  client::Client authed({o_.server, AgentKey(), std::chrono::seconds(15)});
  for (const auto& f : files) {
    auto body = ReadFile(f.string());
    if (!body) continue;  // delivered and removed by the other thread meanwhile
    auto r = authed.Do("POST", "/v1/instances/" + id + "/runs", *body);
    if (!r.ok() || r->status >= 500 || r->status == 429 || r->status == 401) {
      return;  // later, in order
    }
    if (!r->ok()) {
      LogError("the server refused run report {}: {}", f.filename().string(),
               client::Client::ToStatus(*r).message());
    }
    fs::remove(f, ec);
  }
}

void Agent::HeartbeatLoop() {
  auto backoff = std::chrono::milliseconds(500);
  for (;;) {
    Status s = SendHeartbeat();
    if (s.ok()) {
      DeliverReports();
      backoff = std::chrono::milliseconds(500);
    } else {
      LogWarn("heartbeat failed: {}", s.message());
    }
    std::unique_lock lock(mu_);
    auto wait = s.ok() ? heartbeat_every_ : std::min(backoff, heartbeat_every_);
    if (!s.ok()) backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
    if (WaitFor(lock, wait, [&] { return stopping_ && !run_active_; })) return;
  }
}

Vars Agent::Effective(const Vars& cc) const {
  Vars out = defaults_;
  for (const auto& [k, v] : cc) {
    if (!o_.allow.empty() && std::find(o_.allow.begin(), o_.allow.end(), k) == o_.allow.end()) {
      continue;  // pinned: the defaults decide
    }
    if (control::IsUnsetValue(v)) continue;  // unset: the default (if any) stays
    out[k] = v;
  }
  return out;
}

bool Agent::WaitFor(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds d,
                    const std::function<bool()>& pred) {
  const drover::Clock& clock = SystemClock::Get();
  return clock.WaitUntil(lock, cv_, clock.Steady() + d, pred);
}

bool Agent::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !WaitFor(lock, d, [&] { return stopping_; });
}

int64_t Agent::StepExit(const std::string& step, std::vector<std::string> argv,
                        const std::string& cwd, const std::vector<std::string>& env,
                        const std::string& log, Clock::time_point deadline, std::string* why) {
  {
    std::lock_guard lock(mu_);
    if (current_) current_->step = step;
  }
  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  std::ofstream(log, std::ios::app) << "== " << step << ": " << shown << "\n";
  ProcessSpec spec{std::move(argv), cwd, env, log, deadline, o_.kill_grace, &kill_run_, "", ""};
  auto r = RunProcess(spec);
  std::ofstream(log, std::ios::app) << "== " << step << " exited " << r.exit_code << "\n";
  if (!r.error.empty()) {
    *why = step + ": " + r.error;
  } else if (r.timed_out) {
    *why = fmt::format("{} timed out (run timeout); its process group was killed", step);
  } else if (r.stopped) {
    *why = fmt::format("{} was killed: the agent is stopping", step);
  } else if (r.exit_code != 0 && why->empty()) {
    *why = fmt::format("{} exited {}", step, r.exit_code);
  }
  return r.exit_code;
}

void Agent::RotateLogs() {
  std::vector<fs::path> logs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.work_dir + "/logs", ec)) logs.push_back(e.path());
  std::sort(logs.begin(), logs.end());
  for (size_t i = 0; i + static_cast<size_t>(o_.keep_logs) < logs.size(); ++i) {
    fs::remove(logs[i], ec);
  }
}

std::string Agent::RunOnce() {
  // Overlap: a run due while one is going is skipped and counted, never killed.
  std::string lock_path = o_.work_dir + "/run.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd >= 0) ::close(lock_fd);
    int f = ::open((o_.work_dir + "/skipped-runs").c_str(),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (f >= 0) {
      (void)!::write(f, "1", 1);
      ::close(f);
    }
    LogInfo("a run is already going in {}: this one is skipped", o_.work_dir);
    return "overlap";
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock_fd};

  Vars last_known;
  {
    std::lock_guard lock(state_mu_);
    last_known = state_.last_set;
  }
  // Spread the fleet: a random delay up to cc-a-delay (of the set known before this read).
  Vars before = Effective(last_known);
  if (auto d = before.find("cc-a-delay"); d != before.end()) {
    if (auto ms = control::ParseSeconds(d->second); ms && ms->count() > 0) {
      std::mt19937_64 rng(std::random_device{}());
      auto pick = std::chrono::milliseconds(rng() % static_cast<uint64_t>(ms->count() + 1));
      if (!SleepFor(pick)) return "stopped";
    }
  }

  auto started = SystemClock::Get().Now();
  std::string run_id = "r-" + RandomHex(8);
  std::error_code ec;
  fs::create_directories(o_.work_dir + "/logs", ec);
  // Each run is a trace of its own: its commands get TRACEPARENT, and its log (named with the
  // trace id) is shipped with it, so `drover logs --trace ID` finds a run's lines.
  std::string traceparent = NewTraceparent();
  std::string trace_id(TraceIdOf(traceparent));
  std::string log = fmt::format("{}/logs/{:013d}-{}-{}.log", o_.work_dir, ToUnixMillis(started),
                                run_id, trace_id);
  std::ofstream(log, std::ios::app) << "== run " << run_id << " trace " << trace_id << "\n";
  {
    std::lock_guard lock(mu_);
    current_ = CurrentRun{run_id, FormatRfc3339(started), "fetch"};
    run_active_ = true;
  }
  boost::json::object report{{"run_id", run_id}, {"index", 0}, {"commit", ""}};
  std::string status = "ok", reason;
  std::optional<int64_t> pre, main, post;

  auto finish = [&] {
    auto finished = SystemClock::Get().Now();
    report["status"] = status;
    report["reason"] = CleanText(reason.substr(0, 4000));
    auto opt = [](const std::optional<int64_t>& v) {
      return v ? boost::json::value(*v) : boost::json::value(nullptr);
    };
    report["pre_exit"] = opt(pre);
    report["main_exit"] = opt(main);
    report["post_exit"] = opt(post);
    report["started_at"] = FormatRfc3339(started);
    report["finished_at"] = FormatRfc3339(finished);
    std::ofstream(log, std::ios::app)
        << "== run " << status << (reason.empty() ? "" : ": ") << reason << "\n";
    report["log_tail"] = TailOf(log, kLogTail);
    LogInfo("run {} {}{}{}", run_id, status, reason.empty() ? "" : ": ", reason);
    QueueReport(report);
    RotateLogs();
    {
      std::lock_guard lock(mu_);
      current_.reset();
      run_active_ = false;
    }
    cv_.notify_all();
    return status;
  };

  // 1. The set.
  Vars cc = last_known;
  if (source_ && !source_->empty()) {
    SignedMark mark;
    {
      std::lock_guard lock(state_mu_);
      mark = {state_.signed_index, state_.signed_digest};
    }
    auto set = source_->Fetch(mark);
    if (!set.ok() && set.status().code() == Status::Code::kPermissionDenied) {
      status = "failed";
      reason = set.status().message();  // a refused set runs nothing
      return finish();
    }
    if (set.ok()) {
      cc = set->vars;
      seen_index_ = set->index;
      report["index"] = set->index;
      std::lock_guard lock(state_mu_);
      state_.last_set = cc;
      state_.last_set_index = set->index;
      state_.signed_index = mark.index;
      state_.signed_digest = mark.digest;
    } else {
      LogWarn("{}; using the last set read and the defaults", set.status().message());
    }
    Save();
  }
  Vars vars = Effective(cc);
  Watch(vars);
  auto get = [&](const char* k) {
    auto it = vars.find(k);
    return it == vars.end() ? std::string() : it->second;
  };
  std::string repo = get("cc-a-repository");
  if (repo.empty()) {
    status = "failed";
    reason = "no cc-a-repository: nothing to fetch";
    return finish();
  }
  auto timeout = control::ParseSeconds(get("cc-a-timeout")).value_or(o_.run_timeout);
  auto deadline = Clock::now() + timeout;

  // 2. The commit.
  GitOptions git{o_.work_dir + "/repos", log, deadline};
  auto checkout = FetchAndCheckout(repo, get("cc-a-ref"), git);
  if (!checkout.ok()) {
    status = "failed";
    reason = checkout.status().message();
    return finish();
  }
  report["commit"] = checkout->commit;
  {
    std::lock_guard lock(state_mu_);
    checkout_dir_ = checkout->dir;
  }
  bool force = control::ParseBool(get("cc-a-force-run")).value_or(false);
  {
    std::lock_guard lock(state_mu_);
    if (!force && state_.last_commit == checkout->commit && state_.last_repository == repo) {
      status = "skipped";
      reason = "commit unchanged since the last successful run";
      // Unlocked below by finish(); nothing ran.
    }
  }
  if (status == "skipped") return finish();

  // 3. pre, main, post.
  auto env = CurrentEnvironment();
  for (const auto& [k, v] : vars) env.push_back(control::EnvName(k) + "=" + v);
  env.push_back("DROVER_RUN_ID=" + run_id);
  env.push_back("TRACEPARENT=" + traceparent);
  env.push_back("DROVER_COMMIT=" + checkout->commit);
  {
    std::lock_guard lock(state_mu_);
    if (!state_.instance_id.empty()) env.push_back("DROVER_INSTANCE_ID=" + state_.instance_id);
  }
  const std::string& dir = checkout->dir;
  std::string type = get("cc-a-type").empty() ? "shell" : get("cc-a-type");
  std::string pre_cmd = get("cc-a-pre-run"), main_cmd = get("cc-a-main-run"),
              post_cmd = get("cc-a-post-run");
  bool pre_ok = true;
  if (!pre_cmd.empty()) {
    pre = StepExit("pre", {"sh", "-c", pre_cmd}, dir, env, log, deadline, &reason);
    pre_ok = *pre == 0;
  }
  if (pre_ok && !main_cmd.empty()) {
    std::vector<std::string> argv = type == "ansible"
                                        ? std::vector<std::string>{"ansible-playbook",
                                                                   "-i",
                                                                   "localhost,",
                                                                   "-c",
                                                                   "local",
                                                                   main_cmd}
                                        : std::vector<std::string>{"sh", "-c", main_cmd};
    main = StepExit("main", std::move(argv), dir, env, log, deadline, &reason);
  } else if (!pre_ok) {
    std::ofstream(log, std::ios::app) << "== main skipped: pre failed\n";
  }
  if (!post_cmd.empty()) {
    // post runs even when pre or main failed; only a stop or the timeout prevents it.
    post = StepExit("post", {"sh", "-c", post_cmd}, dir, env, log, deadline, &reason);
  }
  bool ok = (!pre || *pre == 0) && (!main || *main == 0) && (!post || *post == 0) && pre_ok;
  status = ok ? "ok" : "failed";
  if (ok) {
    std::lock_guard lock(state_mu_);
    state_.last_commit = checkout->commit;
    state_.last_repository = repo;
  }
  Save();
  return finish();
}

void Agent::Watch(const Vars& vars) {
  if (!o_.watcher) return;
  std::string target = o_.watcher_command + "\n" + o_.cloud + "\n" + o_.region;
  std::optional<int64_t> last;
  std::string instance_id, server_url;
  {
    std::lock_guard lock(state_mu_);
    if (state_.watcher_target == target) last = state_.watcher_applied;
    instance_id = state_.instance_id;
  }
  auto d = DecideCapacity(vars, o_.cloud, o_.region, SystemClock::Get().Now(), last);
  if (!d.apply) {
    LogInfo("watcher: nothing to apply: {}", d.why);
    return;
  }
  boost::json::value capacity = nullptr;
  if (auto it = vars.find("cc-a-desired-capacity"); it != vars.end()) {
    boost::system::error_code ec;
    capacity = boost::json::parse(it->second, ec);
    if (ec) capacity = it->second;
  }
  boost::json::object in{{"environment", o_.environment}, {"desired", *d.apply},
                         {"capacity", capacity},          {"cloud", o_.cloud},
                         {"region", o_.region},           {"instance_id", instance_id},
                         {"join_token", o_.join_token},   {"server_url", o_.server}};
  // Run where the agent was started, so a relative script path means what it says.
  std::error_code ec;
  JsonCommand c{
      "set_capacity",    o_.watcher_command, o_.work_dir + "/watcher", fs::current_path(ec), {},
      o_.watcher_timeout};
  if (auto r = RunJsonCommand(c, boost::json::serialize(in)); !r.ok()) {
    LogWarn("watcher: setting capacity {} failed (retried at the next run): {}", *d.apply,
            r.status().message());
    return;
  }
  LogInfo("watcher: set capacity {} ({})", *d.apply, d.why);
  {
    std::lock_guard lock(state_mu_);
    state_.watcher_applied = *d.apply;
    state_.watcher_target = target;
  }
  Save();
}

void Agent::WaitForNextRun(std::chrono::milliseconds interval) {
  auto until = Clock::now() + interval;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    if (!source_ || source_->empty() || !seen_index_ || *seen_index_ == 0) {
      SleepFor(left);
      return;
    }
    // A blocking query: returns when the set changes (run now) or the wait ends.
    SignedMark mark;
    {
      std::lock_guard lock(state_mu_);
      mark = {state_.signed_index, state_.signed_digest};
    }
    auto set =
        source_->Fetch(mark, *seen_index_, std::min(left, std::chrono::milliseconds(600000)));
    if (set.ok()) {
      if (set->index != *seen_index_) {
        LogInfo("the control-center set changed (index {} -> {}): running now", *seen_index_,
                set->index);
        return;
      }
      continue;
    }
    // Unreachable or refused: no busy loop; the run at the interval will report it.
    if (!SleepFor(std::min(left, std::chrono::milliseconds(5000)))) return;
  }
}

void Agent::SignalLoop() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);  // sent by Main to end this thread
  int sig = 0;
  sigwait(&set, &sig);
  if (sig == SIGUSR1) return;
  LogInfo("received {}: stopping after the current run (grace {})",
          sig == SIGTERM ? "SIGTERM" : "SIGINT", FormatDuration(o_.stop_grace));
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (source_) source_->Interrupt();
  std::unique_lock lock(mu_);
  if (!WaitFor(lock, o_.stop_grace, [&] { return !run_active_; })) {
    LogWarn("the run did not finish within the grace period: killing it");
    kill_run_ = true;
  }
  lock.unlock();
  // Wait for Main's SIGUSR1 so the signal is consumed here, not by the default handler.
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  while (sigwait(&set, &sig) == 0 && sig != SIGUSR1) kill_run_ = true;  // a second signal: now
}

int Agent::Main() {
  if (o_.heartbeat_interval.count() > 0) heartbeat_every_ = o_.heartbeat_interval;
  if (!o_.defaults_file.empty()) {
    auto d = LoadDefaults(o_.defaults_file);
    if (!d.ok()) {
      std::fprintf(stderr, "error: --defaults: %s\n", d.status().message().c_str());
      return 2;
    }
    defaults_ = std::move(*d);
  }
  if (!o_.verify_key.empty()) {
    auto k = control::VerifyKey::Load(o_.verify_key);
    if (!k.ok()) {
      std::fprintf(stderr, "error: --verify-key: %s\n", k.status().message().c_str());
      return 2;
    }
    verify_ = std::make_shared<const control::VerifyKey>(std::move(*k));
  }
  if (!o_.server.empty() && !o_.join_token.empty() && o_.environment.empty()) {
    std::fprintf(stderr, "error: --join-token needs --environment\n");
    return 2;
  }
  std::error_code ec;
  fs::create_directories(o_.work_dir, ec);
  if (ec) {
    std::fprintf(stderr, "error: cannot create the work dir %s: %s\n", o_.work_dir.c_str(),
                 ec.message().c_str());
    return 2;
  }
  auto loaded = LoadState(StatePath());
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.status().message().c_str());
    return 2;
  }
  state_ = std::move(*loaded);
  if (!o_.server.empty() && (state_.server != o_.server || state_.environment != o_.environment)) {
    // Another server or environment than the saved identity's: join anew.
    state_.instance_id.clear();
    state_.agent_key.clear();
  }
  std::vector<std::string> urls = o_.cc_urls;
  if (urls.empty() && !o_.server.empty()) {
    std::string url = o_.server;
    while (!url.empty() && url.back() == '/') url.pop_back();
    urls.push_back(url + "/v1/cc/agent" +
                   (o_.environment.empty() ? "" : "?environment=" + o_.environment));
  }
  source_ = std::make_unique<CcSource>(urls, o_.environment, verify_);
  source_->SetToken(AgentKey());

  if (!o_.server.empty() && state_.instance_id.empty() && !o_.join_token.empty()) {
    if (Status s = Join(); !s.ok()) {
      // A server that answers "no" (wrong environment, wrong token) will not say yes later:
      // one clear error. One that does not answer yet is retried.
      using C = Status::Code;
      C c = s.code();
      if (c == C::kUnauthenticated || c == C::kNotFound || c == C::kInvalidArgument ||
          c == C::kValidation || c == C::kPermissionDenied || c == C::kConflict) {
        std::fprintf(stderr,
                     "error: cannot join environment '%s' at %s: %s (check --environment and the "
                     "join token)\n",
                     o_.environment.c_str(), o_.server.c_str(), s.message().c_str());
        return 2;
      }
      LogWarn("cannot join {} yet: {} (running with what is known; retrying)", o_.server,
              s.message());
    }
  }

  // Signals go to the signal thread only; children get a clean mask (process.cc).
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, nullptr);
  std::thread signals([this] { SignalLoop(); });

  // Run logs and --ship-log files go to the server's log store, from their own thread.
  std::unique_ptr<LogShipper> shipper;
  if (!o_.server.empty()) {
    std::error_code ec;
    fs::create_directories(o_.work_dir + "/logs", ec);
    shipper = std::make_unique<LogShipper>(ShipperOptions{
        .server = o_.server,
        .token = [this] { return AgentKey(); },
        .instance_id =
            [this] {
              std::lock_guard lock(state_mu_);
              return state_.instance_id;
            },
        .run_logs_dir = o_.work_dir + "/logs",
        .files = o_.ship_logs,
    });
    shipper->Start();
  }

  std::thread heartbeats;
  // Heartbeats from their own thread, also during a long run (and for --once: a cron run shows as
  // the instance's current run too).
  if (!o_.server.empty()) heartbeats = std::thread([this] { HeartbeatLoop(); });
  // --worker: tasks run in the checkout, so the worker starts after the first run made one.
  std::unique_ptr<TaskWorker> worker;
  auto start_worker = [&] {
    if (worker || o_.worker_queue.empty() || o_.server.empty() || o_.once) return;
    worker = std::make_unique<TaskWorker>(TaskWorkerOptions{
        .server = o_.server,
        .token = [this] { return AgentKey(); },
        .queue = o_.worker_queue,
        .concurrency = o_.worker_concurrency,
        .work_dir = o_.work_dir,
        .checkout_dir =
            [this] {
              std::lock_guard lock(state_mu_);
              return checkout_dir_;
            },
        .env = CurrentEnvironment(),
        .task_timeout = o_.task_timeout,
        .kill_grace = o_.kill_grace,
        .visibility = o_.task_visibility,
        .ship_log =
            [&shipper](const std::string& text, const std::string& trace_id) {
              if (shipper) shipper->Append("task", text, trace_id);
            },
    });
    worker->Start();
  };

  int rc = 0;
  if (o_.once) {
    std::string status = RunOnce();
    if (!o_.server.empty()) {
      DeliverReports();
      // The last word of a cron run: idle now, and the interval of the set just read (the
      // server judges this instance by it until the next run).
      if (Status s = SendHeartbeat(); !s.ok()) LogWarn("heartbeat failed: {}", s.message());
    }
    rc = status == "failed" ? 1 : 0;
  } else {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
      }
      RunOnce();
      start_worker();
      if (!o_.server.empty()) DeliverReports();
      Vars vars;
      {
        std::lock_guard lock(state_mu_);
        vars = Effective(state_.last_set);
      }
      auto interval = std::chrono::milliseconds(600000);
      if (auto it = vars.find("cc-a-interval"); it != vars.end()) {
        if (auto ms = control::ParseSeconds(it->second); ms && ms->count() > 0) interval = *ms;
      }
      if (o_.watcher) {
        // Wake for the watcher window's next boundary too (a run that finds the commit unchanged
        // costs a fetch).
        auto now = SystemClock::Get().Now();
        if (auto next = NextWatcherChange(vars, now)) {
          auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now) +
                       std::chrono::milliseconds(100);
          interval = std::min(interval, until);
        }
      }
      WaitForNextRun(interval);
    }
  }
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    run_active_ = false;
  }
  cv_.notify_all();
  if (worker) worker->Stop();    // tasks under way come back to other workers
  if (shipper) shipper->Stop();  // what the last run wrote, sent (for up to 2 s)
  if (heartbeats.joinable()) heartbeats.join();
  if (!o_.server.empty() && !o_.once) {
    DeliverReports();
    // A daemon only gets here on SIGTERM/SIGINT: it leaves. A cron run (--once) comes back.
    Leave();
  }
  ::kill(::getpid(), SIGUSR1);
  signals.join();
  LogInfo("agent stopped");
  return rc;
}

}  // namespace

int RunAgent(const AgentOptions& options) { return Agent(options).Main(); }

}  // namespace drover::agent
