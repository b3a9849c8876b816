#pragma once
// A loopback HTTP endpoint that answers every request with one fixed response (status, headers,
// body) — what an agent may be pointed at with --cc (a CDN rule, a static file), and what an
// attacker in the middle would serve in the signature tests. Runs on its own thread.
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace drover::testing {

class FixedHttp {
 public:
  FixedHttp();
  ~FixedHttp();
  void Set(std::vector<std::pair<std::string, std::string>> headers, std::string body);
  // The next requests are answered with these statuses (empty bodies), in order, before the
  // fixed response again: a service that fails and then recovers.
  void FailNext(std::vector<int> statuses);
  // Waits this long before answering each request (a service too slow for its caller).
  void SetDelay(std::chrono::milliseconds d);
  std::string url(const std::string& path = "/") const;
  int requests() const { return requests_; }
  // The last request as received (head and body).
  std::string last_request() const;

 private:
  void Loop();
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::string response_;
  std::deque<int> failures_;
  std::chrono::milliseconds delay_{0};
  std::string last_request_;
  std::thread thread_;
};

}  // namespace drover::testing
