#include "voxcore/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "voxcore/error.hpp"

namespace voxcore {
namespace {

// One parallel_for in flight. Shared with the workers so a late worker never sees a reset job.
struct Job {
  const std::function<void(int64_t)>* fn = nullptr;
  int64_t n = 0;
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;

  void run() {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        (*fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(n);  // skip what has not started
      }
    }
  }
};

thread_local const void* tl_worker_of = nullptr;

}  // namespace

struct ThreadPool::Impl {
  int num_threads = 1;
  std::vector<std::thread> workers;  // started by the first parallel_for that can use them
  std::mutex mutex;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::mutex job_mutex;  // one job at a time; a second caller runs its loop inline
  std::shared_ptr<Job> job;
  uint64_t generation = 0;
  int active = 0;
  bool stop = false;

  // Starts the workers once; false when there are none to start (a pool of one thread).
  bool ensure_workers() {
    if (num_threads <= 1) return false;
    std::lock_guard<std::mutex> lock(mutex);
    if (workers.empty()) {
      workers.reserve(static_cast<std::size_t>(num_threads - 1));
      for (int i = 1; i < num_threads; ++i) workers.emplace_back([this] { worker_loop(); });
    }
    return true;
  }

  void worker_loop() {
    tl_worker_of = this;
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> current;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        current = job;
        if (!current) continue;  // woke after that job was finished by others
        ++active;
      }
      current->run();
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (--active == 0) done_cv.notify_all();
      }
    }
  }
};

ThreadPool::ThreadPool(int num_threads) : impl_(std::make_unique<Impl>()) {
  VOXCORE_EXPECT(num_threads <= max_threads(), ErrorCode::kLimitExceeded, "ThreadPool",
                 "thread count above the limit (limit=" + std::to_string(max_threads()) +
                     ", got=" + std::to_string(num_threads) + ")");
  impl_->num_threads = num_threads < 1 ? 1 : num_threads;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  for (auto& worker : impl_->workers) worker.join();
}

int ThreadPool::concurrency() const { return impl_->num_threads; }

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  const bool inline_only = n == 1 || tl_worker_of == impl_.get() || !impl_->ensure_workers();
  std::unique_lock<std::mutex> job_lock(impl_->job_mutex, std::defer_lock);
  if (inline_only || !job_lock.try_lock()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->job = job;
    ++impl_->generation;
  }
  impl_->work_cv.notify_all();
  const void* previous = tl_worker_of;
  tl_worker_of = impl_.get();  // nested parallel_for from fn runs inline
  job->run();
  tl_worker_of = previous;
  {
    std::unique_lock<std::mutex> lock(impl_->mutex);
    impl_->done_cv.wait(lock, [&] { return impl_->active == 0; });
    impl_->job.reset();
  }
  if (job->error) std::rethrow_exception(job->error);
}

int max_threads() {
  static const int cap = [] {
    const unsigned hw = std::thread::hardware_concurrency();
    return std::max(256, 2 * static_cast<int>(hw));
  }();
  return cap;
}

namespace {

int default_thread_count() {
  int n = 0;
  if (const char* env = std::getenv("VOXCORE_NUM_THREADS")) n = std::atoi(env);
  if (n < 1) {
    const unsigned hw = std::thread::hardware_concurrency();
    n = hw == 0 ? 1 : static_cast<int>(hw);
  }
  return std::min(n, max_threads());
}

std::mutex g_pool_mutex;
std::shared_ptr<ThreadPool> g_pool;  // replaced by set_num_threads; callers hold it while they run

std::shared_ptr<ThreadPool> current_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<ThreadPool>(default_thread_count());
  return g_pool;
}

// The executor every handle keeps a pointer to. It never changes; each call runs on the pool of
// that moment, which stays alive until the call returns even if the pool is replaced meanwhile.
class DefaultExecutor final : public Executor {
 public:
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn) override {
    current_pool()->parallel_for(n, fn);
  }
  int concurrency() const override { return current_pool()->concurrency(); }
};

}  // namespace

Executor& default_executor() {
  static DefaultExecutor* executor = new DefaultExecutor();  // never destroyed: handles may outlive exit
  return *executor;
}

void set_num_threads(int n) {
  VOXCORE_EXPECT(n >= 1, ErrorCode::kInvalidArgument, "set_num_threads",
                 "thread count must be >= 1 (got=" + std::to_string(n) + ")");
  VOXCORE_EXPECT(n <= max_threads(), ErrorCode::kLimitExceeded, "set_num_threads",
                 "thread count above the limit of max(256, 2 x cores) (limit=" +
                     std::to_string(max_threads()) + ", got=" + std::to_string(n) + ")");
  auto pool = std::make_shared<ThreadPool>(n);
  std::shared_ptr<ThreadPool> old;
  {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    old = std::move(g_pool);
    g_pool = std::move(pool);
  }
  // old is released here, outside the lock: its workers are joined once no call runs on it.
}

int num_threads() { return current_pool()->concurrency(); }

}  // namespace voxcore
