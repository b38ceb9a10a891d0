#pragma once
// Private: one run of writes (ChunkedArray::write, ChunkBatch::encode, a WriteRun across several
// writes and arrays) and the one place where its durability is paid for.
//
// The compute threads encode; put() hands each encoded value to the store. Where the store's sets
// wait on the device (Store::write_waits: a durable FileStore, whose set writes a temp file, fsyncs
// it and renames it over the key), they run on the I/O threads (io_threads.hpp) while the compute
// threads go on encoding, with a bounded number of bytes in flight; else they run inline. Either
// way the directories that the sets renamed into (or created) are synced once each, when the run
// finishes, on the I/O threads too. A set that fails stops the run: the next put, or finish,
// throws its error with the key named.
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "voxcore/buffer.hpp"
#include "voxcore/store.hpp"

namespace voxcore::detail {

class WriteBehind {
 public:
  // where names the caller in errors.
  explicit WriteBehind(const char* where);
  // Waits for the sets in flight and syncs the directories they renamed into, best effort: for a
  // run that did not finish (its caller threw), so that what was published is durable too (after
  // finish() there is nothing left to do).
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Stores bytes under key of store (null: nothing is stored, after only runs), now or on an I/O
  // thread (store->write_waits()); in the second case bytes' contents are taken and bytes is left
  // holding a recycled buffer. after (which must not throw) runs once the set is
  // done or has failed, and is then destroyed (releasing whatever it holds, e.g. the key's
  // locks). Blocks while too much is in flight; throws the error of an earlier failed set.
  void put(Store* store, const std::string& key, ByteBuffer& bytes,
           std::function<void()> after = nullptr);

  // Waits for every set, syncs each directory they renamed into, and throws the first failure.
  void finish();

 private:
  void wait_idle(std::unique_lock<std::mutex>& lock);
  void throw_if_failed(std::unique_lock<std::mutex>& lock);
  void job_done(std::exception_ptr error);  // an I/O-thread job ended; mutex_ held
  void sync_dirs();
  DirtyDirs& dirs_of(Store* store);

  const char* where_;
  std::map<Store*, std::unique_ptr<DirtyDirs>> dirs_;  // per store written, under mutex_
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t jobs_ = 0;   // sets in flight
  std::size_t bytes_ = 0;  // their bytes
  std::exception_ptr error_;
  std::vector<ByteBuffer> spare_;  // buffers of finished sets, for the next puts
};

}  // namespace voxcore::detail
