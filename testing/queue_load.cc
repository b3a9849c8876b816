#include "testing/queue_load.h"

#include <boost/json.hpp>

namespace drover::testing {

void SendNumbered(client::Client& c, const std::string& queue, const std::string& prefix, int n,
                  QueueLog& log, const std::atomic<bool>& stop) {
  for (int i = 0; i < n && !stop; ++i) {
    std::string body = prefix + "-" + std::to_string(i);
    auto r = c.Do("POST", "/v1/queues/" + queue + "/messages", "{\"body\":\"" + body + "\"}");
    if (!r.ok()) return;
    if (r->status == 201) {
      std::lock_guard lock(log.mu);
      log.sent.insert(body);
    }
  }
}

void ConsumeAndAck(client::Client& c, const std::string& queue, QueueLog& log,
                   const std::atomic<bool>& stop, const std::string& wait, int idle_polls) {
  int idle = 0;
  while (!stop) {
    auto r =
        c.Do("POST", "/v1/queues/" + queue + "/receive", "{\"max\":10,\"wait\":\"" + wait + "\"}");
    if (!r.ok()) return;
    if (r->status != 200) continue;
    boost::system::error_code ec;
    auto v = boost::json::parse(r->body, ec);
    if (ec) continue;
    const auto& msgs = v.at("messages").as_array();
    if (msgs.empty()) {
      if (idle_polls > 0 && ++idle >= idle_polls) return;
      continue;
    }
    idle = 0;
    boost::json::array receipts;
    std::vector<std::string> bodies;
    {
      std::lock_guard lock(log.mu);
      for (const auto& m : msgs) {
        std::string body(m.at("body").as_string());
        log.received[body]++;
        if (log.holders[body]++ > 0) log.held_twice.push_back(body);
        receipts.push_back(m.at("receipt"));
        bodies.push_back(body);
      }
    }
    auto ack = c.Do("POST", "/v1/queues/" + queue + "/ack",
                    boost::json::serialize(boost::json::object{{"receipts", receipts}}));
    std::lock_guard lock(log.mu);
    std::set<std::string> stale;
    if (ack.ok() && ack->status == 200) {
      auto a = boost::json::parse(ack->body, ec);
      if (!ec) {
        for (const auto& s : a.at("stale").as_array()) stale.insert(std::string(s.as_string()));
      }
    }
    for (size_t i = 0; i < bodies.size(); ++i) {
      log.holders[bodies[i]]--;
      bool acked =
          ack.ok() && ack->status == 200 && !stale.contains(std::string(receipts[i].as_string()));
      if (acked) log.acked.insert(bodies[i]);
      if (!ack.ok()) log.ack_unknown.insert(bodies[i]);
    }
    if (!ack.ok()) return;
  }
}

}  // namespace drover::testing
