#pragma once
// Planning and per-voxel bodies of the device downsample. One thread computes one output voxel;
// the bodies are host-and-device so that a machine without a GPU can run every voxel in a loop
// and compare with the CPU kernels (tests/cpp/test_pyramid.cpp does). The __global__
// wrapper and the launches live in pyramid.cu.
//
// The arithmetic follows cpp/src/pyramid.cpp step for step so that results match bit for bit:
// window voxels are visited in C order (source rows of the window, then along the last axis);
// a float mean adds a dense factor-2 pair first and then adds the pair to the sum, as the CPU
// fold does; gaussian sums are nested per axis in the CPU's pass order (axis 0 innermost), with
// taps computed on the host by the CPU's formula and products and sums rounded separately
// (no fused multiply-add).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "voxcore/array_view.hpp"
#include "voxcore/dtype.hpp"
#include "voxcore/pyramid.hpp"

#if defined(__CUDACC__)
#define VOXCORE_HD __host__ __device__
#else
#define VOXCORE_HD
#endif

namespace voxcore::cuda::detail {

// Problems of up to this rank (after dropping unit axes) run with fixed-size, unrolled loops;
// larger ones with kMaxRank arrays and a runtime rank.
constexpr int kSmallRank = 4;
// Mode windows of up to this many voxels are sorted in a per-thread array; larger ones are
// counted in place, O(window^2) reads.
constexpr int kModeLocal = 64;

__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

// The problem, normalised: axes of extent 1 dropped (never the last axis, whose factor decides
// the float mean's pairing; never a blurred gaussian axis, whose taps round), the rest in source
// order. taps/tap0/woff: the gaussian taps of each axis, the same for every output index:
// source index clamp(i*f + tap0 + t, 0, n-1) for t < taps, weight weights[woff + t].
struct Plan {
  const uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  bool aligned = true;  // every pointer and stride a multiple of the item size
  int64_t total = 1;    // output voxels
  std::vector<int64_t> n, f, m, ss, ds, taps, tap0, woff;
  std::vector<double> weights;  // all axes' weights, then one 1.0 for padding axes
};

// src and dst already validated (downsample's checks), rank >= 1, no empty axis.
inline Plan make_plan(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors,
                      Method method) {
  Plan p;
  p.src = static_cast<const uint8_t*>(src.data);
  p.dst = static_cast<uint8_t*>(dst.data);
  const int64_t item = static_cast<int64_t>(itemsize(src.dtype));
  uint64_t bits = reinterpret_cast<uintptr_t>(p.src) | reinterpret_cast<uintptr_t>(p.dst);
  const int rank = src.rank();
  for (int a = 0; a < rank; ++a) {
    const int64_t n = src.shape[a], f = factors[a];
    bits |= static_cast<uint64_t>(src.byte_strides[a]) | static_cast<uint64_t>(dst.byte_strides[a]);
    if (n == 1 && a != rank - 1 && (f == 1 || method != Method::kGaussian)) continue;
    p.n.push_back(n);
    p.f.push_back(f);
    p.m.push_back(dst.shape[a]);
    p.ss.push_back(src.byte_strides[a]);
    p.ds.push_back(dst.byte_strides[a]);
    p.total *= dst.shape[a];
    // The CPU's make_taps at output index 0. Index i's taps are these shifted by i*f: i*f and
    // the window centre are exact in double, so every tap offset, weight and sum is the same.
    int64_t first = 0;
    const std::size_t start = p.weights.size();
    if (f == 1) {
      p.weights.push_back(1.0);
    } else {
      const double sigma = gaussian_sigma(f), radius = 3 * sigma;
      const double c = static_cast<double>(0 * f) + static_cast<double>(f - 1) / 2;
      first = static_cast<int64_t>(std::ceil(c - radius));
      double sum = 0;
      for (int64_t k = first; k <= static_cast<int64_t>(std::floor(c + radius)); ++k) {
        const double x = static_cast<double>(k) - c;
        const double g = std::exp(-x * x / (2 * sigma * sigma));
        p.weights.push_back(g);
        sum += g;
      }
      for (std::size_t q = start; q < p.weights.size(); ++q) p.weights[q] /= sum;
    }
    p.taps.push_back(static_cast<int64_t>(p.weights.size() - start));
    p.tap0.push_back(first);
    p.woff.push_back(static_cast<int64_t>(start));
  }
  p.weights.push_back(1.0);
  p.aligned = bits % static_cast<uint64_t>(item) == 0;
  return p;
}

inline int plan_rank(const Plan& p) { return static_cast<int>(p.n.size()); }

// What a kernel receives (by value). Rank R < kMaxRank: exactly R axes, unit axes padded in
// front. R == kMaxRank: `rank` axes.
template <int R>
struct Params {
  const uint8_t* src;
  uint8_t* dst;
  const double* weights;
  int rank;
  bool aligned;
  int64_t total;
  int64_t n[R], f[R], m[R], ss[R], ds[R];
  int64_t taps[R], tap0[R], woff[R];
};

template <int R>
Params<R> make_params(const Plan& plan, const double* weights) {
  Params<R> p;
  p.src = plan.src;
  p.dst = plan.dst;
  p.weights = weights;
  p.aligned = plan.aligned;
  p.total = plan.total;
  const int r = plan_rank(plan);
  const int pad = R == kMaxRank ? 0 : R - r;
  p.rank = R == kMaxRank ? r : R;
  const int64_t unit_w = static_cast<int64_t>(plan.weights.size()) - 1;
  for (int a = 0; a < R; ++a) {
    const int b = a - pad;
    const bool real = b >= 0 && b < r;
    p.n[a] = real ? plan.n[b] : 1;
    p.f[a] = real ? plan.f[b] : 1;
    p.m[a] = real ? plan.m[b] : 1;
    p.ss[a] = real ? plan.ss[b] : 0;
    p.ds[a] = real ? plan.ds[b] : 0;
    p.taps[a] = real ? plan.taps[b] : 1;
    p.tap0[a] = real ? plan.tap0[b] : 0;
    p.woff[a] = real ? plan.woff[b] : unit_w;
  }
  return p;
}

// ---- element access and arithmetic ----

template <typename T>
VOXCORE_HD inline T load(const uint8_t* ptr, bool aligned) {
  if (aligned) return *reinterpret_cast<const T*>(ptr);
  T v;
  memcpy(&v, ptr, sizeof(T));
  return v;
}

template <typename T>
VOXCORE_HD inline void store(uint8_t* ptr, T v, bool aligned) {
  if (aligned) {
    *reinterpret_cast<T*>(ptr) = v;
  } else {
    memcpy(ptr, &v, sizeof(T));
  }
}

VOXCORE_HD inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
VOXCORE_HD inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Separately rounded product and sum: the compiler may not fuse them (the CPU does not).
VOXCORE_HD inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
VOXCORE_HD inline double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

template <typename A>
constexpr bool kSigned = std::is_signed<A>::value || std::is_same<A, Int128>::value;

// The accumulator that sums any window of T exactly (floats: double), as on the CPU.
template <typename T>
using WideSum = std::conditional_t<
    std::is_floating_point<T>::value, double,
    std::conditional_t<sizeof(T) == 8, std::conditional_t<std::is_signed<T>::value, Int128, UInt128>,
                       std::conditional_t<std::is_signed<T>::value, int64_t, uint64_t>>>;

// Integer sum / count rounded half away from zero (count > 0).
template <typename A>
VOXCORE_HD inline A round_div(A s, A c) {
  if constexpr (kSigned<A>) {
    return s >= 0 ? (s + c / 2) / c : -((-s + c / 2) / c);
  } else {
    return (s + c / 2) / c;
  }
}

// The CPU's min/max fold: `b != b` is a NaN test, so the last NaN wins, else the first extreme.
template <typename T>
VOXCORE_HD inline T min_op(T a, T b) { return (b < a || b != b) ? b : a; }
template <typename T>
VOXCORE_HD inline T max_op(T a, T b) { return (b > a || b != b) ? b : a; }

// Constants, not calls: device code may use a constexpr variable but not a host-only function.
template <typename T>
constexpr T kMaxOrInf =
    std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
template <typename T>
constexpr T kLowestOrNegInf =
    std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
template <typename T>
constexpr T kLowest = std::numeric_limits<T>::lowest();
template <typename T>
constexpr T kMax = std::numeric_limits<T>::max();

// Mode order: NaNs after every number and equal to each other; -0.0 == 0.0.
template <typename T>
VOXCORE_HD inline bool mode_less(T a, T b) { return a < b || (!(a != a) && b != b); }
template <typename T>
VOXCORE_HD inline bool mode_same(T a, T b) { return a == b || (a != a && b != b); }

template <typename T>
VOXCORE_HD inline T from_double(double x) {
  if constexpr (std::is_floating_point<T>::value) {
    return static_cast<T>(x);
  } else {
#if defined(__CUDA_ARCH__)
    const double r = ::round(x);
#else
    const double r = std::round(x);
#endif
    if (!(r > static_cast<double>(kLowest<T>))) return kLowest<T>;
    if (r >= static_cast<double>(kMax<T>)) return kMax<T>;
    return static_cast<T>(r);
  }
}

// ---- windows ----

// One output voxel's window: its first source voxel and its extent per axis.
template <int R>
struct Window {
  const uint8_t* base;
  int64_t cnt[R];
};

template <int R>
VOXCORE_HD inline int rank_of(const Params<R>& p) {
  if constexpr (R == kMaxRank) {
    return p.rank;
  } else {
    return R;
  }
}

// fn(row) for each source row of the window (all axes but the last), in C order.
template <int R, typename F>
VOXCORE_HD inline void for_each_row(const Params<R>& p, const Window<R>& w, F&& fn) {
  const int rank = rank_of(p);
  int64_t pos[R];
  for (int a = 0; a < rank; ++a) pos[a] = 0;
  const uint8_t* row = w.base;
  for (;;) {
    fn(row);
    int a = rank - 2;
    for (; a >= 0; --a) {
      row += p.ss[a];
      if (++pos[a] < w.cnt[a]) break;
      row -= pos[a] * p.ss[a];
      pos[a] = 0;
    }
    if (a < 0) return;
  }
}

// fn(value) for each voxel of the window, in C order.
template <typename T, int R, typename F>
VOXCORE_HD inline void for_each_value(const Params<R>& p, const Window<R>& w, F&& fn) {
  const int last = rank_of(p) - 1;
  const int64_t n = w.cnt[last], s = p.ss[last];
  for_each_row(p, w, [&](const uint8_t* row) {
    for (int64_t k = 0; k < n; ++k) fn(load<T>(row + k * s, p.aligned));
  });
}

// ---- the methods ----

template <typename T, int R>
VOXCORE_HD inline T mean_value(const Params<R>& p, const Window<R>& w) {
  using A = WideSum<T>;
  const int last = rank_of(p) - 1;
  const int64_t n = w.cnt[last], s = p.ss[last];
  A acc = A(0);
  int64_t rows = 0;
  for_each_row(p, w, [&](const uint8_t* row) {
    ++rows;
    if constexpr (std::is_floating_point<T>::value) {
      // The CPU folds a dense row with factor 2 in pairs: acc + (x0 + x1).
      const bool dense = s == static_cast<int64_t>(sizeof(T)) && reinterpret_cast<uintptr_t>(row) % alignof(T) == 0;
      if (dense && p.f[last] == 2 && n == 2) {
        acc = acc + (A(load<T>(row, p.aligned)) + A(load<T>(row + s, p.aligned)));
        return;
      }
    }
    for (int64_t k = 0; k < n; ++k) acc = acc + A(load<T>(row + k * s, p.aligned));
  });
  if constexpr (std::is_floating_point<T>::value) {
    return static_cast<T>(acc / (static_cast<A>(rows) * static_cast<A>(n)));
  } else {
    return static_cast<T>(round_div<A>(acc, static_cast<A>(rows) * static_cast<A>(n)));
  }
}

template <typename T, int R>
VOXCORE_HD inline T mode_value(const Params<R>& p, const Window<R>& w) {
  int64_t volume = 1;
  for (int a = 0; a < rank_of(p); ++a) volume *= w.cnt[a];
  T best{};
  if (volume <= kModeLocal) {
    // Stable insertion sort, then the first longest run: ties go to the smaller value, and
    // among values that compare equal (-0.0/0.0, NaNs) to the first in window order.
    T vals[kModeLocal];
    int count = 0;
    for_each_value<T>(p, w, [&](T v) { vals[count++] = v; });
    for (int j = 1; j < count; ++j) {
      const T v = vals[j];
      int i = j;
      for (; i > 0 && mode_less(v, vals[i - 1]); --i) vals[i] = vals[i - 1];
      vals[i] = v;
    }
    best = vals[0];
    int best_count = 0;
    for (int i = 0; i < count;) {
      int e = i + 1;
      while (e < count && mode_same(vals[e], vals[i])) ++e;
      if (e - i > best_count) {
        best_count = e - i;
        best = vals[i];
      }
      i = e;
    }
    return best;
  }
  // Count every value's occurrences; keep a strictly better count, or an equal count with a
  // smaller value. Equal values have equal counts, so the first in window order is kept.
  int64_t best_count = 0;
  for_each_value<T>(p, w, [&](T v) {
    int64_t c = 0;
    for_each_value<T>(p, w, [&](T u) { c += mode_same(u, v) ? 1 : 0; });
    if (c > best_count || (c == best_count && mode_less(v, best))) {
      best_count = c;
      best = v;
    }
  });
  return best;
}

// sum over t[rank-1] of w * (... sum over t[1] of w * (sum over t[0] of w * src)): the CPU's
// separable passes (axis 0 first) evaluated for one output voxel, each sum starting at 0.0.
template <typename T, int R>
VOXCORE_HD inline T gaussian_value(const Params<R>& p, const int64_t* idx) {
  const int rank = rank_of(p);
  double acc[R];
  int64_t t[R], contrib[R];
  int64_t off = 0;
  for (int a = 0; a < rank; ++a) {
    acc[a] = 0.0;
    t[a] = 0;
    contrib[a] = clamp64(idx[a] * p.f[a] + p.tap0[a], 0, p.n[a] - 1) * p.ss[a];
    off += contrib[a];
  }
  for (;;) {
    const double x = static_cast<double>(load<T>(p.src + off, p.aligned));
    acc[0] = add_rn(acc[0], mul_rn(p.weights[p.woff[0] + t[0]], x));
    for (int a = 0;; ++a) {
      const bool more = ++t[a] < p.taps[a];
      if (!more) t[a] = 0;
      off -= contrib[a];
      contrib[a] = clamp64(idx[a] * p.f[a] + p.tap0[a] + t[a], 0, p.n[a] - 1) * p.ss[a];
      off += contrib[a];
      if (more) break;
      if (a == rank - 1) return from_double<T>(acc[a]);
      acc[a + 1] = add_rn(acc[a + 1], mul_rn(p.weights[p.woff[a + 1] + t[a + 1]], acc[a]));
      acc[a] = 0.0;
    }
  }
}

// Output voxel `linear` (C order over the output shape).
template <typename T, Method M, int R>
VOXCORE_HD inline void downsample_voxel(const Params<R>& p, int64_t linear) {
  const int rank = rank_of(p);
  int64_t idx[R];
  Window<R> w;
  int64_t d_off = 0, s_off = 0;
  for (int a = rank - 1; a >= 0; --a) {
    idx[a] = linear % p.m[a];
    linear /= p.m[a];
    d_off += idx[a] * p.ds[a];
    s_off += idx[a] * p.f[a] * p.ss[a];
    w.cnt[a] = min64(p.f[a], p.n[a] - idx[a] * p.f[a]);
  }
  w.base = p.src + s_off;
  T out;
  if constexpr (M == Method::kNearest) {
    out = load<T>(w.base, p.aligned);
  } else if constexpr (M == Method::kMean) {
    out = mean_value<T>(p, w);
  } else if constexpr (M == Method::kMin) {
    out = kMaxOrInf<T>;
    for_each_value<T>(p, w, [&](T v) { out = min_op(out, v); });
  } else if constexpr (M == Method::kMax) {
    out = kLowestOrNegInf<T>;
    for_each_value<T>(p, w, [&](T v) { out = max_op(out, v); });
  } else if constexpr (M == Method::kMode) {
    out = mode_value<T>(p, w);
  } else {
    out = gaussian_value<T>(p, idx);
  }
  store<T>(p.dst + d_off, out, p.aligned);
}

// ---- dispatch: fn(type tag, method constant) for a runtime dtype and method ----

template <typename T>
struct TypeTag {
  using type = T;
};
template <Method M>
using MethodTag = std::integral_constant<Method, M>;

template <typename F>
void visit_method(Method method, F&& fn) {
  switch (method) {
    case Method::kMean: return fn(MethodTag<Method::kMean>{});
    case Method::kGaussian: return fn(MethodTag<Method::kGaussian>{});
    case Method::kMode: return fn(MethodTag<Method::kMode>{});
    case Method::kNearest: return fn(MethodTag<Method::kNearest>{});
    case Method::kMin: return fn(MethodTag<Method::kMin>{});
    case Method::kMax: return fn(MethodTag<Method::kMax>{});
  }
}

// Returns false for a dtype without device kernels (bool, float16, complex).
template <typename F>
bool visit_dtype(DType dtype, F&& fn) {
  switch (dtype) {
    case DType::kInt8: fn(TypeTag<int8_t>{}); return true;
    case DType::kUInt8: fn(TypeTag<uint8_t>{}); return true;
    case DType::kInt16: fn(TypeTag<int16_t>{}); return true;
    case DType::kUInt16: fn(TypeTag<uint16_t>{}); return true;
    case DType::kInt32: fn(TypeTag<int32_t>{}); return true;
    case DType::kUInt32: fn(TypeTag<uint32_t>{}); return true;
    case DType::kInt64: fn(TypeTag<int64_t>{}); return true;
    case DType::kUInt64: fn(TypeTag<uint64_t>{}); return true;
    case DType::kFloat32: fn(TypeTag<float>{}); return true;
    case DType::kFloat64: fn(TypeTag<double>{}); return true;
    default: return false;
  }
}

}  // namespace voxcore::cuda::detail
