// `drover route ls|get|rm` (docs/gateway.md); routes are created with `drover apply`.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/usage.h"

namespace drover::cmd {
namespace {

// Where a route sends requests: its upstreams, or "env/NAME".
std::string Targets(const boost::json::value& route) {
  const auto& spec = route.at("spec").as_object();
  if (const auto* e = spec.if_contains("environment"); e && e->is_string()) {
    return "env/" + std::string(e->as_string());
  }
  std::string out;
  if (const auto* u = spec.if_contains("upstreams"); u && u->is_array()) {
    for (const auto& x : u->as_array()) {
      if (!out.empty()) out += ",";
      out += x.is_string() ? std::string(x.as_string()) : "?";
    }
  }
  return out;
}

}  // namespace

void AddRouteCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* route = app.add_subcommand("route", "Gateway routes: list, show, delete (create: apply).");
  route->require_subcommand(1);
  static std::string name;

  route->add_subcommand("ls", "List routes.")->callback([&] {
    run = [&] {
      return PrintList(flags, "/v1/routes?limit=1000", {"NAME", "TARGET", "AUTH", "UPDATED"},
                       [](const boost::json::value& v) -> std::vector<std::string> {
                         std::string auth = Text(v.at("spec"), "auth");
                         return {Text(v, "name"), Targets(v), auth.empty() ? "required" : auth,
                                 Text(v, "updated_at")};
                       });
    };
  });

  auto* get = route->add_subcommand("get", "A route's spec and its upstreams' health.");
  get->add_option("name", name, "route")->required();
  get->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/routes/" + UrlEncode(name));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "route/" << Text(*v, "name") << " -> " << Targets(*v) << "\n"
                << "  /svc/" << Text(*v, "name") << "/  spec "
                << boost::json::serialize(v->at("spec")) << "\n";
      const auto* status = v->as_object().if_contains("status");
      if (!status) return 0;
      std::vector<std::vector<std::string>> rows;
      for (const auto& u : status->at("upstreams").as_array()) {
        std::string state = !u.at("ready").as_bool()    ? "not ready"
                            : u.at("ejected").as_bool() ? "ejected"
                                                        : "healthy";
        rows.push_back({Text(u, "url"), state, Text(u, "in_flight"), Text(u, "ejections")});
      }
      PrintTable({"UPSTREAM", "STATE", "IN FLIGHT", "EJECTIONS"}, rows);
      return 0;
    };
  });

  auto* rm = route->add_subcommand("rm", "Delete a route.");
  rm->add_option("name", name, "route")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/routes/" + UrlEncode(name))) return 1;
      return Deleted(flags, "route", name);
    };
  });
}

}  // namespace drover::cmd
