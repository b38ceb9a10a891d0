#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/arrivals.hpp"
#include "voxcore/buffer.hpp"

struct stat;  // <sys/stat.h>, for FileStore's private helpers

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

// The directories that a run of writes renamed values into (or created), each synced once when the
// run ends (Store::sync_dir). Thread-safe.
class VOXCORE_API DirtyDirs {
 public:
  void add(const std::string& dir);
  std::vector<std::string> take();  // the directories added since the last take, each once

 private:
  std::mutex mutex_;
  std::set<std::string> dirs_;
};

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
  // As set, but a durable store leaves the syncs of the directories that the value was renamed
  // (or created) into to sync_dir, once per directory for a whole run of writes instead of once per
  // value: it records them in dirs. The value's own data is synced before its rename either way.
  // Default: set.
  virtual void set_deferred(const std::string& key, const uint8_t* data, std::size_t size,
                            DirtyDirs& dirs) {
    (void)dirs;
    set(key, data, size);
  }
  // Makes the renames into dir, a directory that set_deferred recorded, durable.
  virtual void sync_dir(const std::string& dir) { (void)dir; }
  // True when set waits on the device (a durable FileStore's fsyncs): a run of writes then calls
  // set_deferred from I/O threads, concurrently, while its compute threads go on encoding.
  virtual bool write_waits() const noexcept { return false; }
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
  // A batched store's get_many whose values are handed to arrivals as each comes, so that the
  // caller decodes while the rest are still being fetched. Called from the calling thread; returns
  // what that thread calls, once it took every value or gave up, to wait for the fetch's end and
  // rethrow its failure. The bytes put stay valid until their token is released, or until that
  // function returns. Default: get_many, then every value put at once.
  virtual std::function<void()> start_many(const std::vector<ByteRequest>& requests,
                                           const std::shared_ptr<Arrivals>& arrivals);

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

  // Held for the whole read-modify-write of key (a partial chunk or shard write), so that writers
  // of the same key in other processes wait for it. nullptr: the store has no such lock.
  virtual std::shared_ptr<void> lock_for_update(const std::string& key);
};

// Files under a root directory.
//
// Keys resolve beneath the root: openat2(RESOLVE_BENEATH) where the kernel has it, else a
// realpath check. A symlink inside the tree is followed while it stays inside the root; one that
// leads out of it raises kUnsafePath for reads and writes, unless allow_external_links is set.
// sub(path) gives a store for a subtree that keeps this root as its boundary.
//
// Writes are atomic, and durable when the call returns (durable=false drops only the fsyncs):
//  - a value goes to a unique temp file ".NAME.vxtmp-PID-..." in its key's directory
//    (O_CREAT|O_EXCL), whose data is fsync'd, and is then renamed over NAME: readers, and the disk
//    after a crash, see the old value or the new one, never a torn one;
//  - the directory that received the rename, and the parent of each directory the write created,
//    are fsync'd before the call returns. set() syncs them itself; a run of writes
//    (ChunkedArray::write, ChunkBatch::encode) records them through set_deferred and syncs each
//    directory once, at its end (sync_dir);
//  - write_waits() is true when durable, so a run calls set_deferred from the I/O threads: the
//    fsyncs of many values are in flight together (the filesystem commits them in one journal
//    transaction) while the compute threads go on encoding. The cost of durability is then the
//    disk's, not the compute threads' (see detail/write_behind.hpp);
//  - a failed write, open, fsync or rename raises kIo naming the path (so the key) and errno,
//    and removes its temp file: the key keeps its old value.
// unpublished: the tree is one that no reader sees yet (built beside its target, renamed into
// place once complete, and removed if the build fails), so there is no old value to keep: each
// value is written straight to its key (O_TRUNC, no temp file, no rename), its data fsync'd when
// durable, and its directory recorded as above. A crash leaves a torn value only in a tree that
// is never published. The cost saved is a rename, a directory entry and a temp name per value.
// The first write into a directory through a store removes temp files there whose writer process
// no longer exists. lock_for_update takes an open-file-description byte-range lock (F_OFD_SETLKW)
// on the ".vxlock" file of the store's directory (root/prefix), one byte per key hash, so that
// read-modify-writes of one key are serialised across processes and threads; the lock is
// released when the token is dropped, or by the kernel when the process dies. Thread-safe.
class VOXCORE_API FileStore : public Store {
 public:
  explicit FileStore(std::string root, bool durable = true, bool allow_external_links = false,
                     bool unpublished = false);
  const std::string& root() const noexcept { return root_; }
  const std::string& prefix() const noexcept { return prefix_; }
  bool durable() const noexcept { return durable_; }
  bool allow_external_links() const noexcept { return allow_external_links_; }
  bool unpublished() const noexcept { return unpublished_; }
  // The subtree at path (a checked key), with the same root as its boundary.
  std::shared_ptr<FileStore> sub(const std::string& path) const;

  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
           uint64_t* total_size = nullptr) override;
  void set(const std::string& key, const uint8_t* data, std::size_t size) override;
  void set_deferred(const std::string& key, const uint8_t* data, std::size_t size,
                    DirtyDirs& dirs) override;
  void sync_dir(const std::string& dir) override;
  bool write_waits() const noexcept override { return durable_; }
  void erase(const std::string& key) override;
  bool exists(const std::string& key);
  std::unique_ptr<Snapshot> snapshot(const std::string& key) override;
  std::string identity() const override;
  std::shared_ptr<void> lock_for_update(const std::string& key) override;

  // The name of the lock file in the store's directory.
  static constexpr const char* kLockFile = ".vxlock";

 private:
  struct Cleaned;
  std::string full(const std::string& key) const;  // the path of prefix/key, for messages
  std::string rel(const std::string& key) const;   // prefix/key
  int open_beneath(const std::string& rel_path, int flags, unsigned mode = 0) const;
  int open_value(const std::string& key, const char* where, struct stat& st) const;
  int open_dir_for_write(const std::string& rel_dir, DirtyDirs* created) const;
  void remove_stale_temps(int dir_fd, const std::string& rel_dir) const;
  void write_value(const std::string& key, const uint8_t* data, std::size_t size, DirtyDirs& dirs);
  void write_file(int dir_fd, const std::string& name, const std::string& path, int flags,
                  const char* create_failed, const uint8_t* data, std::size_t size) const;

  std::string root_;
  std::string prefix_;
  std::string canonical_root_;
  bool durable_;
  bool allow_external_links_;
  bool unpublished_;
  std::shared_ptr<Cleaned> cleaned_;
};

// A store whose bytes come from caller-supplied functions (e.g. Python serving any zarr store).
// It is batched: the functions are called only from the thread that called into ChunkedArray.
class VOXCORE_API CallbackStore : public Store {
 public:
  using GetMany = std::function<void(const std::vector<ByteRequest>&, std::vector<ByteBuffer>&,
                                     std::vector<uint8_t>&)>;
  using SetMany = std::function<void(const std::vector<std::string>&, const std::vector<ByteBuffer>&)>;
  using Erase = std::function<void(const std::string&)>;
  using StartMany = std::function<std::function<void()>(const std::vector<ByteRequest>&,
                                                        const std::shared_ptr<Arrivals>&)>;

  // start_many (optional) streams reads' values (see Store::start_many); without it, get_many.
  CallbackStore(GetMany get_many, SetMany set_many = nullptr, Erase erase = nullptr,
                StartMany start_many = nullptr);

  bool batched() const noexcept override { return true; }
  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
           uint64_t* total_size = nullptr) override;
  void set(const std::string& key, const uint8_t* data, std::size_t size) override;
  void erase(const std::string& key) override;
  void get_many(const std::vector<ByteRequest>& requests, std::vector<ByteBuffer>& out,
                std::vector<uint8_t>& found) override;
  void set_many(const std::vector<std::string>& keys, const std::vector<ByteBuffer>& values) override;
  std::function<void()> start_many(const std::vector<ByteRequest>& requests,
                                   const std::shared_ptr<Arrivals>& arrivals) override;

 private:
  GetMany get_many_;
  SetMany set_many_;
  Erase erase_;
  StartMany start_many_;
};

}  // namespace voxcore
