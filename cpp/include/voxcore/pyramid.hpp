#pragma once
#include <cstdint>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore {

// How downsample() reduces a window. Output voxel i along an axis with factor f covers input
// voxels [i*f, min(i*f + f, n)): a partial window at an upper edge uses only the voxels that exist.
enum class Method {
  // Average. Integers: sum exactly (wide accumulators), divide once, round half away from zero
  // ([1,2] -> 2, [-1,-2] -> -2, [1,1,2] -> 1). Floats: sum in double, then cast; NaN propagates.
  kMean,
  // Separable gaussian, sigma = gaussian_sigma(f) per axis (factor 1: no blur on that axis),
  // truncated at 3 sigma, weights normalised to sum 1, edges replicated (clamped indices).
  // Evaluated at the window centre i*f + (f-1)/2 (half-integer for even f). Computed in double;
  // integer outputs are rounded half away from zero and clamped to the dtype range.
  kGaussian,
  // Most frequent value in the window; ties go to the smallest value. Floats: -0.0 and 0.0 count
  // as one value, NaNs count as one value ordered above every number.
  kMode,
  // dst[i] = src[i*f] (no averaging).
  kNearest,
  // Minimum / maximum over the window. Floats: a NaN anywhere in the window gives NaN.
  kMin,
  kMax,
};

// The gaussian's sigma, in source voxels, for a factor f: f / 2. At the new grid's Nyquist
// frequency this passes ~29% (a mean window passes ~71%), so levels alias less than with the
// sqrt((f^2 - 1) / 12) = 0.5 (f = 2) of scikit-image's and ITK's defaults, at the price of a
// softer look; a unit impulse keeps its mass on every level.
inline double gaussian_sigma(int64_t f) { return static_cast<double>(f) / 2; }

// Reduces src by integer factors per axis (factors[i] >= 1) into dst (caller-owned), whose shape
// must be downsampled_shape(src.shape, factors) and dtype src.dtype. Any strides, negative too.
// Integer and float dtypes; bool, float16 and complex throw kUnsupported. Runs on executor
// (nullptr: default_executor()). Throws kInvalidArgument on a shape, dtype or factor mismatch.
VOXCORE_API void downsample(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors,
                            Method method, Executor* executor = nullptr);

// Several levels in one pass over src: dsts[0] = src reduced by steps[0], dsts[k] = dsts[k-1]
// reduced by steps[k] (steps are relative to the previous level, not cumulative). Equal to calling
// downsample() level after level. For every method but kGaussian the work is cut into blocks of
// src aligned to the cumulative factors along the first two axes; each block is reduced through
// all levels while it is in cache, blocks run in parallel. kGaussian, whose taps cross block
// edges, runs level by level. dsts[k] must have shape downsampled_shape(level k, steps[k]).
VOXCORE_API void downsample_levels(const ArrayView& src, const std::vector<ArrayView>& dsts,
                                   const std::vector<std::vector<int64_t>>& steps, Method method,
                                   Executor* executor = nullptr);

// ceil(shape[i] / factors[i]) per axis. kInvalidArgument when the sizes differ or a factor < 1.
VOXCORE_API Shape downsampled_shape(const Shape& shape, const std::vector<int64_t>& factors);

}  // namespace voxcore
