// `drover apply -f FILE|DIR` and `drover env ls|get|rm|scale|instances|events|logs`.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cmd/client_util.h"
#include "cmd/usage.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/yaml.h"

namespace drover::cmd {
namespace {

namespace fs = std::filesystem;

struct Document {
  std::string source;  // file (and document number) for messages
  boost::json::object body;
};

// Every document of FILE, or of the *.yaml/*.yml/*.json files of DIR in name order.
bool LoadDocuments(const std::string& path, std::vector<Document>* out) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      auto ext = e.path().extension().string();
      if (ext == ".yaml" || ext == ".yml" || ext == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  for (const auto& f : files) {
    auto text = ReadFile(f.string());
    if (!text) {
      std::cerr << "error: cannot read " << f.string() << "\n";
      return false;
    }
    auto docs = ParseYamlDocuments(*text);  // JSON is YAML too
    if (!docs.ok()) {
      std::cerr << "error: " << f.string() << ": " << docs.status().message() << "\n";
      for (const auto& e : docs.status().errors()) {
        std::cerr << "  " << e.field << ": " << e.message << "\n";
      }
      return false;
    }
    int n = 0;
    for (auto& d : *docs) {
      ++n;
      std::string src = docs->size() > 1 ? f.string() + " #" + std::to_string(n) : f.string();
      if (!d.is_object()) {
        std::cerr << "error: " << src << ": a document must be a mapping with a kind\n";
        return false;
      }
      out->push_back({src, std::move(d.as_object())});
    }
  }
  return true;
}

std::string Str(const boost::json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Where progress goes: stdout for people, stderr when stdout carries -o json/yaml data.
std::ostream& Progress(const ClientFlags& flags) {
  return flags.structured() ? std::cerr : std::cout;
}

// Polls the environment until running == desired (phase ready) or `limit` passes, printing
// progress whenever it changes. 0 when ready, 1 otherwise.
int WaitReady(const ClientFlags& flags, const std::string& name, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string last;
  for (bool first = true; std::chrono::steady_clock::now() < deadline; first = false) {
    if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto v = Call(flags, "GET", "/v1/environments/" + UrlEncode(name));
    if (!v) return 1;
    const auto& st = v->at("status");
    std::string line = Text(st, "running") + "/" + Text(st, "desired") + " running, phase " +
                       Text(st, "phase") + ":";
    for (const auto& i : st.at("instances").as_array()) {
      if (Text(i, "state") != "terminated") line += " " + Text(i, "id") + "=" + Text(i, "state");
    }
    if (line != last) Progress(flags) << line << "\n" << std::flush;
    last = line;
    // Ready: running == desired; scaled to 0 that is the stopped phase.
    if (Text(st, "phase") == "ready" ||
        (Text(st, "desired") == "0" && Text(st, "phase") == "stopped")) {
      return 0;
    }
  }
  std::cerr << "error: " << name << " not ready within " << FormatDuration(limit) << "\n";
  return 1;
}

// A kind's API collection and its lower-case name in messages.
struct Kind {
  std::string_view kind, collection, noun;
};
constexpr Kind kKinds[] = {{"Environment", "environments", "environment"},
                           {"Schedule", "schedules", "schedule"},
                           {"Variable", "variables", "variable"},
                           {"Queue", "queues", "queue"},
                           {"Topic", "topics", "topic"},
                           {"Workflow", "workflows", "workflow"},
                           {"Route", "routes", "route"},
                           {"Alert", "alerts", "alert"}};
const Kind* FindKind(std::string_view kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

// Applies one document; its result for the output, or nullopt after printing the problem.
std::optional<boost::json::object> ApplyOne(const ClientFlags& flags, const Document& d) {
  const Kind& kind = *FindKind(Str(d.body, "kind"));
  boost::json::object result{{"kind", kind.kind}};
  client::Response raw;
  if (kind.kind == "Variable") {
    std::string key = Str(d.body, "key"), env = Str(d.body, "environment");
    result["name"] = key;
    if (!env.empty()) result["environment"] = env;
    std::string target = "/v1/variables/" + UrlEncode(key) + "?environment=" + UrlEncode(env);
    boost::json::object body;
    for (const auto& [k, v] : d.body) {
      if (k != "kind" && k != "key") body[k] = v;
    }
    // The same value again is left alone (a write would wake every watcher for nothing).
    if (auto now = Peek(flags, target); now.ok() && now->status == 200) {
      boost::system::error_code ec;
      auto stored = boost::json::parse(now->body, ec);
      const auto* value = body.if_contains("value");
      if (!ec && value && value->is_string() && Text(stored, "value") == value->as_string()) {
        result["result"] = "unchanged";
        return result;
      }
    }
    if (!Call(flags, "PUT", "/v1/variables/" + UrlEncode(key), boost::json::serialize(body),
              &raw)) {
      return std::nullopt;
    }
    result["result"] = raw.status == 201 ? "created" : "configured";
    return result;
  }
  std::string name = Str(d.body, "name");
  result["name"] = name;
  auto r = Call(flags, "PUT", "/v1/" + std::string(kind.collection) + "/" + UrlEncode(name),
                boost::json::serialize(d.body), &raw);
  if (!r) return std::nullopt;
  result["result"] = raw.status == 201                            ? "created"
                     : raw.Header("X-Drover-Unchanged") == "true" ? "unchanged"
                                                                  : "configured";
  if (const auto* w = r->as_object().if_contains("warnings")) result["warnings"] = *w;
  return result;
}

// Queues first, each after the dead-letter queue it names, then topics (their subscriptions
// name queues), then workflows (their steps and triggers name both), then the rest in file
// order.
void OrderForApply(std::vector<Document>& docs) {
  auto rank = [](const Document& d) {
    std::string kind = Str(d.body, "kind");
    return kind == "Queue" ? 0 : kind == "Topic" ? 1 : kind == "Workflow" ? 2 : 3;
  };
  std::stable_sort(docs.begin(), docs.end(),
                   [&](const Document& a, const Document& b) { return rank(a) < rank(b); });
  // Dead-letter queues before the queues naming them (chains are short; cycles the server
  // refuses stop after as many passes as there are queues).
  auto dlq = [](const Document& d) {
    const auto* spec = d.body.if_contains("spec");
    return spec && spec->is_object() ? Text(*spec, "dead_letter_queue") : std::string();
  };
  for (size_t pass = 0; pass < docs.size(); ++pass) {
    bool moved = false;
    for (size_t i = 0; i < docs.size() && rank(docs[i]) == 0; ++i) {
      std::string target = dlq(docs[i]);
      if (target.empty()) continue;
      for (size_t j = i + 1; j < docs.size() && rank(docs[j]) == 0; ++j) {
        if (Str(docs[j].body, "name") != target) continue;
        auto d = std::move(docs[j]);
        docs.erase(docs.begin() + static_cast<std::ptrdiff_t>(j));
        docs.insert(docs.begin() + static_cast<std::ptrdiff_t>(i), std::move(d));
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
}

// Applies every document; with `wait`, then waits for each Environment to be ready.
int Apply(const ClientFlags& flags, const std::string& path,
          std::optional<std::chrono::milliseconds> wait) {
  std::vector<Document> docs;
  if (!LoadDocuments(path, &docs)) return 1;
  // Check every document's kind and name before changing anything.
  for (const auto& d : docs) {
    const Kind* kind = FindKind(Str(d.body, "kind"));
    if (!kind) {
      std::cerr
          << "error: " << d.source
          << ": kind must be Environment, Schedule, Variable, Queue, Topic, Workflow, Route or"
             " Alert,"
             " not '"
          << Str(d.body, "kind") << "'\n";
      return 1;
    }
    std::string_view field = kind->kind == "Variable" ? "key" : "name";
    if (Str(d.body, field).empty()) {
      std::cerr << "error: " << d.source << ": a " << kind->kind << " needs a " << field << "\n";
      return 1;
    }
  }
  OrderForApply(docs);
  boost::json::array results;
  for (const auto& d : docs) {
    auto r = ApplyOne(flags, d);
    if (!r) {
      std::cerr << "  in " << d.source << "\n";
      if (flags.structured()) PrintData(flags, results);  // what was applied before it
      return 1;
    }
    if (!flags.structured()) {
      std::cout << FindKind(Str(d.body, "kind"))->noun << "/" << Text(*r, "name");
      if (!Text(*r, "environment").empty()) std::cout << " (" << Text(*r, "environment") << ")";
      std::cout << " " << Text(*r, "result") << "\n";
      if (const auto* w = r->if_contains("warnings")) {
        for (const auto& msg : w->as_array()) {
          std::cout << "  warning: " << std::string_view(msg.as_string()) << "\n";
        }
      }
    }
    results.push_back(std::move(*r));
  }
  if (flags.structured()) PrintData(flags, results);
  if (!wait) return 0;
  for (const auto& d : docs) {
    if (Str(d.body, "kind") != "Environment") continue;
    Progress(flags) << "environment/" << Str(d.body, "name") << ":\n";
    if (int rc = WaitReady(flags, Str(d.body, "name"), *wait); rc != 0) return rc;
  }
  return 0;
}

void PrintInstances(const boost::json::array& items) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : items) {
    std::string last;
    if (const auto* lr = i.as_object().if_contains("last_run"); lr && lr->is_object()) {
      last = Text(*lr, "status") + " " + Text(*lr, "commit").substr(0, 12) + " exit " +
             Text(*lr, "exit_code");
    }
    rows.push_back(
        {Text(i, "id"), Text(i, "state"), Text(i, "hostname"), Text(i, "last_heartbeat"), last});
  }
  PrintTable({"ID", "STATE", "HOST", "LAST HEARTBEAT", "LAST RUN"}, rows);
}

// A capacity as typed: a whole number >= 0.
std::optional<int64_t> Capacity(const std::string& s) {
  int64_t n = -1;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 0) return std::nullopt;
  return n;
}

}  // namespace

void AddEnvCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  static std::string apply_path, apply_wait;
  auto* apply = app.add_subcommand(
      "apply", "Create or update Environment, Schedule, Variable, Queue and Topic documents.");
  apply->add_option("-f,--file", apply_path, "a YAML/JSON file, or a directory of them")
      ->required();
  auto* apply_wait_flag = AddWaitFlag(
      apply, &apply_wait, "then wait until each environment is ready, showing progress");
  apply->callback([&, apply, apply_wait_flag] {
    run = [&, apply, apply_wait_flag] {
      int rc = 0;
      auto wait = WaitLimit(apply, apply_wait_flag, apply_wait, &rc);
      if (rc) return rc;
      return Apply(flags, apply_path, wait);
    };
  });

  auto* env = app.add_subcommand(
      "env", "Environments: list, show, scale, delete, instances, events, logs.");
  env->require_subcommand(1);

  env->add_subcommand("ls", "List environments.")->callback([&] {
    run = [&] {
      return PrintList(flags, "/v1/environments?limit=1000",
                       {"NAME", "PHASE", "RUNNING", "DESIRED", "PROVIDER"},
                       [](const boost::json::value& e) -> std::vector<std::string> {
                         const auto& st = e.at("status");
                         return {Text(e, "name"), Text(st, "phase"), Text(st, "running"),
                                 Text(st, "desired"), Text(e.at("spec"), "provider")};
                       });
    };
  });

  static std::string name;
  auto* get = env->add_subcommand("get", "Show an environment: spec and status.");
  get->add_option("name", name, "environment")->required();
  get->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/environments/" + UrlEncode(name));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      const auto& st = v->at("status");
      std::cout << "name:       " << Text(*v, "name") << "\nphase:      " << Text(st, "phase")
                << "\nrunning:    " << Text(st, "running") << " of " << Text(st, "desired")
                << " (desired from " << Text(st, "desired_from") << ")"
                << "\nprovider:   " << Text(v->at("spec"), "provider");
      if (!Text(st, "join_token").empty()) std::cout << "\njoin token: " << Text(st, "join_token");
      for (const auto& c : st.at("conditions").as_array()) {
        if (Text(c, "status") == "false" && Text(c, "type") != "Ready") {
          std::cout << "\ncondition:  " << Text(c, "type") << " false: " << Text(c, "reason");
        }
      }
      std::cout << "\n\n";
      PrintInstances(st.at("instances").as_array());
      return 0;
    };
  });

  auto* rm = env->add_subcommand("rm", "Delete an environment with its instances and agent keys.");
  rm->add_option("name", name, "environment")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/environments/" + UrlEncode(name))) return 1;
      return Deleted(flags, "environment", name);
    };
  });

  static bool all_instances = false;
  static std::string forget_id;
  auto* inst = env->add_subcommand(
      "instances", "List an environment's instances (terminated ones with --all), or forget one.");
  inst->add_option("name", name, "environment");
  inst->add_flag("--all", all_instances, "also terminated instances (until their retention ends)");
  auto* inst_rm = inst->add_subcommand(
      "rm",
      "Forget an instance: its record, runs and agent key (a live one a provider started "
      "is refused: scale down instead).");
  inst_rm->add_option("id", forget_id, "instance id (i-...)")->required();
  inst_rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/instances/" + UrlEncode(forget_id))) return 1;
      return Deleted(flags, "instance", forget_id);
    };
  });
  inst->callback([&, inst, inst_rm] {
    if (inst_rm->parsed()) return;
    run = [&, inst] {
      if (name.empty()) return UsageError(inst, "give the environment: drover env instances NAME");
      auto v = Call(flags, "GET",
                    "/v1/environments/" + UrlEncode(name) + "/instances" +
                        (all_instances ? "?all=true" : ""));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, v->at("items"));
      } else {
        PrintInstances(v->at("items").as_array());
      }
      return 0;
    };
  });

  auto* events = env->add_subcommand("events", "Show an environment's events, oldest first.");
  events->add_option("name", name, "environment")->required();
  events->callback([&] {
    run = [&] {
      return PrintList(
          flags, "/v1/environments/" + UrlEncode(name) + "/events?limit=1000",
          {"TIME", "KIND", "INSTANCE", "REASON"},
          [](const boost::json::value& e) -> std::vector<std::string> {
            return {Text(e, "time"), Text(e, "kind"), Text(e, "instance"), Text(e, "reason")};
          });
    };
  });

  static std::string scale_to, scale_wait;
  auto* scale = env->add_subcommand("scale", "Set an environment's capacity.");
  scale->add_option("name", name, "environment")->required();
  scale->add_option("capacity", scale_to, "instances wanted (a whole number >= 0)")->required();
  auto* scale_wait_flag =
      AddWaitFlag(scale, &scale_wait, "then wait until running == capacity, showing progress");
  scale->callback([&, scale, scale_wait_flag] {
    run = [&, scale, scale_wait_flag] {
      // Every argument is checked before anything changes.
      auto capacity = Capacity(scale_to);
      if (!capacity) {
        return UsageError(scale, "capacity must be a whole number >= 0, got '" + scale_to + "'");
      }
      int rc = 0;
      auto wait = WaitLimit(scale, scale_wait_flag, scale_wait, &rc);
      if (rc) return rc;
      auto v = Call(flags, "POST", "/v1/environments/" + UrlEncode(name) + "/scale",
                    "{\"capacity\":" + std::to_string(*capacity) + "}");
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "environment/" << name << " scaled to " << *capacity << "\n";
      }
      if (!wait) return 0;
      return WaitReady(flags, name, *wait);
    };
  });

  static std::string instance;
  static int64_t run_no = 0;
  auto* open = env->add_subcommand(
      "open", "Print a login URL for a browser: the environment's service through /env/NAME/.");
  open->add_option("name", name, "environment")->required();
  open->callback([&] {
    run = [&] {
      auto v = Call(flags, "POST", "/v1/environments/" + UrlEncode(name) + "/open");
      if (!v) return 1;
      return PrintLoginUrl(flags, *v);
    };
  });

  auto* logs = env->add_subcommand("logs", "Print the latest run log of each instance.");
  logs->add_option("name", name, "environment")->required();
  logs->add_option("--instance", instance, "only this instance");
  auto* run_flag = logs->add_option("--run", run_no, "this run number (with --instance)")
                       ->check(CLI::PositiveNumber);
  logs->callback([&, logs, run_flag] {
    run = [&, logs, run_flag] {
      if (run_flag->count() > 0 && instance.empty()) {
        return UsageError(logs, "--run needs --instance (run numbers are per instance)");
      }
      auto v = Call(flags, "GET", "/v1/environments/" + UrlEncode(name) + "/instances?all=true");
      if (!v) return 1;
      boost::json::array shown;
      bool found = instance.empty();
      for (const auto& i : v->at("items").as_array()) {
        std::string id = Text(i, "id");
        if (!instance.empty() && id != instance) continue;
        found = true;
        int64_t n = run_no;
        if (n == 0) {
          auto runs = Call(flags, "GET", "/v1/instances/" + UrlEncode(id) + "/runs?limit=1");
          if (!runs) return 1;
          const auto& items = runs->at("items").as_array();
          if (items.empty()) continue;
          n = items[0].at("seq").as_int64();
        }
        auto r =
            Call(flags, "GET", "/v1/instances/" + UrlEncode(id) + "/runs/" + std::to_string(n));
        if (!r) return 1;
        if (flags.structured()) {
          r->as_object()["instance"] = id;
          shown.push_back(std::move(*r));
          continue;
        }
        std::cout << "==> " << id << " run " << n << " (" << Text(*r, "status") << ", commit "
                  << Text(*r, "commit").substr(0, 12) << ", " << Text(*r, "finished_at")
                  << ") <==\n"
                  << Text(*r, "log_tail");
        if (!Text(*r, "log_tail").ends_with("\n")) std::cout << "\n";
        shown.push_back(nullptr);
      }
      if (!found) {
        std::cerr << "error: environment " << name << " has no instance '" << instance << "'\n";
        return 1;
      }
      if (flags.structured()) {
        PrintData(flags, shown);
      } else if (shown.empty()) {
        std::cerr << "no runs reported yet\n";
      }
      return 0;
    };
  });
}

}  // namespace drover::cmd
