// Bindings for voxcore::ChunkBatch: voxcore.zarr's codec pipeline hands a whole request (every
// chunk of one zarr-python read or write) to one call, which releases the GIL while the core
// decodes or encodes the chunks, or the inner chunks of shards, on its thread pool.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "buffers.hpp"
#include "voxcore/batch.hpp"
#include "voxcore/error.hpp"

namespace py = pybind11;
using namespace voxcore;

namespace {

constexpr const char* kDecodeWhere = "ChunkBatch.decode_batch";
constexpr const char* kEncodeWhere = "ChunkBatch.encode_batch";

void check_length(std::size_t n, const py::handle& seq, const char* what, const char* where) {
  const std::size_t m = py::len(seq);
  if (n != m) {
    fail(ErrorCode::kInvalidArgument, where,
         std::string(what) + " has the wrong length (expected=" + std::to_string(n) + ", got=" +
             std::to_string(m) + ")");
  }
}

// None: the whole chunk; else (start, step) per chunk axis, the region's shape being `shape`.
ChunkRegion region_of(const py::handle& region, const Shape& shape, const ChunkBatch& b) {
  if (region.is_none()) return ChunkRegion::whole(b.chain().chunk_shape());
  auto pair = region.cast<std::pair<Shape, Shape>>();
  return {std::move(pair.first), std::move(pair.second), shape};
}

// The buffers of the bytes-like objects handed in; released (with the GIL) when this goes away.
struct Pinned {
  std::vector<py::buffer_info> infos;
  ChunkBytes bytes_of(const py::handle& obj, const char* where) {
    if (obj.is_none()) return {};
    infos.push_back(py::reinterpret_borrow<py::buffer>(obj).request());
    const py::buffer_info& info = infos.back();
    py::ssize_t expected = info.itemsize;
    for (py::ssize_t d = info.ndim; d-- > 0;) {
      if (info.shape[d] > 1 && info.strides[d] != expected) {
        fail(ErrorCode::kInvalidArgument, where, "encoded bytes must be a contiguous buffer");
      }
      expected *= info.shape[d];
    }
    return ChunkBytes::memory(static_cast<const uint8_t*>(info.ptr),
                              static_cast<std::size_t>(info.size * info.itemsize));
  }
};

// A uint8 array owning the bytes (no copy).
py::object encoded_array(ByteBuffer&& buf) {
  auto* owned = new ByteBuffer(std::move(buf));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<ByteBuffer*>(p); });
  return py::array_t<uint8_t>({static_cast<py::ssize_t>(owned->size())}, {py::ssize_t{1}},
                              owned->data(), free_when_done);
}

void decode_batch(const ChunkBatch& b, const std::vector<std::string>& keys, const py::object& sources,
                  const py::sequence& dests, const py::sequence& regions, std::shared_ptr<Store> store) {
  const std::size_t n = keys.size();
  check_length(n, dests, "dests", kDecodeWhere);
  check_length(n, regions, "regions", kDecodeWhere);
  if (store == nullptr) check_length(n, sources, "sources", kDecodeWhere);
  Pinned pinned;
  pinned.infos.reserve(n);
  std::vector<DecodeItem> items(n);
  for (std::size_t i = 0; i < n; ++i) {
    DecodeItem& it = items[i];
    it.key = keys[i];
    it.source = store ? ChunkBytes::store() : pinned.bytes_of(py::sequence(sources)[i], kDecodeWhere);
    it.dst = voxcore::python::view_of(py::reinterpret_borrow<py::array>(dests[i]), true);
    it.region = region_of(regions[i], it.dst.shape, b);
  }
  py::gil_scoped_release release;
  b.decode_into(items, store.get());
}

py::list encode_batch(const ChunkBatch& b, const std::vector<std::string>& keys,
                      const py::sequence& values, const py::sequence& regions,
                      const py::object& existing, std::shared_ptr<Store> store, bool write_empty) {
  const std::size_t n = keys.size();
  check_length(n, values, "values", kEncodeWhere);
  check_length(n, regions, "regions", kEncodeWhere);
  if (!existing.is_none()) check_length(n, existing, "existing", kEncodeWhere);
  Pinned pinned;
  pinned.infos.reserve(n);
  std::vector<EncodeItem> items(n);
  for (std::size_t i = 0; i < n; ++i) {
    EncodeItem& it = items[i];
    it.key = keys[i];
    if (!existing.is_none()) {
      py::object e = py::sequence(existing)[i];
      if (e.ptr() == Py_True) {  // the key's value in the store, if any
        it.existing = store ? ChunkBytes::store() : ChunkBytes{};
      } else {
        it.existing = pinned.bytes_of(e, kEncodeWhere);
      }
    }
    it.value = voxcore::python::view_of(py::reinterpret_borrow<py::array>(values[i]), false);
    it.region = region_of(regions[i], it.value.shape, b);
  }
  {
    py::gil_scoped_release release;
    b.encode(items, write_empty, store.get());
  }
  py::list out;
  for (auto& it : items) {
    if (store != nullptr) {
      out.append(py::bool_(!it.empty));
    } else if (it.empty) {
      out.append(py::none());
    } else {
      out.append(encoded_array(std::move(it.encoded)));
    }
  }
  return out;
}

}  // namespace

void init_codec(py::module_& m) {
  py::class_<ChunkBatch, std::shared_ptr<ChunkBatch>>(
      m, "ChunkBatch",
      "A codec chain prepared for one chunk shape, dtype and fill value, with batched decode and "
      "encode that release the GIL and run on the core's thread pool.")
      .def(py::init([](const std::vector<CodecSpec>& codecs, const Shape& chunk_shape,
                       const std::string& dtype, const py::bytes& fill_value) {
             const std::string f = fill_value;
             return std::make_shared<ChunkBatch>(codecs, chunk_shape, dtype_from_name(dtype),
                                                 std::vector<uint8_t>(f.begin(), f.end()));
           }),
           py::arg("codecs"), py::arg("chunk_shape"), py::arg("dtype"), py::arg("fill_value") = py::bytes(),
           "Validates the chain (InvalidMetadataError / UnsupportedError); fill_value: itemsize "
           "bytes in native order (empty: zeros).")
      .def_property_readonly("chunk_shape", [](const ChunkBatch& b) { return b.chain().chunk_shape(); })
      .def_property_readonly("dtype", [](const ChunkBatch& b) { return voxcore::python::numpy_dtype(b.chain().dtype()); })
      .def_property_readonly("chunk_nbytes", [](const ChunkBatch& b) { return b.chain().chunk_nbytes(); })
      .def_property_readonly("sharded", &ChunkBatch::sharded,
                             "True when the chain is exactly [sharding_indexed]: inner chunks are "
                             "separate tasks and partial reads from a store fetch only what they need.")
      .def("decode_batch", &decode_batch, py::arg("keys"), py::arg("sources"), py::arg("dests"),
           py::arg("regions"), py::arg("store") = nullptr,
           R"(Decodes many chunks in parallel, each straight into its destination.

keys: one name per chunk (its key in `store`, and in error messages). sources: per chunk a
bytes-like object or None (missing: the fill value); ignored when `store` is given, which is then
read by key (a shard touched in part: only its index and the inner chunks needed). dests: writable
arrays of the chain's dtype and rank. regions: per chunk None (dest is the whole chunk) or
(start, step) per chunk axis, the region's shape being dest.shape. Raises CorruptDataError
naming the key when a chunk does not decode to the chunk.)")
      .def("encode_batch", &encode_batch, py::arg("keys"), py::arg("values"), py::arg("regions"),
           py::arg("existing") = py::none(), py::arg("store") = nullptr, py::arg("write_empty") = true,
           R"(Encodes many chunks in parallel.

values: per chunk an array of the chain's dtype and rank (any strides, broadcast too) holding the
region's new contents. regions: per chunk None (the value is the whole chunk) or (start, step) per
chunk axis; a region that does not cover its chunk is merged over `existing`: per chunk the
stored bytes (bytes-like), None (the fill value) or True (the key's value in `store`, if any).
write_empty=False: a chunk (or inner chunk of a shard) equal to the fill value is not written;
a write into part of a shard re-encodes only the inner chunks it touches. Without `store`,
returns per chunk a uint8 array of the encoded bytes or None (nothing to store); with `store`,
writes or erases every key there and returns per chunk whether it was written.)");
}
