#include "voxcore/arrivals.hpp"

#include <string>

#include "voxcore/error.hpp"

namespace voxcore {

Arrivals::Arrivals(std::size_t count) : given_(count, 0), count_(count), untaken_(count) {}

bool Arrivals::put(std::size_t index, const uint8_t* data, std::size_t size, uint64_t token) {
  return enqueue(Item{index, data, size, true, token}, "Arrivals::put");
}

bool Arrivals::put_missing(std::size_t index) {
  return enqueue(Item{index, nullptr, 0, false, 0}, "Arrivals::put_missing");
}

bool Arrivals::enqueue(const Item& item, const char* where) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    VOXCORE_EXPECT(item.index < count_ && !given_[item.index], ErrorCode::kInvalidArgument, where,
                   "request index out of range or given twice (index=" + std::to_string(item.index) +
                       ", count=" + std::to_string(count_) + ")");
    given_[item.index] = 1;
    if (aborted_ || failed_) return false;
    queue_.push_back(item);
  }
  ready_.notify_one();
  return true;
}

void Arrivals::fail() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failed_ = true;
  }
  ready_.notify_all();
}

std::vector<uint64_t> Arrivals::released() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint64_t> out;
  out.swap(released_);
  return out;
}

bool Arrivals::aborted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return aborted_;
}

bool Arrivals::take(Item& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return failed_ || aborted_ || untaken_ == 0 || !queue_.empty(); });
  if (failed_ || aborted_ || queue_.empty()) return false;
  out = queue_.front();
  queue_.pop_front();
  --untaken_;
  return true;
}

void Arrivals::release(uint64_t token) {
  std::lock_guard<std::mutex> lock(mutex_);
  released_.push_back(token);
}

void Arrivals::abort() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
  }
  ready_.notify_all();
}

}  // namespace voxcore
