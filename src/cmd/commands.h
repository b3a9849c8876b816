#pragma once
// One function per subcommand group; each registers its CLI11 subcommands and sets `run` to
// the action chosen. main.cc parses and runs it.
#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace drover::cmd {

using Run = std::function<int()>;

// Flags shared by every client subcommand (DROVER_ADDR, DROVER_TOKEN).
struct ClientFlags {
  std::string addr = "http://127.0.0.1:7400";
  std::string token;
  std::string output = "table";  // table | json | yaml
  std::string tenant;            // admin keys: act in this tenant (?tenant=)
  // -o json or -o yaml: data for scripts instead of tables and sentences.
  bool structured() const { return output != "table"; }
};

void AddServerCommand(CLI::App& app, Run& run);
void AddKeyCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddVarCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddStatusCommand(CLI::App& app, ClientFlags& flags, Run& run);
void AddUiCommand(CLI::App& app, ClientFlags& flags, Run& run);
void AddAgentCommand(CLI::App& app, Run& run);
void AddEnvCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddScheduleCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddAuditCommand(CLI::App& app, ClientFlags& flags, Run& run);
void AddQueueCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddWorkflowCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddRouteCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddAlertCommands(CLI::App& app, ClientFlags& flags, Run& run);
void AddLogsCommand(CLI::App& app, ClientFlags& flags, Run& run);

// Layers the server's config: YAML file (--config / DROVER_CONFIG) < DROVER_* environment <
// command-line flags. Returns the argv to parse, or an error message.
bool LayerServerConfig(CLI::App& server, int argc, char** argv, std::vector<std::string>* out,
                       std::string* error);

}  // namespace drover::cmd
