// Pieces shared by the fuzz targets: an executor that runs inline, an in-memory store with
// FileStore's range semantics, codec spec builders, an input reader and the error contract.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/store.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore_fuzz {

using voxcore::ByteBuffer;
using voxcore::ByteRange;
using voxcore::CodecId;
using voxcore::CodecSpec;
using voxcore::Shape;

// Runs everything on the calling thread: deterministic, and exceptions propagate as they are.
class InlineExecutor final : public voxcore::Executor {
 public:
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn) override {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
  int concurrency() const override { return 1; }
};

// Values in a map; ranges behave as FileStore's do (a range past the end returns what exists).
class MemoryStore final : public voxcore::Store {
 public:
  explicit MemoryStore(bool batched) : batched_(batched) {}
  std::map<std::string, std::vector<uint8_t>> values;

  bool batched() const noexcept override { return batched_; }
  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
           uint64_t* total_size) override {
    voxcore::check_key(key);
    out.clear();
    const auto it = values.find(key);
    if (it == values.end()) return false;
    const std::vector<uint8_t>& v = it->second;
    if (total_size) *total_size = v.size();
    uint64_t begin = 0, end = v.size();
    if (range.kind == ByteRange::Kind::kRange) {
      begin = std::min<uint64_t>(range.offset, v.size());
      end = begin + std::min<uint64_t>(range.length, v.size() - begin);
    } else if (range.kind == ByteRange::Kind::kSuffix) {
      begin = v.size() - std::min<uint64_t>(range.length, v.size());
    }
    out.append(v.data() + begin, static_cast<std::size_t>(end - begin));
    return true;
  }
  void set(const std::string& key, const uint8_t* data, std::size_t size) override {
    voxcore::check_key(key);
    values[key].assign(data, data + size);
  }
  void erase(const std::string& key) override {
    voxcore::check_key(key);
    values.erase(key);
  }

 private:
  bool batched_;
};

inline CodecSpec codec(CodecId id, int level = 0) {
  CodecSpec s;
  s.id = id;
  s.level = level;
  return s;
}
inline CodecSpec sharding(Shape inner, std::vector<CodecSpec> inner_codecs, bool crc, bool at_end) {
  CodecSpec s = codec(CodecId::kSharding);
  s.inner_chunk_shape = std::move(inner);
  s.inner_codecs = std::move(inner_codecs);
  s.index_codecs = {codec(CodecId::kBytes)};
  if (crc) s.index_codecs.push_back(codec(CodecId::kCrc32c));
  s.index_at_end = at_end;
  return s;
}


// Reads the fuzzer's bytes one at a time; 0 once they run out.
struct Reader {
  const uint8_t* p;
  std::size_t n;
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

inline int64_t volume(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Runs fn; true on success, false on voxcore::Error; anything else violates the contract (abort).
template <class Fn>
bool attempt(const char* what, Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const voxcore::Error&) {
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: contract violated: a non-voxcore exception: %s\n", what, e.what());
    std::abort();
  }
}

}  // namespace voxcore_fuzz
