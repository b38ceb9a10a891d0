// TiffStore: a TIFF image's tiles by their offsets and byte counts, read with pread.
#include "voxcore/tiff_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "voxcore/error.hpp"

namespace voxcore {

namespace {
constexpr const char* kWhere = "TiffStore";
}

TiffStore::TiffStore(std::string path, Shape grid, std::vector<uint64_t> offsets,
                     std::vector<uint64_t> bytecounts)
    : path_(std::move(path)), grid_(std::move(grid)), offsets_(std::move(offsets)),
      bytecounts_(std::move(bytecounts)) {
  int64_t tiles = 1;
  for (int64_t g : grid_) {
    VOXCORE_EXPECT(g > 0 && tiles <= INT64_MAX / g, ErrorCode::kInvalidMetadata, kWhere,
                   "tile grid out of range (file=" + path_ + ")");
    tiles *= g;
  }
  VOXCORE_EXPECT(offsets_.size() == static_cast<uint64_t>(tiles) && bytecounts_.size() == offsets_.size(),
                 ErrorCode::kInvalidMetadata, kWhere,
                 "tile offsets and byte counts must list every tile (file=" + path_ + ", tiles=" +
                     std::to_string(tiles) + ", offsets=" + std::to_string(offsets_.size()) +
                     ", byte counts=" + std::to_string(bytecounts_.size()) + ")");
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(ErrorCode::kIo, kWhere, "cannot open " + path_ + ": " + std::strerror(errno), errno);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    fail(ErrorCode::kIo, kWhere, "cannot stat " + path_ + ": " + std::strerror(e), e);
  }
  file_size_ = static_cast<uint64_t>(st.st_size);
}

TiffStore::~TiffStore() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t TiffStore::tile_number(const std::string& key) const {
  int64_t n = 0;
  std::size_t axis = 0, pos = 0;
  while (pos <= key.size()) {
    const std::size_t dot = key.find('.', pos);
    const std::string part = key.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || axis >= grid_.size() || v < 0 || v >= grid_[axis]) {
      fail(ErrorCode::kInvalidArgument, kWhere, "not a tile of " + path_ + " (key=" + key + ")");
    }
    n = n * grid_[axis] + v;
    ++axis;
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (axis != grid_.size()) fail(ErrorCode::kInvalidArgument, kWhere, "not a tile of " + path_ + " (key=" + key + ")");
  return n;
}

bool TiffStore::get(const std::string& key, const ByteRange& range, ByteBuffer& out, uint64_t* total_size) {
  const int64_t n = tile_number(key);
  const uint64_t offset = offsets_[n], count = bytecounts_[n];
  const std::string tile = "(file=" + path_ + ", tile=" + std::to_string(n) + ")";
  if (count == 0 && offset == 0) return false;  // a sparse tile (GDAL's): the fill value
  if (count == 0) fail(ErrorCode::kCorrupt, kWhere, "tile has no bytes (byte count 0) " + tile);
  if (offset > file_size_ || count > file_size_ - offset) {
    fail(ErrorCode::kCorrupt, kWhere,
         "tile lies beyond the end of the file (offset=" + std::to_string(offset) + ", bytes=" +
             std::to_string(count) + ", file size=" + std::to_string(file_size_) + ") " + tile);
  }
  if (total_size != nullptr) *total_size = count;
  uint64_t begin = 0, length = count;
  switch (range.kind) {
    case ByteRange::Kind::kWhole:
      if (count > range.max_size) {
        fail(ErrorCode::kCorrupt, kWhere,
             "tile byte count exceeds the bound (max=" + std::to_string(range.max_size) + ", got=" +
                 std::to_string(count) + ") " + tile);
      }
      break;
    case ByteRange::Kind::kRange:
      begin = range.offset < count ? range.offset : count;
      length = range.length < count - begin ? range.length : count - begin;
      break;
    case ByteRange::Kind::kSuffix:
      length = range.length < count ? range.length : count;
      begin = count - length;
      break;
  }
  out.resize(static_cast<std::size_t>(length));
  uint64_t done = 0;
  while (done < length) {
    const ssize_t r = ::pread(fd_, out.data() + done, static_cast<std::size_t>(length - done),
                              static_cast<off_t>(offset + begin + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(ErrorCode::kIo, kWhere, std::string("read failed: ") + std::strerror(errno) + " " + tile, errno);
    if (r == 0) fail(ErrorCode::kCorrupt, kWhere, "the file ends inside the tile " + tile);
    done += static_cast<uint64_t>(r);
  }
  return true;
}

void TiffStore::set(const std::string&, const uint8_t*, std::size_t) {
  fail(ErrorCode::kUnsupported, kWhere, "TIFF files are read only here (file=" + path_ + ")");
}

void TiffStore::erase(const std::string&) {
  fail(ErrorCode::kUnsupported, kWhere, "TIFF files are read only here (file=" + path_ + ")");
}

}  // namespace voxcore
