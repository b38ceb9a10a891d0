#include "voxcore/chunked_array.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "detail/checked.hpp"
#include "detail/shard_io.hpp"
#include "detail/write_behind.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {
namespace {

using detail::shape_str;
using detail::StoredBytes;

constexpr const char* kReadWhere = "ChunkedArray::read_into";
constexpr const char* kWriteWhere = "ChunkedArray::write";

// Reads are done in batches so a batched store gets one call per batch, and so a failure stops
// the work early. Large enough to keep every core busy.
constexpr std::size_t kBatch = 256;
// A batched store's reads stream (decoded as each value comes): larger batches keep more
// requests in flight and leave fewer waits between batches.
constexpr std::size_t kStreamBatch = 4096;

bool box_inside(const Box& box, const Shape& shape) {
  for (std::size_t i = 0; i < shape.size(); ++i) {
    // start + shape may overflow: compare against what is left of the axis instead
    if (box.start[i] < 0 || box.start[i] > shape[i] || box.shape[i] > shape[i] - box.start[i]) return false;
  }
  return true;
}

// Writes of one key are serialised across every handle in the process, also while the set of the
// one before is still in flight on an I/O thread: the hold on (store identity, key) is taken before
// the key is read and released, by whichever thread dropped it last, once the new value is in place.
std::shared_ptr<void> hold_key(const std::string& identity, const std::string& key) {
  struct Stripe {
    std::mutex mutex;
    std::condition_variable released;
    std::unordered_set<std::string> held;
  };
  static std::array<Stripe, 64> stripes;
  struct Hold {
    Stripe* stripe;
    std::string id;
    Hold(Stripe* s, std::string i) : stripe(s), id(std::move(i)) {}
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() {
      std::lock_guard<std::mutex> lock(stripe->mutex);
      stripe->held.erase(id);
      stripe->released.notify_all();
    }
  };
  std::string id = identity + '\n' + key;
  Stripe& s = stripes[std::hash<std::string>{}(id) % stripes.size()];
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.released.wait(lock, [&] { return s.held.count(id) == 0; });
    s.held.insert(id);
  }
  return std::make_shared<Hold>(&s, std::move(id));
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
  std::string identity;     // of the store, for the holds of keys being written
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
  // The version of a batched store's cached indexes: valid for this handle's life.
  static constexpr const char* kHandleVersion = "handle";

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
    shard = detail::per_inner_layout(*chain, spec.codecs.size());
    identity = store->identity();
    max_chunk_file = detail::max_stored_bytes(*chain);
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

  // One chunk (or inner chunk) to read: its bytes come from `request`, decode with `codec`, and
  // its region lands at dst.subview(dst_offset, region.count).
  struct ReadTask {
    ByteRequest request;
    const CodecChain* codec;
    ChunkRegion region;
    Shape dst_offset;
    int64_t cache_key;
    bool missing = false;              // known empty (shard index says so)
    Store::Snapshot* snap = nullptr;  // read the range from this shard version
    int64_t inner = -1;                // inner chunk number, for messages
    ChunkCache::Value cached;          // already decoded (looked up while planning)
  };

  // Places fetched bytes; a range read must have returned every byte the shard index claims.
  void place(const ReadTask& t, const uint8_t* bytes, std::size_t size, const ArrayView& dst) const {
    try {
      if (t.request.range.kind == ByteRange::Kind::kRange) {
        detail::check_inner_size({t.request.range.offset, t.request.range.length}, size, kReadWhere);
      }
      place_unchecked(t, bytes, size, dst);
    } catch (const Error& e) {
      detail::rethrow_keyed(e, kReadWhere, t.request.key, t.inner);
    }
  }

  void place_unchecked(const ReadTask& t, const uint8_t* bytes, std::size_t size,
                       const ArrayView& dst) const {
    const CodecChain& codec = *t.codec;
    ArrayView part = dst.subview(t.dst_offset, t.region.count);
    if (cache) {
      auto decoded = ChunkCache::allocate(static_cast<std::size_t>(codec.chunk_nbytes()));
      ArrayView whole = ArrayView::contiguous(decoded->data(), spec.dtype, codec.chunk_shape());
      codec.decode_into(bytes, size, whole);
      copy(detail::region_view(whole, t.region), part);
      cache->put(owner, t.cache_key, std::move(decoded));
      return;
    }
    detail::decode_region(codec, bytes, size, t.region, part);
  }

  bool place_cached(const ReadTask& t, const ArrayView& dst) const {
    if (!cache) return false;
    auto hit = t.cached ? t.cached : cache->get(owner, t.cache_key);
    if (!hit) return false;
    ArrayView whole = ArrayView::contiguous(const_cast<uint8_t*>(hit->data()), spec.dtype,
                                            t.codec->chunk_shape());
    copy(detail::region_view(whole, t.region), dst.subview(t.dst_offset, t.region.count));
    return true;
  }

  void run_read_tasks(std::vector<ReadTask>& tasks, const ArrayView& dst) const {
    const std::size_t batch = store->batched() ? kStreamBatch : kBatch;
    for (std::size_t begin = 0; begin < tasks.size(); begin += batch) {
      const std::size_t end = std::min(tasks.size(), begin + batch);
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
        run_streamed(tasks, begin, end, todo, requests, dst);
      } else {
        executor->parallel_for(static_cast<int64_t>(end - begin), [&](int64_t k) {
          const ReadTask& t = tasks[begin + k];
          if (t.missing) {
            fill_part(t, dst);
            return;
          }
          if (place_cached(t, dst)) return;
          ByteBuffer& bytes = detail::fetch_scratch();
          if (t.snap) {
            t.snap->read(t.request.range.offset, t.request.range.length, bytes);
          } else if (!store->get(t.request.key, t.request.range, bytes)) {
            fill_part(t, dst);
            return;
          }
          place(t, bytes.data(), bytes.size(), dst);
        });
      }
    }
  }

  // A batched store's tasks [begin, end): those needing no fetch placed first, then each fetched
  // value decoded as it arrives (the store's start_many), while the rest are still on their way.
  void run_streamed(const std::vector<ReadTask>& tasks, std::size_t begin, std::size_t end,
                    const std::vector<std::size_t>& todo, const std::vector<ByteRequest>& requests,
                    const ArrayView& dst) const {
    std::vector<std::size_t> others;  // known empty, or decoded already (held in t.cached)
    for (std::size_t i = begin, j = 0; i < end; ++i) {
      if (j < todo.size() && todo[j] == i) {
        ++j;
      } else {
        others.push_back(i);
      }
    }
    auto arrivals = std::make_shared<Arrivals>(requests.size());
    std::function<void()> finish = store->start_many(requests, arrivals);
    const auto n_others = static_cast<int64_t>(others.size());
    try {
      executor->parallel_for(n_others + static_cast<int64_t>(todo.size()), [&](int64_t k) {
        if (k < n_others) {
          const ReadTask& t = tasks[others[k]];
          if (t.missing || !place_cached(t, dst)) fill_part(t, dst);
          return;
        }
        Arrivals::Item item;
        if (!arrivals->take(item)) return;  // the fetch failed (finish() says why) or a decode did
        const ReadTask& t = tasks[todo[item.index]];
        try {
          if (item.found) {
            place(t, item.data, item.size, dst);
          } else {
            fill_part(t, dst);
          }
        } catch (...) {
          arrivals->abort();
          throw;
        }
        if (item.found) arrivals->release(item.token);
      });
    } catch (...) {
      arrivals->abort();
      try {
        finish();  // the fetch must end before its bytes go; the decode's error is the one raised
      } catch (...) {
      }
      throw;
    }
    finish();
  }

  void fill_part(const ReadTask& t, const ArrayView& dst) const {
    fill(dst.subview(t.dst_offset, t.region.count), fill_ptr());
  }

  // The index of each shard in keys (empty: no shard). For a non-batched store each shard is
  // opened once (snaps) and its index and inner chunks are read from that one version.
  std::vector<std::vector<ShardIndexEntry>> read_indexes(
      const std::vector<std::string>& keys, const std::vector<int64_t>& shard_ids,
      const std::vector<uint8_t>& need, std::vector<std::unique_ptr<Store::Snapshot>>& snaps) const {
    std::vector<std::vector<ShardIndexEntry>> indexes(keys.size());
    if (store->batched()) {
      // A batched store (a remote one) has no version to check: its indexes are kept for this
      // handle, which drops a shard's when it writes the shard (another writer meanwhile is not
      // seen, as with the chunk cache). One round trip fewer for every later read of the shard.
      const ByteRange range = detail::shard_index_range(*shard);
      std::vector<ByteRequest> requests;
      std::vector<std::size_t> which;
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (!need[i] || index_cache.get(shard_ids[i], kHandleVersion, indexes[i])) continue;
        requests.push_back({keys[i], range});
        which.push_back(i);
      }
      std::vector<ByteBuffer> values;
      std::vector<uint8_t> found;
      store->get_many(requests, values, found);
      for (std::size_t j = 0; j < which.size(); ++j) {
        if (!found[j]) continue;
        const std::size_t i = which[j];
        try {  // the shard's size is unknown here: entries are checked when their bytes come
          detail::decode_shard_index(*shard, values[j].data(), values[j].size(), UINT64_MAX,
                                     indexes[i], kReadWhere);
        } catch (const Error& e) {
          detail::rethrow_keyed(e, kReadWhere, keys[i]);
        }
        index_cache.put(shard_ids[i], kHandleVersion, indexes[i]);
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
      try {
        detail::read_shard_index(*shard, *snaps[i], indexes[i], kReadWhere);
      } catch (const Error& e) {
        detail::rethrow_keyed(e, kReadWhere, keys[i]);
      }
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
      t.region = ChunkRegion::box(o.in_chunk, o.shape);
      t.dst_offset = o.in_box;
      t.cache_key = grid.linear_index(o.chunk_index);
      tasks.push_back(std::move(t));
    }
    return tasks;
  }

  void read_sharded(const Box& box, const ArrayView& dst) const {
    const auto overlaps = grid.overlaps(box);
    for (std::size_t begin = 0; begin < overlaps.size(); begin += kShardGroup) {
      const std::size_t end = std::min(overlaps.size(), begin + kShardGroup);
      const std::size_t n = end - begin;
      std::vector<std::string> keys(n);
      std::vector<int64_t> shard_ids(n);
      std::vector<std::vector<detail::InnerPart>> parts(n);
      std::vector<std::vector<ChunkCache::Value>> hits(n);
      std::vector<uint8_t> need(n, 1);
      for (std::size_t g = 0; g < n; ++g) {
        const auto& o = overlaps[begin + g];
        keys[g] = chunk_key(spec.key_encoding, o.chunk_index);
        shard_ids[g] = grid.linear_index(o.chunk_index);
        parts[g] = detail::inner_parts(*shard, ChunkRegion::box(o.in_chunk, o.shape));
        if (!cache) continue;
        // A shard whose needed inner chunks are all decoded already needs no I/O at all.
        bool all = true;
        for (const auto& io : parts[g]) {
          hits[g].push_back(cache->get(owner, inner_cache_key(o.chunk_index, io.index)));
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
          t.region = io.region;
          t.dst_offset = add(o.in_box, io.offset);
          t.cache_key = inner_cache_key(o.chunk_index, io.index);
          t.inner = io.number;
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
    check_box(box, dst, kReadWhere);
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

  // New bytes for one chunk or shard: src's part o written over `existing` (absent: the fill
  // value). Returns false when the chunk should be erased (all fill and write_empty_chunks is
  // off). The inner chunks of a shard run on the executor when inner_parallel, else on this thread.
  bool build(const ChunkGrid::Overlap& o, const ArrayView& src, const StoredBytes& existing,
             ByteBuffer& out, bool inner_parallel, const std::string& key) const {
    const ChunkRegion region = ChunkRegion::box(o.in_chunk, o.shape);
    const ArrayView part = src.subview(o.in_box, o.shape);
    try {
      if (!shard) {
        return detail::merge_encode(*chain, part, region, existing, fill_ptr(),
                                    spec.write_empty_chunks, out, kWriteWhere);
      }
      detail::ShardWrite w(*shard, region, part, existing, kWriteWhere);
      auto work = [&](int64_t i) {
        try {
          w.encode_inner(i, fill_ptr(), spec.write_empty_chunks, kWriteWhere);
        } catch (const Error& e) {
          detail::rethrow_keyed(e, kWriteWhere, key, i);
        }
      };
      if (inner_parallel) {
        executor->parallel_for(w.num_inner(), work);
      } else {
        for (int64_t i = 0; i < w.num_inner(); ++i) work(i);
      }
      return w.assemble(out);
    } catch (const Error& e) {
      detail::rethrow_keyed(e, kWriteWhere, key);
    }
  }

  bool needs_existing(const ChunkGrid::Overlap& o) const { return !o.full_chunk; }

  void invalidate(const ChunkGrid::Overlap& o) {
    if (shard) index_cache.erase(grid.linear_index(o.chunk_index));
    if (!cache) return;
    if (!shard) {
      cache->erase(owner, grid.linear_index(o.chunk_index));
      return;
    }
    for (const auto& io : detail::inner_parts(*shard, ChunkRegion::box(o.in_chunk, o.shape))) {
      cache->erase(owner, inner_cache_key(o.chunk_index, io.index));
    }
  }

  // The chunks (or shards) a write of src at box covers; checked. Empty when src is empty.
  std::vector<ChunkGrid::Overlap> write_plan(const Box& box, const ArrayView& src) const {
    check_box(box, src, kWriteWhere);
    VOXCORE_EXPECT(box_inside(box, spec.shape), ErrorCode::kInvalidArgument, kWriteWhere,
                   "box lies outside the array (start=" + shape_str(box.start) + ", shape=" +
                       shape_str(box.shape) + ", array=" + shape_str(spec.shape) + ")");
    if (src.num_elements() == 0) return {};
    return grid.overlaps(box);
  }

  // One chunk (or shard) of a write: merged with what is stored where src covers it partly,
  // encoded, and handed to out (or erased when it is all fill).
  void write_one(const ChunkGrid::Overlap& o, const ArrayView& src, detail::WriteBehind& out,
                 bool inner_parallel) {
    const std::string key = chunk_key(spec.key_encoding, o.chunk_index);
    std::shared_ptr<void> hold = hold_key(identity, key);
    thread_local ByteBuffer existing;
    thread_local ByteBuffer encoded;
    bool have = false;
    // A read-modify-write also holds the store's lock of the key (other processes).
    std::shared_ptr<void> update_lock;
    if (needs_existing(o)) {
      update_lock = store->lock_for_update(key);
      have = store->get(key, ByteRange::whole(max_chunk_file), existing);
    }
    const bool keep = build(o, src, StoredBytes{existing.data(), existing.size(), have}, encoded,
                            inner_parallel, key);
    if (!keep) {
      store->erase(key);
      invalidate(o);
      return;
    }
    // Both locks are released once the value is in place (maybe on an I/O thread).
    out.put(store.get(), key, encoded,
            [this, o, hold = std::move(hold), update_lock = std::move(update_lock)] { invalidate(o); });
  }

  // Whether a write of n shards, fewer than the threads, runs their inner chunks in parallel.
  bool inner_parallel_for(std::size_t n) const {
    return shard != nullptr && static_cast<int64_t>(n) < executor->concurrency();
  }

  // Whether the chunks of a write run one per task of one parallel loop (else: batched stores,
  // and shards fewer than the threads, whose inner chunks are the parallel work).
  bool flat_writes(std::size_t overlaps) const { return !store->batched() && !inner_parallel_for(overlaps); }

  void write(const Box& box, const ArrayView& src, detail::WriteBehind* run) {
    const auto overlaps = write_plan(box, src);
    if (overlaps.empty()) return;
    const bool inner_parallel = inner_parallel_for(overlaps.size());
    if (store->batched()) {
      write_batched(overlaps, src, inner_parallel);
      return;
    }
    detail::WriteBehind own(kWriteWhere);
    detail::WriteBehind& out = run != nullptr ? *run : own;
    if (inner_parallel) {
      for (const auto& o : overlaps) write_one(o, src, out, true);
    } else {
      executor->parallel_for(static_cast<int64_t>(overlaps.size()),
                             [&](int64_t k) { write_one(overlaps[static_cast<std::size_t>(k)], src, out, false); });
    }
    if (run == nullptr) own.finish();
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
        const StoredBytes old = j >= 0 && found[j]
                                    ? StoredBytes{existing[j].data(), existing[j].size(), true}
                                    : StoredBytes{};
        keep[k] = build(overlaps[begin + k], src, old, encoded[k], inner_parallel, keys[k]) ? 1 : 0;
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
struct WriteRun::Impl {
  detail::WriteBehind behind{kWriteWhere};
};

void ChunkedArray::write(const Box& box, const ArrayView& src, WriteRun* run) {
  impl_->write(box, src, run != nullptr ? &run->impl_->behind : nullptr);
}

void write_all(const std::vector<WriteJob>& jobs, WriteRun* run) {
  // Every job's plan first: a bad job fails before any chunk is written.
  std::vector<std::vector<ChunkGrid::Overlap>> plans;
  plans.reserve(jobs.size());
  bool flat = true;
  for (const auto& j : jobs) {
    VOXCORE_EXPECT(j.array != nullptr, ErrorCode::kInvalidArgument, kWriteWhere, "a write job without its array");
    plans.push_back(j.array->impl_->write_plan(j.box, j.src));
    flat = flat && j.array->impl_->flat_writes(plans.back().size());
  }
  if (!flat) {  // batched stores, few large shards: each array's own write
    for (const auto& j : jobs) j.array->write(j.box, j.src, run);
    return;
  }
  std::vector<std::pair<std::size_t, std::size_t>> tasks;  // (job, overlap)
  for (std::size_t i = 0; i < plans.size(); ++i) {
    for (std::size_t k = 0; k < plans[i].size(); ++k) tasks.emplace_back(i, k);
  }
  if (tasks.empty()) return;
  detail::WriteBehind own(kWriteWhere);
  detail::WriteBehind& out = run != nullptr ? run->impl_->behind : own;
  Executor* executor = jobs.front().array->impl_->executor;
  executor->parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t t) {
    const auto [i, k] = tasks[static_cast<std::size_t>(t)];
    jobs[i].array->impl_->write_one(plans[i][k], jobs[i].src, out, false);
  });
  if (run == nullptr) own.finish();
}

WriteRun::WriteRun() : impl_(std::make_unique<Impl>()) {}
WriteRun::~WriteRun() = default;
void WriteRun::finish() { impl_->behind.finish(); }

}  // namespace voxcore
