#include "voxcore/batch.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/shard_io.hpp"
#include "detail/write_behind.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {

using detail::shape_str;
using detail::StoredBytes;

ChunkRegion ChunkRegion::whole(const Shape& chunk_shape) {
  return {Shape(chunk_shape.size(), 0), Shape(chunk_shape.size(), 1), chunk_shape};
}

ChunkRegion ChunkRegion::box(const Shape& start, const Shape& shape) {
  return {start, Shape(start.size(), 1), shape};
}

bool ChunkRegion::fits(const Shape& chunk) const noexcept {
  const std::size_t rank = chunk.size();
  if (start.size() != rank || step.size() != rank || count.size() != rank) return false;
  for (std::size_t d = 0; d < rank; ++d) {
    if (start[d] < 0 || step[d] < 1 || count[d] < 0) return false;
    // start + (count - 1) * step < chunk, without overflow
    if (count[d] > 0 && (start[d] >= chunk[d] || count[d] - 1 > (chunk[d] - 1 - start[d]) / step[d])) {
      return false;
    }
  }
  return true;
}

bool ChunkRegion::covers(const Shape& chunk) const noexcept {
  if (start.size() != chunk.size() || count.size() != chunk.size()) return false;
  for (std::size_t d = 0; d < chunk.size(); ++d) {
    if (start[d] != 0 || count[d] != chunk[d] || (count[d] > 1 && step[d] != 1)) return false;
  }
  return true;
}

namespace {

constexpr const char* kDecodeWhere = "ChunkBatch::decode_into";
constexpr const char* kEncodeWhere = "ChunkBatch::encode";

// The parts of one item's shard that a read needs: its bytes in memory, or one version of it in
// the store, and its index.
struct ShardSource {
  ByteBuffer bytes;
  std::unique_ptr<Store::Snapshot> snapshot;
  const uint8_t* data = nullptr;
  std::vector<ShardIndexEntry> entries;
};

// One inner chunk of a shard to decode into part of an item's destination.
struct InnerRead {
  std::size_t item = 0;
  int64_t number = 0;
  ShardIndexEntry entry;
  ChunkRegion region;
  ArrayView dst;
};

}  // namespace

struct ChunkBatch::Impl {
  std::shared_ptr<const CodecChain> chain;
  std::vector<uint8_t> fill;
  const ShardLayout* shard = nullptr;  // inner chunks one by one
  uint64_t max_stored = 0;
  Executor* executor = nullptr;

  const void* fill_ptr() const { return fill.data(); }

  void check_item(const ArrayView& view, const ChunkRegion& region, const ChunkBytes& bytes,
                  std::size_t i, const Store* store, const char* where) const {
    const Shape& chunk = chain->chunk_shape();
    if (view.dtype != chain->dtype()) {
      fail(ErrorCode::kInvalidArgument, where,
           "item " + std::to_string(i) + ": dtype differs from the chain (expected=" +
               dtype_name(chain->dtype()) + ", got=" + dtype_name(view.dtype) + ")");
    }
    if (!region.fits(chunk) || view.shape != region.count || view.byte_strides.size() != chunk.size()) {
      fail(ErrorCode::kInvalidArgument, where,
           "item " + std::to_string(i) + ": region does not fit the chunk (chunk=" + shape_str(chunk) +
               ", start=" + shape_str(region.start) + ", step=" + shape_str(region.step) +
               ", array shape=" + shape_str(view.shape) + ")");
    }
    VOXCORE_EXPECT(bytes.from != ChunkBytes::From::kStore || store != nullptr,
                   ErrorCode::kInvalidArgument, where,
                   "item " + std::to_string(i) + ": bytes from the store, but no store was given");
  }

  // The whole stored chunk `key` through scratch (absent: missing).
  StoredBytes fetch(const ChunkBytes& bytes, const std::string& key, Store* store,
                    ByteBuffer& scratch) const {
    switch (bytes.from) {
      case ChunkBytes::From::kNone: return {};
      case ChunkBytes::From::kMemory: return {bytes.data, bytes.size, true};
      case ChunkBytes::From::kStore: break;
    }
    if (!store->get(key, ByteRange::whole(max_stored), scratch)) return {};
    return {scratch.data(), scratch.size(), true};
  }

  // A batched store is only called from this thread: the values of the kStore items among
  // `which` are read here, at once, and the items' sources become those bytes (held in values).
  template <class Item>
  std::vector<ChunkBytes> sources(const std::vector<Item>& items, ChunkBytes Item::*field,
                                  const std::vector<uint8_t>& which, Store* store,
                                  std::vector<ByteBuffer>& values) const {
    std::vector<ChunkBytes> out(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) out[i] = items[i].*field;
    if (store == nullptr || !store->batched()) return out;
    std::vector<ByteRequest> requests;
    std::vector<std::size_t> slot;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (out[i].from != ChunkBytes::From::kStore || !which[i]) continue;
      requests.push_back({items[i].key, ByteRange::whole(max_stored)});
      slot.push_back(i);
    }
    std::vector<uint8_t> found;
    store->get_many(requests, values, found);
    for (std::size_t j = 0; j < slot.size(); ++j) {
      out[slot[j]] = found[j] ? ChunkBytes::memory(values[j].data(), values[j].size()) : ChunkBytes{};
    }
    return out;
  }

  // ---- decode ----------------------------------------------------------------------------------

  void decode_into(const std::vector<DecodeItem>& items, Store* store) const {
    for (std::size_t i = 0; i < items.size(); ++i) {
      check_item(items[i].dst, items[i].region, items[i].source, i, store, kDecodeWhere);
    }
    std::vector<ByteBuffer> held;
    const auto src = sources(items, &DecodeItem::source, std::vector<uint8_t>(items.size(), 1),
                             store, held);
    if (store != nullptr && store->batched()) store = nullptr;  // everything is in memory now
    if (shard == nullptr) {
      executor->parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i) {
        const DecodeItem& it = items[static_cast<std::size_t>(i)];
        try {
          const StoredBytes b = fetch(src[i], it.key, store, detail::fetch_scratch());
          if (!b.present) {
            voxcore::fill(it.dst, fill_ptr());
            return;
          }
          detail::decode_region(*chain, b.data, b.size, it.region, it.dst);
        } catch (const Error& e) {
          detail::rethrow_keyed(e, kDecodeWhere, it.key);
        }
      });
      return;
    }
    std::vector<ShardSource> shards(items.size());
    std::vector<std::vector<InnerRead>> plans(items.size());
    executor->parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      try {
        plan_shard(items[k], src[k], k, store, shards[k], plans[k]);
      } catch (const Error& e) {
        detail::rethrow_keyed(e, kDecodeWhere, items[k].key);
      }
    });
    std::vector<InnerRead> tasks;
    for (auto& p : plans) {
      for (auto& t : p) tasks.push_back(std::move(t));
    }
    const CodecChain& inner = shard->inner();
    executor->parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
      const InnerRead& t = tasks[static_cast<std::size_t>(i)];
      ShardSource& s = shards[t.item];
      try {
        const uint8_t* p = s.snapshot ? nullptr : s.data + t.entry.offset;
        if (s.snapshot) {
          ByteBuffer& bytes = detail::fetch_scratch();
          const std::size_t got = s.snapshot->read(t.entry.offset, t.entry.nbytes, bytes);
          detail::check_inner_size(t.entry, got, kDecodeWhere);
          p = bytes.data();
        }
        detail::decode_region(inner, p, static_cast<std::size_t>(t.entry.nbytes), t.region, t.dst);
      } catch (const Error& e) {
        detail::rethrow_keyed(e, kDecodeWhere, items[t.item].key, t.number);
      }
    });
  }

  // Reads a shard's index and lists the inner chunks that `it` needs (missing ones are filled
  // here). A shard read in part from the store is read by range from one version of it.
  void plan_shard(const DecodeItem& it, const ChunkBytes& src, std::size_t k, Store* store,
                  ShardSource& s, std::vector<InnerRead>& out) const {
    bool found = true;
    if (src.from == ChunkBytes::From::kStore && !it.region.covers(chain->chunk_shape())) {
      s.snapshot = store->snapshot(it.key);
      found = s.snapshot != nullptr;
      if (found) detail::read_shard_index(*shard, *s.snapshot, s.entries, kDecodeWhere);
    } else {
      const StoredBytes b = fetch(src, it.key, store, s.bytes);
      found = b.present;
      s.data = b.data;
      if (found) detail::shard_index_of(*shard, b.data, b.size, s.entries, kDecodeWhere);
    }
    if (!found) {
      voxcore::fill(it.dst, fill_ptr());
      return;
    }
    for (auto& part : detail::inner_parts(*shard, it.region)) {
      const ShardIndexEntry& e = s.entries[static_cast<std::size_t>(part.number)];
      const ArrayView dst = it.dst.subview(part.offset, part.region.count);
      if (e.empty()) {
        voxcore::fill(dst, fill_ptr());
        continue;
      }
      out.push_back({k, part.number, e, std::move(part.region), dst});
    }
  }

  // ---- encode ----------------------------------------------------------------------------------

  void encode(std::vector<EncodeItem>& items, bool write_empty, Store* store) const {
    const std::size_t n = items.size();
    std::vector<uint8_t> merged(n, 0);  // needs its existing bytes
    for (std::size_t i = 0; i < n; ++i) {
      check_item(items[i].value, items[i].region, items[i].existing, i, store, kEncodeWhere);
      merged[i] = items[i].region.covers(chain->chunk_shape()) ? 0 : 1;
    }
    const bool batched = store != nullptr && store->batched();
    std::vector<ByteBuffer> held;
    const auto old = sources(items, &EncodeItem::existing, merged, store, held);
    Store* direct = batched ? nullptr : store;  // written by the workers
    detail::WriteBehind out(kEncodeWhere);
    encode_chunks(items, old, merged, write_empty, direct, out);
    out.finish();
    if (batched) put_batched(*store, items);
  }

  void encode_chunks(std::vector<EncodeItem>& items, const std::vector<ChunkBytes>& old,
                     const std::vector<uint8_t>& merged, bool write_empty, Store* direct,
                     detail::WriteBehind& out) const {
    const std::size_t n = items.size();
    if (shard == nullptr) {
      executor->parallel_for(static_cast<int64_t>(n), [&](int64_t i) {
        EncodeItem& it = items[static_cast<std::size_t>(i)];
        try {
          StoredBytes existing;
          if (merged[i]) existing = fetch(old[i], it.key, direct, detail::fetch_scratch());
          it.empty = !detail::merge_encode(*chain, it.value, it.region, existing, fill_ptr(),
                                           write_empty, it.encoded, kEncodeWhere);
          if (direct != nullptr) put(*direct, it, out);
        } catch (const Error& e) {
          detail::rethrow_keyed(e, kEncodeWhere, it.key);
        }
      });
    } else {
      encode_sharded(items, old, merged, write_empty, direct, out);
    }
  }

  // 1) every shard's stored bytes where the write covers it in part, and its plan; 2) every
  // inner chunk of every shard as its own task; 3) the shards laid out (and stored).
  void encode_sharded(std::vector<EncodeItem>& items, const std::vector<ChunkBytes>& old,
                      const std::vector<uint8_t>& merged, bool write_empty, Store* direct,
                      detail::WriteBehind& out) const {
    const std::size_t n = items.size();
    std::vector<ByteBuffer> stored(n);
    std::vector<std::unique_ptr<detail::ShardWrite>> writes(n);
    executor->parallel_for(static_cast<int64_t>(n), [&](int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      const EncodeItem& it = items[k];
      try {
        const StoredBytes existing = merged[k] ? fetch(old[k], it.key, direct, stored[k]) : StoredBytes{};
        writes[k] = std::make_unique<detail::ShardWrite>(*shard, it.region, it.value, existing,
                                                         kEncodeWhere);
      } catch (const Error& e) {
        detail::rethrow_keyed(e, kEncodeWhere, it.key);
      }
    });
    const int64_t per = shard->num_inner_chunks();
    executor->parallel_for(static_cast<int64_t>(n) * per, [&](int64_t t) {
      const auto k = static_cast<std::size_t>(t / per);
      try {
        writes[k]->encode_inner(t % per, fill_ptr(), write_empty, kEncodeWhere);
      } catch (const Error& e) {
        detail::rethrow_keyed(e, kEncodeWhere, items[k].key, t % per);
      }
    });
    executor->parallel_for(static_cast<int64_t>(n), [&](int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      EncodeItem& it = items[k];
      try {
        it.empty = !writes[k]->assemble(it.encoded);
        writes[k].reset();  // free the inner chunks' bytes as we go
        stored[k] = ByteBuffer();
        if (direct != nullptr) put(*direct, it, out);
      } catch (const Error& e) {
        detail::rethrow_keyed(e, kEncodeWhere, it.key);
      }
    });
  }

  static void put(Store& store, EncodeItem& it, detail::WriteBehind& out) {
    if (it.empty) {
      store.erase(it.key);
    } else {
      out.put(&store, it.key, it.encoded);
      it.encoded = ByteBuffer();  // stored or taken: free it now
    }
  }

  static void put_batched(Store& store, std::vector<EncodeItem>& items) {
    std::vector<std::string> keys;
    std::vector<ByteBuffer> values;
    for (EncodeItem& it : items) {
      if (it.empty) {
        store.erase(it.key);
      } else {
        keys.push_back(it.key);
        values.push_back(std::move(it.encoded));
      }
    }
    store.set_many(keys, values);
  }
};

ChunkBatch::ChunkBatch(const std::vector<CodecSpec>& codecs, const Shape& chunk_shape, DType dtype,
                       std::vector<uint8_t> fill_value, Executor* executor)
    : impl_(std::make_unique<Impl>()) {
  impl_->chain = CodecChain::prepare(codecs, chunk_shape, dtype, fill_value);
  impl_->fill = std::move(fill_value);
  if (impl_->fill.empty()) impl_->fill.assign(itemsize(dtype), 0);
  impl_->shard = detail::per_inner_layout(*impl_->chain, codecs.size());
  impl_->max_stored = detail::max_stored_bytes(*impl_->chain);
  impl_->executor = executor ? executor : &default_executor();
}

ChunkBatch::~ChunkBatch() = default;

const CodecChain& ChunkBatch::chain() const noexcept { return *impl_->chain; }
const std::vector<uint8_t>& ChunkBatch::fill_value() const noexcept { return impl_->fill; }
bool ChunkBatch::sharded() const noexcept { return impl_->shard != nullptr; }

void ChunkBatch::decode_into(const std::vector<DecodeItem>& items, Store* store) const {
  impl_->decode_into(items, store);
}

void ChunkBatch::encode(std::vector<EncodeItem>& items, bool write_empty, Store* store) const {
  impl_->encode(items, write_empty, store);
}

}  // namespace voxcore
