#include "queues/queues_api.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <set>

#include "common/clock.h"
#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"
#include "http/handler_util.h"
#include "queues/filter.h"
#include "queues/settings.h"

namespace drover::queues {
namespace {

using http::Request;
using http::Responder;
using http::Response;

std::string Time(int64_t ms) { return FormatRfc3339(FromUnixMillis(ms)); }

boost::json::object QueueJson(const Queue& q) {
  return {{"name", q.name},
          {"tenant", q.tenant},
          {"spec", SettingsJson(q.settings)},
          {"modify_index", q.modify_index},
          {"created_at", Time(q.created_at_ms)},
          {"updated_at", Time(q.updated_at_ms)}};
}

boost::json::object StatsJson(const QueueStats& s) {
  return {{"visible", s.visible},
          {"in_flight", s.in_flight},
          {"delayed", s.delayed},
          {"oldest_age_seconds", static_cast<double>(s.oldest_age_ms) / 1000.0},
          {"dlq_depth", s.dlq_depth ? boost::json::value(*s.dlq_depth) : nullptr},
          {"sent", s.sent},
          {"received", s.received},
          {"acked", s.acked},
          {"dead_lettered", s.dead_lettered}};
}

// A duration field given as "30s" or whole seconds, at most `max_ms`.
std::optional<int64_t> ReadDurationField(JsonDecoder& d, std::string_view field, int64_t max_ms) {
  const boost::json::value* v = d.Raw(field, false);
  if (!v || v->is_null()) return std::nullopt;
  std::optional<int64_t> ms;
  if (v->is_string()) {
    if (auto p = ParseDuration(std::string_view(v->as_string()))) ms = p->count();
  } else if (v->is_int64() && v->as_int64() >= 0 && v->as_int64() <= max_ms / 1000) {
    ms = v->as_int64() * 1000;
  }
  if (!ms || *ms > max_ms) {
    d.AddError(field, fmt::format("must be a duration from 0s to {}",
                                  FormatDuration(std::chrono::milliseconds(max_ms))));
    return std::nullopt;
  }
  return ms;
}

// One message object: {body, attributes?, group?, dedup_id?, delay?}.
void ParseMessage(const boost::json::value& v, const std::string& prefix, OutgoingMessage* m,
                  std::vector<FieldError>& errors) {
  if (!v.is_object()) {
    errors.push_back({prefix.empty() ? "body" : prefix.substr(0, prefix.size() - 1),
                      "each message is an object with a string body"});
    return;
  }
  JsonDecoder d(v.as_object(), prefix);
  if (const auto* b = d.Raw("body", true)) {
    if (b->is_string()) {
      m->body = std::string(b->as_string());
    } else {
      d.AddError("body", "must be a string (send JSON as its text)");
    }
  }
  if (auto g = d.String("group", false)) m->group = std::move(*g);
  if (auto id = d.String("dedup_id", false)) m->dedup_id = std::move(*id);
  if (auto delay = ReadDurationField(d, "delay", kMaxDelayMs)) m->delay_ms = *delay;
  if (const auto* a = d.Raw("attributes", false); a && !a->is_null()) {
    if (!a->is_object()) {
      d.AddError("attributes", "must be an object of string values");
    } else {
      for (const auto& kv : a->as_object()) {
        if (!kv.value().is_string()) {
          d.AddError("attributes", "must be an object of string values");
          break;
        }
        m->attributes[std::string(kv.key())] = std::string(kv.value().as_string());
      }
    }
  }
  AppendErrors(errors, d.Finish());
  ValidateMessage(*m, prefix, errors);
}

struct Sending {
  std::vector<OutgoingMessage> messages;
  bool batch = false;  // {messages: [...]}: answered with a list
};

// `{body, ...}` or `{messages: [...]}` (1..100): the messages, or the errors of every bad one.
Result<Sending> ParseMessages(const Request& req) {
  auto body = http::ReadJsonBody(req);
  if (!body.ok()) return body.status();
  Sending sending;
  std::vector<OutgoingMessage>& out = sending.messages;
  std::vector<FieldError> errors;
  if (const auto* list = body->if_contains("messages")) {
    if (body->size() != 1) {
      return Status::Validation({{"messages", "give messages alone, or one message's fields"}});
    }
    if (!list->is_array() || list->as_array().empty() ||
        list->as_array().size() > static_cast<size_t>(kMaxBatch)) {
      return Status::Validation(
          {{"messages", fmt::format("must be a list of 1 to {} messages", kMaxBatch)}});
    }
    sending.batch = true;
    out.resize(list->as_array().size());
    for (size_t i = 0; i < out.size(); ++i) {
      ParseMessage(list->as_array()[i], fmt::format("messages[{}].", i), &out[i], errors);
    }
  } else {
    out.resize(1);
    ParseMessage(boost::json::value(std::move(*body)), "", &out[0], errors);
  }
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return sending;
}

boost::json::object MessageJson(const Message& m) {
  boost::json::object attrs;
  for (const auto& [k, v] : m.attributes) attrs[k] = v;
  boost::json::object o{{"id", std::to_string(m.id)},
                        {"body", m.body},
                        {"attributes", std::move(attrs)},
                        {"receipt", m.receipt},
                        {"receive_count", m.receive_count},
                        {"sent_at", Time(m.sent_at_ms)},
                        {"first_received_at", Time(m.first_received_at_ms)}};
  if (!m.group.empty()) o["group"] = m.group;
  return o;
}

// A long poll: receives, and while nothing came and the wait lasts, parks until a change of
// the queue picks it (ReceiveWaiters: one receiver per change, from any server) or until the
// next message's delay or visibility ends — never polling the database in a loop.
struct Poll : std::enable_shared_from_this<Poll> {
  QueueService* queues = nullptr;
  ReceiveWaiters* waiters = nullptr;
  const Clock* clock = nullptr;
  std::string tenant, queue, topic;
  ReceiveOptions options;
  Clock::SteadyTime deadline;
  Responder respond;
  std::atomic<bool> cancelled{false};
  std::atomic<uint64_t> ticket{0};

  void Attempt() {
    if (cancelled) {
      waiters->WakeOne(topic);  // the wake may have been meant for a receiver: pass it on
      return Answer({});
    }
    if (waiters->stopped()) return Answer({});   // a stopping server answers at once
    uint64_t version = waiters->Version(topic);  // before the receive: a send after it wakes us
    queues->Receive(tenant, queue, options, [self = shared_from_this(), version](auto r) {
      self->OnResult(std::move(r), version);
    });
  }

  void OnResult(Result<ReceiveResult> r, uint64_t version) {
    if (!r.ok()) return http::SendError(respond, r.status());
    if (cancelled && !r->messages.empty()) {
      // Taken for a client that left: visible again at once for the next receiver.
      for (const auto& m : r->messages) {
        queues->ChangeVisibility(tenant, queue, m.receipt, 0, [](Status) {});
      }
      return Answer({});
    }
    // A full batch may have left more behind: the next waiting receiver looks too.
    if (static_cast<int>(r->messages.size()) == options.max) waiters->WakeOne(topic);
    auto now = clock->Steady();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (!r->messages.empty() || left.count() <= 0 || cancelled || waiters->stopped()) {
      return Answer(r->messages);
    }
    auto until = deadline;
    if (r->next_visible_ms > 0) {
      until = std::min(until, now + std::chrono::milliseconds(
                                        std::max<int64_t>(1, r->next_visible_ms - r->now_ms)));
    }
    ticket = waiters->Park(topic, version, until, [self = shared_from_this()] { self->Attempt(); });
    if (cancelled) waiters->Cancel(ticket);
  }

  void Answer(const std::vector<Message>& messages) {
    boost::json::array items;
    for (const auto& m : messages) items.push_back(MessageJson(m));
    respond(http::JsonResponse(200, boost::json::object{{"messages", std::move(items)}}));
  }
};

// A Topic document or bare spec: its subscriptions when it lists them (nullopt: leave them).
Result<std::optional<std::vector<Subscription>>> ParseTopicDocument(const boost::json::value& doc,
                                                                    std::string_view name) {
  if (!doc.is_object()) return Status::InvalidArgument("the topic must be a JSON object");
  std::vector<FieldError> errors;
  const boost::json::object* spec =
      DocumentSpec(doc.as_object(), "Topic", name, errors, /*spec_optional=*/true);
  if (!spec) return Status::Validation(std::move(errors));
  std::string prefix = spec == &doc.as_object() ? "" : "spec.";
  JsonDecoder d(*spec, prefix);
  std::optional<std::vector<Subscription>> subs;
  if (const auto* list = d.Raw("subscriptions", false); list && !list->is_null()) {
    subs.emplace();
    if (!list->is_array() || list->as_array().size() > 100) {
      d.AddError("subscriptions", "must be a list of at most 100 {queue, filter}");
    } else {
      std::set<std::string> seen;
      for (size_t i = 0; i < list->as_array().size(); ++i) {
        const auto& item = list->as_array()[i];
        std::string at = fmt::format("{}subscriptions[{}].", prefix, i);
        if (!item.is_object()) {
          errors.push_back({at.substr(0, at.size() - 1), "must be an object {queue, filter}"});
          continue;
        }
        JsonDecoder sd(item.as_object(), at);
        Subscription sub;
        if (auto q = sd.String("queue", true)) {
          if (!IsValidName(*q)) {
            sd.AddError("queue", std::string(kNameRule));
          } else if (!seen.insert(*q).second) {
            sd.AddError("queue", "is listed twice");
          }
          sub.queue = std::move(*q);
        }
        if (const auto* f = sd.Raw("filter", false); f && !f->is_null()) {
          auto policy = ParseFilter(*f);
          if (!policy.ok()) {
            for (const auto& e : policy.status().errors())
              errors.push_back({at + e.field, e.message});
          } else if (!f->as_object().empty()) {
            sub.filter_json = boost::json::serialize(*f);
          }
        }
        AppendErrors(errors, sd.Finish());
        subs->push_back(std::move(sub));
      }
    }
  }
  AppendErrors(errors, d.Finish());
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return subs;
}

}  // namespace

void AddQueueRoutes(http::Router& router, QueueService& queues, TopicService& topics,
                    const Clock& clock) {
  using http::Access;
  using http::Method;
  router.Add(Method::kPut, "/v1/queues/{name}", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto doc = http::ReadDocument(req);
               if (!doc.ok()) return http::SendError(respond, doc.status());
               auto settings = ParseQueueDocument(*doc, addr->second);
               if (!settings.ok()) return http::SendError(respond, settings.status());
               queues.Put(addr->first, addr->second, std::move(*settings),
                          [respond](Result<std::pair<Queue, Written>> r) {
                            if (!r.ok()) return http::SendError(respond, r.status());
                            respond(http::WrittenResponse(r->second, QueueJson(r->first)));
                          });
             });
  router.Add(Method::kGet, "/v1/queues/{name}", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto q = queues.Get(addr->first, addr->second);
               if (!q.ok()) return http::SendError(respond, q.status());
               auto stats = queues.Stats(addr->first, addr->second);
               if (!stats.ok()) return http::SendError(respond, stats.status());
               auto body = QueueJson(*q);
               body["stats"] = StatsJson(*stats);
               respond(http::JsonResponse(200, body));
             });
  // A day of the queue's figures, a minute apart (the dashboard's charts).
  router.Add(Method::kGet, "/v1/queues/{name}/history", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto since = http::ReadRangeStart(req);
               if (!since.ok()) return http::SendError(respond, since.status());
               auto points = queues.History(addr->first, addr->second, *since);
               if (!points.ok()) return http::SendError(respond, points.status());
               boost::json::array items;
               for (const auto& p : *points) {
                 items.push_back(boost::json::object{{"at", Time(p.at_ms)},
                                                     {"depth", p.depth},
                                                     {"sent", p.sent},
                                                     {"received", p.received},
                                                     {"acked", p.acked},
                                                     {"dead_lettered", p.dead_lettered}});
               }
               respond(http::JsonResponse(200, boost::json::object{{"items", std::move(items)}}));
             });
  // A look at the messages (a dead-letter queue's, typically): nothing is received.
  router.Add(Method::kGet, "/v1/queues/{name}/messages", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto limit = http::ReadLimit(req, 20, 100);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               int64_t after = 0;
               if (auto c = req.Query("cursor"); c && !c->empty()) {
                 auto [end, ec] = std::from_chars(c->data(), c->data() + c->size(), after);
                 if (ec != std::errc() || end != c->data() + c->size() || after < 0) {
                   return http::SendError(
                       respond, Status::InvalidArgument(
                                    "query parameter 'cursor' must be a next_cursor of this list"));
                 }
               }
               auto page = queues.Peek(addr->first, addr->second, after, *limit);
               if (!page.ok()) return http::SendError(respond, page.status());
               boost::json::array items;
               for (const auto& m : page->items) {
                 boost::json::object attrs;
                 for (const auto& [k, v] : m.attributes) attrs[k] = v;
                 boost::json::object o{
                     {"id", std::to_string(m.id)},       {"body", m.body},
                     {"attributes", std::move(attrs)},   {"state", m.state},
                     {"receive_count", m.receive_count}, {"sent_at", Time(m.sent_at_ms)}};
                 if (!m.group.empty()) o["group"] = m.group;
                 if (!m.source.empty()) o["source"] = m.source;
                 items.push_back(std::move(o));
               }
               boost::json::object body{{"items", std::move(items)}};
               http::SetNextCursor(body, page->next_cursor);
               respond(http::JsonResponse(200, body));
             });
  router.Add(Method::kGet, "/v1/queues", Access::kAny, [&queues](Request& req, Responder respond) {
    http::RespondList(req, respond, queues, QueueJson);
  });
  router.Add(Method::kDelete, "/v1/queues/{name}", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               queues.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });

  router.Add(
      Method::kPost, "/v1/queues/{name}/messages", Access::kAny,
      [&queues](Request& req, Responder respond) {
        auto addr = http::TenantAndName(req, "queue");
        if (!addr.ok()) return http::SendError(respond, addr.status());
        auto messages = ParseMessages(req);
        if (!messages.ok()) return http::SendError(respond, messages.status());
        bool batch = messages->batch;
        queues.Send(
            addr->first, addr->second, std::move(messages->messages),
            [respond, batch](Result<std::vector<SendResult>> r) {
              if (!r.ok()) return http::SendError(respond, r.status());
              auto one = [](const SendResult& s) {
                return boost::json::object{{"id", std::to_string(s.id)},
                                           {"duplicate", s.duplicate}};
              };
              if (!batch && r->size() == 1) {
                return respond(http::JsonResponse(201, one((*r)[0])));
              }
              boost::json::array items;
              for (const auto& s : *r) items.push_back(one(s));
              respond(http::JsonResponse(201, boost::json::object{{"messages", std::move(items)}}));
            });
      });
  router.MarkQueuesWritesOnly();

  router.Add(Method::kPost, "/v1/queues/{name}/receive", Access::kAgent,
             [&queues, &clock](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto body = http::ReadJsonBody(req);
               if (!body.ok()) return http::SendError(respond, body.status());
               JsonDecoder d(*body);
               auto poll = std::make_shared<Poll>();
               if (auto max = d.Int("max", false)) {
                 if (*max < 1 || *max > kMaxReceive) {
                   d.AddError("max", fmt::format("must be between 1 and {}", kMaxReceive));
                 } else {
                   poll->options.max = static_cast<int>(*max);
                 }
               }
               int64_t wait = ReadDurationField(d, "wait", kMaxWaitMs).value_or(0);
               poll->options.visibility_ms =
                   ReadDurationField(d, "visibility_timeout", kMaxVisibilityMs);
               if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               poll->queues = &queues;
               poll->waiters = &queues.waiters();
               poll->clock = &clock;
               poll->tenant = std::move(addr->first);
               poll->queue = std::move(addr->second);
               poll->topic = QueueTopic(poll->tenant, poll->queue);
               poll->deadline = clock.Steady() + std::chrono::milliseconds(wait);
               poll->respond = respond;
               req.OnCancel([poll] {
                 poll->cancelled = true;
                 if (uint64_t t = poll->ticket) poll->waiters->Cancel(t);
               });
               poll->Attempt();
             });
  router.MarkQueuesWritesOnly();

  router.Add(Method::kDelete, "/v1/queues/{name}/messages/{receipt}", Access::kAgent,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               queues.Ack(addr->first, addr->second, {req.Param("receipt")},
                          [respond](Result<AckResult> r) {
                            if (!r.ok()) return http::SendError(respond, r.status());
                            if (r->acked == 0) {
                              return http::SendError(
                                  respond, Status::Conflict("the receipt is stale: the message "
                                                            "was acked, received again, or its "
                                                            "visibility timeout ended"));
                            }
                            Response resp;
                            resp.status = 204;
                            respond(std::move(resp));
                          });
             });
  router.MarkQueuesWritesOnly();

  router.Add(
      Method::kPost, "/v1/queues/{name}/ack", Access::kAgent,
      [&queues](Request& req, Responder respond) {
        auto addr = http::TenantAndName(req, "queue");
        if (!addr.ok()) return http::SendError(respond, addr.status());
        auto body = http::ReadJsonBody(req);
        if (!body.ok()) return http::SendError(respond, body.status());
        JsonDecoder d(*body);
        std::vector<std::string> receipts;
        if (const auto* list = d.Raw("receipts", true)) {
          if (!list->is_array() || list->as_array().empty() ||
              list->as_array().size() > static_cast<size_t>(kMaxBatch)) {
            d.AddError("receipts", fmt::format("must be a list of 1 to {} receipts", kMaxBatch));
          } else {
            for (const auto& r : list->as_array()) {
              if (!r.is_string()) {
                d.AddError("receipts", "must be strings");
                break;
              }
              receipts.emplace_back(r.as_string());
            }
          }
        }
        if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
        queues.Ack(addr->first, addr->second, std::move(receipts), [respond](Result<AckResult> r) {
          if (!r.ok()) return http::SendError(respond, r.status());
          boost::json::array stale;
          for (const auto& s : r->stale) stale.push_back(boost::json::value(s));
          respond(http::JsonResponse(
              200, boost::json::object{{"acked", r->acked}, {"stale", std::move(stale)}}));
        });
      });
  router.MarkQueuesWritesOnly();

  router.Add(Method::kPost, "/v1/queues/{name}/messages/{receipt}/visibility", Access::kAgent,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto body = http::ReadJsonBody(req);
               if (!body.ok()) return http::SendError(respond, body.status());
               JsonDecoder d(*body);
               bool given = d.Raw("timeout", true) != nullptr;
               auto timeout = ReadDurationField(d, "timeout", kMaxVisibilityMs);
               if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               if (!given || !timeout) {
                 return http::SendError(respond, Status::Validation({{"timeout", "is required"}}));
               }
               queues.ChangeVisibility(addr->first, addr->second, req.Param("receipt"), *timeout,
                                       http::NoContentOr(respond));
             });
  router.MarkQueuesWritesOnly();

  router.Add(Method::kPost, "/v1/queues/{name}/redrive", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               int64_t max = 0;
               if (!req.body.empty()) {
                 auto body = http::ReadJsonBody(req);
                 if (!body.ok()) return http::SendError(respond, body.status());
                 JsonDecoder d(*body);
                 if (auto m = d.Int("max", false)) {
                   if (*m < 1) {
                     d.AddError("max", "must be at least 1 (leave it out for all)");
                   } else {
                     max = *m;
                   }
                 }
                 if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               }
               queues.Redrive(addr->first, addr->second, max, [respond](Result<int64_t> r) {
                 if (!r.ok()) return http::SendError(respond, r.status());
                 respond(http::JsonResponse(200, boost::json::object{{"moved", *r}}));
               });
             });
  router.Add(Method::kPost, "/v1/queues/{name}/purge", Access::kAny,
             [&queues](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "queue");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               queues.Purge(addr->first, addr->second, [respond](Result<int64_t> r) {
                 if (!r.ok()) return http::SendError(respond, r.status());
                 respond(http::JsonResponse(200, boost::json::object{{"purged", *r}}));
               });
             });
  AddTopicRoutes(router, topics);
}

void AddTopicRoutes(http::Router& router, TopicService& topics) {
  using http::Access;
  using http::Method;
  auto topic_json = [](const Topic& t) {
    boost::json::array subs;
    for (const auto& s : t.subscriptions) {
      boost::system::error_code ec;
      boost::json::value filter = s.filter_json.empty() ? boost::json::value(nullptr)
                                                        : boost::json::parse(s.filter_json, ec);
      subs.push_back(boost::json::object{{"queue", s.queue}, {"filter", std::move(filter)}});
    }
    return boost::json::object{{"name", t.name},
                               {"tenant", t.tenant},
                               {"subscriptions", std::move(subs)},
                               {"modify_index", t.modify_index},
                               {"created_at", Time(t.created_at_ms)}};
  };
  router.Add(Method::kPut, "/v1/topics/{name}", Access::kAny,
             [&topics, topic_json](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "topic");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               std::optional<std::vector<Subscription>> subs;
               if (!req.body.empty()) {  // a Topic document: {spec: {subscriptions: [...]}}
                 auto doc = http::ReadDocument(req);
                 if (!doc.ok()) return http::SendError(respond, doc.status());
                 auto parsed = ParseTopicDocument(*doc, addr->second);
                 if (!parsed.ok()) return http::SendError(respond, parsed.status());
                 subs = std::move(*parsed);
               }
               topics.Put(addr->first, addr->second, std::move(subs),
                          [respond, topic_json](Result<std::pair<Topic, Written>> r) {
                            if (!r.ok()) return http::SendError(respond, r.status());
                            respond(http::WrittenResponse(r->second, topic_json(r->first)));
                          });
             });
  router.Add(Method::kGet, "/v1/topics/{name}", Access::kAny,
             [&topics, topic_json](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "topic");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto t = topics.Get(addr->first, addr->second);
               if (!t.ok()) return http::SendError(respond, t.status());
               respond(http::JsonResponse(200, topic_json(*t)));
             });
  router.Add(Method::kGet, "/v1/topics", Access::kAny,
             [&topics, topic_json](Request& req, Responder respond) {
               http::RespondList(req, respond, topics, topic_json);
             });
  router.Add(Method::kDelete, "/v1/topics/{name}", Access::kAny,
             [&topics](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "topic");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               topics.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });
  router.Add(Method::kPut, "/v1/topics/{name}/subscriptions/{queue}", Access::kAny,
             [&topics](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "topic");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               const std::string& queue = req.Param("queue");
               if (!IsValidName(queue)) {
                 return http::SendError(
                     respond, Status::InvalidArgument("queue name " + std::string(kNameRule)));
               }
               std::string filter_json;
               if (!req.body.empty()) {
                 auto body = http::ReadJsonBody(req);
                 if (!body.ok()) return http::SendError(respond, body.status());
                 JsonDecoder d(*body);
                 if (const auto* f = d.Raw("filter", false); f && !f->is_null()) {
                   auto policy = ParseFilter(*f);
                   if (!policy.ok()) return http::SendError(respond, policy.status());
                   if (!f->as_object().empty()) filter_json = boost::json::serialize(*f);
                 }
                 if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               }
               topics.Subscribe(
                   addr->first, addr->second, queue, filter_json,
                   [respond, queue, filter_json](Result<Written> w) {
                     if (!w.ok()) return http::SendError(respond, w.status());
                     boost::system::error_code ec;
                     boost::json::object body{
                         {"queue", queue},
                         {"filter", filter_json.empty() ? boost::json::value(nullptr)
                                                        : boost::json::parse(filter_json, ec)}};
                     respond(http::WrittenResponse(*w, body));
                   });
             });
  router.Add(Method::kDelete, "/v1/topics/{name}/subscriptions/{queue}", Access::kAny,
             [&topics](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "topic");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               topics.Unsubscribe(addr->first, addr->second, req.Param("queue"),
                                  http::NoContentOr(respond));
             });
  router.Add(
      Method::kPost, "/v1/topics/{name}/messages", Access::kAny,
      [&topics](Request& req, Responder respond) {
        auto addr = http::TenantAndName(req, "topic");
        if (!addr.ok()) return http::SendError(respond, addr.status());
        auto messages = ParseMessages(req);
        if (!messages.ok()) return http::SendError(respond, messages.status());
        topics.Publish(
            addr->first, addr->second, std::move(messages->messages),
            [respond](Result<std::vector<std::vector<Delivery>>> r) {
              if (!r.ok()) return http::SendError(respond, r.status());
              boost::json::array out;
              for (const auto& per : *r) {
                boost::json::array deliveries;
                for (const auto& d : per) {
                  if (!d.workflow.empty()) {  // an execution the topic triggered
                    deliveries.push_back(boost::json::object{{"workflow", d.workflow},
                                                             {"execution", d.execution},
                                                             {"duplicate", d.result.duplicate}});
                    continue;
                  }
                  deliveries.push_back(boost::json::object{{"queue", d.queue},
                                                           {"id", std::to_string(d.result.id)},
                                                           {"duplicate", d.result.duplicate}});
                }
                out.push_back(boost::json::object{{"deliveries", std::move(deliveries)}});
              }
              respond(http::JsonResponse(201, boost::json::object{{"messages", std::move(out)}}));
            });
      });
  router.MarkQueuesWritesOnly();
}

}  // namespace drover::queues
