#pragma once
#include <cstdint>
#include <vector>

#include "voxcore/array_view.hpp"

namespace voxcore::detail {

// The argument checks of downsample() on the host and on the device, in that order and with the
// same messages under `where`: dtypes equal, ranks equal (<= kMaxRank) with one stride per axis,
// dst shaped downsampled_shape(src, factors) (kInvalidArgument), dtype an integer or f4/f8
// (kUnsupported).
void check_downsample_args(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors,
                           const char* where);

}  // namespace voxcore::detail
