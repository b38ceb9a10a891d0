// Bindings for batched chunk decode/encode: voxcore.zarr's codec pipeline hands a whole request
// (every chunk of one zarr-python read or write) to one call, which releases the GIL and spreads
// the chunks, or the inner chunks of shards, over the core's thread pool.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "buffers.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/store.hpp"
#include "voxcore/thread_pool.hpp"
#include "voxcore/transform.hpp"

namespace py = pybind11;
using namespace voxcore;

namespace {

constexpr const char* kDecodeWhere = "CodecChain.decode_batch";
constexpr const char* kEncodeWhere = "CodecChain.encode_batch";

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The elements start + k * step (k < count) of each chunk axis.
struct Region {
  Shape start, step, count;

  bool covers(const Shape& chunk) const {
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (start[i] != 0 || count[i] != chunk[i] || (count[i] > 1 && step[i] != 1)) return false;
    }
    return true;
  }
  static Region whole(const Shape& chunk) {
    return {Shape(chunk.size(), 0), Shape(chunk.size(), 1), chunk};
  }
};

// The region's elements of a chunk-shaped view.
ArrayView region_view(const ArrayView& chunk, const Region& r) {
  ArrayView v = chunk;
  auto* p = static_cast<uint8_t*>(chunk.data);
  for (std::size_t i = 0; i < r.start.size(); ++i) {
    p += r.start[i] * chunk.byte_strides[i];
    v.byte_strides[i] = chunk.byte_strides[i] * r.step[i];
  }
  v.data = p;
  v.shape = r.count;
  return v;
}

// A chunk's encoded bytes: caller memory, or the key in a store.
struct Source {
  std::string key;  // also names the chunk in error messages
  const uint8_t* data = nullptr;
  std::size_t size = 0;
  bool present = false;     // data/size hold the bytes
  bool from_store = false;  // read key from the store
};

struct ReadItem {
  Source src;
  ArrayView dst;  // region-shaped
  Region region;
};

struct WriteItem {
  Source existing;  // merged under the value when the region does not cover the chunk
  ArrayView value;  // region-shaped (broadcast strides allowed)
  Region region;
  ByteBuffer out;
  bool empty = false;  // equal to the fill value and write_empty is false: erase, write nothing
};

thread_local ByteBuffer tl_fetched;
thread_local ByteBuffer tl_chunk;

[[noreturn]] void rethrow_keyed(const Error& e, const char* where, const std::string& key,
                                int64_t inner = -1) {
  std::string what = e.what();
  what += " (key=" + key;
  if (inner >= 0) what += ", inner chunk " + std::to_string(inner);
  what += ")";
  fail(e.code(), where, what, e.sys_errno());
}

// One inner chunk of a shard to decode into (part of) a read item's destination.
struct InnerRead {
  std::size_t item = 0;
  int64_t index = 0;  // C-order number of the inner chunk in its shard
  ShardIndexEntry entry;
  Region region;  // inside the inner chunk
  ArrayView dst;
};

// Per read item of a sharded chain: where its inner chunks' bytes come from.
struct ShardSource {
  ByteBuffer bytes;                           // the whole shard, read from the store
  std::unique_ptr<Store::Snapshot> snapshot;  // or ranges of one version of it
  const uint8_t* data = nullptr;              // whole shard in memory (bytes or caller memory)
  std::vector<ShardIndexEntry> entries;
};

// Calls fn(inner chunk number, region inside it, offset of that part in the region) for every
// inner chunk of the grid `inner` that the region touches.
template <class Fn>
void for_each_touched(const Region& r, const Shape& inner, const Shape& per_shard, Fn&& fn) {
  const std::size_t rank = inner.size();
  // Per axis: (inner chunk coordinate, start in it, count, offset in the region).
  std::vector<std::vector<std::array<int64_t, 4>>> axes(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    if (r.count[d] == 0) return;
    const int64_t first = r.start[d], last = r.start[d] + (r.count[d] - 1) * r.step[d];
    for (int64_t c = first / inner[d]; c <= last / inner[d]; ++c) {
      const int64_t lo = c * inner[d], hi = lo + inner[d] - 1;
      const int64_t step = r.step[d];
      int64_t k0 = lo <= first ? 0 : (lo - first + step - 1) / step;
      int64_t k1 = std::min<int64_t>(r.count[d] - 1, (hi - first) / step);
      if (k0 > k1) continue;
      axes[d].push_back({c, first + k0 * step - lo, k1 - k0 + 1, k0});
    }
  }
  std::vector<std::size_t> pos(rank, 0);
  Region sub{Shape(rank), r.step, Shape(rank)};
  Shape offset(rank);
  for (;;) {
    int64_t number = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      const auto& a = axes[d][pos[d]];
      number = number * per_shard[d] + a[0];
      sub.start[d] = a[1];
      sub.count[d] = a[2];
      offset[d] = a[3];
    }
    fn(number, sub, offset);
    std::size_t d = rank;
    while (d > 0) {
      --d;
      if (++pos[d] < axes[d].size()) break;
      pos[d] = 0;
      if (d == 0) return;
    }
    if (rank == 0) return;
  }
}

// A CodecChain prepared for one chunk shape, dtype and fill value, with batch decode/encode.
// A chain that is exactly [sharding_indexed] is "flat": its shards' inner chunks are decoded and
// encoded as separate tasks on the pool, and a read touching part of a shard in a store fetches
// only the index and the inner chunks it needs.
class BatchChain {
 public:
  BatchChain(const std::vector<CodecSpec>& specs, const Shape& chunk_shape, DType dtype,
             std::vector<uint8_t> fill)
      : chain_(CodecChain::prepare(specs, chunk_shape, dtype, fill)), fill_(std::move(fill)) {
    if (fill_.empty()) fill_.assign(itemsize(dtype), 0);
    if (specs.size() == 1 && specs[0].id == CodecId::kSharding) shard_ = chain_->sharding();
    // Bound on a stored chunk's size: every codec here expands incompressible data by far less.
    int64_t bound = chain_->chunk_nbytes() * 2 + (int64_t{1} << 20);
    if (shard_ != nullptr) bound += shard_->index_nbytes() + 512 * shard_->num_inner_chunks();
    max_stored_ = static_cast<uint64_t>(bound);
  }

  const CodecChain& chain() const { return *chain_; }
  bool flat_sharded() const { return shard_ != nullptr; }
  const std::vector<uint8_t>& fill() const { return fill_; }

  void decode(std::vector<ReadItem>& items, Store* store) const {
    Executor& pool = default_executor();
    if (shard_ == nullptr) {
      pool.parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i) {
        ReadItem& it = items[static_cast<std::size_t>(i)];
        try {
          decode_one(it, store);
        } catch (const Error& e) {
          rethrow_keyed(e, kDecodeWhere, it.src.key);
        }
      });
      return;
    }
    std::vector<ShardSource> shards(items.size());
    std::vector<std::vector<InnerRead>> plans(items.size());
    pool.parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      try {
        plan_shard(items[k], k, store, shards[k], plans[k]);
      } catch (const Error& e) {
        rethrow_keyed(e, kDecodeWhere, items[k].src.key);
      }
    });
    std::vector<InnerRead> tasks;
    for (auto& p : plans) {
      for (auto& t : p) tasks.push_back(std::move(t));
    }
    const CodecChain& inner = shard_->inner();
    pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
      const InnerRead& t = tasks[static_cast<std::size_t>(i)];
      ShardSource& s = shards[t.item];
      try {
        const uint8_t* p;
        if (s.snapshot) {
          const std::size_t got = s.snapshot->read(t.entry.offset, t.entry.nbytes, tl_fetched);
          VOXCORE_EXPECT(got == t.entry.nbytes, ErrorCode::kCorrupt, kDecodeWhere,
                         "shard shorter than its index claims (expected=" +
                             std::to_string(t.entry.nbytes) + " bytes at offset " +
                             std::to_string(t.entry.offset) + ", got=" + std::to_string(got) + ")");
          p = tl_fetched.data();
        } else {
          p = s.data + t.entry.offset;
        }
        decode_region(inner, p, static_cast<std::size_t>(t.entry.nbytes), t.region, t.dst);
      } catch (const Error& e) {
        rethrow_keyed(e, kDecodeWhere, items[t.item].src.key, t.index);
      }
    });
  }

  void encode(std::vector<WriteItem>& items, Store* store, bool write_empty) const {
    Executor& pool = default_executor();
    if (shard_ == nullptr) {
      pool.parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i) {
        WriteItem& it = items[static_cast<std::size_t>(i)];
        try {
          ArrayView chunk = it.value;
          if (!it.region.covers(chain_->chunk_shape())) {
            tl_chunk.resize(static_cast<std::size_t>(chain_->chunk_nbytes()));
            chunk = ArrayView::contiguous(tl_chunk.data(), chain_->dtype(), chain_->chunk_shape());
            merge(it, store, chunk);
          }
          it.empty = !write_empty && all_equal(chunk, fill_.data());
          if (!it.empty) chain_->encode(chunk, it.out);
          if (store != nullptr) put(*store, it);
        } catch (const Error& e) {
          rethrow_keyed(e, kEncodeWhere, it.existing.key);
        }
      });
      return;
    }
    // Sharded: 1) the full content of every shard (merged with what is stored where the value
    // covers part of it); 2) every inner chunk encoded as its own task; 3) shards assembled.
    const std::size_t n = items.size();
    std::vector<ByteBuffer> merged(n);
    std::vector<ArrayView> content(n);
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      WriteItem& it = items[k];
      try {
        if (it.region.covers(chain_->chunk_shape())) {
          content[k] = it.value;
          return;
        }
        merged[k].resize(static_cast<std::size_t>(chain_->chunk_nbytes()));
        content[k] = ArrayView::contiguous(merged[k].data(), chain_->dtype(), chain_->chunk_shape());
        merge(it, store, content[k]);
      } catch (const Error& e) {
        rethrow_keyed(e, kEncodeWhere, it.existing.key);
      }
    });
    const int64_t per = shard_->num_inner_chunks();
    const Shape& inner_shape = shard_->inner_chunk_shape();
    const Shape& grid = shard_->chunks_per_shard();
    std::vector<ByteBuffer> parts(n * static_cast<std::size_t>(per));
    std::vector<uint8_t> written(parts.size(), 0);
    const CodecChain& inner = shard_->inner();
    pool.parallel_for(static_cast<int64_t>(parts.size()), [&](int64_t t) {
      const auto k = static_cast<std::size_t>(t / per);
      int64_t rest = t % per;
      Shape offset(grid.size());
      for (std::size_t d = grid.size(); d-- > 0;) {
        offset[d] = (rest % grid[d]) * inner_shape[d];
        rest /= grid[d];
      }
      const ArrayView sub = content[k].subview(offset, inner_shape);
      try {
        if (!write_empty && all_equal(sub, fill_.data())) return;
        inner.encode(sub, parts[static_cast<std::size_t>(t)]);
        written[static_cast<std::size_t>(t)] = 1;
      } catch (const Error& e) {
        rethrow_keyed(e, kEncodeWhere, items[k].existing.key, t % per);
      }
    });
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      WriteItem& it = items[k];
      try {
        assemble(&parts[k * static_cast<std::size_t>(per)], &written[k * static_cast<std::size_t>(per)],
                 it);
        if (store != nullptr) put(*store, it);
      } catch (const Error& e) {
        rethrow_keyed(e, kEncodeWhere, it.existing.key);
      }
    });
  }

 private:
  // Decodes the chunk in (p, n) and writes `region` of it into dst.
  static void decode_region(const CodecChain& chain, const uint8_t* p, std::size_t n,
                            const Region& region, const ArrayView& dst) {
    if (region.covers(chain.chunk_shape())) {
      chain.decode_into(p, n, dst);
      return;
    }
    tl_chunk.resize(static_cast<std::size_t>(chain.chunk_nbytes()));
    const ArrayView whole = ArrayView::contiguous(tl_chunk.data(), chain.dtype(), chain.chunk_shape());
    chain.decode_into(p, n, whole);
    copy(region_view(whole, region), dst);
  }

  // The bytes of a whole chunk in (p, n); false when it is missing.
  bool fetch(const Source& src, Store* store, const uint8_t*& p, std::size_t& n) const {
    if (src.from_store && store != nullptr) {
      if (!store->get(src.key, ByteRange::whole(max_stored_), tl_fetched)) return false;
      p = tl_fetched.data();
      n = tl_fetched.size();
      return true;
    }
    p = src.data;
    n = src.size;
    return src.present;
  }

  void decode_one(ReadItem& it, Store* store) const {
    const uint8_t* p = nullptr;
    std::size_t n = 0;
    if (!fetch(it.src, store, p, n)) {
      voxcore::fill(it.dst, fill_.data());
      return;
    }
    decode_region(*chain_, p, n, it.region, it.dst);
  }

  // Reads a shard's index and lists the inner chunks that `it` needs (missing ones are filled here).
  void plan_shard(ReadItem& it, std::size_t k, Store* store, ShardSource& s,
                  std::vector<InnerRead>& out) const {
    const auto index_n = static_cast<uint64_t>(shard_->index_nbytes());
    uint64_t size = 0;
    bool found = false;
    if (store != nullptr && !it.region.covers(chain_->chunk_shape())) {
      s.snapshot = store->snapshot(it.src.key);
      found = s.snapshot != nullptr;
      if (found) size = s.snapshot->size();
    } else if (store != nullptr) {
      found = store->get(it.src.key, ByteRange::whole(max_stored_), s.bytes);
      s.data = s.bytes.data();
      size = s.bytes.size();
    } else {
      found = it.src.present;
      s.data = it.src.data;
      size = it.src.size;
    }
    if (!found) {
      voxcore::fill(it.dst, fill_.data());
      return;
    }
    VOXCORE_EXPECT(size >= index_n, ErrorCode::kCorrupt, kDecodeWhere,
                   "shard smaller than its index (expected>=" + std::to_string(index_n) +
                       " bytes, got=" + std::to_string(size) + ")");
    const uint64_t index_at = shard_->index_at_end() ? size - index_n : 0;
    const uint8_t* index;
    if (s.snapshot) {
      s.snapshot->read(index_at, index_n, s.bytes);
      index = s.bytes.data();
    } else {
      index = s.data + index_at;
    }
    shard_->decode_index(index, static_cast<std::size_t>(index_n), size, s.entries);
    const uint64_t lo = shard_->index_at_end() ? 0 : index_n;
    const uint64_t hi = shard_->index_at_end() ? size - index_n : size;
    for_each_touched(it.region, shard_->inner_chunk_shape(), shard_->chunks_per_shard(),
                     [&](int64_t number, const Region& sub, const Shape& offset) {
      const ShardIndexEntry& e = s.entries[static_cast<std::size_t>(number)];
      const ArrayView dst = it.dst.subview(offset, sub.count);
      if (e.empty()) {
        voxcore::fill(dst, fill_.data());
        return;
      }
      if (e.offset < lo || e.offset > hi || e.nbytes > hi - e.offset) {
        fail(ErrorCode::kCorrupt, kDecodeWhere,
             "sharding_indexed: inner chunk overlaps the shard index (entry=" +
                 std::to_string(number) + ", offset=" + std::to_string(e.offset) + ", nbytes=" +
                 std::to_string(e.nbytes) + ", data region=[" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "))");
      }
      out.push_back({k, number, e, sub, dst});
    });
  }

  // chunk (contiguous, chunk-shaped) = what is stored (or the fill value), then the value on top.
  void merge(WriteItem& it, Store* store, const ArrayView& chunk) const {
    const uint8_t* p = nullptr;
    std::size_t n = 0;
    if (!fetch(it.existing, store, p, n)) {
      voxcore::fill(chunk, fill_.data());
    } else {
      chain_->decode_into(p, n, chunk);
    }
    copy(it.value, region_view(chunk, it.region));
  }

  void assemble(ByteBuffer* parts, const uint8_t* written, WriteItem& it) const {
    const int64_t per = shard_->num_inner_chunks();
    const auto index_n = static_cast<uint64_t>(shard_->index_nbytes());
    std::vector<ShardIndexEntry> entries(static_cast<std::size_t>(per));
    uint64_t total = 0;
    bool any = false;
    for (int64_t j = 0; j < per; ++j) {
      if (!written[j]) continue;
      any = true;
      total += parts[j].size();
    }
    it.empty = !any;
    it.out.clear();
    if (!any) return;
    const uint64_t base = shard_->index_at_end() ? 0 : index_n;
    it.out.resize(static_cast<std::size_t>(total + index_n));
    uint8_t* body = it.out.data() + base;
    uint64_t offset = base;
    for (int64_t j = 0; j < per; ++j) {
      if (!written[j]) continue;
      const ByteBuffer& part = parts[j];
      if (part.size() > 0) std::memcpy(body, part.data(), part.size());
      body += part.size();
      entries[static_cast<std::size_t>(j)] = {offset, part.size()};
      offset += part.size();
      parts[j] = ByteBuffer();  // free as we go
    }
    ByteBuffer index;
    shard_->encode_index(entries, index);
    std::memcpy(it.out.data() + (shard_->index_at_end() ? total : 0), index.data(), index.size());
  }

  static void put(Store& store, WriteItem& it) {
    if (it.empty) {
      store.erase(it.existing.key);
    } else {
      store.set(it.existing.key, it.out.data(), it.out.size());
      it.out = ByteBuffer();  // stored: free it now
    }
  }

  std::shared_ptr<const CodecChain> chain_;
  std::vector<uint8_t> fill_;
  const ShardLayout* shard_ = nullptr;
  uint64_t max_stored_ = UINT64_MAX;
};

// ---- Python argument conversion (with the GIL held) ----------------------------------------

// A region from (start, step) sequences, or the whole chunk (None); its count is `shape`.
Region region_of(const py::handle& spec, const Shape& shape, const Shape& chunk, const char* where,
                 std::size_t i) {
  Region r;
  if (spec.is_none()) {
    r = Region::whole(chunk);
  } else {
    auto pair = spec.cast<std::pair<Shape, Shape>>();
    r.start = std::move(pair.first);
    r.step = std::move(pair.second);
    r.count = shape;
  }
  bool ok = r.start.size() == chunk.size() && r.step.size() == chunk.size() &&
            r.count.size() == chunk.size();
  for (std::size_t d = 0; ok && d < chunk.size(); ++d) {
    // start + (count - 1) * step < chunk, without overflow
    ok = r.start[d] >= 0 && r.step[d] >= 1 && r.count[d] >= 0 &&
         (r.count[d] == 0 ||
          (r.start[d] < chunk[d] && r.count[d] - 1 <= (chunk[d] - 1 - r.start[d]) / r.step[d]));
  }
  if (!ok || shape != r.count) {
    fail(ErrorCode::kInvalidArgument, where,
         "item " + std::to_string(i) + ": region does not fit the chunk (chunk=" + shape_str(chunk) +
             ", start=" + shape_str(r.start) + ", step=" + shape_str(r.step) + ", array shape=" +
             shape_str(shape) + ")");
  }
  return r;
}

ArrayView array_view(const py::array& a, const BatchChain& c, bool writable, const char* where,
                     std::size_t i) {
  ArrayView v = voxcore::python::view_of(a, writable);
  if (v.dtype != c.chain().dtype()) {
    fail(ErrorCode::kInvalidArgument, where,
         "item " + std::to_string(i) + ": dtype differs from the chain (expected=" +
             dtype_name(c.chain().dtype()) + ", got=" + dtype_name(v.dtype) + ")");
  }
  return v;
}

// Buffers of the Python objects given as bytes; released (with the GIL) when this goes away.
struct Pinned {
  std::vector<py::buffer_info> infos;
  void set(Source& s, const py::handle& obj, const char* where) {
    if (obj.is_none()) return;
    infos.push_back(py::reinterpret_borrow<py::buffer>(obj).request());
    const py::buffer_info& info = infos.back();
    py::ssize_t expected = info.itemsize;
    for (py::ssize_t d = info.ndim; d-- > 0;) {
      if (info.shape[d] > 1 && info.strides[d] != expected) {
        fail(ErrorCode::kInvalidArgument, where, "encoded bytes must be a contiguous buffer");
      }
      expected *= info.shape[d];
    }
    s.data = static_cast<const uint8_t*>(info.ptr);
    s.size = static_cast<std::size_t>(info.size * info.itemsize);
    s.present = true;
  }
};

void check_lengths(std::size_t n, std::size_t m, const char* what, const char* where) {
  if (n != m) {
    fail(ErrorCode::kInvalidArgument, where,
         std::string(what) + " has the wrong length (expected=" + std::to_string(n) + ", got=" +
             std::to_string(m) + ")");
  }
}

py::object encoded_array(ByteBuffer&& buf) {
  auto* owned = new ByteBuffer(std::move(buf));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<ByteBuffer*>(p); });
  return py::array_t<uint8_t>({static_cast<py::ssize_t>(owned->size())}, {py::ssize_t{1}},
                              owned->data(), free_when_done);
}

}  // namespace

void init_codec(py::module_& m) {
  py::class_<BatchChain, std::shared_ptr<BatchChain>>(
      m, "CodecChain",
      "A codec chain prepared for one chunk shape, dtype and fill value, with batched decode and "
      "encode that release the GIL and run on the core's thread pool.")
      .def(py::init([](const std::vector<CodecSpec>& codecs, const Shape& chunk_shape,
                       const std::string& dtype, const py::bytes& fill_value) {
             const std::string f = fill_value;
             return std::make_shared<BatchChain>(codecs, chunk_shape, dtype_from_name(dtype),
                                                 std::vector<uint8_t>(f.begin(), f.end()));
           }),
           py::arg("codecs"), py::arg("chunk_shape"), py::arg("dtype"), py::arg("fill_value") = py::bytes(),
           "Validates the chain (InvalidMetadataError / UnsupportedError); fill_value: itemsize "
           "bytes in native order (empty: zeros).")
      .def_property_readonly("chunk_shape", [](const BatchChain& c) { return c.chain().chunk_shape(); })
      .def_property_readonly("dtype", [](const BatchChain& c) { return voxcore::python::numpy_dtype(c.chain().dtype()); })
      .def_property_readonly("chunk_nbytes", [](const BatchChain& c) { return c.chain().chunk_nbytes(); })
      .def_property_readonly("sharded", &BatchChain::flat_sharded,
                             "True when the chain is exactly [sharding_indexed]: inner chunks are "
                             "separate tasks and partial reads from a store fetch only what they need.")
      .def(
          "decode_batch",
          [](const BatchChain& c, const std::vector<std::string>& keys, const py::object& sources,
             const py::sequence& dests, const py::sequence& regions, std::shared_ptr<Store> store) {
            const std::size_t n = keys.size();
            check_lengths(n, py::len(dests), "dests", kDecodeWhere);
            check_lengths(n, py::len(regions), "regions", kDecodeWhere);
            if (store == nullptr) check_lengths(n, py::len(sources), "sources", kDecodeWhere);
            Pinned pinned;
            pinned.infos.reserve(n);
            std::vector<ReadItem> items(n);
            for (std::size_t i = 0; i < n; ++i) {
              ReadItem& it = items[i];
              it.src.key = keys[i];
              it.src.from_store = store != nullptr;
              if (store == nullptr) pinned.set(it.src, py::sequence(sources)[i], kDecodeWhere);
              py::array dst = py::reinterpret_borrow<py::array>(dests[i]);
              it.dst = array_view(dst, c, true, kDecodeWhere, i);
              it.region = region_of(regions[i], it.dst.shape, c.chain().chunk_shape(), kDecodeWhere, i);
            }
            py::gil_scoped_release release;
            c.decode(items, store.get());
          },
          py::arg("keys"), py::arg("sources"), py::arg("dests"), py::arg("regions"),
          py::arg("store") = nullptr,
          R"(Decodes many chunks in parallel, each straight into its destination.

keys: one name per chunk (its key in `store`, and in error messages). sources: per chunk a
bytes-like object or None (missing: the fill value); ignored when `store` is given, which is then
read by key (a shard touched in part: only its index and the inner chunks needed). dests: writable
arrays of the chain's dtype and rank. regions: per chunk None (dest is the whole chunk) or
(start, step) per chunk axis, the region's shape being dest.shape. Raises CorruptDataError
naming the key when a chunk does not decode to the chunk.)")
      .def(
          "encode_batch",
          [](const BatchChain& c, const std::vector<std::string>& keys, const py::sequence& values,
             const py::sequence& regions, const py::object& existing, std::shared_ptr<Store> store,
             bool write_empty) -> py::object {
            const std::size_t n = keys.size();
            check_lengths(n, py::len(values), "values", kEncodeWhere);
            check_lengths(n, py::len(regions), "regions", kEncodeWhere);
            const bool have_existing = !existing.is_none();
            if (have_existing) check_lengths(n, py::len(existing), "existing", kEncodeWhere);
            Pinned pinned;
            pinned.infos.reserve(n);
            std::vector<WriteItem> items(n);
            for (std::size_t i = 0; i < n; ++i) {
              WriteItem& it = items[i];
              it.existing.key = keys[i];
              if (have_existing) {
                py::object e = py::sequence(existing)[i];
                if (e.ptr() == Py_True) {
                  it.existing.from_store = store != nullptr;
                } else {
                  pinned.set(it.existing, e, kEncodeWhere);
                }
              }
              py::array value = py::reinterpret_borrow<py::array>(values[i]);
              it.value = array_view(value, c, false, kEncodeWhere, i);
              it.region = region_of(regions[i], it.value.shape, c.chain().chunk_shape(), kEncodeWhere, i);
            }
            {
              py::gil_scoped_release release;
              c.encode(items, store.get(), write_empty);
            }
            py::list out;
            for (auto& it : items) {
              if (store != nullptr) {
                out.append(py::bool_(!it.empty));
              } else if (it.empty) {
                out.append(py::none());
              } else {
                out.append(encoded_array(std::move(it.out)));
              }
            }
            return out;
          },
          py::arg("keys"), py::arg("values"), py::arg("regions"), py::arg("existing") = py::none(),
          py::arg("store") = nullptr, py::arg("write_empty") = true,
          R"(Encodes many chunks in parallel.

values: per chunk an array of the chain's dtype and rank (any strides, broadcast too) holding the
region's new contents. regions: per chunk None (the value is the whole chunk) or (start, step) per
chunk axis; a region that does not cover its chunk is merged over `existing`: per chunk the
stored bytes (bytes-like), None (the fill value) or True (the key's value in `store`, if any).
write_empty=False: a chunk (or inner chunk of a shard) equal to the fill value is not written.
Without `store`, returns per chunk a uint8 array of the encoded bytes or None (nothing to store);
with `store`, writes or erases every key there and returns per chunk whether it was written.)");
}
