// `drover schedule ls|get|trigger|firings|rm` (docs/schedules.md, docs/api.md). Schedules are
// created with `drover apply -f` (kind: Schedule) or PUT /v1/schedules/{name}.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/commands.h"
#include "cron/cron.h"

namespace drover::cmd {
namespace {

// An RFC 3339 time from the API as the schedule's time zone shows it ("2026-12-07 13:00:00
// CET"); as given when it does not parse.
std::string Local(const boost::json::value& s, std::string_view rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  auto zone = cron::Zone::Locate(Text(s.at("spec"), "timezone"));
  if (!t || !zone.ok()) return std::string(rfc3339);
  return cron::FormatInZone(*t, *zone);
}

// "next fires" or the window's state, for a table cell, in the schedule's time zone.
std::string When(const boost::json::value& s) {
  const auto& st = s.at("status");
  if (const auto* open = st.as_object().if_contains("window_open")) {
    std::string change = Text(st, "next_change");
    return std::string(open->as_bool() ? "open" : "closed") + " until " +
           (change.empty() ? "-" : Local(s, change));
  }
  const auto& next = st.at("next_fires").as_array();
  return next.empty() ? "-" : Local(s, next[0].as_string());
}

std::string What(const boost::json::value& s) {
  const auto& spec = s.at("spec");
  if (const auto* w = spec.as_object().if_contains("window")) {
    return "window " + Text(*w, "environment") + " at " + Text(*w, "capacity");
  }
  const auto& a = spec.at("action");
  std::string out = Text(a, "type");
  if (!Text(a, "environment").empty()) out += " " + Text(a, "environment");
  if (!Text(a, "capacity").empty()) out += " to " + Text(a, "capacity");
  return out;
}

std::string Expression(const boost::json::value& s) {
  const auto& spec = s.at("spec");
  if (!Text(spec, "cron").empty()) return Text(spec, "cron");
  if (!Text(spec, "at").empty()) return Text(spec, "at");
  const auto& w = spec.at("window");
  return Text(w, "start") + " .. " +
         (Text(w, "stop").empty() ? "+" + Text(w, "duration") : Text(w, "stop"));
}

}  // namespace

void AddScheduleCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* sc = app.add_subcommand(
      "schedule", "Schedules: list, show, trigger, firings, delete (create with drover apply).");
  sc->require_subcommand(1);
  sc->add_subcommand("ls", "List schedules with their next fire time.")->callback([&] {
    run = [&] {
      return PrintList(flags, "/v1/schedules?limit=1000",
                       {"NAME", "WHEN", "TIMEZONE", "ACTION", "NEXT"},
                       [](const boost::json::value& s) -> std::vector<std::string> {
                         return {Text(s, "name"), Expression(s), Text(s.at("spec"), "timezone"),
                                 What(s), When(s)};
                       });
    };
  });

  static std::string name;
  auto* get = sc->add_subcommand("get", "Show a schedule: spec, next 5 fire times, last firing.");
  get->add_option("name", name, "schedule")->required();
  get->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/schedules/" + UrlEncode(name));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      const auto& st = v->at("status");
      std::cout << "name:      " << Text(*v, "name") << "\nwhen:      " << Expression(*v) << " ("
                << Text(v->at("spec"), "timezone") << ", offset " << Text(v->at("spec"), "offset")
                << ")\naction:    " << What(*v) << "\n";
      if (const auto* next = st.as_object().if_contains("next_fires")) {
        std::cout << "next:\n";
        for (const auto& t : next->as_array()) {
          std::cout << "  " << Local(*v, t.as_string()) << "  (" << std::string_view(t.as_string())
                    << ")\n";
        }
      } else {
        std::cout << "window:    " << When(*v) << "\n";
      }
      const auto& last = st.at("last_firing");
      if (!last.is_null()) {
        std::cout << "last:      " << Local(*v, Text(last, "due")) << " " << Text(last, "kind")
                  << " " << Text(last, "status") << ": " << Text(last, "result") << "\n";
      }
      return 0;
    };
  });

  auto* trigger = sc->add_subcommand("trigger", "Fire a schedule's action now.");
  trigger->add_option("name", name, "schedule")->required();
  trigger->callback([&] {
    run = [&] {
      auto v = Call(flags, "POST", "/v1/schedules/" + UrlEncode(name) + "/trigger");
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "triggered " << name << " (firing due " << Text(*v, "due")
                  << "; see drover schedule firings " << name << ")\n";
      }
      return 0;
    };
  });

  auto* firings = sc->add_subcommand("firings", "A schedule's firings, newest first.");
  firings->add_option("name", name, "schedule")->required();
  firings->callback([&] {
    run = [&] {
      return PrintList(flags, "/v1/schedules/" + UrlEncode(name) + "/firings?limit=1000",
                       {"DUE", "FIRED", "KIND", "STATUS", "SERVER", "RESULT"},
                       [](const boost::json::value& f) -> std::vector<std::string> {
                         return {Text(f, "due"),    Text(f, "fired_at"), Text(f, "kind"),
                                 Text(f, "status"), Text(f, "server"),   Text(f, "result")};
                       });
    };
  });

  auto* rm = sc->add_subcommand("rm", "Delete a schedule and its firings.");
  rm->add_option("name", name, "schedule")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/schedules/" + UrlEncode(name))) return 1;
      return Deleted(flags, "schedule", name);
    };
  });
}

}  // namespace drover::cmd
