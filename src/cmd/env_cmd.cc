// `drover apply -f FILE|DIR` and `drover env ls|get|rm|instances|events|logs`.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cmd/client_util.h"
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

int WaitReady(const ClientFlags& flags, const std::string& name, const std::string& timeout);

// Applies every document; with `wait`, then waits for each Environment to be ready.
int Apply(const ClientFlags& flags, const std::string& path, const std::string& wait) {
  std::vector<Document> docs;
  if (!LoadDocuments(path, &docs)) return 1;
  // Check every document's kind and name before changing anything.
  for (const auto& d : docs) {
    std::string kind = Str(d.body, "kind");
    if (kind == "Environment" || kind == "Schedule") {
      if (Str(d.body, "name").empty()) {
        std::cerr << "error: " << d.source << ": a" << (kind == "Environment" ? "n " : " ") << kind
                  << " needs a name\n";
        return 1;
      }
    } else if (kind == "Variable") {
      if (Str(d.body, "key").empty()) {
        std::cerr << "error: " << d.source << ": a Variable needs a key\n";
        return 1;
      }
    } else {
      std::cerr << "error: " << d.source
                << ": kind must be Environment, Schedule or Variable, not '" << kind << "'\n";
      return 1;
    }
  }
  for (const auto& d : docs) {
    std::string kind = Str(d.body, "kind");
    if (kind == "Environment" || kind == "Schedule") {
      std::string name = Str(d.body, "name");
      std::string path = kind == "Environment" ? "environments" : "schedules";
      auto r =
          Call(flags, "PUT", "/v1/" + path + "/" + UrlEncode(name), boost::json::serialize(d.body));
      if (!r) {
        std::cerr << "  in " << d.source << "\n";
        return 1;
      }
      std::cout << (kind == "Environment" ? "environment/" : "schedule/") << name
                << (Text(*r, "create_index") == Text(*r, "modify_index") ? " created"
                                                                         : " configured")
                << "\n";
    } else {
      boost::json::object body;
      for (const auto& [k, v] : d.body) {
        if (k != "kind" && k != "key") body[k] = v;
      }
      std::string key = Str(d.body, "key");
      if (!Call(flags, "PUT", "/v1/variables/" + UrlEncode(key), boost::json::serialize(body))) {
        std::cerr << "  in " << d.source << "\n";
        return 1;
      }
      std::string env = Str(d.body, "environment");
      std::cout << "variable/" << key << (env.empty() ? "" : " (" + env + ")") << " set\n";
    }
  }
  if (wait.empty()) return 0;
  for (const auto& d : docs) {
    if (Str(d.body, "kind") != "Environment") continue;
    std::cout << "environment/" << Str(d.body, "name") << ":\n";
    if (int rc = WaitReady(flags, Str(d.body, "name"), wait); rc != 0) return rc;
  }
  return 0;
}

// Polls the environment until running == desired (phase ready) or `timeout` passes, printing
// progress whenever it changes. 0 when ready, 1 otherwise.
int WaitReady(const ClientFlags& flags, const std::string& name, const std::string& timeout) {
  auto limit = ParseDuration(timeout);
  if (!limit) {
    std::cerr << "error: --wait: '" << timeout << "' is not a duration like 90s or 5m\n";
    return 2;
  }
  auto deadline = std::chrono::steady_clock::now() + *limit;
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
    if (line != last) std::cout << line << "\n" << std::flush;
    last = line;
    if (Text(st, "phase") == "ready") return 0;
  }
  std::cerr << "error: not ready within " << timeout << "\n";
  return 1;
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

}  // namespace

void AddEnvCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  static std::string apply_path, apply_wait;
  auto* apply =
      app.add_subcommand("apply", "Create or update Environment, Schedule and Variable documents.");
  apply->add_option("-f,--file", apply_path, "a YAML/JSON file, or a directory of them")
      ->required();
  apply->add_option("--wait", apply_wait,
                    "then wait up to this long (e.g. 5m) until each environment is ready, "
                    "showing progress");
  apply->callback([&] { run = [&] { return Apply(flags, apply_path, apply_wait); }; });

  auto* env =
      app.add_subcommand("env", "Environments: list, show, delete, instances, events, logs.");
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
      if (flags.output == "json") {
        PrintJson(*v);
        return 0;
      }
      const auto& st = v->at("status");
      std::cout << "name:       " << Text(*v, "name") << "\nphase:      " << Text(st, "phase")
                << "\nrunning:    " << Text(st, "running") << " of " << Text(st, "desired")
                << " (desired from " << Text(st, "desired_from") << ")"
                << "\nprovider:   " << Text(v->at("spec"), "provider");
      if (!Text(st, "join_token").empty()) std::cout << "\njoin token: " << Text(st, "join_token");
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
      if (flags.output != "json") std::cout << "deleted environment " << name << "\n";
      return 0;
    };
  });

  auto* inst = env->add_subcommand("instances", "List an environment's instances.");
  inst->add_option("name", name, "environment")->required();
  inst->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/environments/" + UrlEncode(name) + "/instances");
      if (!v) return 1;
      if (flags.output == "json") {
        PrintJson(v->at("items"));
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

  static int64_t scale_to = 0;
  static std::string wait_for;
  auto* scale = env->add_subcommand("scale", "Set an environment's capacity.");
  scale->add_option("name", name, "environment")->required();
  scale->add_option("capacity", scale_to, "instances wanted")
      ->required()
      ->check(CLI::NonNegativeNumber);
  scale->add_option("--wait", wait_for,
                    "wait up to this long (e.g. 2m) until running == capacity, showing progress");
  scale->callback([&] {
    run = [&] {
      auto v = Call(flags, "POST", "/v1/environments/" + UrlEncode(name) + "/scale",
                    "{\"capacity\":" + std::to_string(scale_to) + "}");
      if (!v) return 1;
      if (flags.output != "json")
        std::cout << "environment/" << name << " scaled to " << scale_to << "\n";
      if (wait_for.empty()) return 0;
      return WaitReady(flags, name, wait_for);
    };
  });

  static std::string instance;
  static int64_t run_no = 0;
  auto* logs = env->add_subcommand("logs", "Print the latest run log of each instance.");
  logs->add_option("name", name, "environment")->required();
  logs->add_option("--instance", instance, "only this instance");
  logs->add_option("--run", run_no, "this run number (with --instance)");
  logs->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/environments/" + UrlEncode(name) + "/instances");
      if (!v) return 1;
      int shown = 0;
      for (const auto& i : v->at("items").as_array()) {
        std::string id = Text(i, "id");
        if (!instance.empty() && id != instance) continue;
        int64_t n = run_no;
        std::string header;
        if (n == 0) {
          auto runs = Call(flags, "GET", "/v1/instances/" + id + "/runs?limit=1");
          if (!runs) return 1;
          const auto& items = runs->at("items").as_array();
          if (items.empty()) continue;
          n = items[0].at("seq").as_int64();
        }
        auto r = Call(flags, "GET", "/v1/instances/" + id + "/runs/" + std::to_string(n));
        if (!r) return 1;
        std::cout << "==> " << id << " run " << n << " (" << Text(*r, "status") << ", commit "
                  << Text(*r, "commit").substr(0, 12) << ", " << Text(*r, "finished_at")
                  << ") <==\n"
                  << Text(*r, "log_tail");
        if (!Text(*r, "log_tail").ends_with("\n")) std::cout << "\n";
        ++shown;
      }
      if (shown == 0) std::cerr << "no runs reported yet\n";
      return 0;
    };
  });
}

}  // namespace drover::cmd
