#include "voxcore/store.hpp"

#include <algorithm>

#include "detail/temp_name.hpp"
#include "voxcore/error.hpp"

namespace voxcore {

using detail::kTempMarker;

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

std::function<void()> Store::start_many(const std::vector<ByteRequest>& requests,
                                        const std::shared_ptr<Arrivals>& arrivals) {
  auto values = std::make_shared<std::vector<ByteBuffer>>();
  std::vector<uint8_t> found;
  get_many(requests, *values, found);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const bool wanted = found[i] ? arrivals->put(i, (*values)[i].data(), (*values)[i].size(), i)
                                 : arrivals->put_missing(i);
    if (!wanted) break;
  }
  return [values] {};  // the bytes live until the caller is done
}

void DirtyDirs::add(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  dirs_.insert(dir);
}

std::vector<std::string> DirtyDirs::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out(dirs_.begin(), dirs_.end());
  dirs_.clear();
  return out;
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

}  // namespace

std::unique_ptr<Store::Snapshot> Store::snapshot(const std::string& key) {
  ByteBuffer bytes;
  if (!get(key, ByteRange::whole(), bytes)) return nullptr;
  return std::make_unique<MemorySnapshot>(std::move(bytes));
}

std::string Store::identity() const {
  return "store@" + std::to_string(reinterpret_cast<uintptr_t>(this));
}

std::shared_ptr<void> Store::lock_for_update(const std::string&) { return nullptr; }

CallbackStore::CallbackStore(GetMany get_many, SetMany set_many, Erase erase, StartMany start_many)
    : get_many_(std::move(get_many)),
      set_many_(std::move(set_many)),
      erase_(std::move(erase)),
      start_many_(std::move(start_many)) {
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

std::function<void()> CallbackStore::start_many(const std::vector<ByteRequest>& requests,
                                                const std::shared_ptr<Arrivals>& arrivals) {
  if (!start_many_ || requests.empty()) return Store::start_many(requests, arrivals);
  for (const auto& r : requests) check_key(r.key);
  return start_many_(requests, arrivals);
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
