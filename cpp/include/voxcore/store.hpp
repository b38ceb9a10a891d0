#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/buffer.hpp"

namespace voxcore {

// Which bytes of a value to fetch.
struct ByteRange {
  enum class Kind : uint8_t { kWhole, kRange, kSuffix };
  Kind kind = Kind::kWhole;
  uint64_t offset = 0;  // kRange
  uint64_t length = 0;  // kRange, kSuffix
  // kWhole: a value larger than this is refused (kCorrupt) before anything is allocated.
  uint64_t max_size = UINT64_MAX;
  static ByteRange whole(uint64_t max_size = UINT64_MAX) { return {Kind::kWhole, 0, 0, max_size}; }
  static ByteRange range(uint64_t offset, uint64_t length) { return {Kind::kRange, offset, length}; }
  static ByteRange suffix(uint64_t length) { return {Kind::kSuffix, 0, length}; }
};

struct ByteRequest {
  std::string key;
  ByteRange range;
};

// Throws Error(kUnsafePath) unless key is a relative '/'-separated path with no empty, '.' or '..'
// segment, no NUL or backslash, and no segment that looks like one of our temp files.
VOXCORE_API void check_key(const std::string& key);

// A key-value store of chunk bytes. Keys are checked with check_key by every implementation.
class VOXCORE_API Store {
 public:
  virtual ~Store() = default;
  // Reads the requested bytes of key into out. Returns false when the key does not exist.
  // A range that runs past the end returns the bytes that exist (callers check the length).
  // *total_size, when given, receives the value's full size or UINT64_MAX when unknown.
  virtual bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
                   uint64_t* total_size = nullptr) = 0;
  virtual void set(const std::string& key, const uint8_t* data, std::size_t size) = 0;
  // Removing a missing key is not an error.
  virtual void erase(const std::string& key) = 0;

  // A batched store is only ever called from the thread that called ChunkedArray (never from
  // workers), through get_many/set_many, so it may call into an interpreter.
  virtual bool batched() const noexcept { return false; }
  // Default: one get per request. found[i] tells whether key i exists.
  virtual void get_many(const std::vector<ByteRequest>& requests, std::vector<ByteBuffer>& out,
                        std::vector<uint8_t>& found);
  // Default: one set per item.
  virtual void set_many(const std::vector<std::string>& keys, const std::vector<ByteBuffer>& values);

  // Several range reads of one value that all see the same version of it, even while another
  // writer atomically replaces the value (a FileStore keeps the file open). nullptr when the key
  // does not exist. The default reads the whole value once.
  class Snapshot {
   public:
    virtual ~Snapshot() = default;
    virtual uint64_t size() const = 0;
    // Reads [offset, offset + length) clipped to the value; returns the bytes read.
    virtual std::size_t read(uint64_t offset, uint64_t length, ByteBuffer& out) = 0;
    // Identifies this version of the value (a FileStore: inode, size, mtime), so that what was
    // derived from it (a shard index) can be reused while it is unchanged. Empty: unknown.
    virtual std::string version() const { return {}; }
  };
  virtual std::unique_ptr<Snapshot> snapshot(const std::string& key);

  // Identifies the underlying storage, so that writers of the same key through different handles
  // in one process serialise their read-modify-writes (FileStore: its canonical root).
  virtual std::string identity() const;
};

// Files under a root directory. Reads use pread; writes are atomic (unique temp file in the same
// directory, O_CREAT|O_EXCL, fsync, rename, directory fsync) unless durable is false, which drops
// the fsyncs. Thread-safe.
class VOXCORE_API FileStore : public Store {
 public:
  explicit FileStore(std::string root, bool durable = true);
  const std::string& root() const noexcept { return root_; }
  bool durable() const noexcept { return durable_; }

  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
           uint64_t* total_size = nullptr) override;
  void set(const std::string& key, const uint8_t* data, std::size_t size) override;
  void erase(const std::string& key) override;
  bool exists(const std::string& key);
  std::unique_ptr<Snapshot> snapshot(const std::string& key) override;
  std::string identity() const override;

 private:
  std::string root_;
  std::string canonical_root_;
  bool durable_;
};

// A store whose bytes come from caller-supplied functions (e.g. Python serving any zarr store).
// It is batched: the functions are called only from the thread that called into ChunkedArray.
class VOXCORE_API CallbackStore : public Store {
 public:
  using GetMany = std::function<void(const std::vector<ByteRequest>&, std::vector<ByteBuffer>&,
                                     std::vector<uint8_t>&)>;
  using SetMany = std::function<void(const std::vector<std::string>&, const std::vector<ByteBuffer>&)>;
  using Erase = std::function<void(const std::string&)>;

  CallbackStore(GetMany get_many, SetMany set_many = nullptr, Erase erase = nullptr);

  bool batched() const noexcept override { return true; }
  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
           uint64_t* total_size = nullptr) override;
  void set(const std::string& key, const uint8_t* data, std::size_t size) override;
  void erase(const std::string& key) override;
  void get_many(const std::vector<ByteRequest>& requests, std::vector<ByteBuffer>& out,
                std::vector<uint8_t>& found) override;
  void set_many(const std::vector<std::string>& keys, const std::vector<ByteBuffer>& values) override;

 private:
  GetMany get_many_;
  SetMany set_many_;
  Erase erase_;
};

}  // namespace voxcore
