#include "voxcore/chunk_cache.hpp"

#include <atomic>
#include <cstdlib>
#include <vector>
#include <list>
#include <mutex>
#include <unordered_map>

namespace voxcore {
namespace {

struct Key {
  uint64_t owner;
  int64_t chunk;
  bool operator==(const Key& o) const noexcept { return owner == o.owner && chunk == o.chunk; }
};

struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    uint64_t h = k.owner * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(k.chunk);
    h ^= h >> 31;
    return static_cast<std::size_t>(h * 0xBF58476D1CE4E5B9ull);
  }
};

}  // namespace

struct ChunkCache::Impl {
  struct Entry {
    Key key;
    Value value;
  };
  std::size_t capacity;
  std::size_t size = 0;
  std::list<Entry> lru;  // front: most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index;
  std::mutex mutex;

  void drop(std::list<Entry>::iterator it) {
    size -= it->value->size();
    index.erase(it->key);
    lru.erase(it);
  }
};

ChunkCache::ChunkCache(std::size_t capacity_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->capacity = capacity_bytes;
}

ChunkCache::~ChunkCache() = default;

ChunkCache::Value ChunkCache::get(uint64_t owner, int64_t chunk) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->index.find(Key{owner, chunk});
  if (it == impl_->index.end()) return nullptr;
  impl_->lru.splice(impl_->lru.begin(), impl_->lru, it->second);
  return it->second->value;
}

void ChunkCache::put(uint64_t owner, int64_t chunk, Value value) {
  if (!value) return;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->index.find(Key{owner, chunk});
  if (it != impl_->index.end()) impl_->drop(it->second);
  if (value->size() > impl_->capacity) return;
  impl_->lru.push_front(Impl::Entry{Key{owner, chunk}, std::move(value)});
  impl_->index[Key{owner, chunk}] = impl_->lru.begin();
  impl_->size += impl_->lru.front().value->size();
  while (impl_->size > impl_->capacity) impl_->drop(std::prev(impl_->lru.end()));
}

void ChunkCache::erase(uint64_t owner, int64_t chunk) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->index.find(Key{owner, chunk});
  if (it != impl_->index.end()) impl_->drop(it->second);
}

void ChunkCache::clear() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->lru.clear();
  impl_->index.clear();
  impl_->size = 0;
}

std::size_t ChunkCache::capacity_bytes() const noexcept { return impl_->capacity; }

std::size_t ChunkCache::size_bytes() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->size;
}

namespace {

// Recycled chunk buffers by exact size, newest first (their pages are still mapped and warm).
class BufferPool {
 public:
  BufferPool() {
    if (const char* env = std::getenv("VOXCORE_BUFFER_POOL_BYTES")) {
      limit_ = static_cast<std::size_t>(std::strtoull(env, nullptr, 10));
    }
  }

  std::unique_ptr<ByteBuffer> take(std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    auto buffer = std::move(it->second.back());
    it->second.pop_back();
    held_ -= buffer->capacity();
    return buffer;
  }

  void give(ByteBuffer* buffer) noexcept {
    std::unique_ptr<ByteBuffer> owned(buffer);
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_ + owned->capacity() > limit_) return;  // freed on return
      held_ += owned->capacity();
      free_[owned->size()].push_back(std::move(owned));
    } catch (...) {  // allocation failure in the map: just free the buffer
    }
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<std::unique_ptr<ByteBuffer>>> free_;
  std::size_t held_ = 0;
  std::size_t limit_ = std::size_t{256} << 20;
};

BufferPool& buffer_pool() {
  static BufferPool* pool = new BufferPool();  // never destroyed: buffers may outlive statics
  return *pool;
}

}  // namespace

std::shared_ptr<ByteBuffer> ChunkCache::allocate(std::size_t size) {
  std::unique_ptr<ByteBuffer> buffer = buffer_pool().take(size);
  if (!buffer) buffer = std::make_unique<ByteBuffer>(size);
  return std::shared_ptr<ByteBuffer>(buffer.release(), [](ByteBuffer* b) { buffer_pool().give(b); });
}

uint64_t ChunkCache::new_owner_id() noexcept {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

}  // namespace voxcore
