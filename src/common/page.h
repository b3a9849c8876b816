#pragma once
// A page of a listing: the items and the cursor that continues after them.
#include <string>
#include <utility>
#include <vector>

namespace drover {

template <class T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;  // empty at the end

  // Listings read one item past `limit` to learn whether more follow: drops that one and sets
  // the cursor from the last item kept (`cursor_of(item)`).
  template <class F>
  void Trim(int limit, F&& cursor_of) {
    if (static_cast<int>(items.size()) <= limit) return;
    items.pop_back();
    next_cursor = cursor_of(items.back());
  }
};

}  // namespace drover
