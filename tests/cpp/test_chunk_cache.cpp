#include <gtest/gtest.h>

#include "voxcore/chunk_cache.hpp"

using namespace voxcore;

namespace {
ChunkCache::Value make(std::size_t n) { return std::make_shared<ByteBuffer>(n); }
}  // namespace

TEST(ChunkCache, EvictsLeastRecentlyUsed) {
  ChunkCache cache(300);
  const uint64_t a = ChunkCache::new_owner_id(), b = ChunkCache::new_owner_id();
  EXPECT_NE(a, b);
  cache.put(a, 1, make(100));
  cache.put(a, 2, make(100));
  cache.put(b, 1, make(100));
  EXPECT_EQ(cache.size_bytes(), 300u);
  EXPECT_NE(cache.get(a, 1), nullptr);  // a/1 becomes most recent
  cache.put(a, 3, make(100));           // evicts a/2
  EXPECT_EQ(cache.get(a, 2), nullptr);
  EXPECT_NE(cache.get(a, 1), nullptr);
  EXPECT_NE(cache.get(b, 1), nullptr);
  EXPECT_LE(cache.size_bytes(), 300u);
  cache.put(a, 9, make(1000));  // larger than the cache: not kept
  EXPECT_EQ(cache.get(a, 9), nullptr);
  cache.erase(b, 1);
  EXPECT_EQ(cache.get(b, 1), nullptr);
  cache.clear();
  EXPECT_EQ(cache.size_bytes(), 0u);
}

TEST(ChunkCache, AllocatedBuffersAreRecycled) {
  const uint8_t* first = nullptr;
  {
    auto a = ChunkCache::allocate(12345);
    ASSERT_EQ(a->size(), 12345u);
    first = a->data();
  }  // back to the pool
  auto b = ChunkCache::allocate(12345);
  EXPECT_EQ(b->data(), first);
  EXPECT_EQ(b->size(), 12345u);
  auto c = ChunkCache::allocate(777);  // other sizes get their own memory
  EXPECT_NE(c->data(), first);
}
