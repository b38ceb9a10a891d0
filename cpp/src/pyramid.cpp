#include "voxcore/pyramid.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/pyramid_args.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

// Window reductions (mean/min/max/mode) run row by row: for each output row (every output axis
// but the last) the source rows of its window are collected, each is folded along the last axis
// into a row accumulator, and the row is finalised once (divide, round, store). The fold is
// specialised for a contiguous source and factor 1 or 2, which the compiler vectorises. kNearest
// is a strided copy. kGaussian builds each output plane in double, one axis after another.
namespace voxcore {
namespace {

// Below this many source bytes the pool hand-off costs more than the work.
constexpr int64_t kParallelBytes = int64_t{1} << 20;

__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

template <typename T>
inline T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
inline void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

template <typename T>
inline bool is_dense(const uint8_t* p, int64_t stride) {
  return stride == static_cast<int64_t>(sizeof(T)) && reinterpret_cast<uintptr_t>(p) % alignof(T) == 0;
}

// Writes fn(j) for j in [0, m) to a strided row.
template <typename T, typename F>
inline void write_row(uint8_t* dst, int64_t ds, int64_t m, F&& fn) {
  if (is_dense<T>(dst, ds)) {
    T* d = reinterpret_cast<T*>(dst);
    for (int64_t j = 0; j < m; ++j) d[j] = fn(j);
  } else {
    for (int64_t j = 0; j < m; ++j) store<T>(dst + j * ds, fn(j));
  }
}

// The problem with its size per axis: src extent n, factor f, dst extent m, byte strides.
struct Problem {
  int rank = 0;
  const uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  std::vector<int64_t> n, f, m, ss, ds;
};

// The source rows of one output row's window and that output row.
struct Row {
  const std::vector<const uint8_t*>* rows;
  int64_t n, f, ss;  // last axis: src extent, factor, src byte stride
  uint8_t* dst;
  int64_t m, ds;  // last axis: dst extent, dst byte stride
};

struct SumOp {
  template <typename A>
  A operator()(A a, A b) const { return a + b; }
};
// `b != b` is a NaN test (always false for integers): a NaN, once in, stays.
struct MinOp {
  template <typename A>
  A operator()(A a, A b) const { return (b < a || b != b) ? b : a; }
};
struct MaxOp {
  template <typename A>
  A operator()(A a, A b) const { return (b > a || b != b) ? b : a; }
};

// acc[j] = op(acc[j], src[j*f .. min(j*f+f, n))) along one source row.
template <typename T, typename A, typename Op>
void fold_row(const uint8_t* src, int64_t ss, int64_t n, int64_t f, A* acc, Op op) {
  if (is_dense<T>(src, ss) && f <= 2) {
    const T* p = reinterpret_cast<const T*>(src);
    if (f == 1) {
      for (int64_t j = 0; j < n; ++j) acc[j] = op(acc[j], A(p[j]));
    } else {
      const int64_t h = n / 2;
      for (int64_t j = 0; j < h; ++j) acc[j] = op(acc[j], op(A(p[2 * j]), A(p[2 * j + 1])));
      if (n & 1) acc[h] = op(acc[h], A(p[n - 1]));
    }
    return;
  }
  for (int64_t lo = 0, j = 0; lo < n; lo += f, ++j) {
    const int64_t hi = std::min(lo + f, n);
    A a = acc[j];
    for (int64_t k = lo; k < hi; ++k) a = op(a, A(load<T>(src + k * ss)));
    acc[j] = a;
  }
}

// std::is_signed is false for __int128 under -std=c++17 (no GNU extensions).
template <typename A>
constexpr bool kSigned = std::is_signed<A>::value || std::is_same<A, Int128>::value;

// Integer sum / count rounded half away from zero (count > 0).
template <typename A>
inline A round_div(A s, A c) {
  if constexpr (kSigned<A>) {
    return s >= 0 ? (s + c / 2) / c : -((-s + c / 2) / c);
  } else {
    return (s + c / 2) / c;
  }
}

// The accumulator that sums any window of T exactly (floats: double).
template <typename T>
using WideSum = std::conditional_t<
    std::is_floating_point<T>::value, double,
    std::conditional_t<sizeof(T) == 8, std::conditional_t<std::is_signed<T>::value, Int128, UInt128>,
                       std::conditional_t<std::is_signed<T>::value, int64_t, uint64_t>>>;

template <typename T, typename A>
void mean_row(const Row& r, std::vector<A>& acc) {
  acc.assign(static_cast<std::size_t>(r.m), A(0));
  for (const uint8_t* s : *r.rows) fold_row<T>(s, r.ss, r.n, r.f, acc.data(), SumOp());
  const A rows = static_cast<A>(r.rows->size());
  const A full = rows * static_cast<A>(r.f);
  const A tail = rows * static_cast<A>(r.n - (r.m - 1) * r.f);
  const int64_t m_full = tail == full ? r.m : r.m - 1;
  if constexpr (std::is_floating_point<A>::value) {
    write_row<T>(r.dst, r.ds, r.m, [&](int64_t j) { return static_cast<T>(acc[j] / (j < m_full ? full : tail)); });
  } else {
    const bool pow2 = (full & (full - 1)) == 0;
    if (!kSigned<A> && pow2 && m_full > 0) {
      // The common 2x/4x case: a shift instead of a division, so the loop vectorises.
      int sh = 0;
      while ((A(1) << sh) < full) ++sh;
      const A half = full / 2;
      write_row<T>(r.dst, r.ds, m_full, [&](int64_t j) { return static_cast<T>((acc[j] + half) >> sh); });
    } else {
      write_row<T>(r.dst, r.ds, m_full, [&](int64_t j) { return static_cast<T>(round_div<A>(acc[j], full)); });
    }
    if (m_full < r.m) store<T>(r.dst + m_full * r.ds, static_cast<T>(round_div<A>(acc[m_full], tail)));
  }
}

template <typename T, typename Op>
void extreme_row(const Row& r, std::vector<T>& acc, T identity, Op op) {
  acc.assign(static_cast<std::size_t>(r.m), identity);
  for (const uint8_t* s : *r.rows) fold_row<T>(s, r.ss, r.n, r.f, acc.data(), op);
  write_row<T>(r.dst, r.ds, r.m, [&](int64_t j) { return acc[j]; });
}

template <typename T>
void mode_row(const Row& r, std::vector<T>& vals) {
  // Sorted order puts equal values together and the smallest first, so a strictly-greater count
  // test picks the smallest value among ties. NaNs sort last and count as one value.
  const auto less = [](T a, T b) { return a < b || (!(a != a) && b != b); };
  const auto same = [](T a, T b) { return a == b || (a != a && b != b); };
  for (int64_t j = 0, lo = 0; j < r.m; ++j, lo += r.f) {
    const int64_t hi = std::min(lo + r.f, r.n);
    vals.clear();
    for (const uint8_t* s : *r.rows) {
      for (int64_t k = lo; k < hi; ++k) vals.push_back(load<T>(s + k * r.ss));
    }
    std::sort(vals.begin(), vals.end(), less);
    T best = vals[0];
    std::size_t best_count = 0;
    for (std::size_t i = 0; i < vals.size();) {
      std::size_t e = i + 1;
      while (e < vals.size() && same(vals[e], vals[i])) ++e;
      if (e - i > best_count) {
        best_count = e - i;
        best = vals[i];
      }
      i = e;
    }
    store<T>(r.dst + j * r.ds, best);
  }
}

template <typename T>
constexpr T lowest_or_neg_inf() {
  return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
}
template <typename T>
constexpr T max_or_inf() {
  return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
}

// Splits [0, count) into parts run on the executor when the work is large enough.
template <typename F>
void run_parts(int64_t count, int64_t src_bytes, Executor* executor, F&& body) {
  int64_t parts = 1;
  if (executor->concurrency() > 1 && src_bytes >= kParallelBytes) {
    parts = std::min<int64_t>(count, int64_t{executor->concurrency()} * 4);
  }
  if (parts <= 1) {
    body(0, count);
    return;
  }
  executor->parallel_for(parts, [&](int64_t i) {
    const int64_t lo = count * i / parts, hi = count * (i + 1) / parts;
    if (lo < hi) body(lo, hi);
  });
}

// Calls row_fn(Row) for every output row, in parallel parts.
template <typename RowFn>
void for_each_output_row(const Problem& p, int64_t src_bytes, Executor* executor, RowFn&& row_fn) {
  const int outer = p.rank - 1;
  int64_t rows = 1;
  for (int i = 0; i < outer; ++i) rows *= p.m[i];
  run_parts(rows, src_bytes, executor, [&](int64_t lo, int64_t hi) {
    std::vector<const uint8_t*> src_rows;
    int64_t idx[kMaxRank], win[kMaxRank], cnt[kMaxRank];
    for (int64_t row = lo; row < hi; ++row) {
      int64_t rem = row;
      uint8_t* d = p.dst;
      const uint8_t* s0 = p.src;
      for (int i = outer - 1; i >= 0; --i) {
        idx[i] = rem % p.m[i];
        rem /= p.m[i];
        d += idx[i] * p.ds[i];
        s0 += idx[i] * p.f[i] * p.ss[i];
        cnt[i] = std::min(p.f[i], p.n[i] - idx[i] * p.f[i]);
        win[i] = 0;
      }
      // Odometer over the window's outer axes.
      src_rows.clear();
      for (;;) {
        const uint8_t* s = s0;
        for (int i = 0; i < outer; ++i) s += win[i] * p.ss[i];
        src_rows.push_back(s);
        int ax = outer - 1;
        for (; ax >= 0; --ax) {
          if (++win[ax] < cnt[ax]) break;
          win[ax] = 0;
        }
        if (ax < 0) break;
      }
      row_fn(Row{&src_rows, p.n[outer], p.f[outer], p.ss[outer], d, p.m[outer], p.ds[outer]});
    }
  });
}

// ---- gaussian ----

// For each output index in [out_lo, out_hi): source indices (clamped) and normalised weights.
struct Taps {
  std::vector<int64_t> start{0}, idx;
  std::vector<double> w;
};

Taps make_taps(int64_t n, int64_t f, int64_t out_lo, int64_t out_hi) {
  Taps t;
  const double sigma = gaussian_sigma(f), radius = 3 * sigma;
  for (int64_t i = out_lo; i < out_hi; ++i) {
    if (f == 1) {
      t.idx.push_back(i);
      t.w.push_back(1.0);
    } else {
      const double c = static_cast<double>(i * f) + static_cast<double>(f - 1) / 2;
      const std::size_t first = t.w.size();
      double sum = 0;
      for (int64_t k = static_cast<int64_t>(std::ceil(c - radius)); k <= static_cast<int64_t>(std::floor(c + radius)); ++k) {
        const double x = static_cast<double>(k) - c;
        const double g = std::exp(-x * x / (2 * sigma * sigma));
        t.idx.push_back(std::clamp<int64_t>(k, 0, n - 1));
        t.w.push_back(g);
        sum += g;
      }
      for (std::size_t q = first; q < t.w.size(); ++q) t.w[q] /= sum;
    }
    t.start.push_back(static_cast<int64_t>(t.idx.size()));
  }
  return t;
}

// out = in filtered along `axis` of the C-contiguous `shape`; shape[axis] becomes the tap count.
void filter_axis(const std::vector<double>& in, Shape& shape, int axis, const Taps& t, std::vector<double>& out) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= shape[i];
  for (std::size_t i = axis + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t n = shape[axis], mo = static_cast<int64_t>(t.start.size()) - 1;
  out.assign(static_cast<std::size_t>(outer * mo * inner), 0.0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < mo; ++j) {
      double* d = out.data() + (o * mo + j) * inner;
      for (int64_t q = t.start[j]; q < t.start[j + 1]; ++q) {
        const double* s = in.data() + (o * n + t.idx[q]) * inner;
        const double w = t.w[q];
        for (int64_t x = 0; x < inner; ++x) d[x] += w * s[x];
      }
    }
  }
  shape[axis] = mo;
}

template <typename T>
T from_double(double x) {
  if constexpr (std::is_floating_point<T>::value) {
    return static_cast<T>(x);
  } else {
    const double r = std::round(x);
    if (!(r > static_cast<double>(std::numeric_limits<T>::lowest()))) return std::numeric_limits<T>::lowest();
    if (r >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(r);
  }
}

// Calls fn(byte_offset, row) for each row (all axes but the last) of `shape`, in C order. A 0-d or
// 1-d shape is one row.
template <typename F>
void for_each_row(const Shape& shape, const int64_t* strides, F&& fn) {
  const int outer = std::max(0, static_cast<int>(shape.size()) - 1);
  int64_t idx[kMaxRank] = {};
  int64_t rows = 1, off = 0;
  for (int i = 0; i < outer; ++i) rows *= shape[i];
  for (int64_t r = 0; r < rows; ++r) {
    fn(off, r);
    for (int ax = outer - 1; ax >= 0; --ax) {
      off += strides[ax];
      if (++idx[ax] < shape[ax]) break;
      off -= shape[ax] * strides[ax];
      idx[ax] = 0;
    }
  }
}

// Each output plane (axis 0) is the weighted sum of its source planes, accumulated in a
// cache-sized double buffer, then filtered along the remaining axes in increasing order (the
// inner axes' passes vectorise; the last axis, whose pass does not, then has the fewest rows).
template <typename T>
void gaussian(const Problem& p, int64_t src_bytes, Executor* executor) {
  const int rank = p.rank;
  std::vector<Taps> taps(rank);
  for (int a = 0; a < rank; ++a) taps[a] = make_taps(p.n[a], p.f[a], 0, p.m[a]);
  const Shape plane(p.n.begin() + 1, p.n.end()), out_plane(p.m.begin() + 1, p.m.end());
  const int64_t row_len = plane.empty() ? 1 : plane.back();
  const int64_t s_last = plane.empty() ? 0 : p.ss.back(), d_last = plane.empty() ? 0 : p.ds.back();
  int64_t plane_size = 1;
  for (int64_t e : plane) plane_size *= e;
  run_parts(p.m[0], src_bytes, executor, [&](int64_t lo, int64_t hi) {
    std::vector<double> buf, tmp;
    for (int64_t i0 = lo; i0 < hi; ++i0) {
      buf.assign(static_cast<std::size_t>(plane_size), 0.0);
      for (int64_t q = taps[0].start[i0]; q < taps[0].start[i0 + 1]; ++q) {
        const uint8_t* s = p.src + taps[0].idx[q] * p.ss[0];
        const double w = taps[0].w[q];
        for_each_row(plane, p.ss.data() + 1, [&](int64_t off, int64_t row) {
          double* d = buf.data() + row * row_len;
          if (is_dense<T>(s + off, s_last)) {
            const T* t = reinterpret_cast<const T*>(s + off);
            for (int64_t x = 0; x < row_len; ++x) d[x] += w * static_cast<double>(t[x]);
          } else {
            for (int64_t x = 0; x < row_len; ++x) d[x] += w * static_cast<double>(load<T>(s + off + x * s_last));
          }
        });
      }
      Shape shape = plane;
      for (int a = 1; a < rank; ++a) {
        if (p.f[a] == 1) continue;
        filter_axis(buf, shape, a - 1, taps[a], tmp);
        buf.swap(tmp);
      }
      const int64_t out_len = out_plane.empty() ? 1 : out_plane.back();
      uint8_t* d = p.dst + i0 * p.ds[0];
      for_each_row(out_plane, p.ds.data() + 1, [&](int64_t off, int64_t row) {
        const double* v = buf.data() + row * out_len;
        for (int64_t x = 0; x < out_len; ++x) store<T>(d + off + x * d_last, from_double<T>(v[x]));
      });
    }
  });
}

// ---- dispatch ----

template <typename T>
void run_typed(const Problem& p, Method method, int64_t src_bytes, Executor* executor) {
  switch (method) {
    case Method::kMean: {
      int64_t volume = 1;
      for (int64_t f : p.f) volume *= f;
      // Narrow types sum in 32 bits when no window can overflow that (a 2x2x2 u16 window can't).
      if constexpr (std::is_integral<T>::value && sizeof(T) <= 2) {
        using A32 = std::conditional_t<std::is_signed<T>::value, int32_t, uint32_t>;
        const int64_t bound = int64_t{std::numeric_limits<A32>::max()} / (int64_t{1} << (8 * sizeof(T)));
        if (volume <= bound) {
          for_each_output_row(p, src_bytes, executor, [](const Row& r) {
            thread_local std::vector<A32> acc;
            mean_row<T, A32>(r, acc);
          });
          return;
        }
      }
      using A = WideSum<T>;
      for_each_output_row(p, src_bytes, executor, [](const Row& r) {
        thread_local std::vector<A> acc;
        mean_row<T, A>(r, acc);
      });
      return;
    }
    case Method::kMin:
      for_each_output_row(p, src_bytes, executor, [](const Row& r) {
        thread_local std::vector<T> acc;
        extreme_row<T>(r, acc, max_or_inf<T>(), MinOp());
      });
      return;
    case Method::kMax:
      for_each_output_row(p, src_bytes, executor, [](const Row& r) {
        thread_local std::vector<T> acc;
        extreme_row<T>(r, acc, lowest_or_neg_inf<T>(), MaxOp());
      });
      return;
    case Method::kMode:
      for_each_output_row(p, src_bytes, executor, [](const Row& r) {
        thread_local std::vector<T> vals;
        mode_row<T>(r, vals);
      });
      return;
    case Method::kGaussian:
      gaussian<T>(p, src_bytes, executor);
      return;
    case Method::kNearest:
      break;  // handled by the caller
  }
}

}  // namespace

Shape downsampled_shape(const Shape& shape, const std::vector<int64_t>& factors) {
  if (factors.size() != shape.size()) {
    fail(ErrorCode::kInvalidArgument, "downsampled_shape",
         "factor count differs from rank (expected=" + std::to_string(shape.size()) +
             ", got=" + std::to_string(factors.size()) + ")");
  }
  Shape out(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (factors[i] < 1 || shape[i] < 0) {
      fail(ErrorCode::kInvalidArgument, "downsampled_shape",
           "factor must be >= 1 and extent >= 0 (axis=" + std::to_string(i) + ", factor=" +
               std::to_string(factors[i]) + ", extent=" + std::to_string(shape[i]) + ")");
    }
    out[i] = shape[i] / factors[i] + (shape[i] % factors[i] != 0 ? 1 : 0);
  }
  return out;
}

namespace detail {

void check_downsample_args(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors,
                           const char* where) {
  if (src.dtype != dst.dtype) {
    fail(ErrorCode::kInvalidArgument, where,
         std::string("dtype mismatch (expected=") + dtype_name(src.dtype) + ", got=" + dtype_name(dst.dtype) + ")");
  }
  if (src.rank() != dst.rank() || src.rank() > kMaxRank ||
      src.byte_strides.size() != src.shape.size() || dst.byte_strides.size() != dst.shape.size()) {
    fail(ErrorCode::kInvalidArgument, where,
         "rank mismatch (src=" + std::to_string(src.rank()) + ", dst=" + std::to_string(dst.rank()) + ")");
  }
  const Shape expected = downsampled_shape(src.shape, factors);
  if (expected != dst.shape) {
    std::string e, g;
    for (int64_t v : expected) e += std::to_string(v) + ",";
    for (int64_t v : dst.shape) g += std::to_string(v) + ",";
    fail(ErrorCode::kInvalidArgument, where, "dst shape mismatch (expected=[" + e + "], got=[" + g + "])");
  }
  switch (src.dtype) {
    case DType::kBool:
    case DType::kFloat16:
    case DType::kComplex64:
    case DType::kComplex128:
      fail(ErrorCode::kUnsupported, where, std::string("dtype not supported (got=") + dtype_name(src.dtype) + ")");
    default:
      break;
  }
}

}  // namespace detail

void downsample(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors, Method method,
                Executor* executor) {
  detail::check_downsample_args(src, dst, factors, "downsample");
  if (executor == nullptr) executor = &default_executor();
  if (method == Method::kNearest) {
    ArrayView strided = src;
    strided.shape = dst.shape;
    for (int i = 0; i < src.rank(); ++i) strided.byte_strides[i] *= factors[i];
    copy(strided, dst, executor);
    return;
  }
  if (src.num_elements() == 0) return;
  if (src.rank() == 0) {
    std::memcpy(dst.data, src.data, itemsize(src.dtype));
    return;
  }
  Problem p;
  p.rank = src.rank();
  p.src = static_cast<const uint8_t*>(src.data);
  p.dst = static_cast<uint8_t*>(dst.data);
  p.n = src.shape;
  p.f = factors;
  p.m = dst.shape;
  p.ss = src.byte_strides;
  p.ds = dst.byte_strides;
  const int64_t bytes = src.num_elements() * static_cast<int64_t>(itemsize(src.dtype));
  switch (src.dtype) {
    case DType::kInt8: return run_typed<int8_t>(p, method, bytes, executor);
    case DType::kUInt8: return run_typed<uint8_t>(p, method, bytes, executor);
    case DType::kInt16: return run_typed<int16_t>(p, method, bytes, executor);
    case DType::kUInt16: return run_typed<uint16_t>(p, method, bytes, executor);
    case DType::kInt32: return run_typed<int32_t>(p, method, bytes, executor);
    case DType::kUInt32: return run_typed<uint32_t>(p, method, bytes, executor);
    case DType::kInt64: return run_typed<int64_t>(p, method, bytes, executor);
    case DType::kUInt64: return run_typed<uint64_t>(p, method, bytes, executor);
    case DType::kFloat32: return run_typed<float>(p, method, bytes, executor);
    case DType::kFloat64: return run_typed<double>(p, method, bytes, executor);
    default: break;
  }
}

}  // namespace voxcore

namespace voxcore {
namespace {

// Runs parallel_for items one after another on the calling thread (work inside one block).
class InlineExecutor final : public Executor {
 public:
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn) override {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
  int concurrency() const override { return 1; }
};

// Target bytes of src per block: small enough that a block and its reductions stay in L2.
constexpr int64_t kBlockBytes = int64_t{1} << 19;

// The part of `v` covering [lo[a], hi[a]) on the first `axes` axes (the rest whole).
ArrayView sub_view(const ArrayView& v, const int64_t* lo, const int64_t* hi, int axes) {
  ArrayView s = v;
  auto* p = static_cast<uint8_t*>(v.data);
  for (int a = 0; a < axes; ++a) {
    p += lo[a] * v.byte_strides[a];
    s.shape[a] = hi[a] - lo[a];
  }
  s.data = p;
  return s;
}

}  // namespace

void downsample_levels(const ArrayView& src, const std::vector<ArrayView>& dsts,
                       const std::vector<std::vector<int64_t>>& steps, Method method, Executor* executor) {
  constexpr const char* kWhere = "downsample_levels";
  if (dsts.size() != steps.size()) {
    fail(ErrorCode::kInvalidArgument, kWhere,
         "one step per level expected (levels=" + std::to_string(dsts.size()) +
             ", steps=" + std::to_string(steps.size()) + ")");
  }
  if (executor == nullptr) executor = &default_executor();
  const int rank = src.rank();
  // Validate every level up front: a bad level must not leave earlier ones half-written.
  std::vector<int64_t> cum(static_cast<std::size_t>(rank), 1);
  std::vector<std::vector<int64_t>> cums;  // cumulative factor of level k+1
  Shape shape = src.shape;
  for (std::size_t k = 0; k < dsts.size(); ++k) {
    const Shape expected = downsampled_shape(shape, steps[k]);
    if (dsts[k].shape != expected || dsts[k].dtype != src.dtype ||
        dsts[k].byte_strides.size() != dsts[k].shape.size()) {
      fail(ErrorCode::kInvalidArgument, kWhere,
           "level " + std::to_string(k + 1) + " has the wrong shape, dtype or strides");
    }
    for (int a = 0; a < rank; ++a) cum[a] *= steps[k][a];
    cums.push_back(cum);
    shape = expected;
  }
  if (dsts.empty()) return;
  const bool blocked = method != Method::kGaussian && rank >= 1 && src.num_elements() > 0 &&
                       src.byte_strides.size() == src.shape.size();
  if (!blocked) {
    downsample(src, dsts[0], steps[0], method, executor);
    for (std::size_t k = 1; k < dsts.size(); ++k) downsample(dsts[k - 1], dsts[k], steps[k], method, executor);
    return;
  }
  // Block sizes: multiples of the total factor on axis 0 (and axis 1 for rank >= 3).
  const int axes = rank >= 3 ? 2 : 1;
  int64_t inner_bytes = static_cast<int64_t>(itemsize(src.dtype));
  for (int a = axes; a < rank; ++a) inner_bytes *= src.shape[a];
  int64_t block[2] = {cum[0], axes == 2 ? cum[1] : 1};
  const int grow = axes - 1;  // the axis whose block grows toward kBlockBytes
  const int64_t unit = (axes == 2 ? block[0] : 1) * block[grow] * inner_bytes;
  block[grow] *= std::max<int64_t>(1, kBlockBytes / std::max<int64_t>(1, unit));
  if (grow == 1 && block[1] >= src.shape[1]) {
    // Small planes: whole rows of axis 1 per block, grow along axis 0 instead.
    block[1] = src.shape[1];
    block[0] *= std::max<int64_t>(1, kBlockBytes / std::max<int64_t>(1, block[0] * block[1] * inner_bytes));
  }
  int64_t count[2] = {1, 1};
  for (int a = 0; a < axes; ++a) {
    block[a] = std::min(block[a], src.shape[a]);
    count[a] = (src.shape[a] + block[a] - 1) / block[a];
  }
  const int64_t total = count[0] * count[1];
  InlineExecutor inline_exec;
  executor->parallel_for(total, [&](int64_t b) {
    int64_t lo[2] = {(b / count[1]) * block[0], (b % count[1]) * block[1]};
    int64_t hi[2] = {std::min(lo[0] + block[0], src.shape[0]), axes == 2 ? std::min(lo[1] + block[1], src.shape[1]) : 0};
    ArrayView prev = sub_view(src, lo, hi, axes);
    for (std::size_t k = 0; k < dsts.size(); ++k) {
      int64_t l[2], h[2];
      for (int a = 0; a < axes; ++a) {
        // Block starts are multiples of every cumulative factor, so the level-k block is exact.
        l[a] = lo[a] / cums[k][a];
        h[a] = std::min((hi[a] + cums[k][a] - 1) / cums[k][a], dsts[k].shape[a]);
      }
      const ArrayView out = sub_view(dsts[k], l, h, axes);
      downsample(prev, out, steps[k], method, &inline_exec);
      prev = out;
    }
  });
}

}  // namespace voxcore
