#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/grid.hpp"
#include "voxcore/store.hpp"

namespace voxcore {

// The tiles (or strips) of one TIFF image, read from its file: chunk (i, j, ...) of a ChunkedArray
// with v2 keys ("i.j...") is tile number ravel(i, j, ...) over `grid`, whose bytes are
// bytecounts[n] bytes at offsets[n] (the TileOffsets/TileByteCounts tags, or the strip ones).
// With a CodecId::kTiff chain this reads a slide level through the same engine as a Zarr array:
// tiles fetched by pread and decoded in parallel straight into the destination, edge tiles
// cropped, decoded tiles cached. Read only; thread-safe. A tile whose offset and byte count are
// both 0 is missing (GDAL's sparse files: it reads as the fill value); one with no bytes at
// another offset, or whose bytes lie beyond the end of the file, raises kCorrupt naming the file
// and the tile when it is read.
class VOXCORE_API TiffStore : public Store {
 public:
  // Throws kInvalidMetadata unless both lists hold one entry per tile of grid, kIo when the
  // file cannot be opened.
  TiffStore(std::string path, Shape grid, std::vector<uint64_t> offsets,
            std::vector<uint64_t> bytecounts);
  ~TiffStore() override;
  TiffStore(const TiffStore&) = delete;
  TiffStore& operator=(const TiffStore&) = delete;

  const std::string& path() const noexcept { return path_; }
  uint64_t file_size() const noexcept { return file_size_; }

  bool get(const std::string& key, const ByteRange& range, ByteBuffer& out,
           uint64_t* total_size = nullptr) override;
  void set(const std::string& key, const uint8_t* data, std::size_t size) override;
  void erase(const std::string& key) override;
  std::string identity() const override { return "tiff:" + path_; }

 private:
  int64_t tile_number(const std::string& key) const;

  std::string path_;
  Shape grid_;
  std::vector<uint64_t> offsets_, bytecounts_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
};

}  // namespace voxcore
