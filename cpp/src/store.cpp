#include "voxcore/store.hpp"

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <atomic>
#include <random>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "voxcore/error.hpp"

namespace voxcore {
namespace {

constexpr const char* kTempMarker = ".vxtmp-";

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

void make_dirs(const std::string& dir) {
  if (dir.empty()) return;
  if (::mkdir(dir.c_str(), 0777) == 0 || errno == EEXIST) return;
  if (errno == ENOENT) {
    const auto slash = dir.rfind('/');
    if (slash != std::string::npos && slash > 0) make_dirs(dir.substr(0, slash));
    if (::mkdir(dir.c_str(), 0777) == 0 || errno == EEXIST) return;
  }
  fail_io("FileStore::set", "cannot create directory", dir, errno);
}

void fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.fd < 0) fail_io("FileStore::set", "cannot open directory for fsync", dir, errno);
  if (::fsync(fd.fd) != 0 && errno != EINVAL) fail_io("FileStore::set", "directory fsync failed", dir, errno);
}

std::string temp_suffix() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return std::string(kTempMarker) + std::to_string(::getpid()) + "-" + std::to_string(salt % 1000000) +
         "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace

void check_key(const std::string& key) {
  auto bad = [&](const char* why) {
    std::string shown;
    for (char c : key.substr(0, 200)) shown += (c == '\0') ? std::string("\\0") : std::string(1, c);
    fail(ErrorCode::kUnsafePath, "check_key", std::string(why) + " (key=" + shown + ")");
  };
  if (key.empty()) bad("empty key");
  if (key.size() > 4096) bad("key longer than 4096 bytes");
  if (key.front() == '/') bad("absolute key");
  std::size_t start = 0;
  while (start <= key.size()) {
    std::size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    const std::string segment = key.substr(start, end - start);
    if (segment.empty()) bad("empty path segment");
    if (segment == "." || segment == "..") bad("'.' or '..' segment");
    if (segment.find(kTempMarker) != std::string::npos) bad("temp-file name");
    start = end + 1;
  }
  for (char c : key) {
    if (c == '\0') bad("NUL in key");
    if (c == '\\') bad("backslash in key");
  }
}

void Store::get_many(const std::vector<ByteRequest>& requests, std::vector<ByteBuffer>& out,
                     std::vector<uint8_t>& found) {
  out.resize(requests.size());
  found.assign(requests.size(), 0);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    found[i] = get(requests[i].key, requests[i].range, out[i]) ? 1 : 0;
  }
}

void Store::set_many(const std::vector<std::string>& keys, const std::vector<ByteBuffer>& values) {
  for (std::size_t i = 0; i < keys.size(); ++i) set(keys[i], values[i].data(), values[i].size());
}

namespace {

class MemorySnapshot : public Store::Snapshot {
 public:
  explicit MemorySnapshot(ByteBuffer bytes) : bytes_(std::move(bytes)) {}
  uint64_t size() const override { return bytes_.size(); }
  std::size_t read(uint64_t offset, uint64_t length, ByteBuffer& out) override {
    const uint64_t start = std::min<uint64_t>(offset, bytes_.size());
    const uint64_t n = std::min<uint64_t>(length, bytes_.size() - start);
    out.resize(0);
    out.append(bytes_.data() + start, static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }

 private:
  ByteBuffer bytes_;
};

class FileSnapshot : public Store::Snapshot {
 public:
  FileSnapshot(int fd, const struct stat& st, std::string path)
      : fd_(fd), size_(static_cast<uint64_t>(st.st_size)), path_(std::move(path)) {
    version_ = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
               std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
               std::to_string(st.st_mtim.tv_nsec);
  }
  std::string version() const override { return version_; }
  ~FileSnapshot() override { ::close(fd_); }
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

}  // namespace

std::unique_ptr<Store::Snapshot> Store::snapshot(const std::string& key) {
  ByteBuffer bytes;
  if (!get(key, ByteRange::whole(), bytes)) return nullptr;
  return std::make_unique<MemorySnapshot>(std::move(bytes));
}

std::string Store::identity() const {
  return "store@" + std::to_string(reinterpret_cast<uintptr_t>(this));
}

FileStore::FileStore(std::string root, bool durable) : root_(std::move(root)), durable_(durable) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  char* resolved = ::realpath(root_.c_str(), nullptr);
  canonical_root_ = resolved ? std::string(resolved) : root_;
  std::free(resolved);
}

std::string FileStore::identity() const { return "file:" + canonical_root_; }

std::unique_ptr<Store::Snapshot> FileStore::snapshot(const std::string& key) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return nullptr;
    fail_io("FileStore::snapshot", "cannot open", path, errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    fail_io("FileStore::snapshot", "cannot read", path, err);
  }
  return std::make_unique<FileSnapshot>(fd, st, path);
}

bool FileStore::get(const std::string& key, const ByteRange& range, ByteBuffer& out,
                    uint64_t* total_size) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    fail_io("FileStore::get", "cannot open", path, errno);
  }
  Fd fd(raw);
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) fail_io("FileStore::get", "cannot stat", path, errno);
  if (S_ISDIR(st.st_mode)) fail_io("FileStore::get", "key is a directory", path, EISDIR);
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
  struct stat st;
  return ::stat((root_ + "/" + key).c_str(), &st) == 0;
}

void FileStore::set(const std::string& key, const uint8_t* data, std::size_t size) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  const auto slash = path.rfind('/');
  const std::string dir = path.substr(0, slash);
  const std::string temp = dir + "/." + path.substr(slash + 1) + temp_suffix();
  int raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (raw < 0 && errno == ENOENT) {
    make_dirs(dir);
    raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  }
  if (raw < 0) fail_io("FileStore::set", "cannot create temp file", temp, errno);
  try {
    Fd fd(raw);
    write_all(fd.fd, data, size, temp);
    if (durable_ && ::fsync(fd.fd) != 0) fail_io("FileStore::set", "fsync failed", temp, errno);
    int closed = ::close(fd.fd);
    fd.fd = -1;
    if (closed != 0) fail_io("FileStore::set", "close failed", temp, errno);
    if (::rename(temp.c_str(), path.c_str()) != 0) fail_io("FileStore::set", "rename failed", path, errno);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  if (durable_) fsync_dir(dir);
}

void FileStore::erase(const std::string& key) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
    fail_io("FileStore::erase", "cannot remove", path, errno);
  }
}

CallbackStore::CallbackStore(GetMany get_many, SetMany set_many, Erase erase)
    : get_many_(std::move(get_many)), set_many_(std::move(set_many)), erase_(std::move(erase)) {
  VOXCORE_EXPECT(get_many_ != nullptr, ErrorCode::kInvalidArgument, "CallbackStore",
                 "a get_many function is required");
}

bool CallbackStore::get(const std::string& key, const ByteRange& range, ByteBuffer& out,
                        uint64_t* total_size) {
  std::vector<ByteRequest> requests{{key, range}};
  std::vector<ByteBuffer> values;
  std::vector<uint8_t> found;
  get_many(requests, values, found);
  if (total_size) *total_size = UINT64_MAX;
  if (!found[0]) return false;
  if (range.kind == ByteRange::Kind::kWhole && values[0].size() > range.max_size) {
    fail(ErrorCode::kCorrupt, "CallbackStore::get",
         "value larger than any encoding of it can be (key=" + key + ", limit=" +
             std::to_string(range.max_size) + ", got=" + std::to_string(values[0].size()) + " bytes)");
  }
  out = std::move(values[0]);
  return true;
}

void CallbackStore::get_many(const std::vector<ByteRequest>& requests, std::vector<ByteBuffer>& out,
                             std::vector<uint8_t>& found) {
  for (const auto& r : requests) check_key(r.key);
  out.resize(requests.size());
  found.assign(requests.size(), 0);
  if (!requests.empty()) get_many_(requests, out, found);
}

void CallbackStore::set(const std::string& key, const uint8_t* data, std::size_t size) {
  std::vector<std::string> keys{key};
  std::vector<ByteBuffer> values(1);
  values[0].append(data, size);
  set_many(keys, values);
}

void CallbackStore::set_many(const std::vector<std::string>& keys, const std::vector<ByteBuffer>& values) {
  VOXCORE_EXPECT(set_many_ != nullptr, ErrorCode::kUnsupported, "CallbackStore::set",
                 "this store is read-only");
  for (const auto& k : keys) check_key(k);
  if (!keys.empty()) set_many_(keys, values);
}

void CallbackStore::erase(const std::string& key) {
  check_key(key);
  VOXCORE_EXPECT(erase_ != nullptr, ErrorCode::kUnsupported, "CallbackStore::erase",
                 "this store is read-only");
  erase_(key);
}

}  // namespace voxcore
