#include "http/router.h"

#include <stdexcept>

namespace drover::http {
namespace {

// Splits "/a/b/c" into segments; an empty path or "/" has none.
template <typename F>
bool ForEachSegment(std::string_view path, F&& f) {
  if (path.empty() || path[0] != '/') return false;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (!seg.empty() || next < path.size()) {
      if (!f(seg)) return false;
    }
    pos = next + 1;
  }
  return true;
}

}  // namespace

void Router::Add(Method method, std::string pattern, Access access, Handler handler) {
  AddRoute(
      {method, std::move(pattern), access, std::move(handler), nullptr, access != Access::kPublic});
}

void Router::AddStream(Method method, std::string pattern, Access access,
                       std::shared_ptr<StreamRoute> stream) {
  AddRoute(
      {method, std::move(pattern), access, nullptr, std::move(stream), access != Access::kPublic});
}

void Router::AddRoute(Route route) {
  const std::string& pattern = route.pattern;
  int node = 0;
  bool after_rest = false;
  ForEachSegment(pattern, [&](std::string_view seg) {
    if (after_rest) throw std::logic_error("a catch-all must be the last segment: " + pattern);
    if (seg.size() > 3 && seg.starts_with("{*") && seg.back() == '}') {
      std::string name(seg.substr(2, seg.size() - 3));
      if (nodes_[node].rest < 0) {
        nodes_.push_back(Node{});
        nodes_[node].rest = static_cast<int>(nodes_.size() - 1);
        nodes_.back().rest_name = name;
      } else if (nodes_[static_cast<size_t>(nodes_[node].rest)].rest_name != name) {
        throw std::logic_error("conflicting catch-all names at " + pattern);
      }
      node = nodes_[node].rest;
      after_rest = true;
      return true;
    }
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      std::string name(seg.substr(1, seg.size() - 2));
      if (nodes_[node].param < 0) {
        nodes_.push_back(Node{});
        nodes_[node].param = static_cast<int>(nodes_.size() - 1);
        nodes_[node].param_name = name;
      } else if (nodes_[node].param_name != name) {
        throw std::logic_error("conflicting parameter names at " + pattern);
      }
      node = nodes_[node].param;
      return true;
    }
    for (auto& [lit, idx] : nodes_[node].literals) {
      if (lit == seg) {
        node = idx;
        return true;
      }
    }
    nodes_.push_back(Node{});
    int idx = static_cast<int>(nodes_.size() - 1);
    nodes_[node].literals.emplace_back(std::string(seg), idx);
    node = idx;
    return true;
  });
  for (auto& [m, r] : nodes_[node].methods) {
    if (m == route.method) throw std::logic_error("duplicate route " + pattern);
  }
  Method method = route.method;
  routes_.push_back(std::move(route));
  nodes_[node].methods.emplace_back(method, static_cast<int>(routes_.size() - 1));
}

namespace {

// The route of `node` for `method` (HEAD is served by the GET handler: the transport drops the
// body), or -1.
int RouteFor(const std::vector<std::pair<Method, int>>& methods, Method method) {
  for (const auto& [meth, r] : methods) {
    if (meth == method || (method == Method::kHead && meth == Method::kGet)) return r;
  }
  return -1;
}

std::string AllowList(const std::vector<std::pair<Method, int>>& methods) {
  std::string allowed;
  for (const auto& [meth, r] : methods) {
    if (!allowed.empty()) allowed += ", ";
    allowed += MethodName(meth);
  }
  return allowed;
}

}  // namespace

Match Router::Find(Method method, std::string_view path) const {
  Match m;
  if (path.empty() || path[0] != '/') return m;
  // The deepest catch-all passed on the way: used when no exact route matches.
  struct Fallback {
    int node = -1;
    size_t params = 0;
    size_t rest = 0;  // where the rest of the path starts
  } fallback;
  int node = 0;
  size_t pos = 1;  // start of the next segment
  for (;;) {
    const Node& n = nodes_[static_cast<size_t>(node)];
    if (n.rest >= 0) fallback = {n.rest, m.params.size(), std::min(pos - 1, path.size())};
    if (pos > path.size()) break;
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (seg.empty() && next == path.size()) break;  // a trailing slash
    int child = -1;
    for (const auto& [lit, idx] : n.literals) {
      if (lit == seg) {
        child = idx;
        break;
      }
    }
    if (child < 0 && n.param >= 0 && !seg.empty()) {
      std::string decoded;
      if (PercentDecode(seg, &decoded)) {
        if (m.params.empty()) m.params.reserve(4);  // one allocation for a route's parameters
        m.params.emplace_back(n.param_name, std::move(decoded));
        child = n.param;
      }
    }
    if (child < 0) {
      node = -1;
      break;
    }
    node = child;
    pos = next + 1;
  }
  const std::vector<std::pair<Method, int>>* exact =
      node >= 0 && !nodes_[static_cast<size_t>(node)].methods.empty()
          ? &nodes_[static_cast<size_t>(node)].methods
          : nullptr;
  if (exact) {
    if (int r = RouteFor(*exact, method); r >= 0) {
      m.kind = Match::kFound;
      m.route = r;
      return m;
    }
  }
  if (fallback.node >= 0) {
    const Node& rest = nodes_[static_cast<size_t>(fallback.node)];
    if (int r = RouteFor(rest.methods, method); r >= 0) {
      m.params.resize(fallback.params);
      m.params.emplace_back(rest.rest_name, std::string(path.substr(fallback.rest)));
      m.kind = Match::kFound;
      m.route = r;
      return m;
    }
    if (!exact) exact = &rest.methods;
  }
  m.params.clear();
  if (exact) {
    m.kind = Match::kMethodNotAllowed;
    m.allowed = AllowList(*exact);
  }
  return m;
}

}  // namespace drover::http
