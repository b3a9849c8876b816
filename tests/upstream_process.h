#pragma once
// A real upstream for integration tests: tests/gateway_upstream.py on a free port (an HTTP
// service that echoes, streams, stalls, fails on purpose, speaks WebSocket and records
// webhooks). Killed when it goes out of scope.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "testing/temp_dir.h"
#include "testing/test_server.h"

namespace drover::testing {

inline const std::string kUpstreamScript =
    std::string(DROVER_SOURCE_DIR) + "/tests/gateway_upstream.py";

// A client of `addr` without a key.
inline client::Options Plain(const std::string& addr) {
  client::Options o;
  o.addr = addr;
  return o;
}

// One upstream process: gateway_upstream.py on a free port.
class Upstream {
 public:
  explicit Upstream(const std::string& name, std::vector<std::string> extra = {})
      : proc_(TestProcess::Program{"/usr/bin/env"}, Args(name, std::move(extra)),
              dir_.File("log")) {
    EXPECT_TRUE(WaitFor(
        [&] {
          std::istringstream first(proc_.Log());
          return static_cast<bool>(first >> port_ >> pid_);
        },
        30000))
        << proc_.Log();
  }
  ~Upstream() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Kill9() {
    ::kill(pid_, SIGKILL);
    pid_ = -1;
  }
  static std::vector<std::string> Args(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args{"python3", kUpstreamScript, "--port", "0", "--name", name};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  int64_t Hits() const {
    client::Client c(Plain(url()));
    auto r = c.Do("GET", "/hits");
    return r.ok() && r->status == 200 ? boost::json::parse(r->body).at("hits").as_int64() : -1;
  }

 private:
  TempDir dir_;
  TestProcess proc_;
  int port_ = 0;
  int pid_ = -1;
};

}  // namespace drover::testing
