// ChunkBatch: batched decode/encode of plain chunks and shards, from caller memory and from
// stores; partial reads and writes of shards; write_empty; missing chunks; bad input named by
// key; the same stored-size limit and results as ChunkedArray.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "detail/codec_ops.hpp"
#include "detail/shard_io.hpp"
#include "voxcore/batch.hpp"
#include "voxcore/chunked_array.hpp"
#include "voxcore/error.hpp"

using namespace voxcore;

namespace {

const std::vector<uint8_t> kFill = {7, 0};  // uint16 7

CodecSpec codec(CodecId id, int level = 0) {
  CodecSpec c;
  c.id = id;
  c.level = level;
  return c;
}

std::vector<CodecSpec> plain() { return {codec(CodecId::kBytes), codec(CodecId::kZstd, 1)}; }

std::vector<CodecSpec> sharded(Shape inner, bool crc = true, bool at_end = true,
                               std::vector<CodecSpec> inner_codecs = plain()) {
  CodecSpec s = codec(CodecId::kSharding);
  s.inner_chunk_shape = std::move(inner);
  s.inner_codecs = std::move(inner_codecs);
  s.index_codecs = {codec(CodecId::kBytes)};
  if (crc) s.index_codecs.push_back(codec(CodecId::kCrc32c));
  s.index_at_end = at_end;
  return {s};
}

std::vector<uint16_t> ramp(std::size_t n, unsigned seed = 1) {
  std::vector<uint16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint16_t>(((i + seed) * 2654435761u) >> 9);
  return v;
}

ArrayView view(std::vector<uint16_t>& v, const Shape& s) {
  return ArrayView::contiguous(v.data(), DType::kUInt16, s);
}

// The elements of a 2-d C-order chunk (width w) that region selects.
std::vector<uint16_t> select(const std::vector<uint16_t>& chunk, int64_t w, const ChunkRegion& r) {
  std::vector<uint16_t> out;
  for (int64_t i = 0; i < r.count[0]; ++i) {
    for (int64_t j = 0; j < r.count[1]; ++j) {
      out.push_back(chunk[static_cast<std::size_t>((r.start[0] + i * r.step[0]) * w +
                                                   r.start[1] + j * r.step[1])]);
    }
  }
  return out;
}

// A store in memory; counts the bytes read and remembers which threads called it.
class MemoryStore : public Store {
 public:
  explicit MemoryStore(bool batched = false) : batched_(batched) {}
  bool batched() const noexcept override { return batched_; }

  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out, uint64_t* total) override {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.insert(std::this_thread::get_id());
    auto it = data.find(key);
    if (it == data.end()) return false;
    const auto& v = it->second;
    if (total) *total = v.size();
    if (range.kind == ByteRange::Kind::kWhole && v.size() > range.max_size) {
      fail(ErrorCode::kCorrupt, "MemoryStore::get",
           "value larger than any encoding of it can be (key=" + key + ")");
    }
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
    bytes_read += len;
    return true;
  }
  void set(const std::string& key, const uint8_t* d, std::size_t n) override {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.insert(std::this_thread::get_id());
    data[key].assign(d, d + n);
  }
  void erase(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.insert(std::this_thread::get_id());
    data.erase(key);
  }

  // A snapshot that reads by range from a copy, counting the bytes.
  class Snap : public Snapshot {
   public:
    Snap(std::vector<uint8_t> v, std::atomic<uint64_t>& counter) : v_(std::move(v)), counter_(counter) {}
    uint64_t size() const override { return v_.size(); }
    std::size_t read(uint64_t offset, uint64_t length, ByteBuffer& out) override {
      const uint64_t start = std::min<uint64_t>(offset, v_.size());
      const uint64_t n = std::min<uint64_t>(length, v_.size() - start);
      out.resize(0);
      out.append(v_.data() + start, static_cast<std::size_t>(n));
      counter_ += n;
      return static_cast<std::size_t>(n);
    }

   private:
    std::vector<uint8_t> v_;
    std::atomic<uint64_t>& counter_;
  };
  std::unique_ptr<Snapshot> snapshot(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.insert(std::this_thread::get_id());
    auto it = data.find(key);
    if (it == data.end()) return nullptr;
    return std::make_unique<Snap>(it->second, bytes_read);
  }

  std::map<std::string, std::vector<uint8_t>> data;
  std::atomic<uint64_t> bytes_read{0};
  std::set<std::thread::id> threads;

 private:
  bool batched_;
  std::mutex mutex_;
};

void expect_error(const std::function<void()>& fn, ErrorCode code,
                  const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown (expected " << error_code_name(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << "got " << error_code_name(e.code()) << ": " << e.what();
    for (const auto& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "message does not name '" << needle << "': " << e.what();
    }
  }
}

DecodeItem decode_item(std::string key, ChunkBytes source, std::vector<uint16_t>& dst,
                       ChunkRegion region) {
  DecodeItem it;
  it.key = std::move(key);
  it.source = source;
  it.dst = view(dst, region.count);
  it.region = std::move(region);
  return it;
}

EncodeItem encode_item(std::string key, std::vector<uint16_t>& value, ChunkRegion region,
                       ChunkBytes existing = {}) {
  EncodeItem it;
  it.key = std::move(key);
  it.value = view(value, region.count);
  it.region = std::move(region);
  it.existing = existing;
  return it;
}

// EncodeItems are move-only: no initializer lists.
template <class... Items>
std::vector<EncodeItem> encodes(Items&&... items) {
  std::vector<EncodeItem> v;
  (v.push_back(std::forward<Items>(items)), ...);
  return v;
}

ChunkBytes bytes(const std::vector<uint8_t>& v) { return ChunkBytes::memory(v.data(), v.size()); }
ChunkBytes bytes(const ByteBuffer& b) { return ChunkBytes::memory(b.data(), b.size()); }

std::vector<ShardIndexEntry> index_of(const ChunkBatch& b, const std::vector<uint8_t>& shard) {
  std::vector<ShardIndexEntry> entries;
  detail::shard_index_of(*b.chain().sharding(), shard.data(), shard.size(), entries, "test");
  return entries;
}

// Decodes a whole chunk of b from memory.
std::vector<uint16_t> decode_whole(const ChunkBatch& b, const std::vector<uint8_t>& encoded) {
  std::vector<uint16_t> out(static_cast<std::size_t>(b.chain().chunk_nbytes() / 2));
  std::vector<DecodeItem> items{decode_item("k", bytes(encoded), out, ChunkRegion::whole(b.chain().chunk_shape()))};
  b.decode_into(items);
  return out;
}

}  // namespace

TEST(ChunkBatch, PlainChunksRoundTripThroughMemory) {
  ThreadPool pool(3);
  ChunkBatch b(plain(), {4, 5}, DType::kUInt16, kFill, &pool);
  EXPECT_FALSE(b.sharded());
  std::vector<std::vector<uint16_t>> values{ramp(20, 1), ramp(20, 2), ramp(20, 3)};
  std::vector<EncodeItem> enc;
  for (std::size_t i = 0; i < values.size(); ++i) {
    enc.push_back(encode_item("c/" + std::to_string(i), values[i], ChunkRegion::whole({4, 5})));
  }
  b.encode(enc, true);
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_FALSE(enc[i].empty);
    ByteBuffer direct;  // the same bytes as the chain's own encode
    b.chain().encode(view(values[i], {4, 5}), direct);
    EXPECT_EQ(std::vector<uint8_t>(enc[i].encoded.data(), enc[i].encoded.data() + enc[i].encoded.size()),
              std::vector<uint8_t>(direct.data(), direct.data() + direct.size()));
  }
  // Whole chunks, and a strided region of each straight into its destination.
  const ChunkRegion strided{{1, 0}, {2, 2}, {2, 3}};
  std::vector<std::vector<uint16_t>> whole(3, std::vector<uint16_t>(20)), part(3, std::vector<uint16_t>(6));
  std::vector<DecodeItem> dec;
  for (std::size_t i = 0; i < 3; ++i) {
    dec.push_back(decode_item("c/" + std::to_string(i), bytes(enc[i].encoded), whole[i], ChunkRegion::whole({4, 5})));
    dec.push_back(decode_item("c/" + std::to_string(i), bytes(enc[i].encoded), part[i], strided));
  }
  b.decode_into(dec);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(whole[i], values[i]);
    EXPECT_EQ(part[i], select(values[i], 5, strided));
  }
}

TEST(ChunkBatch, MissingChunksAreTheFillValue) {
  auto store = std::make_shared<MemoryStore>();
  for (const auto& codecs : {plain(), sharded({2, 5})}) {
    ChunkBatch b(codecs, {4, 5}, DType::kUInt16, kFill);
    std::vector<uint16_t> a(20, 1), c(20, 1), d(6, 1);
    std::vector<DecodeItem> items{decode_item("none", ChunkBytes{}, a, ChunkRegion::whole({4, 5})),
                                  decode_item("absent", ChunkBytes::store(), c, ChunkRegion::whole({4, 5})),
                                  decode_item("absent", ChunkBytes::store(), d, {{1, 1}, {2, 1}, {2, 3}})};
    b.decode_into(items, store.get());
    for (const auto* v : {&a, &c, &d}) {
      EXPECT_TRUE(std::all_of(v->begin(), v->end(), [](uint16_t x) { return x == 7; }));
    }
  }
  // A shard whose index says an inner chunk is empty: that inner chunk is the fill value.
  ChunkBatch b(sharded({2, 5}), {4, 5}, DType::kUInt16, kFill);
  auto value = ramp(20);
  std::fill(value.begin() + 10, value.end(), 7);  // inner chunk 1 is all fill
  auto enc = encodes(encode_item("s", value, ChunkRegion::whole({4, 5})));
  b.encode(enc, false, store.get());
  const auto entries = index_of(b, store->data["s"]);
  EXPECT_FALSE(entries[0].empty());
  EXPECT_TRUE(entries[1].empty());
  std::vector<uint16_t> back(20, 0);
  std::vector<DecodeItem> items{decode_item("s", ChunkBytes::store(), back, ChunkRegion::whole({4, 5}))};
  b.decode_into(items, store.get());
  EXPECT_EQ(back, value);
}

TEST(ChunkBatch, ShardedReadOfPartOfAShardReadsOnlyItsIndexAndInnerChunks) {
  ThreadPool pool(4);
  auto store = std::make_shared<MemoryStore>();
  ChunkBatch b(sharded({4, 4}), {8, 8}, DType::kUInt16, kFill, &pool);
  ASSERT_TRUE(b.sharded());
  auto value = ramp(64);
  auto enc = encodes(encode_item("s/0", value, ChunkRegion::whole({8, 8})));
  b.encode(enc, true, store.get());
  ASSERT_FALSE(enc[0].empty);
  const auto entries = index_of(b, store->data["s/0"]);

  // Inside inner chunk 0 only: the index and that inner chunk are read, nothing else.
  const ChunkRegion inside{{1, 1}, {1, 1}, {2, 2}};
  std::vector<uint16_t> part(4);
  std::vector<DecodeItem> items{decode_item("s/0", ChunkBytes::store(), part, inside)};
  store->bytes_read = 0;
  b.decode_into(items, store.get());
  EXPECT_EQ(part, select(value, 8, inside));
  EXPECT_EQ(store->bytes_read.load(), b.chain().sharding()->index_nbytes() + entries[0].nbytes);

  // Strided over four inner chunks, and from memory.
  const ChunkRegion strided{{1, 0}, {3, 5}, {3, 2}};
  std::vector<uint16_t> a(6), c(6);
  const std::vector<uint8_t> shard = store->data["s/0"];
  std::vector<DecodeItem> more{decode_item("s/0", ChunkBytes::store(), a, strided),
                               decode_item("s/0", bytes(shard), c, strided)};
  b.decode_into(more, store.get());
  EXPECT_EQ(a, select(value, 8, strided));
  EXPECT_EQ(c, a);
}

TEST(ChunkBatch, PartialWritesMergeIntoStoredChunks) {
  ThreadPool pool(3);
  // Plain chunks: from the store and from memory.
  {
    auto store = std::make_shared<MemoryStore>();
    ChunkBatch b(plain(), {4, 5}, DType::kUInt16, kFill, &pool);
    auto value = ramp(20);
    auto first = encodes(encode_item("c/0", value, ChunkRegion::whole({4, 5})));
    b.encode(first, true, store.get());
    const std::vector<uint8_t> stored = store->data["c/0"];
    std::vector<uint16_t> patch{1000, 1001, 1002, 1003};
    const ChunkRegion region{{1, 1}, {2, 3}, {2, 2}};
    auto second = encodes(encode_item("c/0", patch, region, ChunkBytes::store()),
                                   encode_item("c/1", patch, region, bytes(stored)),
                                   encode_item("c/2", patch, region));  // over the fill value
    b.encode(second, true, store.get());
    auto want = value;
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) want[static_cast<std::size_t>((1 + 2 * i) * 5 + 1 + 3 * j)] = patch[i * 2 + j];
    }
    EXPECT_EQ(decode_whole(b, store->data["c/0"]), want);
    EXPECT_EQ(decode_whole(b, store->data["c/1"]), want);
    std::vector<uint16_t> over_fill(20, 7);
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) over_fill[static_cast<std::size_t>((1 + 2 * i) * 5 + 1 + 3 * j)] = patch[i * 2 + j];
    }
    EXPECT_EQ(decode_whole(b, store->data["c/2"]), over_fill);
  }
  // A shard: the touched inner chunk is re-encoded, the others keep their stored bytes.
  auto store = std::make_shared<MemoryStore>();
  ChunkBatch b(sharded({4, 4}), {8, 8}, DType::kUInt16, kFill, &pool);
  auto value = ramp(64);
  auto first = encodes(encode_item("s/0", value, ChunkRegion::whole({8, 8})));
  b.encode(first, true, store.get());
  const std::vector<uint8_t> before = store->data["s/0"];
  std::vector<uint16_t> patch{1000, 1001, 1002, 1003};
  const ChunkRegion region = ChunkRegion::box({5, 1}, {2, 2});  // inside inner chunk 2
  auto second = encodes(encode_item("s/0", patch, region, ChunkBytes::store()),
                                 encode_item("s/1", patch, region, bytes(before)));
  b.encode(second, true, store.get());
  auto want = value;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) want[static_cast<std::size_t>((5 + i) * 8 + 1 + j)] = patch[i * 2 + j];
  }
  const auto old_index = index_of(b, before);
  for (const char* key : {"s/0", "s/1"}) {
    const std::vector<uint8_t>& after = store->data[key];
    EXPECT_EQ(decode_whole(b, after), want) << key;
    const auto new_index = index_of(b, after);
    for (std::size_t i : {0u, 1u, 3u}) {
      const auto& o = old_index[i];
      const auto& n = new_index[i];
      ASSERT_EQ(o.nbytes, n.nbytes);
      EXPECT_EQ(0, std::memcmp(before.data() + o.offset, after.data() + n.offset, o.nbytes))
          << key << ": inner chunk " << i << " was re-encoded";
    }
  }
}

TEST(ChunkBatch, WriteEmptyLeavesOutFillChunks) {
  auto store = std::make_shared<MemoryStore>();
  ChunkBatch b(plain(), {4, 5}, DType::kUInt16, kFill);
  std::vector<uint16_t> fill(20, 7), patch(2, 7);
  store->data["c/0"] = {1, 2, 3};
  auto items = encodes(encode_item("c/0", fill, ChunkRegion::whole({4, 5})),
                                encode_item("c/1", patch, ChunkRegion::box({0, 0}, {1, 2})));
  b.encode(items, false, store.get());
  EXPECT_TRUE(items[0].empty);
  EXPECT_TRUE(items[1].empty);
  EXPECT_EQ(store->data.count("c/0"), 0u);  // erased
  EXPECT_EQ(store->data.count("c/1"), 0u);
  auto kept = encodes(encode_item("c/0", fill, ChunkRegion::whole({4, 5})));
  b.encode(kept, true);
  EXPECT_FALSE(kept[0].empty);
  EXPECT_EQ(decode_whole(b, std::vector<uint8_t>(kept[0].encoded.data(),
                                                 kept[0].encoded.data() + kept[0].encoded.size())),
            fill);

  // Shards: an inner chunk equal to the fill value has an empty entry; a shard of them is erased.
  ChunkBatch s(sharded({2, 5}), {4, 5}, DType::kUInt16, kFill);
  auto value = ramp(20);
  std::fill(value.begin(), value.begin() + 10, 7);
  auto shards = encodes(encode_item("s/0", value, ChunkRegion::whole({4, 5})),
                                 encode_item("s/1", fill, ChunkRegion::whole({4, 5})));
  s.encode(shards, false);
  ASSERT_FALSE(shards[0].empty);
  EXPECT_TRUE(shards[1].empty);
  const std::vector<uint8_t> shard(shards[0].encoded.data(), shards[0].encoded.data() + shards[0].encoded.size());
  const auto entries = index_of(s, shard);
  EXPECT_TRUE(entries[0].empty());
  EXPECT_FALSE(entries[1].empty());
  EXPECT_EQ(decode_whole(s, shard), value);
  auto written = encodes(encode_item("s/1", fill, ChunkRegion::whole({4, 5})));
  s.encode(written, true);
  ASSERT_FALSE(written[0].empty);
  const std::vector<uint8_t> full(written[0].encoded.data(), written[0].encoded.data() + written[0].encoded.size());
  for (const auto& e : index_of(s, full)) EXPECT_FALSE(e.empty());
}

TEST(ChunkBatch, BadInputIsANamedErrorNamingTheKey) {
  ChunkBatch b(sharded({2, 5}), {4, 5}, DType::kUInt16, kFill);
  auto value = ramp(20);
  auto enc = encodes(encode_item("s/0", value, ChunkRegion::whole({4, 5})));
  b.encode(enc, true);
  const std::vector<uint8_t> good(enc[0].encoded.data(), enc[0].encoded.data() + enc[0].encoded.size());
  std::vector<uint16_t> out(20), small(4);
  auto decode = [&b](std::vector<uint8_t> shard, ChunkRegion region) {
    return [&b, shard, region] {
      std::vector<uint16_t> dst(static_cast<std::size_t>(region.count[0] * region.count[1]));
      std::vector<DecodeItem> items{decode_item("s/0", bytes(shard), dst, region)};
      b.decode_into(items);
    };
  };
  const ChunkRegion whole = ChunkRegion::whole({4, 5});

  // A corrupt index (checksum), a shard shorter than its index, an inner chunk that does not decode.
  auto bad_crc = good;
  bad_crc[bad_crc.size() - 10] ^= 0x40;
  expect_error(decode(bad_crc, whole), ErrorCode::kCorrupt, {"crc32c", "key=s/0"});
  expect_error(decode({1, 2, 3}, whole), ErrorCode::kCorrupt, {"smaller than its index", "key=s/0"});
  auto bad_inner = good;
  bad_inner[index_of(b, good)[1].offset] ^= 0xFF;  // zstd magic of inner chunk 1
  expect_error(decode(bad_inner, whole), ErrorCode::kCorrupt, {"zstd", "key=s/0, inner chunk 1"});
  // An index entry that points into the index itself.
  ChunkBatch raw(sharded({2, 5}, false, false, {codec(CodecId::kBytes)}), {4, 5}, DType::kUInt16, kFill);
  std::vector<uint8_t> into_index(32 + 40, 0);
  detail::store_le64(into_index.data() + 8, 20);  // entry 0: offset 0, 20 bytes
  detail::store_le64(into_index.data() + 16, 32);
  detail::store_le64(into_index.data() + 24, 20);  // entry 1: fine
  std::vector<DecodeItem> items{decode_item("s/9", bytes(into_index), out, whole)};
  expect_error([&] { raw.decode_into(items); }, ErrorCode::kCorrupt,
               {"overlaps the shard index", "key=s/9"});

  // Arguments: wrong destination shape, region outside the chunk, dtype, store missing.
  std::vector<DecodeItem> wrong{decode_item("a", bytes(good), out, whole),
                                decode_item("b", bytes(good), small, whole)};
  wrong[1].dst = view(small, {2, 2});
  expect_error([&] { b.decode_into(wrong); }, ErrorCode::kInvalidArgument, {"item 1", "region"});
  std::vector<DecodeItem> outside{decode_item("a", bytes(good), small, {{3, 0}, {1, 1}, {2, 2}})};
  expect_error([&] { b.decode_into(outside); }, ErrorCode::kInvalidArgument, {"item 0", "region"});
  std::vector<DecodeItem> dtype{decode_item("a", bytes(good), out, whole)};
  dtype[0].dst.dtype = DType::kInt16;
  expect_error([&] { b.decode_into(dtype); }, ErrorCode::kInvalidArgument, {"item 0", "dtype"});
  auto no_store = encodes(encode_item("a", small, ChunkRegion::box({0, 0}, {2, 2}), ChunkBytes::store()));
  expect_error([&] { b.encode(no_store, true); }, ErrorCode::kInvalidArgument, {"item 0", "store"});

  // Partial writes over a corrupt stored shard name the key; so does a truncated plain chunk.
  auto over_bad = encodes(encode_item("s/0", small, ChunkRegion::box({0, 0}, {2, 2}), bytes(bad_crc)));
  expect_error([&] { b.encode(over_bad, true); }, ErrorCode::kCorrupt, {"crc32c", "key=s/0"});
  std::vector<uint8_t> empty_shard;
  auto over_empty = encodes(encode_item("s/0", small, ChunkRegion::box({0, 0}, {2, 2}),
                                                 ChunkBytes::memory(empty_shard.data(), 0)));
  expect_error([&] { b.encode(over_empty, true); }, ErrorCode::kCorrupt, {"empty", "key=s/0"});
  ChunkBatch p(plain(), {4, 5}, DType::kUInt16, kFill);
  auto plain_enc = encodes(encode_item("c/0", value, whole));
  p.encode(plain_enc, true);
  std::vector<uint8_t> truncated(plain_enc[0].encoded.data(), plain_enc[0].encoded.data() + plain_enc[0].encoded.size() - 3);
  std::vector<DecodeItem> cut{decode_item("c/0", bytes(truncated), out, whole)};
  expect_error([&] { p.decode_into(cut); }, ErrorCode::kCorrupt, {"zstd", "key=c/0"});
}

// The stored-size limit is ChunkedArray's: one byte over it is refused before anything is
// decoded, by both, for whole reads and for the stored bytes under a partial write.
TEST(ChunkBatch, OversizedStoredChunksAreRefusedAsByChunkedArray) {
  for (const bool shard : {false, true}) {
    ArraySpec spec;
    spec.shape = {4, 5};
    spec.chunk_shape = {4, 5};
    spec.dtype = DType::kUInt16;
    spec.fill_value = kFill;
    spec.codecs = shard ? sharded({2, 5}) : plain();
    auto store = std::make_shared<MemoryStore>();
    ChunkedArray array(spec, store);
    ChunkBatch b(spec.codecs, spec.chunk_shape, spec.dtype, kFill);
    const uint64_t limit = detail::max_stored_bytes(b.chain());
    EXPECT_GT(limit, uint64_t{1} << 20);
    const std::string key = "c/0/0";
    std::vector<uint16_t> out(20), patch(2, 1);
    std::vector<std::pair<std::string, std::function<void()>>> calls{
        {"ChunkedArray::write", [&] { array.write({{0, 0}, {1, 2}}, view(patch, {1, 2})); }},
        {"ChunkBatch::decode_into", [&] {
           std::vector<DecodeItem> items{decode_item(key, ChunkBytes::store(), out, ChunkRegion::whole({4, 5}))};
           b.decode_into(items, store.get());
         }},
        {"ChunkBatch::encode", [&] {
           auto items = encodes(encode_item(key, patch, ChunkRegion::box({0, 0}, {1, 2}), ChunkBytes::store()));
           b.encode(items, true, store.get());
         }}};
    // A sharded ChunkedArray reads shards by range, never whole: only plain chunks here.
    if (!shard) calls.push_back({"ChunkedArray::read_into", [&] { array.read_into({{0, 0}, {4, 5}}, view(out, {4, 5})); }});
    for (const uint64_t size : {limit + 1, limit}) {
      for (const auto& [name, fn] : calls) {
        store->data[key].assign(static_cast<std::size_t>(size), 0xAB);
        try {
          fn();
          ADD_FAILURE() << name << ": garbage decoded";
        } catch (const Error& e) {
          const std::string what = e.what();
          EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << what;
          EXPECT_NE(what.find("key=" + key), std::string::npos) << what;
          EXPECT_EQ(what.find("larger than any encoding") != std::string::npos, size > limit)
              << name << " (sharded=" << shard << ", size=" << size << "): " << what;
        }
      }
    }
  }
}

TEST(ChunkBatch, BatchedStoreIsCalledOnlyFromTheCallingThread) {
  ThreadPool pool(4);
  for (const auto& codecs : {plain(), sharded({2, 5})}) {
    auto store = std::make_shared<MemoryStore>(true);
    ChunkBatch b(codecs, {4, 5}, DType::kUInt16, kFill, &pool);
    std::vector<std::vector<uint16_t>> values;
    for (unsigned i = 0; i < 16; ++i) values.push_back(ramp(20, i));
    std::vector<EncodeItem> enc;
    for (std::size_t i = 0; i < values.size(); ++i) {
      enc.push_back(encode_item("c/" + std::to_string(i), values[i], ChunkRegion::whole({4, 5})));
    }
    b.encode(enc, true, store.get());
    std::vector<uint16_t> patch(2, 1);
    auto part = encodes(encode_item("c/3", patch, ChunkRegion::box({0, 0}, {1, 2}), ChunkBytes::store()));
    b.encode(part, true, store.get());
    std::copy(patch.begin(), patch.end(), values[3].begin());
    std::vector<std::vector<uint16_t>> back(values.size(), std::vector<uint16_t>(20));
    std::vector<DecodeItem> dec;
    for (std::size_t i = 0; i < values.size(); ++i) {
      dec.push_back(decode_item("c/" + std::to_string(i), ChunkBytes::store(), back[i], ChunkRegion::whole({4, 5})));
    }
    b.decode_into(dec, store.get());
    EXPECT_EQ(back, values);
    EXPECT_EQ(store->threads, std::set<std::thread::id>{std::this_thread::get_id()});
  }
}

// ChunkBatch reads what ChunkedArray writes and the other way round: one engine.
TEST(ChunkBatch, AgreesWithChunkedArray) {
  ArraySpec spec;
  spec.shape = {16, 8};
  spec.chunk_shape = {8, 8};
  spec.dtype = DType::kUInt16;
  spec.fill_value = kFill;
  spec.codecs = sharded({4, 4});
  auto store = std::make_shared<MemoryStore>();
  ChunkedArray array(spec, store);
  auto data = ramp(128);
  array.write({{0, 0}, {16, 8}}, view(data, {16, 8}));
  ChunkBatch b(spec.codecs, spec.chunk_shape, spec.dtype, kFill);
  std::vector<uint16_t> top(64), bottom(64);
  std::vector<DecodeItem> items{decode_item("c/0/0", ChunkBytes::store(), top, ChunkRegion::whole({8, 8})),
                                decode_item("c/1/0", ChunkBytes::store(), bottom, ChunkRegion::whole({8, 8}))};
  b.decode_into(items, store.get());
  EXPECT_EQ(top, std::vector<uint16_t>(data.begin(), data.begin() + 64));
  EXPECT_EQ(bottom, std::vector<uint16_t>(data.begin() + 64, data.end()));
  // A partial write through the batch, read back through the array.
  std::vector<uint16_t> patch{1, 2, 3, 4, 5, 6};
  auto enc = encodes(encode_item("c/1/0", patch, ChunkRegion::box({2, 3}, {2, 3}), ChunkBytes::store()));
  b.encode(enc, true, store.get());
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) data[static_cast<std::size_t>((8 + 2 + i) * 8 + 3 + j)] = patch[i * 3 + j];
  }
  std::vector<uint16_t> back(128);
  array.read_into({{0, 0}, {16, 8}}, view(back, {16, 8}));
  EXPECT_EQ(back, data);
}
