#include "store/origin.h"

namespace drover::store {
namespace {
thread_local Origin current;
}  // namespace

const Origin& CurrentOrigin() { return current; }

ScopedOrigin::ScopedOrigin(Origin origin) : saved_(std::move(current)) {
  current = std::move(origin);
}

ScopedOrigin::~ScopedOrigin() { current = std::move(saved_); }

WriteFn WithCurrentOrigin(WriteFn fn) {
  if (current.empty()) return fn;
  return [origin = current, fn = std::move(fn)](Tx& tx) {
    ScopedOrigin scope(origin);
    return fn(tx);
  };
}

}  // namespace drover::store
