#include "voxcore/chunked_array.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <string>
#include <unordered_map>

#include "detail/checked.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {
namespace {

using detail::shape_str;

// Reads are done in batches so a batched store gets one call per batch, and so a failure stops
// the work early. Large enough to keep every core busy.
constexpr std::size_t kBatch = 256;

// Per-thread scratch reused across chunks (no allocation per chunk after warm-up).
thread_local ByteBuffer tl_fetched;
thread_local ByteBuffer tl_chunk;

bool box_inside(const Box& box, const Shape& shape) {
  for (std::size_t i = 0; i < shape.size(); ++i) {
    // start + shape may overflow: compare against what is left of the axis instead
    if (box.start[i] < 0 || box.start[i] > shape[i] || box.shape[i] > shape[i] - box.start[i]) return false;
  }
  return true;
}

// Read-modify-writes of one key are serialised across every handle in the process: the lock is
// chosen by (store identity, key).
std::mutex& write_lock(const std::string& identity, const std::string& key) {
  static std::array<std::mutex, 1024> locks;
  const std::size_t h = std::hash<std::string>{}(identity) * 31 + std::hash<std::string>{}(key);
  return locks[h % locks.size()];
}

// Shards whose index is held (and whose file stays open) at once during a read.
constexpr std::size_t kShardGroup = 64;

Shape add(const Shape& a, const Shape& b) {
  Shape r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}

}  // namespace

struct ChunkedArray::Impl {
  ArraySpec spec;
  std::shared_ptr<Store> store;
  std::shared_ptr<ChunkCache> cache;
  uint64_t owner = ChunkCache::new_owner_id();
  Executor* executor;
  ChunkGrid grid;
  std::shared_ptr<const CodecChain> chain;
  const ShardLayout* shard = nullptr;
  Shape inner_grid_shape;  // global inner-chunk grid (cache keys of sharded arrays)
  std::string identity;     // of the store, for write locks
  uint64_t max_chunk_file;  // no encoding of one (outer) chunk is larger than this
  std::mutex batched_write_mutex;

  // Decoded shard indexes by shard, valid for one version of the shard file (used with a cache).
  class IndexCache {
   public:
    bool get(int64_t shard, const std::string& version, std::vector<ShardIndexEntry>& out) const {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = map_.find(shard);
      if (it == map_.end() || it->second.first != version) return false;
      out = it->second.second;
      return true;
    }
    void put(int64_t shard, const std::string& version, const std::vector<ShardIndexEntry>& entries) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (map_.size() >= kMaxShards) map_.clear();  // bounded; rebuilt from files on demand
      map_[shard] = {version, entries};
    }
    void erase(int64_t shard) {
      std::lock_guard<std::mutex> lock(mutex_);
      map_.erase(shard);
    }

   private:
    static constexpr std::size_t kMaxShards = 4096;
    mutable std::mutex mutex_;
    std::unordered_map<int64_t, std::pair<std::string, std::vector<ShardIndexEntry>>> map_;
  };
  mutable IndexCache index_cache;

  Impl(ArraySpec s, std::shared_ptr<Store> st, std::shared_ptr<ChunkCache> c, Executor* ex)
      : spec(std::move(s)), store(std::move(st)), cache(std::move(c)),
        executor(ex ? ex : &default_executor()), grid(spec.shape, spec.chunk_shape) {
    VOXCORE_EXPECT(store != nullptr, ErrorCode::kInvalidArgument, "ChunkedArray", "store is null");
    const std::size_t item = itemsize(spec.dtype);
    if (spec.fill_value.empty()) spec.fill_value.assign(item, 0);
    VOXCORE_EXPECT(spec.fill_value.size() == item, ErrorCode::kInvalidMetadata, "ChunkedArray",
                   "fill value size differs from the dtype size (expected=" + std::to_string(item) +
                       ", got=" + std::to_string(spec.fill_value.size()) + ")");
    chain = CodecChain::prepare(spec.codecs, spec.chunk_shape, spec.dtype, spec.fill_value);
    // Per-inner-chunk I/O only when the chain is exactly [sharding_indexed]: a transpose before
    // it, or bytes->bytes codecs after it, change the shard's byte layout, and then whole shards
    // go through the chain like ordinary chunks.
    if (spec.codecs.size() == 1) shard = chain->sharding();
    identity = store->identity();
    uint64_t bound = static_cast<uint64_t>(chain->chunk_nbytes()) * 2 + (1u << 20);
    if (const ShardLayout* layout = chain->sharding()) {
      bound += static_cast<uint64_t>(layout->index_nbytes()) +
               static_cast<uint64_t>(layout->num_inner_chunks()) * 1024;
    }
    max_chunk_file = bound;
    if (shard) {
      ChunkGrid inner(spec.shape, shard->inner_chunk_shape());
      inner_grid_shape = inner.grid_shape();
    }
  }

  const void* fill_ptr() const { return spec.fill_value.data(); }

  int64_t inner_cache_key(const Shape& shard_index, const Shape& inner_index) const {
    const Shape& cps = shard->chunks_per_shard();
    int64_t linear = 0;
    for (std::size_t i = 0; i < shard_index.size(); ++i) {
      linear = linear * inner_grid_shape[i] + shard_index[i] * cps[i] + inner_index[i];
    }
    return linear;
  }

  // ---- reading ---------------------------------------------------------------------------------

  // One chunk (or inner chunk) to read: its bytes come from `request`, decode with `codec`, and the
  // part [in_chunk, in_chunk + shape) lands at dst.subview(dst_offset, shape).
  struct ReadTask {
    ByteRequest request;
    const CodecChain* codec;
    Shape in_chunk, dst_offset, shape;
    bool full;
    int64_t cache_key;
    bool missing = false;              // known empty (shard index says so)
    Store::Snapshot* snap = nullptr;  // read the range from this shard version
    int64_t inner = -1;                // inner chunk number, for messages
    ChunkCache::Value cached;          // already decoded (looked up while planning)
  };

  [[noreturn]] void rethrow_with_key(const Error& e, const ReadTask& t, const char* where) const {
    std::string what = e.what();
    what += " (key=" + t.request.key;
    if (t.inner >= 0) what += ", inner chunk " + std::to_string(t.inner);
    what += ")";
    fail(e.code(), where, what, e.sys_errno());
  }

  void place(const ReadTask& t, const uint8_t* bytes, std::size_t size, const ArrayView& dst) const {
    try {
      place_unchecked(t, bytes, size, dst);
    } catch (const Error& e) {
      rethrow_with_key(e, t, "ChunkedArray::read_into");
    }
  }

  void place_unchecked(const ReadTask& t, const uint8_t* bytes, std::size_t size,
                       const ArrayView& dst) const {
    const CodecChain& codec = *t.codec;
    ArrayView part = dst.subview(t.dst_offset, t.shape);
    if (cache) {
      auto decoded = ChunkCache::allocate(static_cast<std::size_t>(codec.chunk_nbytes()));
      ArrayView whole = ArrayView::contiguous(decoded->data(), spec.dtype, codec.chunk_shape());
      codec.decode_into(bytes, size, whole);
      copy(whole.subview(t.in_chunk, t.shape), part);
      cache->put(owner, t.cache_key, std::move(decoded));
      return;
    }
    if (t.full) {
      codec.decode_into(bytes, size, part);
      return;
    }
    tl_chunk.resize(static_cast<std::size_t>(codec.chunk_nbytes()));
    ArrayView whole = ArrayView::contiguous(tl_chunk.data(), spec.dtype, codec.chunk_shape());
    codec.decode_into(bytes, size, whole);
    copy(whole.subview(t.in_chunk, t.shape), part);
  }

  bool place_cached(const ReadTask& t, const ArrayView& dst) const {
    if (!cache) return false;
    auto hit = t.cached ? t.cached : cache->get(owner, t.cache_key);
    if (!hit) return false;
    ArrayView whole = ArrayView::contiguous(const_cast<uint8_t*>(hit->data()), spec.dtype,
                                            t.codec->chunk_shape());
    copy(whole.subview(t.in_chunk, t.shape), dst.subview(t.dst_offset, t.shape));
    return true;
  }

  void check_range_size(const ReadTask& t, std::size_t got) const {
    if (t.request.range.kind == ByteRange::Kind::kRange && got != t.request.range.length) {
      fail(ErrorCode::kCorrupt, "ChunkedArray::read_into",
           "shard shorter than its index claims (key=" + t.request.key +
               ", expected=" + std::to_string(t.request.range.length) + " bytes at offset " +
               std::to_string(t.request.range.offset) + ", got=" + std::to_string(got) + ")");
    }
  }

  void run_read_tasks(std::vector<ReadTask>& tasks, const ArrayView& dst) const {
    for (std::size_t begin = 0; begin < tasks.size(); begin += kBatch) {
      const std::size_t end = std::min(tasks.size(), begin + kBatch);
      if (store->batched()) {
        std::vector<std::size_t> todo;
        std::vector<ByteRequest> requests;
        for (std::size_t i = begin; i < end; ++i) {
          if (tasks[i].missing) continue;
          // Hold the hit: it must not be evicted between this lookup and its placement.
          if (!tasks[i].cached && cache) tasks[i].cached = cache->get(owner, tasks[i].cache_key);
          if (tasks[i].cached) continue;
          todo.push_back(i);
          requests.push_back(tasks[i].request);
        }
        std::vector<ByteBuffer> values;
        std::vector<uint8_t> found;
        store->get_many(requests, values, found);
        std::vector<int64_t> slot(end - begin, -1);
        for (std::size_t j = 0; j < todo.size(); ++j) slot[todo[j] - begin] = static_cast<int64_t>(j);
        executor->parallel_for(static_cast<int64_t>(end - begin), [&](int64_t k) {
          const ReadTask& t = tasks[begin + k];
          const int64_t j = slot[k];
          if (j < 0) {  // known empty, or decoded already (held in t.cached)
            if (t.missing || !place_cached(t, dst)) fill_part(t, dst);
            return;
          }
          if (!found[j]) {
            fill_part(t, dst);
            return;
          }
          check_range_size(t, values[j].size());
          place(t, values[j].data(), values[j].size(), dst);
        });
      } else {
        executor->parallel_for(static_cast<int64_t>(end - begin), [&](int64_t k) {
          const ReadTask& t = tasks[begin + k];
          if (t.missing) {
            fill_part(t, dst);
            return;
          }
          if (place_cached(t, dst)) return;
          if (t.snap) {
            t.snap->read(t.request.range.offset, t.request.range.length, tl_fetched);
          } else if (!store->get(t.request.key, t.request.range, tl_fetched)) {
            fill_part(t, dst);
            return;
          }
          check_range_size(t, tl_fetched.size());
          place(t, tl_fetched.data(), tl_fetched.size(), dst);
        });
      }
    }
  }

  void fill_part(const ReadTask& t, const ArrayView& dst) const {
    fill(dst.subview(t.dst_offset, t.shape), fill_ptr());
  }

  // The index of each shard in keys (empty: no shard). For a non-batched store each shard is
  // opened once (snaps) and its index and inner chunks are read from that one version.
  std::vector<std::vector<ShardIndexEntry>> read_indexes(
      const std::vector<std::string>& keys, const std::vector<int64_t>& shard_ids,
      const std::vector<uint8_t>& need, std::vector<std::unique_ptr<Store::Snapshot>>& snaps) const {
    std::vector<std::vector<ShardIndexEntry>> indexes(keys.size());
    const auto n = static_cast<uint64_t>(shard->index_nbytes());
    auto decode = [&](std::size_t i, const ByteBuffer& bytes, uint64_t total) {
      try {
        VOXCORE_EXPECT(bytes.size() == n, ErrorCode::kCorrupt, "ChunkedArray::read_into",
                       "shard shorter than its index (expected=" + std::to_string(n) +
                           " index bytes, got=" + std::to_string(bytes.size()) + ")");
        shard->decode_index(bytes.data(), bytes.size(), total, indexes[i]);
      } catch (const Error& e) {
        fail(e.code(), "ChunkedArray::read_into", std::string(e.what()) + " (key=" + keys[i] + ")");
      }
    };
    if (store->batched()) {
      const ByteRange range = shard->index_at_end() ? ByteRange::suffix(n) : ByteRange::range(0, n);
      std::vector<ByteRequest> requests;
      std::vector<std::size_t> which;
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (!need[i]) continue;
        requests.push_back({keys[i], range});
        which.push_back(i);
      }
      std::vector<ByteBuffer> values;
      std::vector<uint8_t> found;
      store->get_many(requests, values, found);
      for (std::size_t j = 0; j < which.size(); ++j) {
        if (found[j]) decode(which[j], values[j], UINT64_MAX);
      }
      return indexes;
    }
    snaps.resize(keys.size());
    executor->parallel_for(static_cast<int64_t>(keys.size()), [&](int64_t i) {
      if (!need[i]) return;
      snaps[i] = store->snapshot(keys[i]);
      if (!snaps[i]) return;
      const std::string version = cache ? snaps[i]->version() : std::string();
      if (!version.empty() && index_cache.get(shard_ids[i], version, indexes[i])) return;
      const uint64_t size = snaps[i]->size();
      const uint64_t offset = shard->index_at_end() ? (size >= n ? size - n : 0) : 0;
      snaps[i]->read(offset, n, tl_fetched);
      decode(static_cast<std::size_t>(i), tl_fetched, size);
      if (!version.empty()) index_cache.put(shard_ids[i], version, indexes[i]);
    });
    return indexes;
  }

  std::vector<ReadTask> plan_chunks(const Box& box) const {
    std::vector<ReadTask> tasks;
    const auto overlaps = grid.overlaps(box);
    tasks.reserve(overlaps.size());
    for (const auto& o : overlaps) {
      ReadTask t;
      t.request = {chunk_key(spec.key_encoding, o.chunk_index), ByteRange::whole(max_chunk_file)};
      t.codec = chain.get();
      t.in_chunk = o.in_chunk;
      t.dst_offset = o.in_box;
      t.shape = o.shape;
      t.full = o.full_chunk;
      t.cache_key = grid.linear_index(o.chunk_index);
      tasks.push_back(std::move(t));
    }
    return tasks;
  }

  void read_sharded(const Box& box, const ArrayView& dst) const {
    const auto overlaps = grid.overlaps(box);
    ChunkGrid inner(shard->shard_shape(), shard->inner_chunk_shape());
    for (std::size_t begin = 0; begin < overlaps.size(); begin += kShardGroup) {
      const std::size_t end = std::min(overlaps.size(), begin + kShardGroup);
      const std::size_t n = end - begin;
      std::vector<std::string> keys(n);
      std::vector<int64_t> shard_ids(n);
      std::vector<std::vector<ChunkGrid::Overlap>> parts(n);
      std::vector<std::vector<ChunkCache::Value>> hits(n);
      std::vector<uint8_t> need(n, 1);
      for (std::size_t g = 0; g < n; ++g) {
        const auto& o = overlaps[begin + g];
        keys[g] = chunk_key(spec.key_encoding, o.chunk_index);
        shard_ids[g] = grid.linear_index(o.chunk_index);
        parts[g] = inner.overlaps(Box{o.in_chunk, o.shape});
        if (!cache) continue;
        // A shard whose needed inner chunks are all decoded already needs no I/O at all.
        bool all = true;
        for (const auto& io : parts[g]) {
          hits[g].push_back(cache->get(owner, inner_cache_key(o.chunk_index, io.chunk_index)));
          all = all && hits[g].back() != nullptr;
        }
        need[g] = all ? 0 : 1;
      }
      std::vector<std::unique_ptr<Store::Snapshot>> snaps;
      const auto indexes = read_indexes(keys, shard_ids, need, snaps);
      std::vector<ReadTask> tasks;
      for (std::size_t s = begin; s < end; ++s) {
        const auto& o = overlaps[s];
        const std::size_t g = s - begin;
        for (std::size_t p = 0; p < parts[g].size(); ++p) {
          const auto& io = parts[g][p];
          ReadTask t;
          if (cache) t.cached = hits[g][p];
          t.codec = &shard->inner();
          t.request.key = keys[g];
          t.in_chunk = io.in_chunk;
          t.dst_offset = add(o.in_box, io.in_box);
          t.shape = io.shape;
          t.full = io.full_chunk;
          t.cache_key = inner_cache_key(o.chunk_index, io.chunk_index);
          t.inner = inner.linear_index(io.chunk_index);
          if (t.cached) {
            t.missing = false;
          } else if (indexes[g].empty()) {
            t.missing = true;
          } else {
            const ShardIndexEntry& e = indexes[g][static_cast<std::size_t>(t.inner)];
            t.missing = e.empty();
            if (!t.missing) {
              t.request.range = ByteRange::range(e.offset, e.nbytes);
              if (!snaps.empty()) t.snap = snaps[g].get();
            }
          }
          tasks.push_back(std::move(t));
        }
      }
      run_read_tasks(tasks, dst);
    }
  }

  void read_into(const Box& box, const ArrayView& dst) const {
    check_box(box, dst, "ChunkedArray::read_into");
    if (dst.num_elements() == 0) return;
    if (!box_inside(box, spec.shape)) fill(dst, fill_ptr());
    if (shard) {
      read_sharded(box, dst);
      return;
    }
    auto tasks = plan_chunks(box);
    run_read_tasks(tasks, dst);
  }

  void check_box(const Box& box, const ArrayView& view, const char* where) const {
    const std::size_t r = spec.shape.size();
    VOXCORE_EXPECT(box.start.size() == r && box.shape.size() == r && view.shape.size() == r &&
                       view.byte_strides.size() == r,
                   ErrorCode::kInvalidArgument, where,
                   "rank differs from the array rank (expected=" + std::to_string(r) + ")");
    VOXCORE_EXPECT(view.shape == box.shape, ErrorCode::kInvalidArgument, where,
                   "buffer shape differs from the box (expected=" + shape_str(box.shape) +
                       ", got=" + shape_str(view.shape) + ")");
    VOXCORE_EXPECT(view.dtype == spec.dtype, ErrorCode::kInvalidArgument, where,
                   std::string("buffer dtype differs (expected=") + dtype_name(spec.dtype) +
                       ", got=" + dtype_name(view.dtype) + ")");
  }

  // ---- writing ---------------------------------------------------------------------------------

  // Encodes one chunk (or inner chunk) of `codec` after writing `part` (the new values of
  // [in_chunk, in_chunk + part.shape)) over it; `existing` are its current bytes (nullptr: none,
  // i.e. fill). Returns false when the chunk should be erased (all fill and write_empty_chunks
  // is off).
  bool merge_encode(const CodecChain& codec, const ArrayView& part, bool full, const Shape& in_chunk,
                    const uint8_t* existing, std::size_t existing_size, ByteBuffer& out) const {
    if (full) {
      if (!spec.write_empty_chunks && all_equal(part, fill_ptr())) return false;
      codec.encode(part, out);
      return true;
    }
    tl_chunk.resize(static_cast<std::size_t>(codec.chunk_nbytes()));
    ArrayView whole = ArrayView::contiguous(tl_chunk.data(), spec.dtype, codec.chunk_shape());
    if (existing) {
      codec.decode_into(existing, existing_size, whole);
    } else {
      voxcore::fill(whole, fill_ptr());
    }
    copy(part, whole.subview(in_chunk, part.shape));
    if (!spec.write_empty_chunks && all_equal(whole, fill_ptr())) return false;
    codec.encode(whole, out);
    return true;
  }

  // New bytes for one chunk (see merge_encode).
  bool build_chunk(const ChunkGrid::Overlap& o, const ArrayView& src, const uint8_t* existing,
                   std::size_t existing_size, ByteBuffer& out) const {
    return merge_encode(*chain, src.subview(o.in_box, o.shape), o.full_chunk, o.in_chunk, existing,
                        existing_size, out);
  }

  // New bytes for one shard (see build_chunk). Inner chunks run on the executor when
  // inner_parallel, else on this thread.
  bool build_shard(const ChunkGrid::Overlap& o, const ArrayView& src, const uint8_t* existing,
                   std::size_t existing_size, ByteBuffer& out, bool inner_parallel,
                   const std::string& key) const {
    const CodecChain& inner_chain = shard->inner();
    const int64_t n_inner = shard->num_inner_chunks();
    std::vector<ShardIndexEntry> old_index;
    if (existing) {
      const auto n = static_cast<std::size_t>(shard->index_nbytes());
      VOXCORE_EXPECT(existing_size >= n, ErrorCode::kCorrupt, "ChunkedArray::write",
                     "shard shorter than its index (key=" + key + ", expected>=" + std::to_string(n) +
                         ", got=" + std::to_string(existing_size) + ")");
      const uint8_t* index_bytes = shard->index_at_end() ? existing + existing_size - n : existing;
      shard->decode_index(index_bytes, n, existing_size, old_index);
    }
    ChunkGrid inner(shard->shard_shape(), shard->inner_chunk_shape());
    // Which inner chunks the write touches, and how.
    std::vector<const ChunkGrid::Overlap*> touched(static_cast<std::size_t>(n_inner), nullptr);
    const auto inner_overlaps = inner.overlaps(Box{o.in_chunk, o.shape});
    for (const auto& io : inner_overlaps) touched[static_cast<std::size_t>(inner.linear_index(io.chunk_index))] = &io;
    // Inner chunks that are neither touched nor stored (e.g. outside the array) stay empty.
    std::vector<ByteBuffer> encoded(static_cast<std::size_t>(n_inner));
    std::vector<uint8_t> present(static_cast<std::size_t>(n_inner), 0);
    auto work = [&](int64_t i) {
      const auto* io = touched[static_cast<std::size_t>(i)];
      const bool had = !old_index.empty() && !old_index[static_cast<std::size_t>(i)].empty();
      if (!io) {
        if (had) {
          const auto& e = old_index[static_cast<std::size_t>(i)];
          encoded[i].resize(0);
          encoded[i].append(existing + e.offset, static_cast<std::size_t>(e.nbytes));
          present[i] = 1;
        }
        return;
      }
      const ShardIndexEntry* e = had ? &old_index[static_cast<std::size_t>(i)] : nullptr;
      present[i] = merge_encode(inner_chain, src.subview(add(o.in_box, io->in_box), io->shape),
                                io->full_chunk, io->in_chunk, e ? existing + e->offset : nullptr,
                                e ? static_cast<std::size_t>(e->nbytes) : 0, encoded[i])
                       ? 1 : 0;
    };
    if (inner_parallel) {
      executor->parallel_for(n_inner, work);
    } else {
      for (int64_t i = 0; i < n_inner; ++i) work(i);
    }
    std::vector<ShardIndexEntry> index(static_cast<std::size_t>(n_inner));
    uint64_t total = 0;
    bool any = false;
    for (int64_t i = 0; i < n_inner; ++i) {
      if (present[i]) {
        any = true;
        total += encoded[i].size();
      }
    }
    if (!any && !spec.write_empty_chunks) return false;
    const uint64_t index_n = static_cast<uint64_t>(shard->index_nbytes());
    uint64_t offset = shard->index_at_end() ? 0 : index_n;
    out.resize(0);
    out.reserve(static_cast<std::size_t>(total + index_n));
    ByteBuffer index_bytes;
    if (!shard->index_at_end()) out.resize(static_cast<std::size_t>(index_n));  // patched below
    for (int64_t i = 0; i < n_inner; ++i) {
      if (!present[i]) continue;
      index[i].offset = offset;
      index[i].nbytes = encoded[i].size();
      out.append(encoded[i].data(), encoded[i].size());
      offset += encoded[i].size();
    }
    shard->encode_index(index, index_bytes);
    if (shard->index_at_end()) {
      out.append(index_bytes.data(), index_bytes.size());
    } else {
      std::copy(index_bytes.data(), index_bytes.data() + index_bytes.size(), out.data());
    }
    return true;
  }

  bool build(const ChunkGrid::Overlap& o, const ArrayView& src, const uint8_t* existing,
             std::size_t existing_size, ByteBuffer& out, bool inner_parallel, const std::string& key) const {
    try {
      if (shard) return build_shard(o, src, existing, existing_size, out, inner_parallel, key);
      return build_chunk(o, src, existing, existing_size, out);
    } catch (const Error& e) {
      if (std::string(e.what()).find("key=") != std::string::npos) throw;
      fail(e.code(), "ChunkedArray::write", std::string(e.what()) + " (key=" + key + ")", e.sys_errno());
    }
  }

  bool needs_existing(const ChunkGrid::Overlap& o) const { return !o.full_chunk; }

  void invalidate(const ChunkGrid::Overlap& o) {
    if (!cache) return;
    if (!shard) {
      cache->erase(owner, grid.linear_index(o.chunk_index));
      return;
    }
    index_cache.erase(grid.linear_index(o.chunk_index));
    ChunkGrid inner(shard->shard_shape(), shard->inner_chunk_shape());
    for (const auto& io : inner.overlaps(Box{o.in_chunk, o.shape})) {
      cache->erase(owner, inner_cache_key(o.chunk_index, io.chunk_index));
    }
  }

  void write(const Box& box, const ArrayView& src) {
    check_box(box, src, "ChunkedArray::write");
    VOXCORE_EXPECT(box_inside(box, spec.shape), ErrorCode::kInvalidArgument, "ChunkedArray::write",
                   "box lies outside the array (start=" + shape_str(box.start) + ", shape=" +
                       shape_str(box.shape) + ", array=" + shape_str(spec.shape) + ")");
    if (src.num_elements() == 0) return;
    const auto overlaps = grid.overlaps(box);
    const bool inner_parallel =
        shard != nullptr && static_cast<int64_t>(overlaps.size()) < executor->concurrency();
    if (store->batched()) {
      write_batched(overlaps, src, inner_parallel);
      return;
    }
    auto one = [&](int64_t k) {
      const auto& o = overlaps[static_cast<std::size_t>(k)];
      const std::string key = chunk_key(spec.key_encoding, o.chunk_index);
      std::lock_guard<std::mutex> lock(write_lock(identity, key));
      thread_local ByteBuffer existing;
      thread_local ByteBuffer encoded;
      bool have = false;
      // A read-modify-write also holds the store's lock of the key (other processes).
      std::shared_ptr<void> update_lock;
      if (needs_existing(o)) {
        update_lock = store->lock_for_update(key);
        have = store->get(key, ByteRange::whole(max_chunk_file), existing);
      }
      if (have && existing.empty()) {
        fail(ErrorCode::kCorrupt, "ChunkedArray::write", "empty chunk file (key=" + key + ")");
      }
      const bool keep = build(o, src, have ? existing.data() : nullptr, have ? existing.size() : 0,
                              encoded, inner_parallel, key);
      if (keep) {
        store->set(key, encoded.data(), encoded.size());
      } else {
        store->erase(key);
      }
      invalidate(o);
    };
    if (inner_parallel) {
      for (std::size_t k = 0; k < overlaps.size(); ++k) one(static_cast<int64_t>(k));
    } else {
      executor->parallel_for(static_cast<int64_t>(overlaps.size()), one);
    }
  }

  void write_batched(const std::vector<ChunkGrid::Overlap>& overlaps, const ArrayView& src,
                     bool inner_parallel) {
    std::lock_guard<std::mutex> lock(batched_write_mutex);
    for (std::size_t begin = 0; begin < overlaps.size(); begin += kBatch) {
      const std::size_t end = std::min(overlaps.size(), begin + kBatch);
      const std::size_t n = end - begin;
      std::vector<std::string> keys(n);
      std::vector<ByteRequest> requests;
      std::vector<int64_t> slot(n, -1);
      for (std::size_t k = 0; k < n; ++k) {
        keys[k] = chunk_key(spec.key_encoding, overlaps[begin + k].chunk_index);
        if (needs_existing(overlaps[begin + k])) {
          slot[k] = static_cast<int64_t>(requests.size());
          requests.push_back({keys[k], ByteRange::whole(max_chunk_file)});
        }
      }
      std::vector<ByteBuffer> existing;
      std::vector<uint8_t> found;
      store->get_many(requests, existing, found);
      std::vector<ByteBuffer> encoded(n);
      std::vector<uint8_t> keep(n, 0);
      auto one = [&](int64_t k) {
        const int64_t j = slot[k];
        const bool have = j >= 0 && found[j];
        if (have && existing[j].empty()) {
          fail(ErrorCode::kCorrupt, "ChunkedArray::write", "empty chunk file (key=" + keys[k] + ")");
        }
        keep[k] = build(overlaps[begin + k], src, have ? existing[j].data() : nullptr,
                        have ? existing[j].size() : 0, encoded[k], inner_parallel, keys[k])
                      ? 1 : 0;
      };
      if (inner_parallel) {
        for (std::size_t k = 0; k < n; ++k) one(static_cast<int64_t>(k));
      } else {
        executor->parallel_for(static_cast<int64_t>(n), one);
      }
      std::vector<std::string> set_keys;
      std::vector<ByteBuffer> set_values;
      for (std::size_t k = 0; k < n; ++k) {
        if (keep[k]) {
          set_keys.push_back(keys[k]);
          set_values.push_back(std::move(encoded[k]));
        } else {
          store->erase(keys[k]);
        }
        invalidate(overlaps[begin + k]);
      }
      store->set_many(set_keys, set_values);
    }
  }
};

ChunkedArray::ChunkedArray(ArraySpec spec, std::shared_ptr<Store> store, std::shared_ptr<ChunkCache> cache,
                           Executor* executor)
    : impl_(std::make_unique<Impl>(std::move(spec), std::move(store), std::move(cache), executor)) {}

ChunkedArray::~ChunkedArray() = default;

const ArraySpec& ChunkedArray::spec() const noexcept { return impl_->spec; }
const ChunkGrid& ChunkedArray::grid() const noexcept { return impl_->grid; }
const CodecChain& ChunkedArray::codecs() const noexcept { return *impl_->chain; }

void ChunkedArray::read_into(const Box& box, const ArrayView& dst) const { impl_->read_into(box, dst); }
void ChunkedArray::write(const Box& box, const ArrayView& src) { impl_->write(box, src); }

}  // namespace voxcore
