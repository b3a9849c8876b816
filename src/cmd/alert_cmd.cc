// `drover alert ls|get|history|silence|rm` (docs/alerts.md); rules are created with `drover apply`.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/usage.h"

namespace drover::cmd {
namespace {

// "threshold > 0" or "anomaly k=4": a rule's condition in a table cell.
std::string ConditionText(const boost::json::value& spec) {
  const auto* c = spec.as_object().if_contains("condition");
  if (!c || !c->is_object()) return "";
  if (const auto* t = c->as_object().if_contains("threshold"); t && t->is_string()) {
    return std::string(t->as_string());
  }
  return "anomaly";
}

}  // namespace

void AddAlertCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* alert = app.add_subcommand(
      "alert", "Alert rules: list, show, history, silence, delete (create: apply).");
  alert->require_subcommand(1);
  static std::string name;

  alert->add_subcommand("ls", "List alert rules.")->callback([&] {
    run = [&] {
      return PrintList(
          flags, "/v1/alerts?limit=1000",
          {"NAME", "SIGNAL", "CONDITION", "FOR", "SEVERITY", "UPDATED"},
          [](const boost::json::value& v) -> std::vector<std::string> {
            const auto& spec = v.at("spec");
            std::string f = Text(spec, "for"), sev = Text(spec, "severity");
            return {Text(v, "name"),      Text(spec, "signal"),          ConditionText(spec),
                    f.empty() ? "0s" : f, sev.empty() ? "warning" : sev, Text(v, "updated_at")};
          });
    };
  });

  auto* get = alert->add_subcommand("get", "An alert rule's spec.");
  get->add_option("name", name, "alert rule")->required();
  get->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/alerts/" + UrlEncode(name));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "alert/" << Text(*v, "name") << "  " << Text(v->at("spec"), "signal") << "  "
                << ConditionText(v->at("spec")) << "\n  spec "
                << boost::json::serialize(v->at("spec")) << "\n";
      std::vector<std::vector<std::string>> rows;
      for (const auto& a : v->at("status").at("alerts").as_array()) {
        rows.push_back({Text(a, "state"), boost::json::serialize(a.at("labels")), Text(a, "value"),
                        Text(a, "active_since")});
      }
      if (!rows.empty()) PrintTable({"STATE", "LABELS", "VALUE", "SINCE"}, rows);
      return 0;
    };
  });

  auto* history = alert->add_subcommand("history", "An alert rule's transitions, newest first.");
  history->add_option("name", name, "alert rule")->required();
  history->callback([&] {
    run = [&] {
      return PrintList(flags, "/v1/alerts/" + UrlEncode(name) + "/history?limit=1000",
                       {"AT", "TRANSITION", "LABELS", "VALUE"},
                       [](const boost::json::value& v) -> std::vector<std::string> {
                         return {Text(v, "at"), Text(v, "transition"),
                                 boost::json::serialize(v.at("labels")), Text(v, "value")};
                       });
    };
  });

  auto* silence = alert->add_subcommand(
      "silence", "Silence a rule's notifications for a while (--lift ends a silence).");
  static std::string silence_for = "1h", comment;
  static bool lift = false;
  silence->add_option("name", name, "alert rule")->required();
  silence->add_option("--for", silence_for, "how long (1s to 90d)")->capture_default_str();
  silence->add_option("--comment", comment, "why, for the others");
  silence->add_flag("--lift", lift, "end the rule's silence now");
  silence->callback([&] {
    run = [&] {
      std::string path = "/v1/alerts/" + UrlEncode(name) + "/silence";
      if (lift) {
        if (!Call(flags, "DELETE", path)) return 1;
        if (!flags.structured()) std::cout << "alert/" << name << " silence lifted\n";
        return 0;
      }
      boost::json::object body{{"for", silence_for}};
      if (!comment.empty()) body["comment"] = comment;
      auto v = Call(flags, "POST", path, boost::json::serialize(body));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "alert/" << name << " silenced until " << Text(*v, "until") << "\n";
      return 0;
    };
  });

  auto* rm = alert->add_subcommand("rm", "Delete an alert rule.");
  rm->add_option("name", name, "alert rule")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/alerts/" + UrlEncode(name))) return 1;
      return Deleted(flags, "alert", name);
    };
  });
}

}  // namespace drover::cmd
