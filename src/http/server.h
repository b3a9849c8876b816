#pragma once
// The HTTP/1.1 server: Boost.Beast on Asio with C++20 coroutines, one io_context per I/O thread
// (connections are spread round-robin, so a connection's work never needs a strand), keep-alive,
// a request-body limit (413), header/idle/read/write timeouts, and graceful shutdown. Every
// request goes through the Pipeline. The Beast types stay in server.cc.
#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/pipeline.h"
#include "runtime/blocking_pool.h"

namespace drover::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:7400";  // host:port; port 0 picks a free one
  int threads = 0;                        // 0 = hardware concurrency
  std::size_t body_limit = 1 << 20;       // bytes; larger bodies get 413
  std::chrono::seconds idle_timeout{60};  // wait for the next request on a kept-alive connection
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds read_timeout{30};  // the body
  std::chrono::seconds write_timeout{30};
  std::chrono::seconds drain_timeout{30};  // how long Stop() waits for in-flight requests
  // Open connections beyond this get 503 and are closed. 0: three quarters of the open-file
  // limit, at most 16384 (the rest is for the store, agents and logs).
  int max_connections = 0;
  // Where requests that may wait on the store run (authentication and handlers of every
  // non-public route, a streaming handler's RunBlocking): null runs them on the I/O thread
  // (SQLite, whose reads are local and fast). Not owned; outlives the server.
  runtime::BlockingPool* store_pool = nullptr;
};

class Server {
 public:
  Server(ServerOptions options, Pipeline& pipeline);
  ~Server();
  // Binds and starts the I/O threads. Unavailable when the address cannot be bound.
  Status Start();
  // "host:port" actually bound (useful with port 0).
  std::string BoundAddress() const;
  // Stops accepting, lets in-flight requests finish (up to drain_timeout), closes idle
  // connections and joins the I/O threads. Idempotent; call from any non-I/O thread.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::http
