#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "voxcore/error.hpp"
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

TEST(ThreadPool, DefaultExecutorOutlivesResizes) {
  // A handle keeps the executor's address; every call runs on the pool of that moment.
  Executor* held = &default_executor();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0};
  std::thread user([&] {
    while (!stop.load()) {
      std::atomic<int64_t> sum{0};
      held->parallel_for(64, [&](int64_t i) { sum += i; });
      EXPECT_EQ(sum.load(), 64 * 63 / 2);
      ++done;
    }
  });
  for (int round = 0; round < 50 || done.load() < 20; ++round) {
    set_num_threads(1 + round % 4);
    std::this_thread::yield();
  }
  stop = true;
  user.join();
  EXPECT_GT(done.load(), 0);
  EXPECT_EQ(held, &default_executor());
  EXPECT_EQ(held->concurrency(), num_threads());
  set_num_threads(2);
}

TEST(ThreadPool, CountsAreBounded) {
  EXPECT_GE(max_threads(), 256);
  try {
    set_num_threads(max_threads() + 1);
    ADD_FAILURE() << "a count above the cap was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLimitExceeded);
  }
  EXPECT_THROW(ThreadPool(max_threads() + 1), Error);
  EXPECT_THROW(set_num_threads(0), Error);
  ThreadPool lazy(64);  // no thread is started until work needs one
  EXPECT_EQ(lazy.concurrency(), 64);
}
