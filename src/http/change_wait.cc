#include "http/change_wait.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>

namespace drover::http {

namespace asio = boost::asio;

namespace wait_internal {
// Cancels a parked wait when the coroutine ends (a named type: it lives in a coroutine frame).
struct Unpark {
  Waiters& waiters;
  uint64_t ticket;
  ~Unpark() { waiters.Cancel(ticket); }  // nothing when it already ran
};
}  // namespace wait_internal

namespace {

using ParkFn = std::function<uint64_t(std::function<void()> ready)>;

// Parks with `park(ready)` (a ticket, or 0 when ready at once) until released.
asio::awaitable<void> Parked(Waiters& waiters, std::chrono::milliseconds wait, ParkFn park) {
  auto exec = co_await asio::this_coro::executor;
  // The timer is the coroutine's: the wake-up (from the waiters' thread) only reaches it while
  // it lives, through a weak pointer, on the coroutine's own executor (one thread), so it
  // cannot race the wait below. The deadline is a backstop for the waiters' own.
  auto timer = std::make_shared<asio::steady_timer>(exec, wait + std::chrono::seconds(1));
  std::weak_ptr<asio::steady_timer> weak = timer;
  auto woken = std::make_shared<bool>(false);
  uint64_t ticket = park([exec, weak, woken] {
    asio::post(exec, [weak, woken] {
      *woken = true;
      if (auto t = weak.lock()) t->cancel();
    });
  });
  if (ticket == 0) co_return;  // ready at once (its posted wake-up finds no timer waiting)
  wait_internal::Unpark unpark{waiters, ticket};
  auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  // Our own wake-up cancels the timer too: only an outside cancellation is one.
  if (ec == asio::error::operation_aborted && !*woken) {
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) {
      throw boost::system::system_error(asio::error::operation_aborted);
    }
  }
}

}  // namespace

asio::awaitable<void> WaitForChange(Waiters& waiters, std::string topic, int64_t index,
                                    std::chrono::milliseconds wait) {
  return Parked(waiters, wait,
                [&waiters, topic = std::move(topic), index, wait](std::function<void()> ready) {
                  return waiters.Wait(topic, index, wait, std::move(ready));
                });
}

asio::awaitable<void> WaitAfterMark(Waiters& waiters, std::string topic, int64_t mark,
                                    std::chrono::milliseconds wait) {
  return Parked(waiters, wait,
                [&waiters, topic = std::move(topic), mark, wait](std::function<void()> ready) {
                  return waiters.WaitAfterMark(topic, mark, wait, std::move(ready));
                });
}

}  // namespace drover::http
