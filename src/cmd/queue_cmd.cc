// `drover queue create|ls|stats|send|recv|ack|redrive|purge|rm` and
// `drover topic create|ls|subscribe|unsubscribe|publish|rm` (docs/queues.md).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/usage.h"
#include "common/duration.h"

namespace drover::cmd {
namespace {

struct MessageFlags {
  std::vector<std::string> attrs;  // k=v
  std::string group, dedup_id, delay;
};

void AddMessageFlags(CLI::App* cmd, MessageFlags& m) {
  cmd->add_option("--attr", m.attrs, "an attribute, name=value (repeatable)");
  cmd->add_option("--group", m.group, "the message group (FIFO queues)");
  cmd->add_option("--dedup-id", m.dedup_id, "drop a second send with this id within 5 minutes");
  cmd->add_option("--delay", m.delay, "deliver after this long (e.g. 30s)");
}

// The message object for `body` with the flags' fields; nullopt (after a usage error) for a
// bad flag.
std::optional<boost::json::object> MessageJson(const CLI::App* cmd, const MessageFlags& m,
                                               const std::string& body, int* rc) {
  boost::json::object msg{{"body", body}};
  if (!m.attrs.empty()) {
    boost::json::object attrs;
    for (const auto& a : m.attrs) {
      auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0) {
        *rc = UsageError(cmd, "--attr takes name=value, not '" + a + "'");
        return std::nullopt;
      }
      attrs[a.substr(0, eq)] = a.substr(eq + 1);
    }
    msg["attributes"] = std::move(attrs);
  }
  if (!m.group.empty()) msg["group"] = m.group;
  if (!m.dedup_id.empty()) msg["dedup_id"] = m.dedup_id;
  if (!m.delay.empty()) {
    if (!ParseDuration(m.delay)) {
      *rc = UsageError(cmd, "--delay takes a duration like 30s, not '" + m.delay + "'");
      return std::nullopt;
    }
    msg["delay"] = m.delay;
  }
  return msg;
}

// Sends `body` (one message), or every line of stdin in batches of 100 with a progress line on
// stderr. `path` is the collection to POST to (a queue's or a topic's messages).
int SendMessages(const ClientFlags& flags, const CLI::App* cmd, const std::string& path,
                 const std::optional<std::string>& body, const MessageFlags& m) {
  int rc = 0;
  if (body) {
    auto msg = MessageJson(cmd, m, *body, &rc);
    if (!msg) return rc;
    auto r = Call(flags, "POST", path, boost::json::serialize(*msg));
    if (!r) return 1;
    if (flags.structured()) {
      PrintData(flags, *r);
    } else if (const auto* list = r->as_object().if_contains("messages")) {  // a topic's
      size_t n =
          list->as_array().empty() ? 0 : list->as_array()[0].at("deliveries").as_array().size();
      std::cout << "published to " << n << " queue" << (n == 1 ? "" : "s") << "\n";
    } else {
      std::cout << "sent " << Text(*r, "id")
                << (Text(*r, "duplicate") == "true" ? " (a duplicate: dropped)" : "") << "\n";
    }
    return 0;
  }
  if (!m.dedup_id.empty()) {
    return UsageError(cmd, "--dedup-id names one message: give the body as an argument");
  }
  int64_t sent = 0;
  boost::json::array batch;
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    boost::json::object req{{"messages", std::move(batch)}};
    batch = {};
    auto r = Call(flags, "POST", path, boost::json::serialize(req));
    if (!r) return false;
    sent += static_cast<int64_t>(r->at("messages").as_array().size());
    if (!flags.structured()) std::cerr << "\rsent " << sent << std::flush;
    return true;
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto msg = MessageJson(cmd, m, line, &rc);
    if (!msg) return rc;
    batch.push_back(std::move(*msg));
    if (batch.size() == 100 && !flush()) return 1;
  }
  if (!flush()) return 1;
  if (flags.structured()) {
    PrintData(flags, boost::json::object{{"sent", sent}});
  } else {
    std::cerr << "\rsent " << sent << " message" << (sent == 1 ? "" : "s") << "\n";
  }
  return 0;
}

// Prints an answer: the data with -o json/yaml, else `sentence` followed by `field`'s value.
int PrintAnswer(const ClientFlags& flags, const boost::json::value& v, std::string_view sentence,
                std::string_view field) {
  if (flags.structured()) {
    PrintData(flags, v);
  } else {
    std::cout << sentence << Text(v, field) << "\n";
  }
  return 0;
}

}  // namespace

void AddQueueCommands(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* q = app.add_subcommand(
      "queue", "Queues: create, list, stats, send, receive, ack, redrive, purge, delete.");
  q->require_subcommand(1);
  static std::string name;

  static struct {
    bool fifo = false;
    std::string visibility, retention, delay, dlq;
    int64_t max_receives = -1, max_size = -1;
  } cf;
  auto* create = q->add_subcommand("create", "Create or change a queue.");
  create->add_option("name", name, "queue")->required();
  create->add_flag("--fifo", cf.fifo, "a FIFO queue: order and one in flight per message group");
  create->add_option("--visibility-timeout", cf.visibility, "how long a received message is held");
  create->add_option("--max-receives", cf.max_receives,
                     "receives before it moves to the dead-letter queue (0: no limit)");
  create->add_option("--dead-letter-queue", cf.dlq, "where messages go after --max-receives");
  create->add_option("--retention", cf.retention, "how long a message is kept (1m to 14d)");
  create->add_option("--delay", cf.delay, "default delay of every message");
  create->add_option("--max-message-size", cf.max_size, "largest message in bytes");
  create->callback([&] {
    run = [&] {
      boost::json::object spec;
      if (cf.fifo) spec["fifo"] = true;
      if (!cf.visibility.empty()) spec["visibility_timeout"] = cf.visibility;
      if (cf.max_receives >= 0) spec["max_receives"] = cf.max_receives;
      if (!cf.dlq.empty()) spec["dead_letter_queue"] = cf.dlq;
      if (!cf.retention.empty()) spec["retention"] = cf.retention;
      if (!cf.delay.empty()) spec["delay"] = cf.delay;
      if (cf.max_size >= 0) spec["max_message_size"] = cf.max_size;
      client::Response raw;
      auto r =
          Call(flags, "PUT", "/v1/queues/" + UrlEncode(name), boost::json::serialize(spec), &raw);
      if (!r) return 1;
      if (flags.structured()) {
        PrintData(flags, *r);
      } else {
        std::cout << "queue/" << name << " "
                  << (raw.status == 201                            ? "created"
                      : raw.Header("X-Drover-Unchanged") == "true" ? "unchanged"
                                                                   : "configured")
                  << "\n";
      }
      return 0;
    };
  });

  q->add_subcommand("ls", "List queues.")->callback([&] {
    run = [&] {
      return PrintList(
          flags, "/v1/queues?limit=1000",
          {"NAME", "FIFO", "VISIBILITY", "MAX RECEIVES", "DEAD LETTER", "RETENTION"},
          [](const boost::json::value& v) -> std::vector<std::string> {
            const auto& s = v.at("spec");
            return {Text(v, "name"),
                    Text(s, "fifo"),
                    Text(s, "visibility_timeout"),
                    Text(s, "max_receives"),
                    Text(s, "dead_letter_queue").empty() ? "-" : Text(s, "dead_letter_queue"),
                    Text(s, "retention")};
          });
    };
  });

  auto* stats = q->add_subcommand("stats", "A queue's depth, oldest message and counters.");
  stats->add_option("name", name, "queue")->required();
  stats->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/queues/" + UrlEncode(name));
      if (!v) return 1;
      const auto& st = v->at("stats");
      if (flags.structured()) {
        PrintData(flags, st);
        return 0;
      }
      std::vector<std::vector<std::string>> rows;
      for (const char* k : {"visible", "in_flight", "delayed", "oldest_age_seconds", "dlq_depth",
                            "sent", "received", "acked", "dead_lettered"}) {
        std::string value = Text(st, k);
        rows.push_back({k, value.empty() ? "-" : value});
      }
      PrintTable({"STAT", "VALUE"}, rows);
      return 0;
    };
  });

  static std::optional<std::string> body;
  static MessageFlags mf;
  auto* send = q->add_subcommand(
      "send", "Send a message, or each line of stdin as one (in batches of 100).");
  send->add_option("name", name, "queue")->required();
  send->add_option("body", body, "the message (default: read stdin, one message per line)");
  AddMessageFlags(send, mf);
  send->callback([&, send] {
    run = [&, send] {
      return SendMessages(flags, send, "/v1/queues/" + UrlEncode(name) + "/messages", body, mf);
    };
  });

  static int max = 1;
  static std::string wait = "0s", visibility;
  auto* recv = q->add_subcommand("recv", "Receive messages (ack them with drover queue ack).");
  recv->add_option("name", name, "queue")->required();
  recv->add_option("--max", max, "at most this many (1-10)")->capture_default_str();
  recv->add_option("--wait", wait, "long-poll up to this long (at most 20s)")
      ->capture_default_str();
  recv->add_option("--visibility-timeout", visibility, "hold them this long instead");
  recv->callback([&, recv] {
    run = [&, recv] {
      if (max < 1 || max > 10) return UsageError(recv, "--max must be 1..10");
      auto w = ParseDuration(wait);
      if (!w || *w > std::chrono::seconds(20)) {
        return UsageError(recv, "--wait takes a duration up to 20s");
      }
      boost::json::object req{{"max", max}, {"wait", wait}};
      if (!visibility.empty()) req["visibility_timeout"] = visibility;
      auto v = Call(flags, "POST", "/v1/queues/" + UrlEncode(name) + "/receive",
                    boost::json::serialize(req));
      if (!v) return 1;
      const auto& msgs = v->at("messages").as_array();
      if (flags.structured()) {
        PrintData(flags, msgs);
        return 0;
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& m : msgs) {
        rows.push_back(
            {Text(m, "id"), Text(m, "receive_count"), Text(m, "body"), Text(m, "receipt")});
      }
      PrintTable({"ID", "RECEIVES", "BODY", "RECEIPT"}, rows);
      return 0;
    };
  });

  static std::vector<std::string> receipts;
  auto* ack = q->add_subcommand("ack", "Ack (delete) received messages by their receipts.");
  ack->add_option("name", name, "queue")->required();
  ack->add_option("receipts", receipts, "receipts from drover queue recv (at most 100)")
      ->required();
  ack->callback([&, ack] {
    run = [&, ack] {
      if (receipts.size() > 100) return UsageError(ack, "at most 100 receipts at once");
      boost::json::array list;
      for (const auto& r : receipts) list.push_back(boost::json::value(r));
      auto v = Call(flags, "POST", "/v1/queues/" + UrlEncode(name) + "/ack",
                    boost::json::serialize(boost::json::object{{"receipts", list}}));
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "acked " << Text(*v, "acked");
        size_t stale = v->at("stale").as_array().size();
        if (stale) std::cout << "; " << stale << " stale (no longer held: received again?)";
        std::cout << "\n";
      }
      return v->at("stale").as_array().empty() ? 0 : 1;
    };
  });

  static int64_t redrive_max = 0;
  auto* redrive = q->add_subcommand(
      "redrive", "Move a dead-letter queue's messages back to the queues they came from.");
  redrive->add_option("name", name, "the dead-letter queue")->required();
  redrive->add_option("--max", redrive_max, "at most this many (default: all)");
  redrive->callback([&, redrive] {
    run = [&, redrive] {
      if (redrive_max < 0) return UsageError(redrive, "--max must be at least 1");
      std::string req = redrive_max > 0 ? "{\"max\":" + std::to_string(redrive_max) + "}" : "{}";
      auto v = Call(flags, "POST", "/v1/queues/" + UrlEncode(name) + "/redrive", req);
      return v ? PrintAnswer(flags, *v, "moved ", "moved") : 1;
    };
  });

  auto* purge = q->add_subcommand("purge", "Delete every message of a queue.");
  purge->add_option("name", name, "queue")->required();
  purge->callback([&] {
    run = [&] {
      auto v = Call(flags, "POST", "/v1/queues/" + UrlEncode(name) + "/purge");
      return v ? PrintAnswer(flags, *v, "purged ", "purged") : 1;
    };
  });

  auto* rm = q->add_subcommand("rm", "Delete a queue and its messages.");
  rm->add_option("name", name, "queue")->required();
  rm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/queues/" + UrlEncode(name))) return 1;
      return Deleted(flags, "queue", name);
    };
  });

  // Topics.
  auto* t = app.add_subcommand(
      "topic", "Topics: create, list, subscribe and unsubscribe queues, publish, delete.");
  t->require_subcommand(1);
  static std::string topic, queue, filter;
  auto* tcreate = t->add_subcommand("create", "Create a topic.");
  tcreate->add_option("name", topic, "topic")->required();
  tcreate->callback([&] {
    run = [&] {
      client::Response raw;
      auto v = Call(flags, "PUT", "/v1/topics/" + UrlEncode(topic), "", &raw);
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "topic/" << topic << (raw.status == 201 ? " created" : " unchanged") << "\n";
      }
      return 0;
    };
  });
  t->add_subcommand("ls", "List topics with their subscriptions.")->callback([&] {
    run = [&] {
      return PrintList(flags, "/v1/topics?limit=1000", {"NAME", "SUBSCRIPTIONS"},
                       [](const boost::json::value& v) -> std::vector<std::string> {
                         std::string subs;
                         for (const auto& s : v.at("subscriptions").as_array()) {
                           if (!subs.empty()) subs += ", ";
                           subs += Text(s, "queue");
                           if (!s.at("filter").is_null()) subs += " (filtered)";
                         }
                         return {Text(v, "name"), subs.empty() ? "-" : subs};
                       });
    };
  });
  auto* sub = t->add_subcommand("subscribe", "Subscribe a queue to a topic.");
  sub->add_option("topic", topic, "topic")->required();
  sub->add_option("queue", queue, "queue")->required();
  sub->add_option("--filter", filter,
                  "a filter policy on attributes, JSON: '{\"region\": [\"eu\", \"us\"]}'");
  sub->callback([&, sub] {
    run = [&, sub] {
      boost::json::object req;
      if (!filter.empty()) {
        boost::system::error_code ec;
        auto f = boost::json::parse(filter, ec);
        if (ec || !f.is_object()) return UsageError(sub, "--filter must be a JSON object");
        req["filter"] = std::move(f);
      }
      client::Response raw;
      auto v = Call(flags, "PUT",
                    "/v1/topics/" + UrlEncode(topic) + "/subscriptions/" + UrlEncode(queue),
                    boost::json::serialize(req), &raw);
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
      } else {
        std::cout << "queue/" << queue << " subscribed to topic/" << topic << "\n";
      }
      return 0;
    };
  });
  auto* unsub = t->add_subcommand("unsubscribe", "Unsubscribe a queue from a topic.");
  unsub->add_option("topic", topic, "topic")->required();
  unsub->add_option("queue", queue, "queue")->required();
  unsub->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE",
                "/v1/topics/" + UrlEncode(topic) + "/subscriptions/" + UrlEncode(queue))) {
        return 1;
      }
      return Deleted(flags, "subscription", topic + "/" + queue);
    };
  });
  static std::optional<std::string> pbody;
  static MessageFlags pf;
  auto* publish = t->add_subcommand(
      "publish", "Publish a message, or each line of stdin as one (in batches of 100).");
  publish->add_option("topic", topic, "topic")->required();
  publish->add_option("body", pbody, "the message (default: read stdin, one message per line)");
  AddMessageFlags(publish, pf);
  publish->callback([&, publish] {
    run = [&, publish] {
      return SendMessages(flags, publish, "/v1/topics/" + UrlEncode(topic) + "/messages", pbody,
                          pf);
    };
  });
  auto* trm = t->add_subcommand("rm", "Delete a topic and its subscriptions (not the queues).");
  trm->add_option("name", topic, "topic")->required();
  trm->callback([&] {
    run = [&] {
      if (!Call(flags, "DELETE", "/v1/topics/" + UrlEncode(topic))) return 1;
      return Deleted(flags, "topic", topic);
    };
  });
}

}  // namespace drover::cmd
