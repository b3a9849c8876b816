#pragma once
// Bump allocation for one upstream answer's header fields (internal to the gateway). Beast
// allocates every header field separately; with a few headers per answer and tens of
// thousands of answers a second, that is most of the proxy's allocations. The fields come
// from a fixed block instead, freed all at once with the answer; past the block, the heap.
#include <cstddef>
#include <new>

namespace drover::gateway {

class FieldArena {
 public:
  FieldArena() = default;
  FieldArena(const FieldArena&) = delete;
  FieldArena& operator=(const FieldArena&) = delete;

  void* Allocate(std::size_t bytes, std::size_t align) {
    std::size_t at = (used_ + align - 1) & ~(align - 1);
    if (align <= alignof(std::max_align_t) && at + bytes <= sizeof(block_)) {
      used_ = at + bytes;
      return block_ + at;
    }
    return ::operator new(bytes);
  }
  // Memory from the block is reclaimed with the arena; the rest goes back to the heap.
  void Deallocate(void* p) {
    if (!Owns(p)) ::operator delete(p);
  }

 private:
  bool Owns(const void* p) const {
    auto* c = static_cast<const char*>(p);
    return c >= block_ && c < block_ + sizeof(block_);
  }
  alignas(std::max_align_t) char block_[2048];
  std::size_t used_ = 0;
};

template <class T>
class ArenaAllocator {
 public:
  using value_type = T;
  explicit ArenaAllocator(FieldArena* arena) : arena_(arena) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) : arena_(other.arena()) {}  // NOLINT: rebinding

  T* allocate(std::size_t n) {
    return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t) { arena_->Deallocate(p); }
  FieldArena* arena() const { return arena_; }

  template <class U>
  bool operator==(const ArenaAllocator<U>& o) const {
    return arena_ == o.arena();
  }

 private:
  FieldArena* arena_;
};

}  // namespace drover::gateway
