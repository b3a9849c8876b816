#include "store/origin.h"

#include <string>

namespace drover::store {
namespace {
thread_local Origin current;
}  // namespace

const Origin& CurrentOrigin() { return current; }

ScopedOrigin::ScopedOrigin(Origin origin) : saved_(current) { current = origin; }

ScopedOrigin::~ScopedOrigin() { current = saved_; }

WriteFn WithCurrentOrigin(WriteFn fn) {
  if (current.empty()) return fn;
  // Owned copies: the write runs later, on the writer thread, after the caller's scope ended.
  return [actor = std::string(current.actor), role = std::string(current.role),
          request_id = std::string(current.request_id), fn = std::move(fn)](Tx& tx) {
    ScopedOrigin scope({actor, role, request_id});
    return fn(tx);
  };
}

}  // namespace drover::store
