#pragma once
// The drover HTTP API client, shared by the CLI, the agent and the integration tests. One
// keep-alive connection, reopened when the server closes it. Not thread-safe: one per thread.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace drover::client {

struct Response {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // A header's value (case-insensitive name), empty when absent.
  std::string Header(std::string_view name) const;
  bool ok() const { return status >= 200 && status < 300; }
};

struct Options {
  std::string addr = "http://127.0.0.1:7400";  // http://host:port
  std::string token;                           // sent as a bearer key when not empty
  std::chrono::milliseconds timeout{30000};    // per request
};

class Client {
 public:
  explicit Client(Options options);
  ~Client();
  // Sends one request. Unavailable when the server cannot be reached or the connection breaks;
  // any HTTP status (including 4xx/5xx) is a successful Response.
  Result<Response> Do(std::string_view method, std::string_view target, std::string_view body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {});
  // Converts a non-2xx response to a Status carrying the server's problem detail.
  static Status ToStatus(const Response& r);
  const Options& options() const { return options_; }
  // Per-request time limit from now on (e.g. longer for a blocking query).
  void set_timeout(std::chrono::milliseconds t) { options_.timeout = t; }
  // Makes the request in flight (and every later one) fail with Unavailable("interrupted") at once.
  // The one method callable from another thread (e.g. a signal handler thread stopping an agent
  // that waits in a blocking query).
  void Interrupt();

 private:
  struct Impl;
  Options options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::client
