#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "voxcore/api.hpp"

namespace voxcore {

// Where parallel work runs. A renderer can implement this to run voxcore's work on its own threads.
class VOXCORE_API Executor {
 public:
  virtual ~Executor() = default;
  // Calls fn(i) for every i in [0, n), possibly concurrently, and returns when all are done.
  // The first exception thrown by fn is rethrown here (the other items still finish or are skipped).
  virtual void parallel_for(int64_t n, const std::function<void(int64_t)>& fn) = 0;
  // How many items may run at once.
  virtual int concurrency() const = 0;
};

// A fixed pool of worker threads, started by the first parallel_for that has more than one item;
// the calling thread takes part in parallel_for. A parallel_for called from inside one of its own
// workers runs inline (no deadlock on nesting). num_threads above max_threads() is refused.
class VOXCORE_API ThreadPool : public Executor {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool() override;
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn) override;
  int concurrency() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The largest thread count a pool may have: max(256, 2 x the number of cores).
VOXCORE_API int max_threads();
// The process-wide default executor: a stable object (handles keep a pointer to it) that runs each
// call on the current default pool, of VOXCORE_NUM_THREADS threads if set, else one per core
// (both capped at max_threads()).
VOXCORE_API Executor& default_executor();
// Replaces the default pool (1 <= n <= max_threads(), else kInvalidArgument / kLimitExceeded).
// Safe at any time, also while work runs: calls in flight finish on the old pool, later calls
// run on the new one, and the old pool's threads exit when its last call returns.
VOXCORE_API void set_num_threads(int n);
VOXCORE_API int num_threads();

}  // namespace voxcore
