#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "voxcore/api.hpp"

namespace voxcore {

// The values of one batch of requests, handed over as each arrives so that decoding starts with
// the first instead of after the last (a remote store's fetch). One producer puts each request's
// value once, or marks it missing, or fails the whole batch; consumers take values in arrival
// order. The bytes stay the producer's: it frees a value once a consumer has released its token.
// Thread-safe.
class VOXCORE_API Arrivals {
 public:
  struct Item {
    std::size_t index = 0;          // which request
    const uint8_t* data = nullptr;  // its bytes (nullptr when missing)
    std::size_t size = 0;
    bool found = false;
    uint64_t token = 0;  // a found value's: given back by release() once its bytes are not read
  };

  explicit Arrivals(std::size_t count);
  Arrivals(const Arrivals&) = delete;
  Arrivals& operator=(const Arrivals&) = delete;

  // Producer. put and put_missing refuse (kInvalidArgument) an index out of range or given twice;
  // both return false once the consumers gave up (abort), when nothing more is wanted.
  bool put(std::size_t index, const uint8_t* data, std::size_t size, uint64_t token);
  bool put_missing(std::size_t index);
  // The fetch failed: every take() returns false from now on (the producer reports the error).
  void fail();
  // The tokens released since the last call: their bytes may be freed.
  std::vector<uint64_t> released();
  bool aborted() const;

  // Consumer. Waits for the next value; false once the batch failed or was aborted (or when all
  // were taken).
  bool take(Item& out);
  void release(uint64_t token);
  // Gives up on the rest (a decode failed): wakes every take() and tells the producer.
  void abort();

  std::size_t count() const { return count_; }

 private:
  bool enqueue(const Item& item, const char* where);  // put's and put_missing's one check and push

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Item> queue_;
  std::vector<uint8_t> given_;
  std::vector<uint64_t> released_;
  std::size_t count_;
  std::size_t untaken_;
  bool failed_ = false;
  bool aborted_ = false;
};

}  // namespace voxcore
