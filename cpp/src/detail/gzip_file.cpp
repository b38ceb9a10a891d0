// Whole gzip files (a .nii.gz): gunzip into a caller buffer, gzip_members compresses in
// parallel blocks, one gzip member each.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "detail/codec_ops.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore {

namespace {

// Faults in the pages of a large fresh output buffer on another thread while the (single-
// threaded) inflate writes it, so the decoder does not stop for page faults. MADV_POPULATE_WRITE
// maps pages without touching their bytes, so racing the decoder is harmless; where the kernel
// lacks it this does nothing.
class Prefault {
 public:
  Prefault(uint8_t* dst, std::size_t size) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    if (size < (std::size_t{32} << 20)) return;
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    const std::uintptr_t lo = (reinterpret_cast<std::uintptr_t>(dst) + page - 1) / page * page;
    const std::uintptr_t hi = (reinterpret_cast<std::uintptr_t>(dst) + size) / page * page;
    if (hi <= lo) return;
    thread_ = std::thread([this, lo, hi] {
      constexpr std::uintptr_t kStep = std::uintptr_t{4} << 20;
      for (std::uintptr_t p = lo; p < hi && !stop_.load(std::memory_order_relaxed); p += kStep) {
        if (madvise(reinterpret_cast<void*>(p), std::min(kStep, hi - p), MADV_POPULATE_WRITE) != 0) break;
      }
    });
#endif
  }
  ~Prefault() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }
  Prefault(const Prefault&) = delete;
  Prefault& operator=(const Prefault&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::size_t gunzip(const uint8_t* src, std::size_t size, uint8_t* dst, std::size_t cap, bool discard_excess) {
  Prefault prefault(dst, cap);
  return detail::deflate_decode(CodecId::kGzip, src, size, dst, cap, false, discard_excess);
}

void gzip_members(const uint8_t* src, std::size_t size, int level, std::size_t block, ByteBuffer& out,
                  Executor* executor) {
  if (block == 0) fail(ErrorCode::kInvalidArgument, "gzip_members", "block must be > 0");
  if (executor == nullptr) executor = &default_executor();
  const std::size_t count = size == 0 ? 1 : (size + block - 1) / block;
  std::vector<ByteBuffer> parts(count);
  executor->parallel_for(static_cast<int64_t>(count), [&](int64_t i) {
    const std::size_t lo = static_cast<std::size_t>(i) * block, n = std::min(block, size - lo);
    if (level <= 3) {
      detail::isal_gzip_encode(src + lo, n, level, parts[static_cast<std::size_t>(i)]);
    } else {
      detail::deflate_encode(CodecId::kGzip, src + lo, n, level, parts[static_cast<std::size_t>(i)]);
    }
  });
  std::size_t total = 0;
  for (const ByteBuffer& p : parts) total += p.size();
  const std::size_t base = out.size();
  out.resize(base + total);
  uint8_t* dst = out.data() + base;
  for (const ByteBuffer& p : parts) {
    std::memcpy(dst, p.data(), p.size());
    dst += p.size();
  }
}

void gzip_members(const uint8_t* src, std::size_t size, int level, std::size_t block,
                  const std::function<void(const uint8_t*, std::size_t)>& sink, Executor* executor) {
  if (block == 0) fail(ErrorCode::kInvalidArgument, "gzip_members", "block must be > 0");
  if (executor == nullptr) executor = &default_executor();
  const std::size_t count = size == 0 ? 1 : (size + block - 1) / block;
  std::vector<ByteBuffer> parts(count);
  std::vector<uint8_t> ready(count, 0);
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::atomic<bool> abort{false};
  std::exception_ptr error;
  // A driver thread runs the parallel compression (it takes part in it); this thread hands the
  // finished members to sink in order as they complete.
  std::thread driver([&] {
    try {
      executor->parallel_for(static_cast<int64_t>(count), [&](int64_t i) {
        if (abort.load(std::memory_order_relaxed)) return;
        const std::size_t k = static_cast<std::size_t>(i), lo = k * block, n = std::min(block, size - lo);
        ByteBuffer part;
        if (level <= 3) {
          detail::isal_gzip_encode(src + lo, n, level, part);
        } else {
          detail::deflate_encode(CodecId::kGzip, src + lo, n, level, part);
        }
        std::lock_guard<std::mutex> lock(mu);
        parts[k] = std::move(part);
        ready[k] = 1;
        cv.notify_all();
      });
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
    cv.notify_all();
  });
  std::exception_ptr sink_error;
  for (std::size_t k = 0; k < count; ++k) {
    ByteBuffer part;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return ready[k] != 0 || finished; });
      if (ready[k] == 0) break;  // the compression failed
      part = std::move(parts[k]);
    }
    try {
      sink(part.data(), part.size());
    } catch (...) {
      sink_error = std::current_exception();
      abort.store(true, std::memory_order_relaxed);
      break;
    }
  }
  driver.join();
  if (sink_error) std::rethrow_exception(sink_error);
  if (error) std::rethrow_exception(error);
}

}  // namespace voxcore
