#include "detail/write_behind.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "detail/io_threads.hpp"
#include "detail/shard_io.hpp"
#include "voxcore/error.hpp"

namespace voxcore::detail {
namespace {

// At most this many bytes (but always one set) and sets in flight per run: enough to keep every
// I/O thread busy, small beside the data a run writes.
constexpr std::size_t kMaxBytesInFlight = std::size_t{128} << 20;
std::size_t max_jobs() { return 4 * static_cast<std::size_t>(io_thread_count()); }

}  // namespace

WriteBehind::WriteBehind(const char* where) : where_(where) {}

DirtyDirs& WriteBehind::dirs_of(Store* store) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::unique_ptr<DirtyDirs>& d = dirs_[store];
  if (!d) d = std::make_unique<DirtyDirs>();
  return *d;
}

WriteBehind::~WriteBehind() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_idle(lock);
  }
  try {
    sync_dirs();
  } catch (...) {
  }
}

void WriteBehind::wait_idle(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [&] { return jobs_ == 0; });
}

void WriteBehind::job_done(std::exception_ptr error) {
  if (error && !error_) error_ = std::move(error);
  --jobs_;
  changed_.notify_all();
}

void WriteBehind::throw_if_failed(std::unique_lock<std::mutex>& lock) {
  if (error_) {
    std::exception_ptr e = error_;
    lock.unlock();
    std::rethrow_exception(e);
  }
}

// The error of a set of key, with the key named.
static std::exception_ptr keyed(const char* where, const std::string& key) {
  try {
    try {
      throw;
    } catch (const Error& e) {
      rethrow_keyed(e, where, key);
    }
  } catch (...) {
    return std::current_exception();
  }
}

void WriteBehind::put(Store* store, const std::string& key, ByteBuffer& bytes,
                      std::function<void()> after) {
  if (store == nullptr || !store->write_waits()) {
    try {
      if (store != nullptr) store->set_deferred(key, bytes.data(), bytes.size(), dirs_of(store));
    } catch (...) {
      if (after) after();
      throw;
    }
    if (after) after();
    return;
  }
  DirtyDirs& dirs = dirs_of(store);
  auto job = std::make_shared<ByteBuffer>();
  const std::size_t size = bytes.size();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] {
      return error_ || jobs_ == 0 || (jobs_ < max_jobs() && bytes_ + size <= kMaxBytesInFlight);
    });
    if (error_) {
      if (after) after();
      throw_if_failed(lock);
    }
    ++jobs_;
    bytes_ += size;
    if (!spare_.empty()) {
      *job = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  std::swap(*job, bytes);  // the caller encodes its next value into a spare buffer
  run_on_io_thread([this, store, &dirs, key, job, size, after = std::move(after)]() mutable {
    std::exception_ptr error;
    try {
      store->set_deferred(key, job->data(), job->size(), dirs);
    } catch (...) {
      error = keyed(where_, key);
    }
    if (after) after();
    after = nullptr;  // release what it holds before the run may end
    std::lock_guard<std::mutex> lock(mutex_);
    bytes_ -= size;
    job->clear();
    spare_.push_back(std::move(*job));
    job_done(std::move(error));
  });
}

void WriteBehind::sync_dirs() {
  std::vector<std::pair<Store*, std::string>> todo;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [store, dirs] : dirs_) {
      for (std::string& d : dirs->take()) todo.emplace_back(store, std::move(d));
    }
  }
  if (todo.empty()) return;
  const bool behind = std::any_of(todo.begin(), todo.end(),
                                  [](const auto& t) { return t.first->write_waits(); });
  if (!behind || todo.size() == 1) {
    for (const auto& [store, d] : todo) store->sync_dir(d);
    return;
  }
  // Each directory's fsync on an I/O thread, all in flight together.
  std::unique_lock<std::mutex> lock(mutex_);
  for (const auto& [store, d] : todo) {
    ++jobs_;
    run_on_io_thread([this, store = store, d = d] {
      std::exception_ptr error;
      try {
        store->sync_dir(d);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> inner(mutex_);
      job_done(std::move(error));
    });
  }
  wait_idle(lock);
}

void WriteBehind::finish() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_idle(lock);
  }
  // Synced also when a set failed: what was renamed into place before it is durable.
  sync_dirs();
  std::unique_lock<std::mutex> lock(mutex_);
  throw_if_failed(lock);
}

}  // namespace voxcore::detail
