#pragma once
// Who a write is made for: the API caller (key id, role, request id) or a part of the server
// (the fleet controller, the scheduler). Set for the current thread by the request pipeline and
// by the controllers; Store::Write captures it and restores it on the writer thread while the
// write runs, so a change record written inside the transaction names its actor without every
// service passing it along.
#include <string_view>

#include "store/store.h"

namespace drover::store {

// Views of the caller's strings, valid for the scope that set them: setting the origin on every
// request costs no allocation; a queued write copies it (WithCurrentOrigin).
struct Origin {
  std::string_view actor;  // an API key id, or "controller", "scheduler", ...; "" = unknown
  std::string_view role;   // the key's role; "system" for the server's own work
  std::string_view request_id;
  bool empty() const { return actor.empty() && request_id.empty(); }
};

// The origin of the current thread's work (empty when none was set).
const Origin& CurrentOrigin();

// Sets the current thread's origin for a scope.
class ScopedOrigin {
 public:
  explicit ScopedOrigin(Origin origin);
  ~ScopedOrigin();
  ScopedOrigin(const ScopedOrigin&) = delete;
  ScopedOrigin& operator=(const ScopedOrigin&) = delete;

 private:
  Origin saved_;
};

// `fn` bound to the calling thread's origin: it runs under that origin wherever it runs. The
// backends wrap every queued write with it.
WriteFn WithCurrentOrigin(WriteFn fn);

}  // namespace drover::store
