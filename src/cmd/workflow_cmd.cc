// `drover wf ls|get|run|rm` and `drover exec ls|get|events|cancel|retry|signal`
// (docs/workflows.md).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/usage.h"
#include "common/duration.h"

namespace drover::cmd {
namespace {

// Where progress goes: stdout for people, stderr when stdout carries -o json/yaml data.
std::ostream& Out(const ClientFlags& flags) { return flags.structured() ? std::cerr : std::cout; }

bool Ended(const boost::json::value& e) {
  std::string s = Text(e, "status");
  return s == "succeeded" || s == "failed" || s == "cancelled";
}

// One line per step whose status or attempt changed since `seen` (updated).
void PrintStepChanges(const ClientFlags& flags, const boost::json::value& e,
                      std::map<std::string, std::string>& seen) {
  const auto* steps = e.as_object().if_contains("steps");
  if (!steps || !steps->is_array()) return;
  for (const auto& st : steps->as_array()) {
    std::string now = Text(st, "status") + "#" + Text(st, "attempt");
    std::string& was = seen[Text(st, "name")];
    if (now == was) continue;
    was = now;
    if (Text(st, "status") == "pending") continue;
    Out(flags) << "  " << Text(st, "name") << ": " << Text(st, "status");
    if (Text(st, "attempt") != "0" && Text(st, "attempt") != "1") {
      Out(flags) << " (attempt " << Text(st, "attempt") << ")";
    }
    if (!Text(st, "error").empty()) Out(flags) << ": " << Text(st, "error");
    Out(flags) << "\n" << std::flush;
  }
}

// Follows an execution with blocking reads until it ends or `limit` passes, printing each
// step's changes. The exit code: 0 succeeded, 1 otherwise.
int Follow(const ClientFlags& flags, const std::string& id, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::map<std::string, std::string> seen;
  std::string index = "0";
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline -
                                                                 std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      std::cerr << "error: execution " << id << " did not end within " << FormatDuration(limit)
                << "\n";
      return 1;
    }
    client::Response raw;
    auto wait = std::min<int64_t>(left.count(), 20);
    auto e =
        Call(flags, "GET",
             "/v1/executions/" + id + "?index=" + index + "&wait=" + std::to_string(wait) + "s", {},
             &raw);
    if (!e) return 1;
    if (!raw.Header("X-Drover-Index").empty()) index = raw.Header("X-Drover-Index");
    PrintStepChanges(flags, *e, seen);
    if (Ended(*e)) {
      if (flags.structured()) {
        PrintData(flags, *e);
      } else {
        std::cout << "execution " << id << " " << Text(*e, "status");
        if (!Text(*e, "error").empty()) std::cout << ": " << Text(*e, "error");
        std::cout << "\n";
      }
      return Text(*e, "status") == "succeeded" ? 0 : 1;
    }
  }
}

// The JSON text of a flag (--input, --payload): "" when not given; nullopt (after a usage
// error) when it is not JSON.
std::optional<std::string> JsonFlag(const CLI::App* cmd, std::string_view flag,
                                    const std::string& value, int* rc) {
  if (value.empty()) return std::string("null");
  boost::system::error_code ec;
  auto v = boost::json::parse(value, ec);
  if (ec) {
    *rc = UsageError(cmd, std::string(flag) + " must be JSON, like '{\"date\": \"2026-12-07\"}'");
    return std::nullopt;
  }
  return boost::json::serialize(v);
}

void PrintEvent(const boost::json::value& e) {
  std::cout << Text(e, "seq") << "  " << Text(e, "at") << "  " << Text(e, "kind");
  if (!Text(e, "step").empty()) std::cout << " " << Text(e, "step");
  if (Text(e, "attempt") != "0") std::cout << " #" << Text(e, "attempt");
  const auto& d = e.at("data");
  if (d.is_object() && !d.as_object().empty()) std::cout << "  " << boost::json::serialize(d);
  std::cout << "\n";
}

}  // namespace

void AddWorkflowCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* wf = app.add_subcommand("wf", "Workflows: list, show, run, delete.");
  wf->require_subcommand(1);
  static std::string name, input, key, wait, version;

  wf->add_subcommand("ls", "List workflows.")->callback([&] {
    run = [&] {
      return PrintList(
          flags, "/v1/workflows?limit=1000", {"NAME", "VERSION", "STEPS", "UPDATED"},
          [](const boost::json::value& v) -> std::vector<std::string> {
            const auto* steps = v.at("spec").as_object().if_contains("steps");
            size_t n = steps && steps->is_array() ? steps->as_array().size() : 0;
            return {Text(v, "name"), Text(v, "version"), std::to_string(n), Text(v, "updated_at")};
          });
    };
  });

  auto* get = wf->add_subcommand("get", "A workflow's definition and versions.");
  get->add_option("name", name, "workflow")->required();
  get->add_option("--version", version, "an older version");
  get->callback([&] {
    run = [&] {
      std::string target = "/v1/workflows/" + UrlEncode(name);
      if (!version.empty()) target += "?version=" + UrlEncode(version);
      auto v = Call(flags, "GET", target);
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "workflow/" << Text(*v, "name") << " version " << Text(*v, "version") << "\n";
      std::vector<std::vector<std::string>> rows;
      for (const auto& st : v->at("spec").at("steps").as_array()) {
        std::string needs;
        if (const auto* n = st.as_object().if_contains("needs"); n && n->is_array()) {
          for (const auto& x : n->as_array()) {
            needs += (needs.empty() ? "" : ",") + std::string(x.as_string());
          }
        }
        rows.push_back({Text(st, "name"), Text(st, "type"), needs.empty() ? "-" : needs});
      }
      PrintTable({"STEP", "TYPE", "NEEDS"}, rows);
      return 0;
    };
  });

  auto* rm = wf->add_subcommand("rm", "Delete a workflow (running executions finish).");
  rm->add_option("name", name, "workflow")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/workflows/" + UrlEncode(name))) return 1;
      return Deleted(flags, "workflow", name);
    };
  });

  auto* start = wf->add_subcommand("run", "Start an execution; --wait follows it to its end.");
  start->add_option("name", name, "workflow")->required();
  start->add_option("--input", input, "the execution's input, as JSON");
  start->add_option("--idempotency-key", key, "the same key starts one execution");
  auto* wait_flag = AddWaitFlag(start, &wait, "follow the execution until it ends (default 5m)");
  start->callback([&, start, wait_flag] {
    run = [&, start, wait_flag] {
      int rc = 0;
      auto limit = WaitLimit(start, wait_flag, wait, &rc);
      if (rc) return rc;
      auto in = JsonFlag(start, "--input", input, &rc);
      if (!in) return rc;
      std::string body = "{\"input\":" + *in + "}";
      RequireToken(flags);
      client::Client c({.addr = flags.addr, .token = flags.token});
      std::vector<std::pair<std::string, std::string>> headers{
          {"Content-Type", "application/json"}};
      if (!key.empty()) headers.emplace_back("Idempotency-Key", key);
      auto r = c.Do("POST", WithTenant(flags, "/v1/workflows/" + UrlEncode(name) + "/executions"),
                    body, std::move(headers));
      if (!r.ok()) {
        std::cerr << "error: " << r.status().message() << "\n";
        return 1;
      }
      if (!r->ok()) {
        std::cerr << "error: " << client::Client::ToStatus(*r).message() << "\n";
        return 1;
      }
      auto v = boost::json::parse(r->body);
      std::string id = Text(v, "id");
      if (!limit) {
        if (flags.structured()) {
          PrintData(flags, v);
        } else {
          std::cout << "execution " << id << " started\n";
        }
        return 0;
      }
      Out(flags) << "execution " << id << " started\n";
      return Follow(flags, id, *limit);
    };
  });

  auto* ex = app.add_subcommand("exec", "Executions: list, show, events, cancel, retry, signal.");
  ex->require_subcommand(1);
  static std::string id, workflow, status, signal, payload;
  static bool follow = false;

  auto* ls = ex->add_subcommand("ls", "List executions, newest first.");
  ls->add_option("--workflow", workflow, "only this workflow's");
  ls->add_option("--status", status, "pending, running, succeeded, failed or cancelled");
  ls->callback([&] {
    run = [&] {
      std::string target = "/v1/executions?limit=1000";
      if (!workflow.empty()) target += "&workflow=" + UrlEncode(workflow);
      if (!status.empty()) target += "&status=" + UrlEncode(status);
      return PrintList(flags, target, {"ID", "WORKFLOW", "STATUS", "CREATED", "ENDED"},
                       [](const boost::json::value& v) -> std::vector<std::string> {
                         return {Text(v, "id"), Text(v, "workflow"), Text(v, "status"),
                                 Text(v, "created_at"),
                                 Text(v, "ended_at").empty() ? "-" : Text(v, "ended_at")};
                       });
    };
  });

  auto* show = ex->add_subcommand("get", "An execution and its steps.");
  show->add_option("id", id, "execution id")->required();
  show->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/executions/" + UrlEncode(id));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "execution " << Text(*v, "id") << " of " << Text(*v, "workflow") << " v"
                << Text(*v, "version") << ": " << Text(*v, "status");
      if (!Text(*v, "error").empty()) std::cout << ": " << Text(*v, "error");
      std::cout << "\n";
      std::vector<std::vector<std::string>> rows;
      for (const auto& st : v->at("steps").as_array()) {
        rows.push_back({Text(st, "name"), Text(st, "type"), Text(st, "status"), Text(st, "attempt"),
                        Text(st, "error")});
      }
      PrintTable({"STEP", "TYPE", "STATUS", "ATTEMPT", "ERROR"}, rows);
      return 0;
    };
  });

  auto* events = ex->add_subcommand("events", "An execution's event log; -f follows it.");
  events->add_option("id", id, "execution id")->required();
  events->add_flag("-f,--follow", follow, "print new events as they come, until it ends");
  events->callback([&] {
    run = [&] {
      int64_t after = 0;
      std::string index = "0";
      while (true) {
        auto v = Call(flags, "GET",
                      "/v1/executions/" + UrlEncode(id) + "/events?after=" + std::to_string(after));
        if (!v) return 1;
        for (const auto& e : v->at("items").as_array()) {
          if (flags.structured()) {
            PrintData(flags, e);
          } else {
            PrintEvent(e);
          }
          after = e.at("seq").as_int64();
        }
        if (!follow) return 0;
        // Wait for the next change of the execution (a blocking read), then read what came.
        client::Response raw;
        auto ex_v =
            Call(flags, "GET", "/v1/executions/" + UrlEncode(id) + "?index=" + index + "&wait=20s",
                 {}, &raw);
        if (!ex_v) return 1;
        if (!raw.Header("X-Drover-Index").empty()) index = raw.Header("X-Drover-Index");
        if (Ended(*ex_v) && ex_v->at("last_event").as_int64() <= after) return 0;
      }
    };
  });

  for (const char* what : {"cancel", "retry"}) {
    auto* cmd = ex->add_subcommand(what, std::string(what) == std::string("cancel")
                                             ? "Cancel an execution."
                                             : "Re-run a failed or cancelled execution from "
                                               "its failed steps.");
    cmd->add_option("id", id, "execution id")->required();
    cmd->callback([&, what] {
      run = [&, what] {
        auto v = Call(flags, "POST", "/v1/executions/" + UrlEncode(id) + "/" + what, "{}");
        if (!v) return 1;
        if (flags.structured()) {
          PrintData(flags, *v);
        } else {
          std::cout << "execution " << id << " " << Text(*v, "status") << "\n";
        }
        return 0;
      };
    });
  }

  auto* admin = app.add_subcommand("admin", "Administration: rebuild read models.");
  admin->require_subcommand(1);
  admin->add_subcommand("rebuild", "Rebuild every execution's read model from its event log.")
      ->callback([&] {
        run = [&] {
          auto v = Call(flags, "POST", "/v1/admin/rebuild", "{}");
          if (!v) return 1;
          if (flags.structured()) {
            PrintData(flags, *v);
          } else {
            std::cout << "rebuilt " << Text(*v, "executions")
                      << " executions from their event logs\n";
          }
          return 0;
        };
      });

  auto* sig = ex->add_subcommand("signal", "Send a named signal to an execution.");
  sig->add_option("id", id, "execution id")->required();
  sig->add_option("name", signal, "signal name")->required();
  sig->add_option("--payload", payload, "the signal's payload, as JSON");
  sig->callback([&, sig] {
    run = [&, sig] {
      int rc = 0;
      auto p = JsonFlag(sig, "--payload", payload, &rc);
      if (!p) return rc;
      auto v =
          Call(flags, "POST", "/v1/executions/" + UrlEncode(id) + "/signals/" + UrlEncode(signal),
               "{\"payload\":" + *p + "}");
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "signal " << signal << " sent to " << id << "\n";
      }
      return 0;
    };
  });
}

}  // namespace drover::cmd
