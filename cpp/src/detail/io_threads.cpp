#include "detail/io_threads.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include <unistd.h>

namespace voxcore::detail {
namespace {

// fsyncs in flight at once: ext4 and xfs commit concurrent syncs in one journal transaction, and a
// virtual or NVMe disk serves many requests together. The threads only wait, so on a small machine
// they cost no compute.
constexpr int kIoThreads = 16;

// Never destroyed: detached threads may wait on it until the process exits.
struct Pool {
  const pid_t owner = ::getpid();  // the process whose threads these are
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::function<void()>> jobs;

  Pool() {
    for (int i = 0; i < kIoThreads; ++i) std::thread([this] { loop(); }).detach();
  }

  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        ready.wait(lock, [&] { return !jobs.empty(); });
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job();
    }
  }
};

std::atomic<Pool*> g_pool{nullptr};

Pool& pool() {
  // A child of fork() has none of its parent's threads (and maybe a locked mutex): it makes its own
  // pool and leaves the parent's copy alone.
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p != nullptr && p->owner == ::getpid()) return *p;
  static std::mutex guard;
  std::lock_guard<std::mutex> lock(guard);
  p = g_pool.load(std::memory_order_acquire);
  if (p == nullptr || p->owner != ::getpid()) {
    p = new Pool();
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

int io_thread_count() noexcept { return kIoThreads; }

void run_on_io_thread(std::function<void()> job) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.jobs.push_back(std::move(job));
  }
  p.ready.notify_one();
}

}  // namespace voxcore::detail
