#pragma once
#include <cstddef>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore {

// Copies src into dst: same dtype and shape, any strides (negative too). Runs on executor when
// given (and the copy is large), else on the calling thread. kInvalidArgument on mismatch.
VOXCORE_API void copy(const ArrayView& src, const ArrayView& dst, Executor* executor = nullptr);
// Sets every element of dst to *value (itemsize bytes).
VOXCORE_API void fill(const ArrayView& dst, const void* value);
// True when every element of src equals *value (bytewise).
VOXCORE_API bool all_equal(const ArrayView& src, const void* value);
// Reverses the byte order of count units of unit bytes (unit 1: no-op).
VOXCORE_API void byteswap_inplace(void* data, std::size_t count, std::size_t unit) noexcept;
// dst = src with axes permuted (dst axis i is src axis perm[i]) then flipped along the dst axes
// where flips[i] is true. dst must have the permuted shape. Cache-blocked and threaded.
VOXCORE_API void permute_flip(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                              const std::vector<bool>& flips, Executor* executor = nullptr);
// permute_flip into a float32/float64 dst, scaling in the same cache-blocked pass: each element v
// becomes D(v) * D(slope) + D(inter), each operation rounded in D (numpy's astype, *=, += in that
// order; the multiply skipped when slope is 1, the add when inter is 0). src: any integer or
// float dtype (kUnsupported otherwise).
VOXCORE_API void permute_flip_scale(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                                    const std::vector<bool>& flips, double slope, double inter,
                                    Executor* executor = nullptr);

}  // namespace voxcore
