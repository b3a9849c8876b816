#pragma once
// W3C Trace Context (docs/logs.md#traces): a `traceparent` is "00-<trace id>-<parent id>-<flags>"
// (32, 16 and 2 lowercase hex digits). drover carries one from the gateway or the API through an
// execution, its steps, the task messages and the workers' commands (TRACEPARENT), and starts
// one per agent run; log lines and access-log lines carry its trace id.
#include <string>
#include <string_view>

namespace drover {

// Whether `t` is a valid version-00 traceparent (ids not all zero, version not ff).
bool ValidTraceparent(std::string_view t);

// A new traceparent: a random trace id and parent id, sampled ("-01"). Unique, not secret: a
// per-thread generator seeded once from the secure source.
std::string NewTraceparent();

// The same trace with a new parent id (the next hop's span): for what `parent` starts.
// A new trace when `parent` is not valid.
std::string ChildTraceparent(std::string_view parent);

// The trace id of a valid traceparent; "" otherwise.
std::string_view TraceIdOf(std::string_view traceparent);

}  // namespace drover
