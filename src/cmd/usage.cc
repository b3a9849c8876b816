#include "cmd/usage.h"

#include <algorithm>
#include <cstdio>

namespace drover::cmd {
namespace {

// Edit distance (insert, delete, substitute), for "did you mean".
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<const CLI::App*> Subcommands(const CLI::App* app) {
  return app->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); });
}

// The option named `arg` ("--addr", "-o") of `app` or of a command above it (options fall
// through to the parents).
const CLI::Option* FindOption(const CLI::App* app, const std::string& arg) {
  for (; app; app = app->get_parent()) {
    if (const auto* opt = app->get_option_no_throw(arg)) return opt;
  }
  return nullptr;
}

// The command being parsed when parsing stopped: the deepest one selected.
const CLI::App* Deepest(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    auto parsed = at->get_subcommands();
    if (parsed.empty()) return at;
    at = parsed.back();
  }
}

std::string UsageOf(const CLI::App* app) {
  auto f = std::dynamic_pointer_cast<FullNameFormatter>(app->get_formatter());
  FullNameFormatter fallback;
  std::string line = (f ? f.get() : &fallback)->make_usage(app, app->get_name());
  while (!line.empty() && (line.back() == '\n' || line.front() == '\n')) {
    if (line.back() == '\n') line.pop_back();
    if (!line.empty() && line.front() == '\n') line.erase(0, 1);
  }
  return line;
}

}  // namespace

std::string CommandPath(const CLI::App* app) {
  std::vector<std::string> names;
  for (; app; app = app->get_parent()) names.push_back(app->get_name());
  std::string out;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    if (it->empty()) continue;
    if (!out.empty()) out += ' ';
    out += *it;
  }
  return out;
}

std::string FullNameFormatter::make_usage(const CLI::App* app, std::string) const {
  return CLI::Formatter::make_usage(app, CommandPath(app));
}

int CheckCommandNames(CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.size() > 1 && a[0] == '-') {
      // An option that needs a value takes the next argument, unless given as --name=value.
      if (a.find('=') == std::string::npos) {
        const auto* opt = FindOption(current, a);
        if (opt && opt->get_expected_min() > 0) ++i;
      }
      continue;
    }
    auto subs = Subcommands(current);
    if (subs.empty()) return 0;  // a leaf command's arguments
    const CLI::App* next = nullptr;
    for (const auto* s : subs) {
      if (s->check_name(a)) next = s;
    }
    if (next) {
      current = next;
      continue;
    }
    if (current->get_require_subcommand_min() == 0) return 0;  // an argument, not a command
    std::vector<std::string> close;
    size_t best = a.size() / 3 + 1;
    for (const auto* s : subs) best = std::min(best, Distance(a, s->get_name()));
    for (const auto* s : subs) {
      const std::string& n = s->get_name();
      if (Distance(a, n) == best || (a.size() >= 2 && n.starts_with(a))) close.push_back(n);
    }
    std::string hint;
    if (!close.empty()) {
      hint = " (did you mean ";
      for (size_t k = 0; k < close.size(); ++k) {
        hint += (k ? k + 1 == close.size() ? " or '" : ", '" : "'") + close[k] + "'";
      }
      hint += "?)";
    }
    std::fprintf(
        stderr, "error: unknown command '%s' for '%s'%s\nRun '%s --help' for the commands.\n",
        a.c_str(), CommandPath(current).c_str(), hint.c_str(), CommandPath(current).c_str());
    return kUsageError;
  }
  return 0;
}

int ReportUsageError(CLI::App& app, const CLI::ParseError& e) {
  std::string name = e.get_name();
  if (name == "CallForHelp" || name == "CallForAllHelp" || name == "CallForVersion") {
    return app.exit(e);
  }
  const CLI::App* at = Deepest(app);
  if (name == "RequiredError" && std::string(e.what()).find("subcommand") != std::string::npos) {
    std::string commands;
    for (const auto* s : Subcommands(at))
      commands += (commands.empty() ? "" : ", ") + s->get_name();
    std::fprintf(stderr, "error: '%s' needs a command: %s\nRun '%s --help' for more.\n",
                 CommandPath(at).c_str(), commands.c_str(), CommandPath(at).c_str());
    return kUsageError;
  }
  return UsageError(at, e.what());
}

int UsageError(const CLI::App* cmd, const std::string& message) {
  std::fprintf(stderr, "error: %s\n%s\nRun '%s --help' for more.\n", message.c_str(),
               UsageOf(cmd).c_str(), CommandPath(cmd).c_str());
  return kUsageError;
}

}  // namespace drover::cmd
