// `drover var set|get|ls|rm`
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "cmd/client_util.h"
#include "cmd/usage.h"

namespace drover::cmd {
namespace {

struct VarArgs {
  std::string key, value, env, prefix;
  int count = 0;  // watch: stop after this many changes (0 = until interrupted)
};

std::string Scope(const VarArgs& a) {
  return a.env.empty() ? "" : "?environment=" + UrlEncode(a.env);
}

}  // namespace

void AddVarCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  static VarArgs a;
  auto* var = app.add_subcommand("var", "Manage control-center variables.");
  var->require_subcommand(1);

  auto* set = var->add_subcommand("set", "Set a variable.");
  set->add_option("key", a.key, "variable key")->required();
  set->add_option("value", a.value, "value ('' or '-' means unset for cc-* keys)")->required();
  set->add_option("-e,--env", a.env, "environment scope (default: global)");
  set->callback([&] {
    run = [&] {
      boost::json::object body{{"value", a.value}};
      if (!a.env.empty()) body["environment"] = a.env;
      auto v =
          Call(flags, "PUT", "/v1/variables/" + UrlEncode(a.key), boost::json::serialize(body));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << a.key << (a.env.empty() ? "" : " (" + a.env + ")") << " = " << a.value
                  << "  [index " << Text(*v, "modify_index") << "]\n";
      }
      return 0;
    };
  });

  auto* get = var->add_subcommand("get", "Print a variable's value.");
  get->add_option("key", a.key, "variable key")->required();
  get->add_option("-e,--env", a.env, "environment scope (default: global)");
  get->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/variables/" + UrlEncode(a.key) + Scope(a));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << Text(*v, "value") << "\n";
      }
      return 0;
    };
  });

  static bool effective = false;
  auto* ls = var->add_subcommand("ls", "List variables.");
  ls->add_option("--prefix", a.prefix, "only keys starting with this");
  ls->add_option("-e,--env", a.env, "only this environment's scope");
  ls->add_flag("--effective", effective,
               "the environment's effective cc-a-* set, as its agents read it (with --env)");
  ls->callback([&, ls] {
    run = [&, ls] {
      if (effective) {
        if (a.env.empty()) return UsageError(ls, "--effective needs --env ENVIRONMENT");
        // Globals, the agent: block and the environment's own variables, layered (docs/api.md).
        auto v = Call(flags, "GET", "/v1/cc/agent?environment=" + UrlEncode(a.env));
        if (!v) return 1;
        if (flags.structured()) {
          PrintData(flags, *v);
          return 0;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& [k, val] : v->as_object()) {
          if (!a.prefix.empty() && !std::string_view(k).starts_with(a.prefix)) continue;
          rows.push_back({std::string(k), Text(*v, k)});
        }
        PrintTable({"KEY", "VALUE"}, rows);
        return 0;
      }
      std::string target = "/v1/variables?limit=1000&prefix=" + UrlEncode(a.prefix);
      if (!a.env.empty()) target += "&environment=" + UrlEncode(a.env);
      return PrintList(flags, target, {"KEY", "SCOPE", "VALUE", "INDEX"},
                       [](const boost::json::value& item) -> std::vector<std::string> {
                         std::string env = Text(item, "environment");
                         return {Text(item, "key"), env.empty() ? "(global)" : env,
                                 Text(item, "value"), Text(item, "modify_index")};
                       });
    };
  });

  auto* watch = var->add_subcommand(
      "watch", "Print a variable's value, then again each time it changes (blocking reads).");
  watch->add_option("key", a.key, "variable key")->required();
  watch->add_option("-e,--env", a.env, "environment scope (default: global)");
  watch->add_option("--count", a.count, "exit after this many changes (default: run until ^C)");
  watch->callback([&] {
    run = [&] {
      // Blocking reads: each GET answers when a variable changes after `index` (or after 60 s);
      // only a change of this variable (its index, or set/unset) is printed.
      RequireToken(flags);
      client::Client c({flags.addr, flags.token, std::chrono::seconds(90)});
      std::string base = WithTenant(flags, "/v1/variables/" + UrlEncode(a.key) +
                                               "?environment=" + UrlEncode(a.env)) +
                         "&wait=60s&index=";
      std::string index = "0", last;
      int changes = 0, failures = 0;
      for (bool first = true;; first = false) {
        auto r = c.Do("GET", base + index);
        if (!r.ok() || r->status >= 500 || r->status == 429) {
          // The server restarting or the database briefly away: retry, then give up.
          if (++failures > 30) {
            std::fprintf(stderr, "error: %s\n",
                         r.ok() ? client::Client::ToStatus(*r).message().c_str()
                                : r.status().message().c_str());
            return 1;
          }
          std::this_thread::sleep_for(std::chrono::seconds(1));
          continue;
        }
        failures = 0;
        if (r->status != 200 && r->status != 404) {
          Status s = client::Client::ToStatus(*r);
          std::fprintf(stderr, "error: %s\n", s.message().c_str());
          return 1;
        }
        if (std::string i = r->Header("X-Drover-Index"); !i.empty()) index = i;
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body, ec);
        std::string state = r->status == 404 ? "unset" : (ec ? "" : Text(v, "modify_index"));
        if (state == last) continue;  // another variable changed: wait again
        last = state;
        if (flags.output == "json") {  // one line per change
          std::cout << (r->status == 404 ? std::string("null") : r->body) << std::endl;
        } else if (flags.output == "yaml") {  // one document per change
          std::cout << "---\n" << std::flush;
          PrintData(flags, r->status == 404 ? boost::json::value(nullptr) : v);
          std::cout << std::flush;
        } else if (r->status == 404) {
          std::cout << "[index " << index << "] " << a.key << " is not set" << std::endl;
        } else {
          std::cout << "[index " << Text(v, "modify_index") << "] " << a.key << " = "
                    << Text(v, "value") << std::endl;
        }
        if (!first && a.count > 0 && ++changes >= a.count) return 0;
      }
    };
  });

  auto* rm = var->add_subcommand("rm", "Delete a variable.");
  rm->add_option("key", a.key, "variable key")->required();
  rm->add_option("-e,--env", a.env, "environment scope (default: global)");
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/variables/" + UrlEncode(a.key) + Scope(a))) return 1;
      return Deleted(flags, "variable", a.key);
    };
  });
}

}  // namespace drover::cmd
