// `drover key create|ls|rm|gen-signing`
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cmd/client_util.h"
#include "common/json.h"
#include "control/signing.h"

namespace drover::cmd {

void AddKeyCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* key = app.add_subcommand("key", "Manage API keys.");
  key->require_subcommand(1);

  struct CreateArgs {
    std::string name, role = "user", tenant;
    int64_t rps = -1, burst = -1;
  };
  static CreateArgs c;
  auto* create = key->add_subcommand("create", "Create a key; its secret is shown once.");
  create->add_option("name", c.name, "key name")->required();
  create->add_option("--role", c.role, "admin, user, viewer or agent")->capture_default_str();
  create->add_option("--tenant", c.tenant, "tenant (default: your key's)");
  create->add_option("--rps", c.rps, "rate limit for this key, requests/s (0 = unlimited)");
  create->add_option("--burst", c.burst, "rate-limit burst");
  create->callback([&] {
    run = [&] {
      boost::json::object body{{"name", c.name}, {"role", c.role}};
      if (!c.tenant.empty()) body["tenant"] = c.tenant;
      if (c.rps >= 0) {
        boost::json::object rl{{"rps", c.rps}};
        if (c.burst >= 0) rl["burst"] = c.burst;
        body["rate_limit"] = rl;
      }
      auto v = Call(flags, "POST", "/v1/keys", boost::json::serialize(body));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "id:     " << Text(*v, "id") << "\nrole:   " << Text(*v, "role")
                  << "\ntenant: " << Text(*v, "tenant") << "\nkey:    " << Text(*v, "key")
                  << "\n\nThe key is shown once: store it now.\n";
      }
      return 0;
    };
  });

  static std::string list_tenant;
  auto* ls = key->add_subcommand("ls", "List keys (never their secrets).");
  ls->add_option("--tenant", list_tenant, "only this tenant (admin)");
  ls->callback([&] {
    run = [&] {
      std::string target = "/v1/keys?limit=1000";
      if (!list_tenant.empty()) target += "&tenant=" + UrlEncode(list_tenant);
      return PrintList(flags, target, {"ID", "NAME", "ROLE", "TENANT", "CREATED"},
                       [](const boost::json::value& k) -> std::vector<std::string> {
                         return {Text(k, "id"), Text(k, "name"), Text(k, "role"), Text(k, "tenant"),
                                 Text(k, "created_at")};
                       });
    };
  });

  static std::string sign_out;
  auto* gen = key->add_subcommand(
      "gen-signing",
      "Create an ed25519 key pair for signed control-center answers: PATH (private, for "
      "drover server --signing-key) and PATH.pub (public, for drover agent --verify-key).");
  gen->add_option("path", sign_out, "where to write the private key")->required();
  gen->callback([&] {
    run = [&] {
      auto pair = control::SigningKey::Generate();
      if (!pair.ok()) {
        std::cerr << "error: " << pair.status().message() << "\n";
        return 1;
      }
      // The private key is created owner-only from the start, never readable by others.
      int fd = ::open(sign_out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) {
        std::cerr << "error: cannot create " << sign_out << ": " << std::strerror(errno)
                  << (errno == EEXIST ? " (not overwriting an existing key)" : "") << "\n";
        return 1;
      }
      bool ok = ::write(fd, pair->first.data(), pair->first.size()) ==
                static_cast<ssize_t>(pair->first.size());
      ok = ::fsync(fd) == 0 && ok;
      ::close(fd);
      std::ofstream pub(sign_out + ".pub", std::ios::trunc);
      pub << pair->second;
      pub.close();
      if (!ok || !pub) {
        std::cerr << "error: cannot write the key files\n";
        return 1;
      }
      if (flags.structured()) {
        PrintData(flags, boost::json::object{{"private_key", sign_out},
                                             {"public_key", sign_out + ".pub"}});
        return 0;
      }
      std::cout << "private key: " << sign_out << "  (drover server --signing-key)\n"
                << "public key:  " << sign_out << ".pub  (drover agent --verify-key)\n";
      return 0;
    };
  });

  static std::string rm_id;
  auto* rm = key->add_subcommand("rm", "Delete a key.");
  rm->add_option("id", rm_id, "key id (k_...)")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/keys/" + UrlEncode(rm_id))) return 1;
      return Deleted(flags, "key", rm_id);
    };
  });
}

}  // namespace drover::cmd
