#include <gtest/gtest.h>

#include "voxcore/error.hpp"
#include "voxcore/grid.hpp"

using namespace voxcore;

TEST(Grid, ShapeAndCount) {
  ChunkGrid g({100, 64, 7}, {32, 64, 3});
  EXPECT_EQ(g.grid_shape(), (Shape{4, 1, 3}));
  EXPECT_EQ(g.num_chunks(), 12);
  EXPECT_EQ(g.chunk_elements(), 32 * 64 * 3);
  EXPECT_EQ(g.linear_index({3, 0, 2}), 11);
  EXPECT_EQ(g.chunk_origin({3, 0, 2}), (Shape{96, 0, 6}));
}

TEST(Grid, OverlapsCoverTheBoxExactly) {
  ChunkGrid g({50, 37}, {16, 10});
  Box box{{5, 3}, {40, 30}};
  auto parts = g.overlaps(box);
  ASSERT_EQ(parts.size(), 3u * 4u);  // chunks 0..2 along z, 0..3 along y
  std::vector<int> hits(40 * 30, 0);
  for (const auto& p : parts) {
    for (int64_t i = 0; i < p.shape[0]; ++i)
      for (int64_t j = 0; j < p.shape[1]; ++j) {
        ++hits[(p.in_box[0] + i) * 30 + p.in_box[1] + j];
        // the same voxel seen from the chunk side
        EXPECT_EQ(p.chunk_index[0] * 16 + p.in_chunk[0] + i, box.start[0] + p.in_box[0] + i);
        EXPECT_EQ(p.chunk_index[1] * 10 + p.in_chunk[1] + j, box.start[1] + p.in_box[1] + j);
      }
  }
  for (int h : hits) EXPECT_EQ(h, 1);
}

TEST(Grid, FullChunkFlagAndEdges) {
  ChunkGrid g({40}, {16});
  auto parts = g.overlaps(Box{{0}, {40}});
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(parts[0].full_chunk);
  EXPECT_TRUE(parts[1].full_chunk);
  EXPECT_FALSE(parts[2].full_chunk);  // edge chunk: 8 of 16
  EXPECT_EQ(parts[2].shape, (Shape{8}));
}

TEST(Grid, BoxOutsideOrPartlyOutside) {
  ChunkGrid g({10, 10}, {4, 4});
  EXPECT_TRUE(g.overlaps(Box{{20, 0}, {5, 5}}).empty());
  auto parts = g.overlaps(Box{{-3, 8}, {5, 10}});
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].chunk_index, (Shape{0, 2}));
  EXPECT_EQ(parts[0].in_box, (Shape{3, 0}));
  EXPECT_EQ(parts[0].shape, (Shape{2, 2}));
}

TEST(Grid, RankZero) {
  ChunkGrid g({}, {});
  EXPECT_EQ(g.num_chunks(), 1);
  EXPECT_EQ(g.overlaps(Box{{}, {}}).size(), 1u);
}

TEST(Grid, BadMetadata) {
  auto code = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kUnavailable;
  };
  EXPECT_EQ(code([] { ChunkGrid({10}, {0}); }), ErrorCode::kInvalidMetadata);
  EXPECT_EQ(code([] { ChunkGrid({-1}, {4}); }), ErrorCode::kInvalidMetadata);
  EXPECT_EQ(code([] { ChunkGrid({10, 10}, {4}); }), ErrorCode::kInvalidMetadata);
  EXPECT_EQ(code([] { ChunkGrid(Shape(33, 1), Shape(33, 1)); }), ErrorCode::kLimitExceeded);
  EXPECT_EQ(code([] { ChunkGrid({int64_t{1} << 40, int64_t{1} << 40}, {1, 1}); }), ErrorCode::kLimitExceeded);
  EXPECT_EQ(code([] { ChunkGrid({1 << 20}, {int64_t{1} << 60}); }), ErrorCode::kLimitExceeded);
}

TEST(Grid, ChunkKeys) {
  ChunkKeyEncoding v3;
  EXPECT_EQ(chunk_key(v3, {1, 2, 30}), "c/1/2/30");
  EXPECT_EQ(chunk_key(v3, {}), "c");
  ChunkKeyEncoding v3dot{ChunkKeyEncoding::Kind::kDefault, '.'};
  EXPECT_EQ(chunk_key(v3dot, {1, 2}), "c.1.2");
  ChunkKeyEncoding v2{ChunkKeyEncoding::Kind::kV2, '.'};
  EXPECT_EQ(chunk_key(v2, {1, 2, 3}), "1.2.3");
  EXPECT_EQ(chunk_key(v2, {}), "0");
  ChunkKeyEncoding v2slash{ChunkKeyEncoding::Kind::kV2, '/'};
  EXPECT_EQ(chunk_key(v2slash, {4, 5}), "4/5");
}
