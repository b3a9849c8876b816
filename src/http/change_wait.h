#pragma once
// A streaming handler's wait for the next change: the coroutine form of Waiters::Wait, so an
// event stream parks without a thread and wakes within milliseconds of a commit (on this server,
// or on another through the store's notifications).
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "http/blocking.h"

namespace drover::http {

// Returns once a change of `topic` passes `index` (at once if one already has), `wait` passes,
// or the waiters shut down. Cancellable: a cancelled wait (the client went away) throws
// operation_aborted and leaves nothing parked.
boost::asio::awaitable<void> WaitForChange(Waiters& waiters, std::string topic, int64_t index,
                                           std::chrono::milliseconds wait);

// The same for a topic followed by mark (Waiters::Mark): returns once a change of `topic`
// passes `mark`.
boost::asio::awaitable<void> WaitAfterMark(Waiters& waiters, std::string topic, int64_t mark,
                                           std::chrono::milliseconds wait);

}  // namespace drover::http
