#include "voxcore/transform.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <tmmintrin.h>
#define VOXCORE_SPLIT3_SSSE3 1
#endif

#include "detail/checked.hpp"
#include "detail/permute_plan.hpp"
#include "voxcore/error.hpp"

// copy(), fill(), all_equal() and byteswap_inplace() of strided views. One engine serves copy()
// and permute_flip() (transform_permute.cpp): permute_flip only rewrites the source strides and
// copies. The engine normalises the problem (Plan), then either streams rows (the innermost axis
// is the fastest one of both views: memcpy or a reversed/strided loop) or, when the two views
// have different fastest axes, transposes cache-sized tiles through a per-thread buffer.
namespace voxcore {
namespace {

// Below this the pool hand-off costs more than the copy (a decoded chunk stays on its thread).
constexpr int64_t kParallelBytes = int64_t{2} << 20;
// Bytes of a source run copied into the tile buffer, and of a destination run written from it.
constexpr int64_t kTileSrcBytes = 1024;
constexpr int64_t kTileDstBytes = 128;
constexpr int64_t kLine = 64;  // cache line bytes
// Tile buffer rows are padded by a cache line so its columns do not all fall in one cache set.
constexpr int64_t kTilePad = kLine;
// How many source rows ahead the tile gather prefetches.
constexpr int64_t kPrefetchRows = 8;
// Rows up to this long get software prefetch in row mode.
constexpr int64_t kPrefetchRowBytes = 4096;
// Outputs at least this large are written with streaming stores, in rows at least this long.
constexpr int64_t kStreamBytes = int64_t{32} << 20;
constexpr int64_t kStreamRowBytes = 1024;
// A transpose whose source- or destination-fastest axis is this short (the channels of a pixel)
// runs as strided rows along the other axis instead of in tiles, which would be mostly edge.
constexpr int64_t kShortAxis = 4;

struct Item16 {
  uint64_t lo, hi;
};

template <typename T>
inline void move_item(uint8_t* d, const uint8_t* s) {
  T v;
  std::memcpy(&v, s, sizeof(T));
  std::memcpy(d, &v, sizeof(T));
}

// Requests the cache lines of [p, p + n) ahead of use. Tile rows sit in different pages, where
// the hardware prefetchers do not follow, so without this every row pays a full miss.
// Integer address arithmetic: the address may lie past an axis end (prefetches never fault).
inline void prefetch_run(const void* p, int64_t n, bool write) {
  const auto first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kLine - 1};
  const auto last = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(n) - 1;
  for (uintptr_t line = first; line <= last; line += kLine) {
    if (write) {
      __builtin_prefetch(reinterpret_cast<const void*>(line), 1);
    } else {
      __builtin_prefetch(reinterpret_cast<const void*>(line), 0);
    }
  }
}

using Plan = detail::StridePlan;
using detail::check_same;
using detail::check_strides;
using detail::make_plan;

// Calls fn(src_row, dst_row) for rows [lo, hi) of the outer axes [0, rank-1), in C order.
template <typename F>
void for_rows(const Plan& p, int64_t lo, int64_t hi, F&& fn) {
  const int outer = p.rank - 1;
  if (outer <= 0) {
    if (lo < hi) fn(p.src, p.dst);
    return;
  }
  int64_t idx[kMaxRank];
  const uint8_t* s = p.src;
  uint8_t* d = p.dst;
  int64_t rem = lo;
  for (int i = outer - 1; i >= 0; --i) {
    idx[i] = rem % p.n[i];
    rem /= p.n[i];
    s += idx[i] * p.ss[i];
    d += idx[i] * p.ds[i];
  }
  const int last = outer - 1;
  const int64_t nl = p.n[last], sl = p.ss[last], dl = p.ds[last];
  for (int64_t count = hi - lo; count > 0;) {
    const int64_t run = std::min(nl - idx[last], count);
    for (int64_t k = 0; k < run; ++k, s += sl, d += dl) fn(s, d);
    count -= run;
    if (count == 0) return;
    s -= nl * sl;  // the run ended at the end of the last axis
    d -= nl * dl;
    idx[last] = 0;
    for (int ax = last - 1; ax >= 0; --ax) {
      s += p.ss[ax];
      d += p.ds[ax];
      if (++idx[ax] < p.n[ax]) break;
      s -= p.n[ax] * p.ss[ax];
      d -= p.n[ax] * p.ds[ax];
      idx[ax] = 0;
    }
  }
}

// Runs body(row_lo, row_hi, col_lo, col_hi) over the plan's rows, split across the executor when
// the copy is large: by rows when there are enough, else rows are cut into column ranges.
template <typename F>
void split_rows(const Plan& p, int64_t bytes, Executor* executor, F&& body) {
  const int64_t rows = p.outer_rows(), cols = p.n[p.rank - 1];
  if (executor == nullptr || executor->concurrency() <= 1 || bytes < kParallelBytes) {
    body(0, rows, 0, cols);
    return;
  }
  const int64_t parts = int64_t{executor->concurrency()} * 4;
  if (rows >= parts) {
    executor->parallel_for(parts, [&](int64_t i) {
      const int64_t lo = rows * i / parts, hi = rows * (i + 1) / parts;
      if (lo < hi) body(lo, hi, 0, cols);
    });
    return;
  }
  const int64_t per_row = (parts + rows - 1) / rows;
  executor->parallel_for(rows * per_row, [&](int64_t u) {
    const int64_t row = u / per_row, c = u % per_row;
    const int64_t lo = cols * c / per_row, hi = cols * (c + 1) / per_row;
    if (lo < hi) body(row, row + 1, lo, hi);
  });
}

// Orders streaming stores before the work is reported done.
inline void sfence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Copies n bytes to dst with streaming (non-temporal) stores, for outputs far larger than the
// caches: no read-for-ownership, no eviction of the working set. Only whole cache lines are
// streamed (a line also written with ordinary stores is flushed and read again); a partial line
// at the start takes ordinary stores, and so does one at the end when `last`. Otherwise that
// partial tail is left unwritten and its length returned: in tile mode it is carried to the
// next tile of the same row, so every line is written once.
inline int64_t stream_run(uint8_t* dst, const uint8_t* src, int64_t n, bool last) {
#if defined(__SSE2__)
  int64_t x = std::min<int64_t>(n, (kLine - (reinterpret_cast<uintptr_t>(dst) & (kLine - 1))) & (kLine - 1));
  if (x > 0) std::memcpy(dst, src, static_cast<std::size_t>(x));
  for (; x + kLine <= n; x += kLine) {
    for (int q = 0; q < kLine; q += 16) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + x + q),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + x + q)));
    }
  }
  if (!last) return n - x;
  if (x < n) std::memcpy(dst + x, src + x, static_cast<std::size_t>(n - x));
  return 0;
#else
  std::memcpy(dst, src, static_cast<std::size_t>(n));
  return 0;
#endif
}

// Row mode: the innermost axis is the fastest one of the destination and of the source.
template <typename T>
void copy_rows(const Plan& p, Executor* executor) {
  constexpr int64_t k = sizeof(T);
  const int last = p.rank - 1;
  const int64_t si = p.ss[last], di = p.ds[last];
  const int64_t bytes = p.outer_rows() * p.n[last] * k;
  if (si == k && di == k) {
    split_rows(p, bytes, executor, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
      const std::size_t n = static_cast<std::size_t>((c1 - c0) * k);
      Plan q = p;
      q.src += c0 * k;
      q.dst += c0 * k;
      if (bytes >= kStreamBytes && n >= kStreamRowBytes) {
        // Far larger than the caches: each thread streams its share (memcpy would only switch
        // to streaming stores for a single call of this whole size).
        for_rows(q, r0, r1, [n](const uint8_t* s, uint8_t* d) { stream_run(d, s, static_cast<int64_t>(n), true); });
        sfence();
        return;
      }
      if (p.rank < 2 || n > kPrefetchRowBytes) {
        for_rows(q, r0, r1, [n](const uint8_t* s, uint8_t* d) { std::memcpy(d, s, n); });
        return;
      }
      // Short rows in scattered places (a chunk placed into a big array): ask for the row
      // kPrefetchRows ahead. Past the end of an axis that address is unrelated but harmless.
      const uintptr_t sa = static_cast<uintptr_t>(p.ss[p.rank - 2] * kPrefetchRows);
      const uintptr_t da = static_cast<uintptr_t>(p.ds[p.rank - 2] * kPrefetchRows);
      for_rows(q, r0, r1, [n, sa, da](const uint8_t* s, uint8_t* d) {
        prefetch_run(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(s) + sa), n, false);
        prefetch_run(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(d) + da), n, true);
        std::memcpy(d, s, n);
      });
    });
  } else if (si == -k && di == k) {
    split_rows(p, bytes, executor, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
      const int64_t n = c1 - c0;
      Plan q = p;
      q.src -= c0 * k;
      q.dst += c0 * k;
      for_rows(q, r0, r1, [n](const uint8_t* s, uint8_t* d) {
        constexpr int64_t w = sizeof(T);
        for (int64_t i = 0; i < n; ++i) move_item<T>(d + i * w, s - i * w);
      });
    });
  } else {
    split_rows(p, bytes, executor, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
      const int64_t n = c1 - c0;
      Plan q = p;
      q.src += c0 * si;
      q.dst += c0 * di;
      for_rows(q, r0, r1, [n, si, di](const uint8_t* s, uint8_t* d) {
        for (int64_t i = 0; i < n; ++i) move_item<T>(d + i * di, s + i * si);
      });
    });
  }
}

#if defined(__SSE2__)
template <int E>
inline __m128i unpack_lo(__m128i a, __m128i b) {
  if constexpr (E == 1) return _mm_unpacklo_epi8(a, b);
  if constexpr (E == 2) return _mm_unpacklo_epi16(a, b);
  if constexpr (E == 4) return _mm_unpacklo_epi32(a, b);
  if constexpr (E == 8) return _mm_unpacklo_epi64(a, b);
}
template <int E>
inline __m128i unpack_hi(__m128i a, __m128i b) {
  if constexpr (E == 1) return _mm_unpackhi_epi8(a, b);
  if constexpr (E == 2) return _mm_unpackhi_epi16(a, b);
  if constexpr (E == 4) return _mm_unpackhi_epi32(a, b);
  if constexpr (E == 8) return _mm_unpackhi_epi64(a, b);
}

// In-register transpose of a VxV block of E-byte items (V = 16 / E): log2(V) perfect shuffles.
template <int E>
inline void transpose_block(__m128i* r) {
  constexpr int V = 16 / E;
  for (int stage = 1; stage < V; stage *= 2) {
    __m128i t[V];
    for (int i = 0; i < V / 2; ++i) {
      t[2 * i] = unpack_lo<E>(r[i], r[i + V / 2]);
      t[2 * i + 1] = unpack_hi<E>(r[i], r[i + V / 2]);
    }
    for (int i = 0; i < V; ++i) r[i] = t[i];
  }
}
#endif

// Writes dst(ii, jj) = buf[jj * ld + col(ii)] for ii < nb, jj < na, where col(ii) is ii, or
// nb - 1 - ii when the source ran backwards along b (rev).
template <typename T>
void tile_out(const uint8_t* buf, int64_t ld, int64_t nb, int64_t na, bool rev, uint8_t* d,
              int64_t dsb, int64_t dsa) {
  constexpr int64_t k = sizeof(T);
  int64_t ii = 0;
#if defined(__SSE2__)
  constexpr int V = 16 / static_cast<int>(k);
  if constexpr (V > 1) {
    if (dsa == k) {
      for (int64_t q = 0; q < V && q < nb; ++q) prefetch_run(d + q * dsb, na * k, true);
      for (; ii + V <= nb; ii += V) {
        for (int64_t q = ii + V; q < ii + 2 * V && q < nb; ++q) prefetch_run(d + q * dsb, na * k, true);
        const int64_t c = rev ? nb - ii - V : ii;
        int64_t jj = 0;
        for (; jj + V <= na; jj += V) {
          __m128i r[V];
          for (int q = 0; q < V; ++q) {
            r[q] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + (jj + q) * ld + c * k));
          }
          transpose_block<static_cast<int>(k)>(r);
          for (int q = 0; q < V; ++q) {
            const int64_t row = rev ? ii + V - 1 - q : ii + q;
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + row * dsb + jj * k), r[q]);
          }
        }
        for (int q = 0; q < V && jj < na; ++q) {
          const int64_t row = ii + q, col = rev ? nb - 1 - row : row;
          for (int64_t j = jj; j < na; ++j) move_item<T>(d + row * dsb + j * k, buf + j * ld + col * k);
        }
      }
    }
  }
#endif
  for (; ii < nb; ++ii) {
    const int64_t col = rev ? nb - 1 - ii : ii;
    uint8_t* row = d + ii * dsb;
    for (int64_t j = 0; j < na; ++j) move_item<T>(row + j * dsa, buf + j * ld + col * k);
  }
}

// Tile edges along the source run (b) and the destination run (a), in items of k bytes.
constexpr int64_t tile_b(int64_t k) { return std::max<int64_t>(kTileSrcBytes / k, 1); }
constexpr int64_t tile_a(int64_t k) { return std::max<int64_t>(kTileDstBytes / k, 8); }
// The gather buffer (tile_a rows of one source run), the staging buffer (tile_b rows of one
// destination run behind room for a carried partial line, see stream_run) and the carry sizes.
constexpr int64_t tile_scratch_bytes(int64_t k) {
  return tile_a(k) * (tile_b(k) * k + kTilePad) + tile_b(k) * (kLine + tile_a(k) * k + kTilePad) +
         tile_b(k) * int64_t{sizeof(int64_t)};
}
constexpr int64_t kScratchBytes =
    std::max({tile_scratch_bytes(1), tile_scratch_bytes(2), tile_scratch_bytes(4), tile_scratch_bytes(8),
              tile_scratch_bytes(16)});

// Per-thread tile scratch, made on a thread's first tiled copy and kept: no allocation per call
// and no large stack frame on an embedding application's threads.
uint8_t* tile_scratch() {
  thread_local std::unique_ptr<uint8_t[]> holder;
  if (!holder) holder.reset(new uint8_t[kScratchBytes + kLine]);
  const auto addr = reinterpret_cast<uintptr_t>(holder.get());
  return holder.get() + ((kLine - (addr & (kLine - 1))) & (kLine - 1));
}

// Tile mode: the destination's fastest axis a differs from the source's fastest axis b. Each
// tile (bb items along b, ba along a) is gathered source-row by source-row into a buffer, then
// transposed destination-row by destination-row: straight into the destination, or, for
// outputs far larger than the caches, into a staging buffer whose rows are then streamed out.
// Work units are (outer index, tile row along b); a unit walks all tiles along a.
template <typename T>
void copy_tiles(const Plan& p, int a, int b, Executor* executor) {
  constexpr int64_t k = sizeof(T);
  constexpr int64_t bb = tile_b(k), ba = tile_a(k);
  constexpr int64_t ld = bb * k + kTilePad, ld_stage = kLine + ba * k + kTilePad;
  int outer_axes[kMaxRank];
  int no = 0;
  int64_t outer_count = 1;
  for (int i = 0; i < p.rank; ++i) {
    if (i != a && i != b) {
      outer_axes[no++] = i;
      outer_count *= p.n[i];
    }
  }
  const int64_t na_total = p.n[a], nb_total = p.n[b];
  const int64_t ssa = p.ss[a], ssb = p.ss[b], dsa = p.ds[a], dsb = p.ds[b];
  const int64_t tiles_b = (nb_total + bb - 1) / bb;
  const int64_t units = outer_count * tiles_b;
  const int64_t bytes = outer_count * na_total * nb_total * k;
#if defined(__SSE2__)
  const bool stream = bytes >= kStreamBytes && dsa == k;
#else
  const bool stream = false;
#endif
  const bool rev = ssb == -k;
  // Each source row of a tile: its lowest address and the bytes it spans.
  const int64_t run_shift = ssb < 0 ? ssb : 0, run_span = std::abs(ssb);

  auto run_units = [&](int64_t lo, int64_t hi) {
    uint8_t* buf = tile_scratch();
    uint8_t* stage = buf + ba * ld;  // row ii's tile bytes start at stage + ii * ld_stage + kLine
    auto* carry = reinterpret_cast<int64_t*>(stage + bb * ld_stage);
    for (int64_t u = lo; u < hi; ++u) {
      int64_t rem = u / tiles_b;
      const int64_t i0 = (u % tiles_b) * bb, nb = std::min(bb, nb_total - i0);
      const uint8_t* s = p.src + i0 * ssb;
      uint8_t* d = p.dst + i0 * dsb;
      for (int q = no - 1; q >= 0; --q) {
        const int ax = outer_axes[q];
        const int64_t idx = rem % p.n[ax];
        rem /= p.n[ax];
        s += idx * p.ss[ax];
        d += idx * p.ds[ax];
      }
      const int64_t run_bytes = (nb - 1) * run_span + k;
      const uint8_t* run0 = s + (nb - 1) * run_shift;
      for (int64_t jj = 0; jj < kPrefetchRows && jj < na_total; ++jj) prefetch_run(run0 + jj * ssa, run_bytes, false);
      if (stream) std::fill(carry, carry + nb, int64_t{0});
      for (int64_t j0 = 0; j0 < na_total; j0 += ba) {
        const int64_t na = std::min(ba, na_total - j0);
        const uint8_t* st = s + j0 * ssa;
        for (int64_t jj = 0; jj < na; ++jj) {
          // Rows past this tile belong to the next one.
          if (j0 + jj + kPrefetchRows < na_total) prefetch_run(run0 + (j0 + jj + kPrefetchRows) * ssa, run_bytes, false);
          const uint8_t* row = st + jj * ssa;
          uint8_t* out = buf + jj * ld;
          if (ssb == k) {
            std::memcpy(out, row, static_cast<std::size_t>(nb * k));
          } else if (rev) {
            std::memcpy(out, row - (nb - 1) * k, static_cast<std::size_t>(nb * k));
          } else {
            for (int64_t ii = 0; ii < nb; ++ii) move_item<T>(out + ii * k, row + ii * ssb);
          }
        }
        uint8_t* dt = d + j0 * dsa;
        if (stream) {
          // Move each row's carried bytes (the end of the previous tile) in front of this tile.
          for (int64_t ii = 0; ii < nb; ++ii) {
            uint8_t* row = stage + ii * ld_stage + kLine;
            if (carry[ii] > 0) std::memmove(row - carry[ii], row + ba * k - carry[ii], static_cast<std::size_t>(carry[ii]));
          }
          tile_out<T>(buf, ld, nb, na, rev, stage + kLine, ld_stage, k);
          const bool last = j0 + na == na_total;
          const bool first = j0 == 0;
          for (int64_t ii = 0; ii < nb; ++ii) {
            // A row's partial first and last lines take ordinary stores: request them early
            // (only partial ones: a whole line in the cache would slow its streaming store).
            if ((first || last) && ii + kPrefetchRows < nb) {
              const auto ahead = reinterpret_cast<uintptr_t>(dt + (ii + kPrefetchRows) * dsb);
              const uintptr_t end = ahead + static_cast<uintptr_t>(na * k);
              if (first && (ahead & (kLine - 1)) != 0) prefetch_run(reinterpret_cast<const void*>(ahead), 1, true);
              if (last && (end & (kLine - 1)) != 0) prefetch_run(reinterpret_cast<const void*>(end - 1), 1, true);
            }
            const int64_t c = carry[ii];
            carry[ii] = stream_run(dt + ii * dsb - c, stage + ii * ld_stage + kLine - c, c + na * k, last);
          }
        } else {
          tile_out<T>(buf, ld, nb, na, rev, dt, dsb, dsa);
        }
      }
    }
    if (stream) sfence();
  };

  if (executor == nullptr || executor->concurrency() <= 1 || bytes < kParallelBytes || units < 2) {
    run_units(0, units);
    return;
  }
  const int64_t parts = std::min<int64_t>(units, int64_t{executor->concurrency()} * 4);
  executor->parallel_for(parts, [&](int64_t i) { run_units(units * i / parts, units * (i + 1) / parts); });
}

// The plan with axis `outer` just outside axis `inner`, which becomes the last; the other axes
// keep their order in front. Any order of the axes copies the same elements.
Plan with_inner_pair(const Plan& p, int outer, int inner) {
  Plan q = p;
  int m = 0;
  for (int i = 0; i < p.rank; ++i) {
    if (i == outer || i == inner) continue;
    q.n[m] = p.n[i];
    q.ss[m] = p.ss[i];
    q.ds[m] = p.ds[i];
    ++m;
  }
  for (int i : {outer, inner}) {
    q.n[m] = p.n[i];
    q.ss[m] = p.ss[i];
    q.ds[m] = p.ds[i];
    ++m;
  }
  return q;
}

// Three-sample pixels (RGB bytes) split into three planes: n pixels of s into d0, d1, d2.
void split3_scalar(const uint8_t* s, int64_t n, uint8_t* d0, uint8_t* d1, uint8_t* d2) {
  for (int64_t i = 0; i < n; ++i, s += 3) {
    d0[i] = s[0];
    d1[i] = s[1];
    d2[i] = s[2];
  }
}

#if defined(VOXCORE_SPLIT3_SSSE3)
// 16 pixels (48 bytes, three loads) per step: each plane's 16 bytes are gathered from the three
// loads by byte shuffles (pshufb; a mask byte of 0x80 gives zero) and OR'd.
struct Split3Masks {
  alignas(16) uint8_t m[3][3][16];  // [plane][load][byte]
  Split3Masks() {
    for (int c = 0; c < 3; ++c) {
      for (int v = 0; v < 3; ++v) {
        for (int j = 0; j < 16; ++j) {
          const int at = 3 * j + c - 16 * v;
          m[c][v][j] = (at >= 0 && at < 16) ? static_cast<uint8_t>(at) : 0x80;
        }
      }
    }
  }
};

__attribute__((target("ssse3"))) void split3_ssse3(const uint8_t* s, int64_t n, uint8_t* d0, uint8_t* d1,
                                                   uint8_t* d2) {
  static const Split3Masks masks;
  __m128i m[3][3];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 3; ++v) m[c][v] = _mm_load_si128(reinterpret_cast<const __m128i*>(masks.m[c][v]));
  }
  uint8_t* d[3] = {d0, d1, d2};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16, s += 48) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    for (int k = 0; k < 3; ++k) {
      const __m128i plane = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, m[k][0]), _mm_shuffle_epi8(b, m[k][1])),
                                         _mm_shuffle_epi8(c, m[k][2]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d[k] + i), plane);
    }
  }
  split3_scalar(s, n - i, d0 + i, d1 + i, d2 + i);
}
#endif

using Split3 = void (*)(const uint8_t*, int64_t, uint8_t*, uint8_t*, uint8_t*);

Split3 split3_kernel() {
#if defined(VOXCORE_SPLIT3_SSSE3)
  static const Split3 k = __builtin_cpu_supports("ssse3") ? &split3_ssse3 : &split3_scalar;
  return k;
#else
  return &split3_scalar;
#endif
}

// Whether the plan moves packed three-byte pixels (axis b: the samples, axis a: the pixels of a
// row) into planes whose rows are packed, so that copy_split3 serves it.
bool is_split3(const Plan& p, int a, int b, std::size_t item) {
  return item == 1 && p.n[b] == 3 && p.ss[b] == 1 && p.ss[a] == 3 && p.ds[a] == 1;
}

// The rows of the plan without its samples axis b, each split into the three planes at
// dst, dst + ds[b] and dst + 2 ds[b].
void copy_split3(const Plan& p, int a, int b, Executor* executor) {
  Plan q = with_inner_pair(p, b, a);  // ..., b, a: then b dropped
  --q.rank;
  q.n[q.rank - 1] = p.n[a];
  q.ss[q.rank - 1] = p.ss[a];
  q.ds[q.rank - 1] = p.ds[a];
  const int64_t plane = p.ds[b];
  const Split3 split = split3_kernel();
  split_rows(q, q.outer_rows() * q.n[q.rank - 1] * 3, executor,
             [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
               Plan part = q;
               part.src += c0 * 3;
               part.dst += c0;
               const int64_t n = c1 - c0;
               for_rows(part, r0, r1, [&](const uint8_t* s, uint8_t* d) { split(s, n, d, d + plane, d + 2 * plane); });
             });
}

template <typename T>
void run_plan(const Plan& p, Executor* executor) {
  const int a = p.rank - 1;
  const int b = detail::fastest_src_axis(p);
  if (b == a) {
    copy_rows<T>(p, executor);
  } else if (is_split3(p, a, b, sizeof(T))) {
    copy_split3(p, a, b, executor);  // RGB bytes to planes: all three samples in one pass
  } else if (p.n[b] <= kShortAxis) {
    // Pixels to planes (an RGB tile into (c, y, x)): rows along a, one per item of the short
    // axis, read the same source lines while they are in L1.
    copy_rows<T>(with_inner_pair(p, b, a), executor);
  } else if (p.n[a] <= kShortAxis) {
    // Planes to pixels: rows along b, the few destination items of each pixel written together.
    copy_rows<T>(with_inner_pair(p, a, b), executor);
  } else {
    copy_tiles<T>(p, a, b, executor);
  }
}

void run_plan(const Plan& p, std::size_t item, Executor* executor) {
  if (p.rank == 0) {
    std::memcpy(p.dst, p.src, item);
    return;
  }
  switch (item) {
    case 1: return run_plan<uint8_t>(p, executor);
    case 2: return run_plan<uint16_t>(p, executor);
    case 4: return run_plan<uint32_t>(p, executor);
    case 8: return run_plan<uint64_t>(p, executor);
    case 16: return run_plan<Item16>(p, executor);
    default:
      fail(ErrorCode::kUnsupported, "copy", "itemsize " + std::to_string(item) + " is not supported");
  }
}

}  // namespace

namespace detail {

void check_same(const ArrayView& src, const ArrayView& dst, const char* where) {
  if (src.dtype != dst.dtype) {
    fail(ErrorCode::kInvalidArgument, where,
         std::string("dtypes differ (expected=") + dtype_name(dst.dtype) + ", got=" + dtype_name(src.dtype) +
             ")");
  }
  if (src.shape != dst.shape) {
    fail(ErrorCode::kInvalidArgument, where,
         "shapes differ (expected=" + detail::shape_str(dst.shape) + ", got=" + detail::shape_str(src.shape) +
             ")");
  }
}

void check_strides(const ArrayView& v, const char* where) {
  if (v.byte_strides.size() != v.shape.size() || v.rank() > kMaxRank) {
    fail(ErrorCode::kInvalidArgument, where,
         "view rank/strides mismatch (rank=" + std::to_string(v.rank()) +
             ", strides=" + std::to_string(v.byte_strides.size()) + ", max=" + std::to_string(kMaxRank) + ")");
  }
}

}  // namespace detail

namespace {

template <typename T>
void fill_rows(const Plan& p, const void* value) {
  T v;
  std::memcpy(&v, value, sizeof(T));
  const int64_t n = p.n[p.rank - 1], stride = p.ds[p.rank - 1];
  if (stride == static_cast<int64_t>(sizeof(T))) {
    for_rows(p, 0, p.outer_rows(), [&](const uint8_t*, uint8_t* d) {
      for (int64_t i = 0; i < n; ++i) std::memcpy(d + i * int64_t{sizeof(T)}, &v, sizeof(T));
    });
  } else {
    for_rows(p, 0, p.outer_rows(), [&](const uint8_t*, uint8_t* d) {
      for (int64_t i = 0; i < n; ++i) std::memcpy(d + i * stride, &v, sizeof(T));
    });
  }
}

template <typename T>
bool equal_rows(const Plan& p, const void* value) {
  T v;
  std::memcpy(&v, value, sizeof(T));
  const int64_t n = p.n[p.rank - 1], stride = p.ss[p.rank - 1];
  constexpr int64_t kBlock = 4096;  // checked between blocks so a mismatch ends the scan early
  bool equal = true;
  for_rows(p, 0, p.outer_rows(), [&](const uint8_t* s, uint8_t*) {
    for (int64_t i0 = 0; equal && i0 < n; i0 += kBlock) {
      const int64_t i1 = std::min(n, i0 + kBlock);
      T diff{};
      for (int64_t i = i0; i < i1; ++i) {
        T x;
        std::memcpy(&x, s + i * stride, sizeof(T));
        diff |= static_cast<T>(x ^ v);
      }
      equal = diff == 0;
    }
  });
  return equal;
}

}  // namespace

void copy(const ArrayView& src, const ArrayView& dst, Executor* executor) {
  check_same(src, dst, "copy");
  check_strides(src, "copy");
  check_strides(dst, "copy");
  for (int64_t n : src.shape) {
    if (n == 0) return;
  }
  Plan p;
  make_plan(static_cast<const uint8_t*>(src.data), src.byte_strides.data(), static_cast<uint8_t*>(dst.data),
            dst.byte_strides.data(), src.shape, p);
  run_plan(p, itemsize(src.dtype), executor);
}

void fill(const ArrayView& dst, const void* value) {
  check_strides(dst, "fill");
  if (dst.num_elements() == 0) return;
  Plan p;
  auto* d = static_cast<uint8_t*>(dst.data);
  make_plan(d, dst.byte_strides.data(), d, dst.byte_strides.data(), dst.shape, p);
  const std::size_t item = itemsize(dst.dtype);
  if (p.rank == 0) {
    std::memcpy(p.dst, value, item);
    return;
  }
  const auto* bytes = static_cast<const uint8_t*>(value);
  const bool uniform = std::all_of(bytes, bytes + item, [&](uint8_t x) { return x == bytes[0]; });
  const int64_t n = p.n[p.rank - 1];
  if (uniform && p.ds[p.rank - 1] == static_cast<int64_t>(item)) {
    const std::size_t row = static_cast<std::size_t>(n) * item;
    for_rows(p, 0, p.outer_rows(), [&](const uint8_t*, uint8_t* out) { std::memset(out, bytes[0], row); });
    return;
  }
  switch (item) {
    case 1: return fill_rows<uint8_t>(p, value);
    case 2: return fill_rows<uint16_t>(p, value);
    case 4: return fill_rows<uint32_t>(p, value);
    case 8: return fill_rows<uint64_t>(p, value);
    default: {
      const int64_t stride = p.ds[p.rank - 1];
      for_rows(p, 0, p.outer_rows(), [&](const uint8_t*, uint8_t* out) {
        for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * stride, value, item);
      });
    }
  }
}

bool all_equal(const ArrayView& src, const void* value) {
  check_strides(src, "all_equal");
  if (src.num_elements() == 0) return true;
  Plan p;
  const auto* s = static_cast<const uint8_t*>(src.data);
  make_plan(s, src.byte_strides.data(), const_cast<uint8_t*>(s), src.byte_strides.data(), src.shape, p);
  const std::size_t item = itemsize(src.dtype);
  if (p.rank == 0) return std::memcmp(p.src, value, item) == 0;
  switch (item) {
    case 1: return equal_rows<uint8_t>(p, value);
    case 2: return equal_rows<uint16_t>(p, value);
    case 4: return equal_rows<uint32_t>(p, value);
    case 8: return equal_rows<uint64_t>(p, value);
    default: {
      const int64_t n = p.n[p.rank - 1], stride = p.ss[p.rank - 1];
      bool equal = true;
      for_rows(p, 0, p.outer_rows(), [&](const uint8_t* row, uint8_t*) {
        for (int64_t i = 0; equal && i < n; ++i) equal = std::memcmp(row + i * stride, value, item) == 0;
      });
      return equal;
    }
  }
}

void byteswap_inplace(void* data, std::size_t count, std::size_t unit) noexcept {
  auto* p = static_cast<uint8_t*>(data);
  switch (unit) {
    case 0:
    case 1: return;
    case 2:
      for (std::size_t i = 0; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        v = __builtin_bswap16(v);
        std::memcpy(p + 2 * i, &v, 2);
      }
      return;
    case 4:
      for (std::size_t i = 0; i < count; ++i) {
        uint32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        v = __builtin_bswap32(v);
        std::memcpy(p + 4 * i, &v, 4);
      }
      return;
    case 8:
      for (std::size_t i = 0; i < count; ++i) {
        uint64_t v;
        std::memcpy(&v, p + 8 * i, 8);
        v = __builtin_bswap64(v);
        std::memcpy(p + 8 * i, &v, 8);
      }
      return;
    default:
      for (std::size_t i = 0; i < count; ++i) {
        uint8_t* u = p + i * unit;
        for (std::size_t lo = 0, hi = unit - 1; lo < hi; ++lo, --hi) std::swap(u[lo], u[hi]);
      }
  }
}
}  // namespace voxcore
