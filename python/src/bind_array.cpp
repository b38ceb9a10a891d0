// Bindings for the array layer: codec/array specs, stores, the chunk cache, ChunkedArray.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "buffers.hpp"
#include "voxcore/chunked_array.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/tiff_store.hpp"

namespace py = pybind11;
using namespace voxcore;
using voxcore::python::numpy_dtype;
using voxcore::python::view_of;

namespace {

Box box_of(const Shape& start, const py::array& array) {
  Box box;
  box.start = start;
  box.shape.assign(array.shape(), array.shape() + array.ndim());
  return box;
}

// The requests as Python sees them: (key, kind, offset, length), kind "whole" | "range" | "suffix".
py::list request_items(const std::vector<ByteRequest>& requests) {
  py::list items;
  for (const auto& r : requests) {
    const char* kind = r.range.kind == ByteRange::Kind::kWhole   ? "whole"
                       : r.range.kind == ByteRange::Kind::kRange ? "range"
                                                                 : "suffix";
    items.append(py::make_tuple(r.key, kind, r.range.offset, r.range.length));
  }
  return items;
}

// Where a Python fetch puts each value of a streamed read (Arrivals' producer side): the value's
// buffer is held, not copied, until the decoding thread releases it; it is let go on the next put
// or when the sink goes (both with the GIL held).
class ArrivalSink {
 public:
  explicit ArrivalSink(std::shared_ptr<Arrivals> arrivals) : arrivals_(std::move(arrivals)) {}
  ArrivalSink(const ArrivalSink&) = delete;
  ArrivalSink& operator=(const ArrivalSink&) = delete;
  ~ArrivalSink() {
    for (auto& view : views_) {
      if (view) PyBuffer_Release(view.get());
    }
  }

  bool put(std::size_t index, const py::object& value) {
    for (uint64_t token : arrivals_->released()) {
      if (token >= views_.size() || !views_[token]) continue;  // (a consumer's slip: never twice)
      PyBuffer_Release(views_[token].get());
      views_[token].reset();
    }
    if (value.is_none()) return arrivals_->put_missing(index);
    auto view = std::make_unique<Py_buffer>();
    if (PyObject_GetBuffer(value.ptr(), view.get(), PyBUF_C_CONTIGUOUS) != 0) throw py::error_already_set();
    const auto* data = static_cast<const uint8_t*>(view->buf);
    const auto size = static_cast<std::size_t>(view->len);
    const uint64_t token = views_.size();
    views_.push_back(std::move(view));
    return arrivals_->put(index, data, size, token);
  }
  void fail() { arrivals_->fail(); }
  bool aborted() const { return arrivals_->aborted(); }

 private:
  std::shared_ptr<Arrivals> arrivals_;
  std::vector<std::unique_ptr<Py_buffer>> views_;
};

// Wraps a Python callable start_many(requests, sink) -> wait, which starts fetching and puts each
// value into sink as it comes; wait() returns once the fetch is over (raising its failure).
CallbackStore::StartMany wrap_start_many(py::object fn) {
  if (fn.is_none()) return nullptr;
  auto holder = std::make_shared<py::object>(std::move(fn));
  struct Refs {
    py::object sink, wait;
  };
  return [holder](const std::vector<ByteRequest>& requests,
                  const std::shared_ptr<Arrivals>& arrivals) -> std::function<void()> {
    py::gil_scoped_acquire gil;
    auto refs = std::make_shared<Refs>();
    refs->sink = py::cast(new ArrivalSink(arrivals), py::return_value_policy::take_ownership);
    refs->wait = (*holder)(request_items(requests), refs->sink);
    return [refs] {
      py::gil_scoped_acquire gil;
      py::object wait = std::move(refs->wait);
      py::object sink = std::move(refs->sink);  // let go here, with the GIL
      wait();
    };
  };
}

// Wraps a Python callable get_many(requests) -> list[bytes | None] (requests: request_items).
CallbackStore::GetMany wrap_get_many(py::function fn) {
  auto holder = std::make_shared<py::function>(std::move(fn));
  return [holder](const std::vector<ByteRequest>& requests, std::vector<ByteBuffer>& out,
                  std::vector<uint8_t>& found) {
    py::gil_scoped_acquire gil;
    py::sequence result = (*holder)(request_items(requests));
    if (py::len(result) != requests.size()) {
      fail(ErrorCode::kInvalidArgument, "CallbackStore",
           "get_many returned the wrong number of values (expected=" + std::to_string(requests.size()) +
               ", got=" + std::to_string(py::len(result)) + ")");
    }
    for (std::size_t i = 0; i < requests.size(); ++i) {
      py::object value = result[i];
      if (value.is_none()) continue;
      py::buffer_info info = py::buffer(value).request();
      out[i].resize(0);
      out[i].append(info.ptr, static_cast<std::size_t>(info.size * info.itemsize));
      found[i] = 1;
    }
  };
}

CallbackStore::SetMany wrap_set_many(py::object fn) {
  if (fn.is_none()) return nullptr;
  auto holder = std::make_shared<py::object>(std::move(fn));
  return [holder](const std::vector<std::string>& keys, const std::vector<ByteBuffer>& values) {
    py::gil_scoped_acquire gil;
    py::list items;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      items.append(py::make_tuple(
          keys[i], py::bytes(reinterpret_cast<const char*>(values[i].data()), values[i].size())));
    }
    (*holder)(items);
  };
}

CallbackStore::Erase wrap_erase(py::object fn) {
  if (fn.is_none()) return nullptr;
  auto holder = std::make_shared<py::object>(std::move(fn));
  return [holder](const std::string& key) {
    py::gil_scoped_acquire gil;
    (*holder)(key);
  };
}

}  // namespace

void init_array(py::module_& m) {
  py::enum_<CodecId>(m, "CodecId")
      .value("transpose", CodecId::kTranspose)
      .value("bytes", CodecId::kBytes)
      .value("sharding", CodecId::kSharding)
      .value("blosc", CodecId::kBlosc)
      .value("zstd", CodecId::kZstd)
      .value("lz4", CodecId::kLz4)
      .value("gzip", CodecId::kGzip)
      .value("zlib", CodecId::kZlib)
      .value("crc32c", CodecId::kCrc32c)
      .value("tiff", CodecId::kTiff);

  py::class_<CodecSpec>(m, "CodecSpec", "One codec of a chain with its parameters (plain data).")
      .def(py::init<>())
      .def_readwrite("id", &CodecSpec::id)
      .def_property(
          "big_endian", [](const CodecSpec& c) { return c.endian == Endian::kBig; },
          [](CodecSpec& c, bool big) { c.endian = big ? Endian::kBig : Endian::kLittle; })
      .def_readwrite("order", &CodecSpec::order)
      .def_readwrite("level", &CodecSpec::level)
      .def_readwrite("checksum", &CodecSpec::checksum)
      .def_readwrite("cname", &CodecSpec::cname)
      .def_readwrite("shuffle", &CodecSpec::shuffle)
      .def_readwrite("typesize", &CodecSpec::typesize)
      .def_readwrite("blocksize", &CodecSpec::blocksize)
      .def_readwrite("inner_chunk_shape", &CodecSpec::inner_chunk_shape)
      .def_readwrite("inner_codecs", &CodecSpec::inner_codecs)
      .def_readwrite("index_codecs", &CodecSpec::index_codecs)
      .def_readwrite("index_at_end", &CodecSpec::index_at_end)
      .def_property(
          "tiff_compression", [](const CodecSpec& c) { return c.tiff.compression; },
          [](CodecSpec& c, int v) { c.tiff.compression = v; })
      .def_property(
          "tiff_predictor", [](const CodecSpec& c) { return c.tiff.predictor; },
          [](CodecSpec& c, int v) { c.tiff.predictor = v; })
      .def_property(
          "tiff_photometric", [](const CodecSpec& c) { return c.tiff.photometric; },
          [](CodecSpec& c, int v) { c.tiff.photometric = v; })
      .def_property(
          "tiff_samples", [](const CodecSpec& c) { return c.tiff.samples; },
          [](CodecSpec& c, int v) { c.tiff.samples = v; })
      .def_property(
          "tiff_last_rows", [](const CodecSpec& c) { return c.tiff.last_rows; },
          [](CodecSpec& c, int64_t v) { c.tiff.last_rows = v; })
      .def_property(
          "jpeg_tables",
          [](const CodecSpec& c) {
            return py::bytes(reinterpret_cast<const char*>(c.tiff.jpeg_tables.data()), c.tiff.jpeg_tables.size());
          },
          [](CodecSpec& c, const py::bytes& b) {
            std::string v = b;
            c.tiff.jpeg_tables.assign(v.begin(), v.end());
          });

  py::class_<ArraySpec>(m, "ArraySpec", "Shape, chunking, dtype, fill value, codecs and key encoding.")
      .def(py::init<>())
      .def_readwrite("shape", &ArraySpec::shape)
      .def_readwrite("chunk_shape", &ArraySpec::chunk_shape)
      .def_property(
          "dtype", [](const ArraySpec& s) { return std::string(dtype_name(s.dtype)); },
          [](ArraySpec& s, const std::string& name) { s.dtype = dtype_from_name(name); })
      .def_property(
          "fill_value", [](const ArraySpec& s) { return py::bytes(reinterpret_cast<const char*>(s.fill_value.data()), s.fill_value.size()); },
          [](ArraySpec& s, const py::bytes& b) {
            std::string v = b;
            s.fill_value.assign(v.begin(), v.end());
          })
      .def_readwrite("codecs", &ArraySpec::codecs)
      .def_property(
          "key_v2", [](const ArraySpec& s) { return s.key_encoding.kind == ChunkKeyEncoding::Kind::kV2; },
          [](ArraySpec& s, bool v2) {
            s.key_encoding.kind = v2 ? ChunkKeyEncoding::Kind::kV2 : ChunkKeyEncoding::Kind::kDefault;
          })
      .def_property(
          "key_separator", [](const ArraySpec& s) { return std::string(1, s.key_encoding.separator); },
          [](ArraySpec& s, const std::string& sep) {
            VOXCORE_EXPECT(sep == "/" || sep == ".", ErrorCode::kInvalidMetadata, "ArraySpec",
                           "chunk key separator must be '/' or '.' (got=" + sep + ")");
            s.key_encoding.separator = sep[0];
          })
      .def_readwrite("write_empty_chunks", &ArraySpec::write_empty_chunks);

  py::class_<Store, std::shared_ptr<Store>>(m, "Store", "A key-value store of chunk bytes.")
      .def(
          "get",
          [](Store& s, const std::string& key) -> py::object {
            ByteBuffer buf;
            bool found;
            {
              py::gil_scoped_release release;
              found = s.get(key, ByteRange::whole(), buf);
            }
            if (!found) return py::none();
            return py::bytes(reinterpret_cast<const char*>(buf.data()), buf.size());
          },
          py::arg("key"), "The value of key, or None when it does not exist.")
      .def(
          "set",
          [](Store& s, const std::string& key, const py::bytes& value) {
            std::string v = value;
            py::gil_scoped_release release;
            s.set(key, reinterpret_cast<const uint8_t*>(v.data()), v.size());
          },
          py::arg("key"), py::arg("value"), "Stores value under key (atomically for a FileStore).")
      .def(
          "erase", [](Store& s, const std::string& key) { s.erase(key); }, py::arg("key"),
          "Removes key; a missing key is not an error.");

  py::class_<FileStore, Store, std::shared_ptr<FileStore>>(
      m, "FileStore", "Files under a root directory; atomic, durable writes unless durable=False.")
      .def(py::init<std::string, bool, bool, bool>(), py::arg("root"), py::arg("durable") = true,
           py::arg("allow_external_links") = false, py::arg("unpublished") = false,
           "unpublished: a tree no reader sees until it is renamed into place (values written "
           "straight to their keys, no temp file and rename).")
      .def("sub", &FileStore::sub, py::arg("path"), "The subtree at path, with the same root as its boundary.")
      .def("exists", &FileStore::exists, py::arg("key"))
      .def_property_readonly("root", &FileStore::root)
      .def_property_readonly("prefix", &FileStore::prefix)
      .def_property_readonly("durable", &FileStore::durable)
      .def_property_readonly("allow_external_links", &FileStore::allow_external_links)
      .def_property_readonly("unpublished", &FileStore::unpublished);

  py::class_<CallbackStore, Store, std::shared_ptr<CallbackStore>>(
      m, "CallbackStore",
      "A store served by Python callables: get_many(requests) -> list[bytes | None], with each "
      "request (key, kind, offset, length); set_many(list[(key, bytes)]); erase(key); optional "
      "start_many(requests, sink) -> wait, streaming a read's values into an ArrivalSink.")
      .def(py::init([](py::function get_many, py::object set_many, py::object erase, py::object start_many) {
             return std::make_shared<CallbackStore>(
                 wrap_get_many(std::move(get_many)), wrap_set_many(std::move(set_many)),
                 wrap_erase(std::move(erase)), wrap_start_many(std::move(start_many)));
           }),
           py::arg("get_many"), py::arg("set_many") = py::none(), py::arg("erase") = py::none(),
           py::arg("start_many") = py::none());

  py::class_<ArrivalSink>(m, "ArrivalSink",
                          "Where a streamed read's fetch puts each value as it comes (CallbackStore's "
                          "start_many): put(index, bytes-like | None) -> bool (False: no more wanted); "
                          "fail() when the fetch failed.")
      .def("put", &ArrivalSink::put, py::arg("index"), py::arg("value"))
      .def("fail", &ArrivalSink::fail)
      .def_property_readonly("aborted", &ArrivalSink::aborted);

  py::class_<TiffStore, Store, std::shared_ptr<TiffStore>>(
      m, "TiffStore",
      "The tiles of one TIFF image by offset and byte count (chunk keys 'i.j...', read by pread).")
      .def(py::init([](std::string path, Shape grid, std::vector<uint64_t> offsets, std::vector<uint64_t> counts) {
             return std::make_shared<TiffStore>(std::move(path), std::move(grid), std::move(offsets), std::move(counts));
           }),
           py::arg("path"), py::arg("grid"), py::arg("offsets"), py::arg("bytecounts"))
      .def_property_readonly("path", &TiffStore::path)
      .def_property_readonly("file_size", &TiffStore::file_size);

  m.def("check_key", &check_key, py::arg("key"), "Raises UnsafePathError unless key is a safe relative key.");

  py::class_<ChunkCache, std::shared_ptr<ChunkCache>>(m, "ChunkCache",
                                                      "A bounded LRU of decoded chunks, shareable by arrays.")
      .def(py::init<std::size_t>(), py::arg("capacity_bytes"))
      .def_property_readonly("capacity_bytes", &ChunkCache::capacity_bytes)
      .def_property_readonly("size_bytes", &ChunkCache::size_bytes)
      .def("clear", &ChunkCache::clear);

  py::class_<ChunkedArray, std::shared_ptr<ChunkedArray>>(m, "ChunkedArray",
                                                          "Reads and writes boxes of a chunked array.")
      .def(py::init([](ArraySpec spec, std::shared_ptr<Store> store, std::shared_ptr<ChunkCache> cache) {
             return std::make_shared<ChunkedArray>(std::move(spec), std::move(store), std::move(cache));
           }),
           py::arg("spec"), py::arg("store"), py::arg("cache") = nullptr)
      .def_property_readonly("shape", [](const ChunkedArray& a) { return a.spec().shape; })
      .def_property_readonly("dtype", [](const ChunkedArray& a) { return numpy_dtype(a.spec().dtype); })
      .def(
          "read_into",
          [](const ChunkedArray& a, const Shape& start, py::array out) {
            const Box box = box_of(start, out);
            const ArrayView view = view_of(out, /*writable=*/true);
            py::gil_scoped_release release;
            a.read_into(box, view);
          },
          py::arg("start"), py::arg("out"),
          "Fills out with the box [start, start + out.shape); outside the array: fill value.")
      .def(
          "write",
          [](ChunkedArray& a, const Shape& start, py::array src, WriteRun* run) {
            const Box box = box_of(start, src);
            const ArrayView view = view_of(src, /*writable=*/false);
            py::gil_scoped_release release;
            a.write(box, view, run);
          },
          py::arg("start"), py::arg("src"), py::arg("run") = nullptr,
          "Writes src at start (the box must lie inside the array); durable on return, or at "
          "run.finish() when a WriteRun is given.");

  m.def(
      "write_all",
      [](py::list jobs, WriteRun* run) {
        std::vector<WriteJob> plan;
        std::vector<py::array> keep;  // the sources stay alive while the GIL is released
        plan.reserve(jobs.size());
        for (const auto& item : jobs) {
          auto t = item.cast<py::tuple>();
          if (t.size() != 3) throw py::value_error("write_all takes (array, start, src) tuples");
          auto* array = t[0].cast<ChunkedArray*>();
          auto src = t[2].cast<py::array>();
          keep.push_back(src);
          plan.push_back(WriteJob{array, box_of(t[1].cast<Shape>(), src), view_of(src, /*writable=*/false)});
        }
        py::gil_scoped_release release;
        write_all(plan, run);
      },
      py::arg("jobs"), py::arg("run") = nullptr,
      "Writes each (array, start, src) as one parallel loop over all their chunks (the levels of "
      "a pyramid together); durable on return, or at run.finish() when a WriteRun is given.");

  py::class_<WriteRun>(m, "WriteRun",
                       "Writes whose durability is settled once, at finish(): for a tree published "
                       "only afterwards. The arrays written must outlive finish().")
      .def(py::init<>())
      .def(
          "finish",
          [](WriteRun& r) {
            py::gil_scoped_release release;
            r.finish();
          },
          "Waits for every write of the run, syncs the directories they touched, raises the "
          "first failure.");

  m.def(
      "set_num_threads",
      [](int n) {
        py::gil_scoped_release release;  // joining the old pool's idle workers
        set_num_threads(n);
      },
      py::arg("n"), "Replaces the core's thread pool (1 <= n <= max_threads()).");
  m.def("max_threads", &max_threads, "The largest thread count set_num_threads accepts.");
  m.def("get_num_threads", &num_threads, "The size of the core's thread pool.");
  m.def(
      "gunzip_into",
      [](const py::buffer& src, const py::array& dst, bool discard_excess) {
        const py::buffer_info in = src.request();
        const voxcore::ArrayView out = voxcore::python::view_of(dst, true);
        if (!out.is_c_contiguous() || out.dtype != voxcore::DType::kUInt8) {
          voxcore::fail(voxcore::ErrorCode::kInvalidArgument, "gunzip_into", "dst must be a C-contiguous uint8 array");
        }
        py::gil_scoped_release release;
        return voxcore::gunzip(static_cast<const uint8_t*>(in.ptr), static_cast<std::size_t>(in.size * in.itemsize),
                               static_cast<uint8_t*>(out.data), static_cast<std::size_t>(out.num_elements()),
                               discard_excess);
      },
      py::arg("src"), py::arg("dst"), py::arg("discard_excess") = false,
      "Inflates gzip bytes (any number of members) into dst (uint8); returns the decoded size. "
      "discard_excess: decoded bytes past dst's end are checked and dropped instead of refused.");
  m.def(
      "gzip_members",
      [](const py::buffer& src, int level, std::size_t block) {
        const py::buffer_info in = src.request();
        auto owned = std::make_unique<ByteBuffer>();
        {
          py::gil_scoped_release release;
          voxcore::gzip_members(static_cast<const uint8_t*>(in.ptr), static_cast<std::size_t>(in.size * in.itemsize),
                                level, block, *owned);
        }
        ByteBuffer* raw = owned.release();
        py::capsule free_when_done(raw, [](void* p) { delete static_cast<ByteBuffer*>(p); });
        return py::array_t<uint8_t>({static_cast<py::ssize_t>(raw->size())}, {py::ssize_t{1}}, raw->data(),
                                    free_when_done);
      },
      py::arg("src"), py::arg("level") = 1, py::arg("block") = std::size_t{4} << 20,
      "src (any contiguous buffer) as a gzip stream of one member per block bytes, compressed in "
      "parallel on the core's pool; a uint8 array.");
  m.def(
      "gzip_members_to_fd",
      [](const py::buffer& src, int fd, int level, std::size_t block) {
        const py::buffer_info in = src.request();
        std::size_t written = 0;
        {
          py::gil_scoped_release release;
          voxcore::gzip_members(
              static_cast<const uint8_t*>(in.ptr), static_cast<std::size_t>(in.size * in.itemsize), level, block,
              [&](const uint8_t* p, std::size_t n) {
                while (n > 0) {
                  const ssize_t w = ::write(fd, p, n);
                  if (w < 0 && errno == EINTR) continue;
                  if (w <= 0) {
                    voxcore::fail(voxcore::ErrorCode::kUnavailable, "gzip_members_to_fd",
                                  std::string("write failed: ") + std::strerror(w < 0 ? errno : EIO));
                  }
                  p += w;
                  n -= static_cast<std::size_t>(w);
                  written += static_cast<std::size_t>(w);
                }
              });
        }
        return written;
      },
      py::arg("src"), py::arg("fd"), py::arg("level") = 1, py::arg("block") = std::size_t{4} << 20,
      "gzip_members written to the file descriptor fd at its position as the members complete (the "
      "writes overlap the parallel compression); returns the bytes written.");
}
