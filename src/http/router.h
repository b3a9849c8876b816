#pragma once
// Maps (method, path) to a handler. Patterns are literal segments and {name} parameters:
// "/v1/variables/{key}", and may end with a catch-all {*name}: "/svc/{route}/{*rest}" matches
// "/svc/api", "/svc/api/" and "/svc/api/a/b". Exact routes win over catch-alls; a catch-all's
// value is the rest of the path as sent (raw, not percent-decoded; "" or starting with '/').
// Routes are added at start-up; Find is then thread-safe (read-only).
#include <memory>
#include <string>
#include <vector>

#include "http/message.h"

namespace drover::http {

// Who may call a route, checked by the pipeline before the handler runs.
enum class Access {
  kPublic,  // no key needed (healthz, readyz, metrics)
  kAny,     // any valid key of a role other than agent; viewers only for GET/HEAD
  kSignIn,  // as kAny, viewers for every method: it changes no resource (a dashboard login)
  kAgent,   // also agent keys (the handler checks which instance)
  kAdmin,   // admin keys only
};

struct StreamRoute;  // http/stream.h: a handler that takes over the exchange

struct Route {
  Method method;
  std::string pattern;
  Access access;
  Handler handler;                      // answers with one Response, or:
  std::shared_ptr<StreamRoute> stream;  // reads and writes the exchange as streams
  // Its key check or handler may wait on the store: with a store pool it runs there, never on
  // an I/O thread. Every route with a key; public ones only when marked (MarkMayBlock).
  bool may_block = true;
  // Its handler may read the store before it answers. False for handlers that only validate
  // and queue a write (MarkQueuesWritesOnly): with a key the server has cached, such a request
  // runs on its I/O thread, since nothing in it can wait (a write's answer comes from the
  // commit, not a wait).
  bool reads_store = true;
};

struct Match {
  enum Kind { kFound, kNotFound, kMethodNotAllowed } kind = kNotFound;
  int route = -1;  // index into routes()
  std::vector<std::pair<std::string_view, std::string>> params;
  std::string allowed;  // for 405: "GET, PUT"
};

class Router {
 public:
  // REQUIRES: not called after serving starts.
  void Add(Method method, std::string pattern, Access access, Handler handler);
  // A streaming route (see http/stream.h, AddStreamRoute).
  void AddStream(Method method, std::string pattern, Access access,
                 std::shared_ptr<StreamRoute> stream);
  // Marks the public route added last as one that may wait on the store (/readyz).
  void MarkMayBlock() { routes_.back().may_block = true; }
  // Marks the route added last as one whose handler reads nothing from the store (see Route).
  void MarkQueuesWritesOnly() { routes_.back().reads_store = false; }
  Match Find(Method method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Node {
    std::vector<std::pair<std::string, int>> literals;  // segment -> node index
    int param = -1;                                     // node index of {param}
    std::string param_name;
    int rest = -1;                                // node index of a trailing {*rest}
    std::string rest_name;                        // on the catch-all's own node
    std::vector<std::pair<Method, int>> methods;  // method -> route index
  };
  void AddRoute(Route route);
  std::vector<Node> nodes_{Node{}};
  std::vector<Route> routes_;
};

}  // namespace drover::http
