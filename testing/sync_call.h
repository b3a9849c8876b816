#pragma once
// Calls an asynchronous service method (one that takes a completion) and waits for its answer:
// `Sync<Result<T>>([&](auto done) { service.Do(args..., done); })`. For tests only.
#include <future>
#include <utility>

namespace drover::testing {

template <class T, class F>
T Sync(F&& call) {
  std::promise<T> p;
  call([&p](T r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

}  // namespace drover::testing
