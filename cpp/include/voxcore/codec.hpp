#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/dtype.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore {

enum class CodecId : uint8_t {
  kTranspose,  // array -> array
  kBytes,      // array -> bytes
  kSharding,   // array -> bytes (sharding_indexed)
  kBlosc,      // bytes -> bytes: Blosc1 frame (as numcodecs/zarr write)
  kZstd,       // bytes -> bytes: zstd frame(s)
  kLz4,        // bytes -> bytes: numcodecs LZ4: 4-byte LE uncompressed size + LZ4 block
  kGzip,       // bytes -> bytes: gzip member(s)
  kZlib,       // bytes -> bytes: zlib stream
  kCrc32c,     // bytes -> bytes: appends a 4-byte LE CRC32C
  kTiff,       // array -> bytes, decode only: one TIFF tile or strip (TiffCodecParams)
};

// How the bytes of one TIFF tile or strip are stored (the tags of its image, read by the Python
// layer). The chunk is the tile: shape (..., rows, cols, samples) when samples > 1 (chunky), else
// (..., rows, cols), with every leading axis 1. The byte order is CodecSpec::endian.
struct TiffCodecParams {
  int compression = 1;  // Compression tag: 1 none, 5 LZW, 7 JPEG, 8 or 32946 deflate, 32773
                        // PackBits, 50000 zstd
  int predictor = 1;    // 1 none, 2 horizontal differencing, 3 floating point
  int photometric = 1;  // JPEG: 6 YCbCr (converted to RGB), 2 RGB, 1 or 0 gray
  int samples = 1;      // samples per pixel in one tile (1 for a plane of a planar image)
  int64_t last_rows = 0;  // strips: rows of the last, shorter strip (0: every chunk is whole)
  std::vector<uint8_t> jpeg_tables;  // the JPEGTables tag (an abbreviated tables-only stream)
};

// A codec and its parameters, as read from metadata by the Python layer. Plain data.
struct CodecSpec {
  CodecId id = CodecId::kBytes;
  Endian endian = Endian::kLittle;  // kBytes
  std::vector<int> order;           // kTranspose: stored axis i is chunk axis order[i]
  int level = 0;                    // zstd/gzip/zlib level; blosc clevel; lz4 acceleration
  bool checksum = false;            // kZstd: frame checksum on encode
  std::string cname = "lz4";        // kBlosc inner compressor
  int shuffle = 1;                  // kBlosc: 0 none, 1 byte, 2 bit
  int typesize = 0;                 // kBlosc: 0 means the dtype's itemsize
  int blocksize = 0;                // kBlosc: 0 means automatic
  // kSharding
  Shape inner_chunk_shape;
  std::vector<CodecSpec> inner_codecs;
  std::vector<CodecSpec> index_codecs;
  bool index_at_end = true;
  TiffCodecParams tiff;  // kTiff
};

// Upper bound on the decoded bytes of one chunk (and of a shard's inner chunk).
inline constexpr int64_t kMaxChunkBytes = int64_t{1} << 34;  // 16 GiB
// Upper bound on inner chunks per shard.
inline constexpr int64_t kMaxShardEntries = int64_t{1} << 24;

class ShardLayout;

// A validated codec chain for chunks of one shape and dtype: array->array codecs, then exactly one
// array->bytes codec, then bytes->bytes codecs. Immutable after prepare(); every method is
// thread-safe (per-thread scratch is internal).
class VOXCORE_API CodecChain {
 public:
  // Throws kInvalidMetadata for a chain in the wrong order, bad parameters (transpose order not a
  // permutation, blosc typesize, unknown blosc cname, ...), or kUnsupported (nested sharding).
  // fill_value: itemsize bytes in native order (empty = zeros); used to omit empty inner chunks.
  static std::shared_ptr<const CodecChain> prepare(const std::vector<CodecSpec>& specs,
                                                   const Shape& chunk_shape, DType dtype,
                                                   const std::vector<uint8_t>& fill_value = {});
  virtual ~CodecChain();

  const Shape& chunk_shape() const noexcept;
  DType dtype() const noexcept;
  int64_t chunk_nbytes() const noexcept;
  // The shard layout when the array->bytes codec is sharding_indexed, else nullptr.
  const ShardLayout* sharding() const noexcept;
  // True when decoded bytes are the chunk in C order and native byte order (no transpose, no
  // swap), so decode_into a C-contiguous destination writes straight into it.
  bool is_identity_layout() const noexcept;

  // Decodes one encoded chunk into dst (shape == chunk_shape, any strides, dtype == dtype()).
  // Writes nothing outside dst. Throws kCorrupt (naming the codec, expected vs got) unless the
  // bytes decode to exactly chunk_nbytes(); a lying size header is never used as an allocation size.
  void decode_into(const uint8_t* src, std::size_t size, const ArrayView& dst) const;
  // Decodes only [start, start + count) of one encoded chunk into dst (shape == count) when the
  // codec can do that for less than a whole decode (a JPEG tile of a slide), with the same values
  // a whole decode gives there. Returns false, writing nothing, when it cannot: decode the whole
  // chunk instead. Throws as decode_into.
  bool decode_part(const uint8_t* src, std::size_t size, const Shape& start, const Shape& count,
                   const ArrayView& dst) const;
  // Encodes a chunk-shaped view (any strides) into out (resized to the encoded size).
  void encode(const ArrayView& src, ByteBuffer& out) const;

  struct Impl;

 private:
  explicit CodecChain(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where an inner chunk lives in a shard: (offset, nbytes); both 2^64-1 when the chunk is empty.
struct ShardIndexEntry {
  uint64_t offset = ~uint64_t{0};
  uint64_t nbytes = ~uint64_t{0};
  bool empty() const noexcept { return offset == ~uint64_t{0} && nbytes == ~uint64_t{0}; }
};

// The sharding_indexed layout of one shard shape. Owned by its CodecChain.
class VOXCORE_API ShardLayout {
 public:
  virtual ~ShardLayout() = default;
  virtual const Shape& shard_shape() const noexcept = 0;
  virtual const Shape& inner_chunk_shape() const noexcept = 0;
  virtual const Shape& chunks_per_shard() const noexcept = 0;  // shard_shape / inner_chunk_shape
  virtual int64_t num_inner_chunks() const noexcept = 0;
  virtual const CodecChain& inner() const noexcept = 0;
  virtual bool index_at_end() const noexcept = 0;
  // Encoded index size in bytes (index codecs must be fixed-size: bytes [+ crc32c]).
  virtual int64_t index_nbytes() const noexcept = 0;
  // Decodes and validates an encoded index (size must be index_nbytes(); checksum; every non-empty
  // entry must lie inside [0, shard_size) when shard_size != UINT64_MAX, without overflow).
  // Entries are in C order of inner chunk index. Throws kCorrupt.
  virtual void decode_index(const uint8_t* src, std::size_t size, uint64_t shard_size,
                            std::vector<ShardIndexEntry>& out) const = 0;
  virtual void encode_index(const std::vector<ShardIndexEntry>& entries, ByteBuffer& out) const = 0;
};

// Inflates a gzip file's bytes (one or more members, as pigz and parallel writers make; zero
// padding after a member is skipped) into dst, returning the decoded size. Throws kCorrupt
// on invalid data or when the output would exceed cap (the caller's bound, from a header), unless
// discard_excess: then decoded bytes past cap are dropped (every member is still fully checked),
// for files whose stream holds more than the reader needs (a NIfTI .gz with trailing bytes).
VOXCORE_API std::size_t gunzip(const uint8_t* src, std::size_t size, uint8_t* dst, std::size_t cap,
                               bool discard_excess = false);

// Compresses src as a gzip stream of independent members, one per `block` bytes, in parallel on
// executor (nullptr: default_executor()); the concatenation is a valid gzip file that gunzip,
// zlib, Python's gzip and nibabel read. level 0-3: ISA-L igzip (fast); 4-12: libdeflate.
VOXCORE_API void gzip_members(const uint8_t* src, std::size_t size, int level, std::size_t block, ByteBuffer& out,
                              Executor* executor = nullptr);
// The same stream handed to sink(bytes, n) member by member, in order, on the calling thread while
// later members are still being compressed on executor (e.g. sink writes a file: the write overlaps
// the compression and the whole stream is never held at once). If sink throws, the compression
// stops and the exception propagates.
VOXCORE_API void gzip_members(const uint8_t* src, std::size_t size, int level, std::size_t block,
                              const std::function<void(const uint8_t*, std::size_t)>& sink,
                              Executor* executor = nullptr);

// CRC32C (Castagnoli) of data, continuing from crc (0 to start).
VOXCORE_API uint32_t crc32c(const void* data, std::size_t size, uint32_t crc = 0) noexcept;

}  // namespace voxcore
