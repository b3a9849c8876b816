#pragma once
// Ships an instance's log lines to the server's log store (docs/logs.md#shipping): it tails the
// run logs in the work dir (stream "run"; a run log named `...-<32 hex>.log` carries that trace
// id) and the files given with --ship-log (stream: the file's name), following rotation (a file
// renamed or replaced is read to its end, then the new one from its start) and truncation. Lines go
// in batches to POST /v1/instances/{id}/logs.
//
// It never slows what writes the files: programs write to files, and the shipper reads them when
// it can. When the server is away it keeps at most `max_pending` lines and stops reading until
// they are sent (the files hold the rest); lines of a file removed before it was read are lost.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace drover::client {
class Client;
}

namespace drover::agent {

struct ShipperOptions {
  std::string server{};
  std::function<std::string()> token{};        // the agent key
  std::function<std::string()> instance_id{};  // "" until joined
  std::string run_logs_dir{};                  // each file in it, as stream "run"
  std::vector<std::string> files{};            // --ship-log
  std::chrono::milliseconds poll{200};
  size_t max_pending = 10000;      // lines read but not yet sent
  size_t batch_lines = 2000;       // per request (the server commits up to 2,000 at once)
  size_t batch_bytes = 512 << 10;  // per request
};

class LogShipper {
 public:
  explicit LogShipper(ShipperOptions options);
  ~LogShipper();  // Stop()

  // Starts tailing: the files there are now are read from their end (what a previous agent
  // process shipped, or wrote before shipping began); files that appear later from their start.
  void Start();
  // Reads and sends what it can for up to `drain`, then stops.
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(2));

  // Adds the lines of `text` (a finished task's output) as stream `stream` with `trace_id`,
  // without blocking: what does not fit the bounded buffer is dropped and counted. Thread-safe.
  void Append(const std::string& stream, std::string_view text, const std::string& trace_id);

  // Lines sent and accepted so far, and lines the server or this shipper dropped (tests).
  uint64_t shipped() const { return shipped_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  struct Tail;
  struct Line {
    int64_t at_ms;
    std::string stream, text, trace_id;
  };
  void Loop();
  void Discover(bool at_start);
  // Reads new bytes of every tailed file into pending_; true when it stopped at max_pending
  // lines with more to read.
  bool ReadAll();
  // Sends a batch of pending lines: sent (or refused for good), the server's buffer was full
  // (again shortly), or the server is away (later).
  enum class Sent { kSent, kBusy, kLater };
  Sent Send();

  ShipperOptions o_;
  std::map<std::string, std::unique_ptr<Tail>> tails_;  // by path; used by the loop only
  std::vector<Line> pending_;                           // the loop's
  std::unique_ptr<client::Client> client_;              // the loop's
  uint64_t lost_ = 0;  // dropped here, not yet told to the server (the loop's)
  std::atomic<uint64_t> shipped_{0}, dropped_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;       // GUARDED_BY(mu_)
  std::vector<Line> incoming_;  // GUARDED_BY(mu_): from Append
  uint64_t incoming_lost_ = 0;  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point drain_until_;
  std::thread thread_;
};

}  // namespace drover::agent
