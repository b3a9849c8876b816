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
  int node = 0;
  ForEachSegment(pattern, [&](std::string_view seg) {
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
    if (m == method) throw std::logic_error("duplicate route " + pattern);
  }
  routes_.push_back({method, pattern, access, std::move(handler)});
  nodes_[node].methods.emplace_back(method, static_cast<int>(routes_.size() - 1));
}

Match Router::Find(Method method, std::string_view path) const {
  Match m;
  int node = 0;
  bool ok = ForEachSegment(path, [&](std::string_view seg) {
    for (const auto& [lit, idx] : nodes_[node].literals) {
      if (lit == seg) {
        node = idx;
        return true;
      }
    }
    if (nodes_[node].param >= 0 && !seg.empty()) {
      std::string decoded;
      if (!PercentDecode(seg, &decoded)) return false;
      m.params.emplace_back(nodes_[node].param_name, std::move(decoded));
      node = nodes_[node].param;
      return true;
    }
    return false;
  });
  if (!ok || nodes_[node].methods.empty()) {
    m.params.clear();
    return m;
  }
  for (const auto& [meth, r] : nodes_[node].methods) {
    // HEAD is served by the GET handler (the transport drops the body).
    if (meth == method || (method == Method::kHead && meth == Method::kGet)) {
      m.kind = Match::kFound;
      m.route = r;
      return m;
    }
  }
  m.kind = Match::kMethodNotAllowed;
  for (const auto& [meth, r] : nodes_[node].methods) {
    if (!m.allowed.empty()) m.allowed += ", ";
    m.allowed += MethodName(meth);
  }
  m.params.clear();
  return m;
}

}  // namespace drover::http
