// A renderer-style consumer: bricks of a sharded Zarr v3 array fetched on demand through a
// bounded brick cache, the way a volume renderer asks for the bricks a ray touches.
//
//   brick_reader            writes a small test array to a temp dir, then reads bricks back
#include <voxcore/voxcore.hpp>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <list>
#include <map>
#include <vector>

namespace {

// The renderer's brick cache: bricks keyed by index, LRU-bounded, filled on demand by a
// fetch from the array (which itself decodes through the core's decoded-chunk cache).
class BrickCache {
 public:
  BrickCache(const voxcore::ChunkedArray& array, int64_t brick, std::size_t max_bricks)
      : array_(array), brick_(brick), max_bricks_(max_bricks) {}

  const std::vector<uint16_t>& get(int64_t bz, int64_t by, int64_t bx) {
    const Key key{bz, by, bx};
    auto it = bricks_.find(key);
    if (it != bricks_.end()) {
      order_.splice(order_.begin(), order_, it->second.second);
      return it->second.first;
    }
    std::vector<uint16_t> data(static_cast<std::size_t>(brick_ * brick_ * brick_));
    voxcore::Box box{{bz * brick_, by * brick_, bx * brick_}, {brick_, brick_, brick_}};
    array_.read_into(box, voxcore::ArrayView::contiguous(data.data(), voxcore::DType::kUInt16,
                                                         box.shape));
    ++fetches_;
    order_.push_front(key);
    auto& slot = bricks_[key];
    slot = {std::move(data), order_.begin()};
    if (bricks_.size() > max_bricks_) {
      bricks_.erase(order_.back());
      order_.pop_back();
    }
    return slot.first;
  }
  int fetches() const { return fetches_; }

 private:
  using Key = std::array<int64_t, 3>;
  const voxcore::ChunkedArray& array_;
  int64_t brick_;
  std::size_t max_bricks_;
  std::list<Key> order_;
  std::map<Key, std::pair<std::vector<uint16_t>, std::list<Key>::iterator>> bricks_;
  int fetches_ = 0;
};

uint16_t expected(int64_t z, int64_t y, int64_t x) { return static_cast<uint16_t>(z * 7 + y * 3 + x); }

}  // namespace

int main() {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("voxcore-brick-" + std::to_string(::getpid()));
  const int64_t n = 96;

  voxcore::CodecSpec bytes;
  bytes.id = voxcore::CodecId::kBytes;
  voxcore::CodecSpec zstd;
  zstd.id = voxcore::CodecId::kZstd;
  zstd.level = 1;
  voxcore::CodecSpec index_bytes = bytes;
  voxcore::CodecSpec crc;
  crc.id = voxcore::CodecId::kCrc32c;
  voxcore::CodecSpec shard;
  shard.id = voxcore::CodecId::kSharding;
  shard.inner_chunk_shape = {16, 16, 16};
  shard.inner_codecs = {bytes, zstd};
  shard.index_codecs = {index_bytes, crc};

  voxcore::ArraySpec spec;
  spec.shape = {n, n, n};
  spec.chunk_shape = {32, 32, 32};
  spec.dtype = voxcore::DType::kUInt16;
  spec.codecs = {shard};

  try {
    auto store = std::make_shared<voxcore::FileStore>(root.string(), /*durable=*/false);
    auto cache = std::make_shared<voxcore::ChunkCache>(std::size_t{8} << 20);
    voxcore::ChunkedArray array(spec, store, cache);

    std::vector<uint16_t> volume(static_cast<std::size_t>(n * n * n));
    for (int64_t z = 0; z < n; ++z)
      for (int64_t y = 0; y < n; ++y)
        for (int64_t x = 0; x < n; ++x) volume[(z * n + y) * n + x] = expected(z, y, x);
    array.write({{0, 0, 0}, {n, n, n}},
                voxcore::ArrayView::contiguous(volume.data(), voxcore::DType::kUInt16, {n, n, n}));

    BrickCache bricks(array, 24, 16);
    int bad = 0;
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t b = 0; b < 4; ++b) {
        const auto& brick = bricks.get(b, (b + 1) % 4, 3 - b);
        for (int64_t i = 0; i < 24 * 24 * 24; i += 97) {
          const int64_t z = b * 24 + i / (24 * 24), y = ((b + 1) % 4) * 24 + (i / 24) % 24,
                        x = (3 - b) * 24 + i % 24;
          bad += brick[static_cast<std::size_t>(i)] != expected(z, y, x);
        }
      }
    }
    std::printf("brick_reader: %d bricks fetched for 8 requests, %zu KiB of decoded chunks cached, %s\n",
                bricks.fetches(), cache->size_bytes() >> 10, bad == 0 ? "values OK" : "VALUES WRONG");
    fs::remove_all(root);
    return bad == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const voxcore::Error& e) {
    std::fprintf(stderr, "brick_reader: %s\n", e.what());
    fs::remove_all(root);
    return EXIT_FAILURE;
  }
}
