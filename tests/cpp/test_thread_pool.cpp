#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "voxcore/thread_pool.hpp"

using namespace voxcore;

TEST(ThreadPool, RunsEveryItemOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, [&](int64_t i) { hits[i].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_EQ(pool.concurrency(), 4);
}

TEST(ThreadPool, PropagatesTheFirstException) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(100, [](int64_t i) {
    if (i == 42) throw std::runtime_error("boom");
  }), std::runtime_error);
  // still usable afterwards
  std::atomic<int> n{0};
  pool.parallel_for(10, [&](int64_t) { ++n; });
  EXPECT_EQ(n.load(), 10);
}

TEST(ThreadPool, NestedAndConcurrentCallersDoNotDeadlock) {
  ThreadPool pool(2);
  std::atomic<int> n{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep) {
        pool.parallel_for(8, [&](int64_t) { pool.parallel_for(4, [&](int64_t) { ++n; }); });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(n.load(), 4 * 20 * 8 * 4);
}

TEST(ThreadPool, DefaultPoolResizes) {
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  set_num_threads(2);
  EXPECT_EQ(num_threads(), 2);
}
