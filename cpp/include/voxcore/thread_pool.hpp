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

// A fixed pool of worker threads; the calling thread takes part in parallel_for. A parallel_for
// called from inside one of its own workers runs inline (no deadlock on nesting).
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

// The process-wide default pool: VOXCORE_NUM_THREADS if set, else the number of cores.
VOXCORE_API Executor& default_executor();
// Resizes the default pool (n >= 1); not to be called while work runs on it.
VOXCORE_API void set_num_threads(int n);
VOXCORE_API int num_threads();

}  // namespace voxcore
