#pragma once
// Planning and per-thread bodies of the device permute_flip. The bodies are __host__ __device__
// so the index arithmetic can be checked on a machine without a GPU by running every
// (block, thread) in a loop; the __global__ wrappers live in permute_flip.cu.
#include <cstdint>
#include <cstdlib>

#include "detail/permute_plan.hpp"
#include "voxcore/array_view.hpp"

namespace voxcore::cuda::detail {

// Source rank plus the axis that splits a misaligned item into smaller words.
constexpr int kRankCap = ::voxcore::detail::kPlanRankCap;
constexpr int kTile = 32;      // tile edge, in words
constexpr int kTileRows = 8;   // block is kTile x kTileRows threads; each thread moves 4 words

struct alignas(16) Word16 {
  uint64_t x, y;
};

// The copy engine's plan (detail/permute_plan.hpp) of dst[i] = src[i], with items moved as
// `word`-byte units: smaller than the item only when a pointer or stride is not aligned to it;
// the item then becomes an extra innermost axis.
struct Plan : ::voxcore::detail::StridePlan {
  int word = 1;
  int64_t total = 1;
};

// src is the source already permuted and flipped into destination axis order.
inline Plan make_plan(const ArrayView& src, const ArrayView& dst, int item) {
  Plan p;
  const auto* s = static_cast<const uint8_t*>(src.data);
  auto* d = static_cast<uint8_t*>(dst.data);
  uint64_t bits = reinterpret_cast<uintptr_t>(s) | reinterpret_cast<uintptr_t>(d);
  for (int i = 0; i < src.rank(); ++i) {
    bits |= static_cast<uint64_t>(std::llabs(src.byte_strides[i])) | static_cast<uint64_t>(std::llabs(dst.byte_strides[i]));
  }
  int word = item;
  while (word > 1 && bits % static_cast<uint64_t>(word) != 0) word /= 2;
  p.word = word;

  ::voxcore::detail::plan_start(p, s, d);
  for (int i = 0; i < src.rank(); ++i) {
    ::voxcore::detail::plan_axis(p, src.shape[i], src.byte_strides[i], dst.byte_strides[i]);
  }
  if (word < item) ::voxcore::detail::plan_axis(p, item / word, word, word);
  ::voxcore::detail::plan_merge(p);
  for (int i = 0; i < p.rank; ++i) p.total *= p.n[i];
  return p;
}

// The source's fastest axis when it differs from the destination's fastest (the last plan axis):
// then the tiled kernel runs over those two axes. -1: the general kernel.
inline int tile_axis(const Plan& p) {
  if (p.rank < 2) return -1;
  const int b = ::voxcore::detail::fastest_src_axis(p);
  return b == p.rank - 1 ? -1 : b;
}

// One thread per destination word, in destination order: consecutive threads write consecutive
// addresses whenever the destination is contiguous.
struct GeneralParams {
  const uint8_t* src;
  uint8_t* dst;
  int rank;
  int64_t total;
  int64_t n[kRankCap];
  int64_t ss[kRankCap];
  int64_t ds[kRankCap];
};

template <typename T>
__host__ __device__ inline void general_element(const GeneralParams& p, int64_t linear) {
  int64_t so = 0, d_o = 0;
  for (int i = p.rank - 1; i >= 0; --i) {
    const int64_t idx = linear % p.n[i];
    linear /= p.n[i];
    so += idx * p.ss[i];
    d_o += idx * p.ds[i];
  }
  *reinterpret_cast<T*>(p.dst + d_o) = *reinterpret_cast<const T*>(p.src + so);
}

// Tiled transpose of the destination's fastest axis a and the source's fastest axis b: a block
// reads a kTile x kTile tile with its threads running along b (coalesced reads), then writes it
// with its threads running along a (coalesced writes). The remaining axes are "outer".
struct TileParams {
  const uint8_t* src;
  uint8_t* dst;
  int64_t na, nb;
  int64_t ssa, ssb, dsa, dsb;
  int64_t tiles_a, tiles_b, outer_count;
  int outer_rank;
  int64_t on[kRankCap];
  int64_t oss[kRankCap];
  int64_t ods[kRankCap];
};

inline TileParams make_tile_params(const Plan& p, int a, int b) {
  TileParams t;
  t.src = p.src;
  t.dst = p.dst;
  t.na = p.n[a];
  t.nb = p.n[b];
  t.ssa = p.ss[a];
  t.ssb = p.ss[b];
  t.dsa = p.ds[a];
  t.dsb = p.ds[b];
  t.tiles_a = (t.na + kTile - 1) / kTile;
  t.tiles_b = (t.nb + kTile - 1) / kTile;
  t.outer_rank = 0;
  t.outer_count = 1;
  for (int i = 0; i < p.rank; ++i) {
    if (i == a || i == b) continue;
    t.on[t.outer_rank] = p.n[i];
    t.oss[t.outer_rank] = p.ss[i];
    t.ods[t.outer_rank] = p.ds[i];
    ++t.outer_rank;
    t.outer_count *= p.n[i];
  }
  return t;
}

__host__ __device__ inline void outer_offsets(const TileParams& p, int64_t outer, int64_t& so, int64_t& d_o) {
  so = 0;
  d_o = 0;
  for (int i = p.outer_rank - 1; i >= 0; --i) {
    const int64_t idx = outer % p.on[i];
    outer /= p.on[i];
    so += idx * p.oss[i];
    d_o += idx * p.ods[i];
  }
}

// tile is kTile x (kTile + 1) words, indexed [a_local][b_local]; the pad avoids bank conflicts.
template <typename T>
__host__ __device__ inline void tile_load(const TileParams& p, T* tile, int64_t so, int64_t a0, int64_t b0, int tx,
                                          int ty) {
  const int64_t i = b0 + tx;
  if (i >= p.nb) return;
  const uint8_t* base = p.src + so + i * p.ssb;
  for (int r = ty; r < kTile; r += kTileRows) {
    const int64_t j = a0 + r;
    if (j < p.na) tile[r * (kTile + 1) + tx] = *reinterpret_cast<const T*>(base + j * p.ssa);
  }
}

template <typename T>
__host__ __device__ inline void tile_store(const TileParams& p, const T* tile, int64_t d_o, int64_t a0, int64_t b0,
                                           int tx, int ty) {
  const int64_t j = a0 + tx;
  if (j >= p.na) return;
  uint8_t* base = p.dst + d_o + j * p.dsa;
  for (int r = ty; r < kTile; r += kTileRows) {
    const int64_t i = b0 + r;
    if (i < p.nb) *reinterpret_cast<T*>(base + i * p.dsb) = tile[tx * (kTile + 1) + r];
  }
}

}  // namespace voxcore::cuda::detail
