#pragma once
// Maps (method, path) to a handler. Patterns are literal segments and {name} parameters:
// "/v1/variables/{key}". Routes are added at start-up; Match is then thread-safe (read-only).
#include <string>
#include <vector>

#include "http/message.h"

namespace drover::http {

// Who may call a route, checked by the pipeline before the handler runs.
enum class Access {
  kPublic,  // no key needed (healthz, readyz, metrics)
  kAny,     // any valid key of a role other than agent; viewers only for GET/HEAD
  kAgent,   // also agent keys (the handler checks which instance)
  kAdmin,   // admin keys only
};

struct Route {
  Method method;
  std::string pattern;
  Access access;
  Handler handler;
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
  Match Find(Method method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Node {
    std::vector<std::pair<std::string, int>> literals;  // segment -> node index
    int param = -1;                                     // node index of {param}
    std::string param_name;
    std::vector<std::pair<Method, int>> methods;  // method -> route index
  };
  std::vector<Node> nodes_{Node{}};
  std::vector<Route> routes_;
};

}  // namespace drover::http
