#pragma once
// HTTP routes for queues and topics (docs/queues.md):
//   PUT/GET/DELETE /v1/queues/{name}, GET /v1/queues
//   POST   /v1/queues/{name}/messages                      {body,...} | {messages: [...]} -> 201
//   POST   /v1/queues/{name}/receive                       {max, wait, visibility_timeout}
//   DELETE /v1/queues/{name}/messages/{receipt}            ack -> 204 | 409 stale
//   POST   /v1/queues/{name}/ack                           {receipts} -> {acked, stale}
//   POST   /v1/queues/{name}/messages/{receipt}/visibility {timeout} -> 204 | 409 stale
//   POST   /v1/queues/{name}/redrive {max?}, POST /v1/queues/{name}/purge
//   PUT/GET/DELETE /v1/topics/{name}, GET /v1/topics
//   PUT/DELETE /v1/topics/{name}/subscriptions/{queue}     {filter?}
//   POST   /v1/topics/{name}/messages                      {body,...} | {messages: [...]} -> 201
#include "common/clock.h"
#include "http/router.h"
#include "queues/queues.h"
#include "queues/topics.h"

namespace drover::queues {

void AddQueueRoutes(http::Router& router, QueueService& queues, TopicService& topics,
                    const Clock& clock);
void AddTopicRoutes(http::Router& router, TopicService& topics);

}  // namespace drover::queues
