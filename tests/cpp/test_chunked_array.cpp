#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "voxcore/chunked_array.hpp"
#include "voxcore/error.hpp"

using namespace voxcore;
namespace fs = std::filesystem;

namespace {

CodecSpec codec(CodecId id, int level = 0) {
  CodecSpec c;
  c.id = id;
  c.level = level;
  return c;
}

ArraySpec spec_for(Shape shape, Shape chunks, bool sharded, Shape inner = {}) {
  ArraySpec s;
  s.shape = std::move(shape);
  s.chunk_shape = std::move(chunks);
  s.dtype = DType::kUInt16;
  uint16_t fill = 7;
  s.fill_value.assign(reinterpret_cast<uint8_t*>(&fill), reinterpret_cast<uint8_t*>(&fill) + 2);
  if (sharded) {
    CodecSpec sh = codec(CodecId::kSharding);
    sh.inner_chunk_shape = std::move(inner);
    sh.inner_codecs = {codec(CodecId::kBytes), codec(CodecId::kZstd, 1)};
    sh.index_codecs = {codec(CodecId::kBytes), codec(CodecId::kCrc32c)};
    s.codecs = {sh};
  } else {
    s.codecs = {codec(CodecId::kBytes), codec(CodecId::kZstd, 1)};
  }
  return s;
}

// A store in memory that counts calls; optionally batched.
class MemoryStore : public Store {
 public:
  explicit MemoryStore(bool batched) : batched_(batched) {}
  bool batched() const noexcept override { return batched_; }
  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out, uint64_t* total) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++gets;
    auto it = data_.find(key);
    if (it == data_.end()) return false;
    const auto& v = it->second;
    if (total) *total = v.size();
    std::size_t off = 0, len = v.size();
    if (range.kind == ByteRange::Kind::kRange) {
      off = std::min<std::size_t>(range.offset, v.size());
      len = std::min<std::size_t>(range.length, v.size() - off);
    } else if (range.kind == ByteRange::Kind::kSuffix) {
      len = std::min<std::size_t>(range.length, v.size());
      off = v.size() - len;
    }
    out.resize(0);
    out.append(v.data() + off, len);
    return true;
  }
  void get_many(const std::vector<ByteRequest>& r, std::vector<ByteBuffer>& out, std::vector<uint8_t>& found) override {
    ++batches;
    Store::get_many(r, out, found);
  }
  void set(const std::string& key, const uint8_t* d, std::size_t n) override {
    std::lock_guard<std::mutex> lock(mutex_);
    data_[key].assign(d, d + n);
  }
  void erase(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    data_.erase(key);
  }
  std::size_t size() const { return data_.size(); }
  std::map<std::string, std::vector<uint8_t>> data_;
  int gets = 0, batches = 0;

 private:
  bool batched_;
  std::mutex mutex_;
};

std::vector<uint16_t> ramp(const Shape& s) {
  std::vector<uint16_t> v(static_cast<std::size_t>(s[0] * s[1] * s[2]));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>((i * 2654435761u) >> 7);
  return v;
}

ArrayView view(std::vector<uint16_t>& v, const Shape& s) { return ArrayView::contiguous(v.data(), DType::kUInt16, s); }

struct Param {
  bool sharded;
  bool batched;
};

class ChunkedArrayTest : public ::testing::TestWithParam<Param> {
 protected:
  ArraySpec make_spec() const {
    return GetParam().sharded ? spec_for({37, 41, 29}, {16, 16, 16}, true, {8, 8, 8})
                              : spec_for({37, 41, 29}, {8, 16, 5}, false);
  }
};

}  // namespace

TEST_P(ChunkedArrayTest, WholeAndPartialRoundTrip) {
  auto store = std::make_shared<MemoryStore>(GetParam().batched);
  ChunkedArray a(make_spec(), store);
  const Shape shape{37, 41, 29};
  auto data = ramp(shape);
  a.write({{0, 0, 0}, shape}, view(data, shape));
  std::vector<uint16_t> back(data.size());
  a.read_into({{0, 0, 0}, shape}, view(back, shape));
  EXPECT_EQ(back, data);
  if (GetParam().batched) EXPECT_GT(store->batches, 0);

  // unaligned partial write, then compare a box read with the expected values
  const Shape ps{9, 20, 7};
  std::vector<uint16_t> patch(static_cast<std::size_t>(9 * 20 * 7), 4242);
  a.write({{3, 5, 11}, ps}, view(patch, ps));
  for (int64_t z = 0; z < 9; ++z)
    for (int64_t y = 0; y < 20; ++y)
      for (int64_t x = 0; x < 7; ++x) data[((3 + z) * 41 + 5 + y) * 29 + 11 + x] = 4242;
  a.read_into({{0, 0, 0}, shape}, view(back, shape));
  EXPECT_EQ(back, data);

  // a box that sticks out of the array: the outside is the fill value (7)
  const Shape bs{10, 10, 10};
  std::vector<uint16_t> box(1000);
  a.read_into({{-3, 35, 25}, bs}, view(box, bs));
  for (int64_t z = 0; z < 10; ++z)
    for (int64_t y = 0; y < 10; ++y)
      for (int64_t x = 0; x < 10; ++x) {
        const int64_t gz = z - 3, gy = 35 + y, gx = 25 + x;
        const bool inside = gz >= 0 && gy < 41 && gx < 29;
        EXPECT_EQ(box[(z * 10 + y) * 10 + x], inside ? data[(gz * 41 + gy) * 29 + gx] : 7);
      }
}

TEST_P(ChunkedArrayTest, MissingChunksAreFillAndFillChunksAreNotStored) {
  auto store = std::make_shared<MemoryStore>(GetParam().batched);
  ChunkedArray a(make_spec(), store);
  const Shape shape{37, 41, 29};
  std::vector<uint16_t> out(static_cast<std::size_t>(37 * 41 * 29), 0);
  a.read_into({{0, 0, 0}, shape}, view(out, shape));
  for (auto v : out) ASSERT_EQ(v, 7);
  std::vector<uint16_t> sevens(out.size(), 7);
  a.write({{0, 0, 0}, shape}, view(sevens, shape));
  EXPECT_EQ(store->size(), 0u);
}

TEST_P(ChunkedArrayTest, StridedDestinationAndCache) {
  auto store = std::make_shared<MemoryStore>(GetParam().batched);
  auto cache = std::make_shared<ChunkCache>(1 << 20);
  ChunkedArray a(make_spec(), store, cache);
  const Shape shape{37, 41, 29};
  auto data = ramp(shape);
  a.write({{0, 0, 0}, shape}, view(data, shape));
  // read into a Fortran-ordered buffer
  std::vector<uint16_t> f(data.size());
  ArrayView fv;
  fv.data = f.data();
  fv.dtype = DType::kUInt16;
  fv.shape = shape;
  fv.byte_strides = {2, 2 * 37, 2 * 37 * 41};
  for (int rep = 0; rep < 2; ++rep) {  // second pass is served by the cache
    a.read_into({{0, 0, 0}, shape}, fv);
    for (int64_t z = 0; z < 37; z += 5)
      for (int64_t y = 0; y < 41; y += 3)
        for (int64_t x = 0; x < 29; ++x) ASSERT_EQ(f[z + 37 * (y + 41 * x)], data[(z * 41 + y) * 29 + x]);
  }
  EXPECT_GT(cache->size_bytes(), 0u);
  // a write invalidates cached chunks
  std::vector<uint16_t> one(1, 9);
  a.write({{1, 1, 1}, {1, 1, 1}}, view(one, {1, 1, 1}));
  std::vector<uint16_t> got(1);
  a.read_into({{1, 1, 1}, {1, 1, 1}}, view(got, {1, 1, 1}));
  EXPECT_EQ(got[0], 9);
}

TEST_P(ChunkedArrayTest, ConcurrentDisjointUnalignedWriters) {
  auto store = std::make_shared<MemoryStore>(GetParam().batched);
  ChunkedArray a(make_spec(), store);
  const Shape shape{37, 41, 29};
  std::vector<uint16_t> expected(static_cast<std::size_t>(37 * 41 * 29), 7);
  std::vector<std::thread> threads;
  // 8 slabs along y of uneven width: every slab shares chunks (and shards) with its neighbours
  const int64_t cuts[9] = {0, 3, 9, 14, 20, 23, 30, 36, 41};
  for (int t = 0; t < 8; ++t) {
    for (int64_t z = 0; z < 37; ++z)
      for (int64_t y = cuts[t]; y < cuts[t + 1]; ++y)
        for (int64_t x = 0; x < 29; ++x) expected[(z * 41 + y) * 29 + x] = static_cast<uint16_t>(100 + t);
  }
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const Shape s{37, cuts[t + 1] - cuts[t], 29};
      std::vector<uint16_t> slab(static_cast<std::size_t>(s[0] * s[1] * s[2]), static_cast<uint16_t>(100 + t));
      for (int rep = 0; rep < 3; ++rep) a.write({{0, cuts[t], 0}, s}, view(slab, s));
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint16_t> back(expected.size());
  a.read_into({{0, 0, 0}, shape}, view(back, shape));
  EXPECT_EQ(back, expected);
}

TEST_P(ChunkedArrayTest, WriteAllEqualsEachWriteInTurn) {
  // Two arrays of this layout (one with a partial box) written by one write_all, against the
  // same writes one after another; then a bad job refuses the whole call before any write.
  const Shape shape{37, 41, 29};
  auto data = ramp(shape);
  std::vector<uint16_t> half(static_cast<std::size_t>(20 * 41 * 29));
  for (std::size_t i = 0; i < half.size(); ++i) half[i] = static_cast<uint16_t>(i % 1000);
  const Shape hs{20, 41, 29};
  auto s1 = std::make_shared<MemoryStore>(GetParam().batched);
  auto s2 = std::make_shared<MemoryStore>(GetParam().batched);
  ChunkedArray a(make_spec(), s1), b(make_spec(), s2);
  write_all({WriteJob{&a, {{0, 0, 0}, shape}, view(data, shape)}, WriteJob{&b, {{10, 0, 0}, hs}, view(half, hs)}},
            nullptr);
  auto r1 = std::make_shared<MemoryStore>(GetParam().batched);
  auto r2 = std::make_shared<MemoryStore>(GetParam().batched);
  ChunkedArray ra(make_spec(), r1), rb(make_spec(), r2);
  ra.write({{0, 0, 0}, shape}, view(data, shape));
  rb.write({{10, 0, 0}, hs}, view(half, hs));
  std::vector<uint16_t> got(data.size()), want(data.size());
  for (auto [x, y] : {std::pair<ChunkedArray*, ChunkedArray*>{&a, &ra}, {&b, &rb}}) {
    x->read_into({{0, 0, 0}, shape}, view(got, shape));
    y->read_into({{0, 0, 0}, shape}, view(want, shape));
    EXPECT_EQ(got, want);
  }
  auto s3 = std::make_shared<MemoryStore>(GetParam().batched);
  ChunkedArray c(make_spec(), s3);
  const Shape big{38, 41, 29};  // one plane past the array's end
  std::vector<uint16_t> too_big(static_cast<std::size_t>(38 * 41 * 29), 1);
  EXPECT_THROW(write_all({WriteJob{&c, {{0, 0, 0}, shape}, view(data, shape)},
                          WriteJob{&c, {{0, 0, 0}, big}, view(too_big, big)}},
                         nullptr),
               Error);
  EXPECT_EQ(s3->size(), 0u);  // nothing written: every job is checked first
}

INSTANTIATE_TEST_SUITE_P(Layouts, ChunkedArrayTest,
                         ::testing::Values(Param{false, false}, Param{true, false}, Param{false, true},
                                           Param{true, true}),
                         [](const auto& info) {
                           return std::string(info.param.sharded ? "Sharded" : "Plain") +
                                  (info.param.batched ? "Batched" : "Direct");
                         });

TEST(ChunkedArray, RejectsBadArguments) {
  auto store = std::make_shared<MemoryStore>(false);
  ChunkedArray a(spec_for({10, 10, 10}, {4, 4, 4}, false), store);
  std::vector<uint16_t> buf(1000);
  auto code = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kUnavailable;
  };
  EXPECT_EQ(code([&] { a.write({{5, 5, 5}, {10, 10, 10}}, view(buf, {10, 10, 10})); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code([&] { a.read_into({{0, 0, 0}, {10, 10, 9}}, view(buf, {10, 10, 10})); }), ErrorCode::kInvalidArgument);
  ArrayView wrong = ArrayView::contiguous(buf.data(), DType::kInt16, {10, 10, 10});
  EXPECT_EQ(code([&] { a.read_into({{0, 0, 0}, {10, 10, 10}}, wrong); }), ErrorCode::kInvalidArgument);
  ArraySpec bad = spec_for({10, 10, 10}, {4, 4, 4}, false);
  bad.fill_value = {1, 2, 3};
  EXPECT_EQ(code([&] { ChunkedArray(bad, store); }), ErrorCode::kInvalidMetadata);
}

TEST(ChunkedArray, CorruptChunksRaiseAndNameTheKey) {
  auto store = std::make_shared<MemoryStore>(false);
  ChunkedArray a(spec_for({8, 8, 8}, {8, 8, 8}, false), store);
  std::vector<uint16_t> buf(512, 1);
  a.write({{0, 0, 0}, {8, 8, 8}}, view(buf, {8, 8, 8}));
  store->data_["c/0/0/0"].resize(5);  // truncated
  try {
    a.read_into({{0, 0, 0}, {8, 8, 8}}, view(buf, {8, 8, 8}));
    ADD_FAILURE() << "truncated chunk decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
  }
  store->data_["c/0/0/0"].clear();  // empty chunk file: corrupt, not missing
  EXPECT_THROW(a.read_into({{0, 0, 0}, {8, 8, 8}}, view(buf, {8, 8, 8})), Error);
}

TEST(ChunkedArray, FileStoreEndToEnd) {
  const fs::path root = fs::temp_directory_path() / ("voxcore-ca-" + std::to_string(::getpid()));
  fs::remove_all(root);
  {
    auto store = std::make_shared<FileStore>(root.string(), false);
    ChunkedArray a(spec_for({20, 20, 20}, {16, 16, 16}, true, {8, 8, 8}), store);
    auto data = ramp({20, 20, 20});
    a.write({{0, 0, 0}, {20, 20, 20}}, view(data, {20, 20, 20}));
    EXPECT_TRUE(fs::exists(root / "c" / "1" / "1" / "1"));
    ChunkedArray b(spec_for({20, 20, 20}, {16, 16, 16}, true, {8, 8, 8}), store);
    std::vector<uint16_t> back(data.size());
    b.read_into({{0, 0, 0}, {20, 20, 20}}, view(back, {20, 20, 20}));
    EXPECT_EQ(back, data);
  }
  fs::remove_all(root);
}

namespace {

// A store whose sets wait (so a run puts them on the I/O threads), counting directory syncs; the
// set of one key fails with an I/O error.
class SlowStore : public MemoryStore {
 public:
  explicit SlowStore(std::string failing = "") : MemoryStore(false), failing_(std::move(failing)) {}
  bool write_waits() const noexcept override { return true; }
  void set_deferred(const std::string& key, const uint8_t* d, std::size_t n, DirtyDirs& dirs) override {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (key == failing_) fail(ErrorCode::kIo, "SlowStore::set", "injected failure (path=/x/" + key + ")", 5);
    set(key, d, n);
    dirs.add(key.substr(0, key.rfind('/')));
  }
  void sync_dir(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    ++synced[dir];
  }
  std::map<std::string, int> synced;

 private:
  std::string failing_;
  std::mutex sync_mutex_;
};

}  // namespace

TEST(WriteRun, WritesOfSeveralArraysAreSettledAtFinish) {
  const Shape shape{32, 32, 32};
  auto a_store = std::make_shared<SlowStore>();
  auto b_store = std::make_shared<SlowStore>();
  ChunkedArray a(spec_for(shape, {8, 8, 8}, false), a_store);
  ChunkedArray b(spec_for(shape, {16, 16, 16}, true, {8, 8, 8}), b_store);
  auto src = ramp(shape);
  {
    WriteRun run;
    a.write(Box{{0, 0, 0}, shape}, view(src, shape), &run);
    b.write(Box{{0, 0, 0}, shape}, view(src, shape), &run);
    a.write(Box{{3, 3, 3}, {5, 5, 5}}, view(src, {5, 5, 5}), &run);  // read-modify-write waits its turn
    run.finish();
  }
  EXPECT_EQ(a_store->size(), 64u);
  EXPECT_EQ(b_store->size(), 8u);
  for (const auto& [dir, n] : a_store->synced) EXPECT_EQ(n, 1) << dir;  // once per run
  EXPECT_EQ(a_store->synced.size(), 16u);                                 // c/z/y
  std::vector<uint16_t> got(src.size()), want = src;
  for (int z = 0; z < 5; ++z)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 5; ++x) want[((3 + z) * 32 + 3 + y) * 32 + 3 + x] = src[(z * 5 + y) * 5 + x];
  a.read_into(Box{{0, 0, 0}, shape}, view(got, shape));
  EXPECT_EQ(got, want);
  b.read_into(Box{{0, 0, 0}, shape}, view(got, shape));
  EXPECT_EQ(got, src);
}

TEST(WriteRun, AFailedSetSurfacesAtFinishWithItsKey) {
  const Shape shape{32, 32, 32};
  auto store = std::make_shared<SlowStore>("c/1/2/3");
  ChunkedArray a(spec_for(shape, {8, 8, 8}, false), store);
  auto src = ramp(shape);
  WriteRun run;
  try {
    a.write(Box{{0, 0, 0}, shape}, view(src, shape), &run);
    run.finish();
    ADD_FAILURE() << "the failed set did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("c/1/2/3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store->data_.count("c/1/2/3"), 0u);
  // Without a run the same failure surfaces from write itself.
  EXPECT_THROW(a.write(Box{{0, 0, 0}, shape}, view(src, shape)), Error);
}

namespace {

// A batched store whose reads stream: a thread of its own puts the values last first, one at a
// time, optionally failing after fail_after of them (as a dropped connection would).
class StreamingStore : public MemoryStore {
 public:
  StreamingStore() : MemoryStore(true) {}
  std::function<void()> start_many(const std::vector<ByteRequest>& requests,
                                   const std::shared_ptr<Arrivals>& arrivals) override {
    ++streams;
    auto values = std::make_shared<std::vector<ByteBuffer>>();
    auto found = std::make_shared<std::vector<uint8_t>>();
    Store::get_many(requests, *values, *found);
    auto error = std::make_shared<std::exception_ptr>();
    const int stop_at = fail_after;
    auto producer = std::make_shared<std::thread>([this, arrivals, values, found, error, stop_at] {
      const std::size_t n = values->size();
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = n - 1 - k;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        if (stop_at >= 0 && static_cast<int>(k) == stop_at) {
          *error = std::make_exception_ptr(Error(ErrorCode::kIo, "StreamingStore: connection dropped"));
          arrivals->fail();
          return;
        }
        const bool wanted = (*found)[i] ? arrivals->put(i, (*values)[i].data(), (*values)[i].size(), i)
                                        : arrivals->put_missing(i);
        if (!wanted) {
          saw_abort = true;
          return;
        }
      }
    });
    return [producer, values, error] {
      producer->join();
      if (*error) std::rethrow_exception(*error);
    };
  }
  int fail_after = -1;
  int streams = 0;
  std::atomic<bool> saw_abort{false};
};

}  // namespace

TEST(Arrivals, ValuesComeInArrivalOrderOnceEach) {
  Arrivals a(3);
  const uint8_t bytes[] = {1, 2, 3};
  EXPECT_TRUE(a.put(2, bytes, 3, 20));
  EXPECT_TRUE(a.put_missing(0));
  Arrivals::Item item;
  ASSERT_TRUE(a.take(item));
  EXPECT_EQ(item.index, 2u);
  EXPECT_TRUE(item.found);
  EXPECT_EQ(item.size, 3u);
  a.release(item.token);
  EXPECT_EQ(a.released(), std::vector<uint64_t>{20});
  EXPECT_TRUE(a.released().empty());
  ASSERT_TRUE(a.take(item));
  EXPECT_EQ(item.index, 0u);
  EXPECT_FALSE(item.found);
  EXPECT_THROW(a.put(2, bytes, 3, 21), Error);  // given twice
  EXPECT_THROW(a.put_missing(3), Error);        // out of range
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    a.put(1, bytes, 1, 22);
  });
  ASSERT_TRUE(a.take(item));  // waits for it
  late.join();
  EXPECT_EQ(item.index, 1u);
  EXPECT_FALSE(a.take(item));  // all taken: no wait

  Arrivals b(2);
  std::thread waiter([&] {
    Arrivals::Item it;
    EXPECT_FALSE(b.take(it));  // woken by the failure
  });
  b.fail();
  waiter.join();
  Arrivals c(2);
  c.abort();
  EXPECT_TRUE(c.aborted());
  EXPECT_FALSE(c.put(0, bytes, 1, 0));  // nothing more wanted
}

TEST(ChunkedArray, StreamedReadsDecodeValuesAsTheyArrive) {
  auto store = std::make_shared<StreamingStore>();
  const Shape shape{37, 41, 29};
  ChunkedArray a(spec_for(shape, {8, 16, 5}, false), store);
  auto data = ramp(shape);
  a.write({{0, 0, 0}, shape}, view(data, shape));
  store->erase("c/1/1/1");  // missing: the fill value
  for (int64_t z = 8; z < 16; ++z)
    for (int64_t y = 16; y < 32; ++y)
      for (int64_t x = 5; x < 10; ++x) data[(z * 41 + y) * 29 + x] = 7;
  std::vector<uint16_t> back(data.size());
  a.read_into({{0, 0, 0}, shape}, view(back, shape));
  EXPECT_EQ(back, data);
  EXPECT_EQ(store->streams, 1);  // one batch for the whole read

  // a fetch failing halfway: its error, after the fetch ended, and nothing hangs
  store->fail_after = 40;
  try {
    a.read_into({{0, 0, 0}, shape}, view(back, shape));
    ADD_FAILURE() << "failed fetch read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("connection dropped"), std::string::npos);
  }
  // a corrupt value: the decode's error; the producer is told to stop
  store->fail_after = -1;
  store->data_["c/4/2/5"].resize(3);
  try {
    a.read_into({{0, 0, 0}, shape}, view(back, shape));
    ADD_FAILURE() << "corrupt chunk decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
  }
  EXPECT_TRUE(store->saw_abort.load());
}
