// `drover status`
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"

namespace drover::cmd {

void AddStatusCommand(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* s = app.add_subcommand("status", "Show the server's version, store, uptime and index.");
  s->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/status");
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "server:   " << flags.addr << "\nversion:  " << Text(*v, "version")
                << "\nstore:    " << Text(*v, "backend") << "\nstarted:  " << Text(*v, "started_at")
                << "\nuptime:   " << Text(*v, "uptime_seconds")
                << "s\nindex:    " << Text(*v, "index") << "\n";
      return 0;
    };
  });
}

}  // namespace drover::cmd
