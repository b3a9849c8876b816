#pragma once
// Queue load for integration tests: producers sending numbered messages and consumers that
// receive, record and ack them over real HTTP, with what each saw answered kept for the checks
// (every send answered 201 delivered, every ack answered 2xx never delivered again).
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "client/client.h"

namespace drover::testing {

struct QueueLog {
  std::mutex mu;
  std::set<std::string> sent;           // bodies answered 201
  std::map<std::string, int> received;  // body -> times received
  std::set<std::string> acked;          // bodies whose ack answered 2xx
  std::set<std::string> ack_unknown;    // acks sent without an answer (the server died)
  std::vector<std::string> held_twice;  // received while another consumer held it
  std::map<std::string, int> holders;   // body -> consumers holding it now
};

// Sends bodies "<prefix>-<i>" for i in [0, n) one at a time; stops early at `stop` or when the
// server goes away. Records each body answered 201.
void SendNumbered(client::Client& c, const std::string& queue, const std::string& prefix, int n,
                  QueueLog& log, const std::atomic<bool>& stop);

// Receives (up to 10, long-polling `wait`) and acks in batches until `stop`, or until the
// queue answers nothing for `idle_polls` polls in a row (0: never). Returns when the server
// goes away too.
void ConsumeAndAck(client::Client& c, const std::string& queue, QueueLog& log,
                   const std::atomic<bool>& stop, const std::string& wait = "1s",
                   int idle_polls = 0);

}  // namespace drover::testing
