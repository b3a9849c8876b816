#pragma once
// Topics (docs/queues.md): publish once, a copy lands in every subscribed queue whose filter
// matches, all in one transaction (all or nothing). Thread-safe; writes are group-committed.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/page.h"
#include "common/status.h"
#include "queues/queues.h"

namespace drover::queues {

struct Subscription {
  std::string queue;
  std::string filter_json;  // "" none
  int64_t created_at_ms = 0;
};

struct Topic {
  std::string tenant, name;
  int64_t created_at_ms = 0, modify_index = 0;
  std::vector<Subscription> subscriptions;
};

// Where one published message went: a queue (with its message there), or an execution of a
// workflow the topic triggers (`workflow` and `execution` set, `queue` empty).
struct Delivery {
  std::string queue;
  SendResult result;
  std::string workflow, execution;
};

// Called inside a publish for each message, after its queue deliveries: starts what the topic
// triggers (workflow executions) in the same transaction, and says what it started.
using PublishHook = std::function<Result<std::vector<Delivery>>(
    store::Tx& tx, const std::string& tenant, const std::string& topic, const OutgoingMessage& m)>;

class TopicService {
 public:
  TopicService(store::Store& store, QueueService& queues) : store_(store), queues_(queues) {}

  // Creates the topic if missing. With `subscriptions` (a Topic document's), its subscriptions
  // become exactly those (filters checked by ParseFilter); without, they are left as they are.
  void Put(std::string tenant, std::string name,
           std::optional<std::vector<Subscription>> subscriptions,
           std::function<void(Result<std::pair<Topic, Written>>)> done);
  Result<Topic> Get(const std::string& tenant, const std::string& name);
  Result<Page<Topic>> List(const std::string& tenant, const std::string& cursor, int limit);
  // Its subscriptions go with it; the queues stay.
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);

  // `filter_json` is a filter policy already checked by ParseFilter ("" for none). The queue
  // must exist. Created or replaced.
  void Subscribe(std::string tenant, std::string topic, std::string queue, std::string filter_json,
                 std::function<void(Result<Written>)> done);
  void Unsubscribe(std::string tenant, std::string topic, std::string queue,
                   std::function<void(Status)> done);

  // One copy of each message to every matching subscription, in one transaction. Per message,
  // the deliveries made (none when no filter matched).
  // Set once, before the service is used.
  void SetPublishHook(PublishHook hook) { hook_ = std::move(hook); }
  void Publish(std::string tenant, std::string topic, std::vector<OutgoingMessage> messages,
               std::function<void(Result<std::vector<std::vector<Delivery>>>)> done);

 private:
  store::Store& store_;
  QueueService& queues_;
  PublishHook hook_;
};

}  // namespace drover::queues
