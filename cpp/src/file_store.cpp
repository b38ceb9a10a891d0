// FileStore: files under a root directory, resolved beneath it (see store.hpp for the contract).
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <unordered_set>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "detail/temp_name.hpp"
#include "voxcore/error.hpp"
#include "voxcore/store.hpp"

namespace voxcore {
namespace {

using detail::kTempMarker;

[[noreturn]] void fail_io(const char* where, const std::string& what, const std::string& path, int err) {
  fail(ErrorCode::kIo, where, what + " (path=" + path + ", errno=" + std::to_string(err) + ": " +
                                  std::strerror(err) + ")",
       err);
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

void pread_all(int fd, uint8_t* dst, std::size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t got = ::pread(fd, dst, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail_io("FileStore::get", "read failed", path, errno);
    }
    if (got == 0) {
      fail(ErrorCode::kCorrupt, "FileStore::get", "file shrank while reading (path=" + path + ")");
    }
    dst += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

void write_all(int fd, const uint8_t* src, std::size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t put = ::write(fd, src, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      fail_io("FileStore::set", "write failed", path, errno);
    }
    src += put;
    n -= static_cast<std::size_t>(put);
  }
}

// mkdir -p of the root itself (a path the caller chose; symlinks in it are the caller's).
void make_root(const std::string& dir) {
  if (dir.empty()) return;
  if (::mkdir(dir.c_str(), 0777) == 0 || errno == EEXIST) return;
  if (errno == ENOENT) {
    const auto slash = dir.rfind('/');
    if (slash != std::string::npos && slash > 0) make_root(dir.substr(0, slash));
    if (::mkdir(dir.c_str(), 0777) == 0 || errno == EEXIST) return;
  }
  fail_io("FileStore::set", "cannot create directory", dir, errno);
}

std::string temp_suffix() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return std::string(kTempMarker) + std::to_string(::getpid()) + "-" + std::to_string(salt % 1000000) +
         "-" + std::to_string(counter.fetch_add(1));
}

std::string dir_of(const std::string& rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

std::string name_of(const std::string& rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

bool inside(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::string real_path(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) return {};
  std::string out(resolved);
  std::free(resolved);
  return out;
}

// The PID in a temp-file name ".NAME.vxtmp-PID-...", or 0.
pid_t temp_owner(const char* name) {
  const char* mark = std::strstr(name, kTempMarker);
  if (name[0] != '.' || mark == nullptr) return 0;
  char* end = nullptr;
  const long pid = std::strtol(mark + std::strlen(kTempMarker), &end, 10);
  return (end != nullptr && *end == '-' && pid > 0) ? static_cast<pid_t>(pid) : 0;
}

std::atomic<bool> g_no_openat2{false};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

// Directories of this store (and its subs) whose stale temp files were already removed.
struct FileStore::Cleaned {
  std::mutex mutex;
  std::unordered_set<std::string> dirs;
};

FileStore::FileStore(std::string root, bool durable, bool allow_external_links, bool unpublished)
    : root_(std::move(root)), durable_(durable), allow_external_links_(allow_external_links),
      unpublished_(unpublished), cleaned_(std::make_shared<Cleaned>()) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  const std::string resolved = real_path(root_);
  canonical_root_ = resolved.empty() ? root_ : resolved;
}

std::shared_ptr<FileStore> FileStore::sub(const std::string& path) const {
  check_key(path);
  auto out = std::make_shared<FileStore>(*this);
  out->prefix_ = rel(path);
  return out;
}

std::string FileStore::rel(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "/" + key; }

std::string FileStore::full(const std::string& key) const { return root_ + "/" + rel(key); }

std::string FileStore::identity() const {
  return "file:" + canonical_root_ + (prefix_.empty() ? "" : "/" + prefix_);
}

// Opens root/rel_path (rel_path empty: the root) so that it cannot leave the root. Returns -1 with
// errno set when it does not exist or cannot be opened; raises kUnsafePath when it escapes.
int FileStore::open_beneath(const std::string& rel_path, int flags, unsigned mode) const {
  flags |= O_CLOEXEC;
  if (allow_external_links_) return ::open((root_ + "/" + rel_path).c_str(), flags, mode);
  Fd root_fd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.fd < 0) return -1;
  if (rel_path.empty()) return ::openat(root_fd.fd, ".", flags, mode);
  if (!g_no_openat2.load(std::memory_order_relaxed)) {
    struct open_how how;
    std::memset(&how, 0, sizeof how);
    how.flags = static_cast<uint64_t>(flags);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, root_fd.fd, rel_path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == ENOSYS) {
      g_no_openat2.store(true, std::memory_order_relaxed);
    } else if (errno != EXDEV) {
      return -1;
    }
  }
  // No openat2, or it met a symlink that is absolute or leads up and out: resolve the longest
  // existing prefix and check that it lies in the root. (The tail does not exist yet.)
  const std::string path = root_ + "/" + rel_path;
  const std::string root_real = real_path(root_);
  std::string head = path, tail;
  std::string resolved = real_path(head);
  while (resolved.empty() && errno == ENOENT && head.size() > root_.size()) {
    const auto slash = head.rfind('/');
    tail = head.substr(slash) + tail;
    head = head.substr(0, slash);
    resolved = real_path(head);
  }
  if (resolved.empty()) {
    if (errno == ENOENT || errno == ENOTDIR) return -1;
    fail_io("FileStore", "cannot resolve", path, errno);
  }
  if (root_real.empty() || !inside(resolved, root_real)) {
    fail(ErrorCode::kUnsafePath, "FileStore",
         "key leads outside the store through a symbolic link (key=" + rel_path + ", resolves to=" +
             resolved + tail + ", root=" + root_real +
             "; open with allow_external_links=True to follow such links)");
  }
  return ::open((resolved + tail).c_str(), flags, mode);
}

// Opens the value of key for reading: -1 when it does not exist; a directory, a FIFO or any other
// non-regular file raises (opened with O_NONBLOCK, so a FIFO cannot block the open).
int FileStore::open_value(const std::string& key, const char* where, struct stat& st) const {
  check_key(key);
  const std::string path = full(key);
  int raw = open_beneath(rel(key), O_RDONLY | O_NONBLOCK);
  if (raw < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return -1;
    fail_io(where, "cannot open", path, errno);
  }
  Fd fd(raw);
  if (::fstat(fd.fd, &st) != 0) fail_io(where, "cannot stat", path, errno);
  if (S_ISDIR(st.st_mode)) fail_io(where, "key is a directory", path, EISDIR);
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::kCorrupt, where, "key is not a regular file (path=" + path + ")");
  const int out = fd.fd;
  fd.fd = -1;
  return out;
}

std::unique_ptr<Store::Snapshot> FileStore::snapshot(const std::string& key) {
  struct stat st;
  const int fd = open_value(key, "FileStore::snapshot", st);
  if (fd < 0) return nullptr;
  const std::string path = full(key);

  class FileSnapshot : public Snapshot {
   public:
    FileSnapshot(int fd, const struct stat& st, std::string path)
        : fd_(fd), size_(static_cast<uint64_t>(st.st_size)), path_(std::move(path)) {
      version_ = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
                 std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                 std::to_string(st.st_mtim.tv_nsec);
    }
    ~FileSnapshot() override { ::close(fd_); }
    std::string version() const override { return version_; }
    uint64_t size() const override { return size_; }
    std::size_t read(uint64_t offset, uint64_t length, ByteBuffer& out) override {
      const uint64_t start = std::min(offset, size_);
      const uint64_t n = std::min(length, size_ - start);
      out.resize(static_cast<std::size_t>(n));
      pread_all(fd_, out.data(), static_cast<std::size_t>(n), start, path_);
      return static_cast<std::size_t>(n);
    }

   private:
    int fd_;
    uint64_t size_;
    std::string path_;
    std::string version_;
  };
  return std::make_unique<FileSnapshot>(fd, st, path);
}

bool FileStore::get(const std::string& key, const ByteRange& range, ByteBuffer& out,
                    uint64_t* total_size) {
  struct stat st;
  const int raw = open_value(key, "FileStore::get", st);
  if (raw < 0) return false;
  Fd fd(raw);
  const std::string path = full(key);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (total_size) *total_size = size;
  uint64_t offset = 0, length = size;
  switch (range.kind) {
    case ByteRange::Kind::kWhole:
      if (size > range.max_size) {
        fail(ErrorCode::kCorrupt, "FileStore::get",
             "value larger than any encoding of it can be (key=" + key + ", limit=" +
                 std::to_string(range.max_size) + ", got=" + std::to_string(size) + " bytes)");
      }
      break;
    case ByteRange::Kind::kRange:
      offset = range.offset > size ? size : range.offset;
      length = std::min<uint64_t>(range.length, size - offset);
      break;
    case ByteRange::Kind::kSuffix:
      length = std::min<uint64_t>(range.length, size);
      offset = size - length;
      break;
  }
  out.resize(static_cast<std::size_t>(length));
  pread_all(fd.fd, out.data(), static_cast<std::size_t>(length), offset, path);
  return true;
}

bool FileStore::exists(const std::string& key) {
  check_key(key);
  Fd fd(open_beneath(rel(key), O_PATH));
  return fd.fd >= 0;
}

// An fd of the directory rel_dir beneath the root (created, with its parents, if missing). The
// parent of each directory created is recorded in created (when given), to be synced.
int FileStore::open_dir_for_write(const std::string& rel_dir, DirtyDirs* created) const {
  int fd = open_beneath(rel_dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0 || (errno != ENOENT)) return fd;
  make_root(root_);
  // Create each missing component in its parent, which is itself opened beneath the root.
  std::size_t pos = 0;
  while (pos <= rel_dir.size() && !rel_dir.empty()) {
    std::size_t end = rel_dir.find('/', pos);
    if (end == std::string::npos) end = rel_dir.size();
    const std::string parent = rel_dir.substr(0, pos == 0 ? 0 : pos - 1);
    const std::string name = rel_dir.substr(pos, end - pos);
    Fd parent_fd(open_beneath(parent, O_PATH | O_DIRECTORY));
    if (parent_fd.fd < 0) fail_io("FileStore::set", "cannot open directory", root_ + "/" + parent, errno);
    if (::mkdirat(parent_fd.fd, name.c_str(), 0777) == 0) {
      if (created != nullptr) created->add(parent);
    } else if (errno != EEXIST) {
      fail_io("FileStore::set", "cannot create directory", root_ + "/" + rel_dir.substr(0, end), errno);
    }
    pos = end + 1;
  }
  return open_beneath(rel_dir, O_RDONLY | O_DIRECTORY);
}

// Removes ".NAME.vxtmp-PID-..." files whose writer process is gone, once per directory.
void FileStore::remove_stale_temps(int dir_fd, const std::string& rel_dir) const {
  {
    std::lock_guard<std::mutex> lock(cleaned_->mutex);
    if (cleaned_->dirs.size() > 65536) return;  // bounded: very wide trees stop checking
    if (!cleaned_->dirs.insert(rel_dir).second) return;
  }
  const int scan_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (scan_fd < 0) return;
  DIR* dir = ::fdopendir(scan_fd);
  if (dir == nullptr) {
    ::close(scan_fd);
    return;
  }
  const pid_t self = ::getpid();
  while (const dirent* entry = ::readdir(dir)) {
    const pid_t owner = temp_owner(entry->d_name);
    if (owner == 0 || owner == self) continue;
    if (::kill(owner, 0) != 0 && errno == ESRCH) ::unlinkat(dir_fd, entry->d_name, 0);
  }
  ::closedir(dir);
}

void FileStore::set(const std::string& key, const uint8_t* data, std::size_t size) {
  DirtyDirs dirs;
  write_value(key, data, size, dirs);
  for (const std::string& dir : dirs.take()) sync_dir(dir);
}

void FileStore::set_deferred(const std::string& key, const uint8_t* data, std::size_t size,
                             DirtyDirs& dirs) {
  write_value(key, data, size, dirs);
}

void FileStore::sync_dir(const std::string& rel_dir) {
  if (!durable_) return;
  // Opened, never recreated: the directory must still be the one that holds the renames.
  Fd dir(open_beneath(rel_dir, O_RDONLY | O_DIRECTORY));
  if (dir.fd < 0) fail_io("FileStore::sync_dir", "cannot open directory", root_ + "/" + rel_dir, errno);
  if (::fsync(dir.fd) != 0 && errno != EINVAL) {
    fail_io("FileStore::sync_dir", "directory fsync failed", root_ + "/" + rel_dir, errno);
  }
}

// The value goes to a temp file beside the key (data synced when durable), which is renamed over
// the key; in an unpublished tree it goes straight to the key. The directory (and the parents of
// the directories created for it) go into dirs, to be synced by sync_dir.
void FileStore::write_value(const std::string& key, const uint8_t* data, std::size_t size,
                            DirtyDirs& dirs) {
  check_key(key);
  const std::string r = rel(key);
  const std::string path = full(key);
  const std::string rel_dir = dir_of(r);
  const std::string name = name_of(r);
  Fd dir(open_dir_for_write(rel_dir, durable_ ? &dirs : nullptr));
  if (dir.fd < 0) fail_io("FileStore::set", "cannot open directory", root_ + "/" + rel_dir, errno);
  if (unpublished_) {
    write_file(dir.fd, name, path, O_TRUNC, "cannot create file", data, size);
  } else {
    remove_stale_temps(dir.fd, rel_dir);
    const std::string temp = "." + name + temp_suffix();
    const std::string temp_path = path.substr(0, path.size() - name.size()) + temp;
    write_file(dir.fd, temp, temp_path, O_EXCL, "cannot create temp file", data, size);
    // rename replaces the entry itself: a symlink at the key is replaced, never written through.
    if (::renameat(dir.fd, temp.c_str(), dir.fd, name.c_str()) != 0) {
      const int err = errno;
      ::unlinkat(dir.fd, temp.c_str(), 0);
      fail_io("FileStore::set", "rename failed", path, err);
    }
  }
  if (durable_) dirs.add(rel_dir);
}

// The file name in dir_fd (opened with O_CREAT and `flags`, never through a symlink) holding the
// value, its data fsync'd when durable; on any failure the file is removed again, so that no torn
// value is left. path names it in messages.
void FileStore::write_file(int dir_fd, const std::string& name, const std::string& path, int flags,
                           const char* create_failed, const uint8_t* data, std::size_t size) const {
  int raw = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | flags | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (raw < 0) fail_io("FileStore::set", create_failed, path, errno);
  try {
    Fd fd(raw);
    write_all(fd.fd, data, size, path);
    if (durable_ && ::fsync(fd.fd) != 0) fail_io("FileStore::set", "fsync failed", path, errno);
    int closed = ::close(fd.fd);
    fd.fd = -1;
    if (closed != 0) fail_io("FileStore::set", "close failed", path, errno);
  } catch (...) {
    ::unlinkat(dir_fd, name.c_str(), 0);
    throw;
  }
}

void FileStore::erase(const std::string& key) {
  check_key(key);
  const std::string r = rel(key);
  Fd dir(open_beneath(dir_of(r), O_PATH | O_DIRECTORY));
  if (dir.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return;
    fail_io("FileStore::erase", "cannot open directory", root_ + "/" + dir_of(r), errno);
  }
  if (::unlinkat(dir.fd, name_of(r).c_str(), 0) != 0 && errno != ENOENT && errno != ENOTDIR) {
    fail_io("FileStore::erase", "cannot remove", full(key), errno);
  }
}

std::shared_ptr<void> FileStore::lock_for_update(const std::string& key) {
  check_key(key);
  // One lock file per array directory (this store's prefix), one byte per key: every handle of
  // the array, however it was opened, agrees on both.
  const std::string lock_path = full(kLockFile);
  int fd = -1;
  {
    Fd dir(open_dir_for_write(prefix_, nullptr));
    if (dir.fd < 0) fail_io("FileStore::lock_for_update", "cannot open directory", full("."), errno);
    fd = ::openat(dir.fd, kLockFile, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
  }
  if (fd < 0) fail_io("FileStore::lock_for_update", "cannot open lock file", lock_path, errno);
  struct flock lock;
  std::memset(&lock, 0, sizeof lock);
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>(fnv1a(key) % (1u << 20));
  lock.l_len = 1;
  while (::fcntl(fd, F_OFD_SETLKW, &lock) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    fail_io("FileStore::lock_for_update", "cannot lock", lock_path, err);
  }
  // Closing the descriptor releases the lock (it belongs to this open file description).
  return std::shared_ptr<void>(new int(fd), [](void* p) {
    int* f = static_cast<int*>(p);
    ::close(*f);
    delete f;
  });
}

}  // namespace voxcore
