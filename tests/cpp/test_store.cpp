#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "voxcore/error.hpp"
#include "voxcore/store.hpp"

using namespace voxcore;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const char* name) {
  fs::path p = fs::temp_directory_path() / (std::string("voxcore-test-") + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string as_string(const ByteBuffer& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

}  // namespace

TEST(Store, KeySanitizer) {
  for (const char* ok : {"c/0/0", "0.0.0", "zarr.json", "a/b.c/d"}) EXPECT_NO_THROW(check_key(ok));
  for (std::string bad : {std::string(""), std::string("/abs"), std::string("a/../b"), std::string(".."),
                          std::string("./x"), std::string("a//b"), std::string("a\\b"),
                          std::string("a\0b", 3), std::string("c/.0.vxtmp-1-2-3"), std::string("a/")}) {
    try {
      check_key(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsafePath);
      EXPECT_NE(std::string(e.what()).find("key="), std::string::npos);
    }
  }
}

TEST(Store, FileStoreRoundTripAndRanges) {
  auto root = fresh_dir("fs");
  FileStore store(root.string());
  ByteBuffer out;
  EXPECT_FALSE(store.get("c/0/1", ByteRange::whole(), out));
  const std::string value = "0123456789";
  store.set("c/0/1", reinterpret_cast<const uint8_t*>(value.data()), value.size());
  uint64_t total = 0;
  ASSERT_TRUE(store.get("c/0/1", ByteRange::whole(), out, &total));
  EXPECT_EQ(as_string(out), value);
  EXPECT_EQ(total, 10u);
  ASSERT_TRUE(store.get("c/0/1", ByteRange::range(3, 4), out));
  EXPECT_EQ(as_string(out), "3456");
  ASSERT_TRUE(store.get("c/0/1", ByteRange::range(8, 10), out));
  EXPECT_EQ(as_string(out), "89");  // short: callers check the length
  ASSERT_TRUE(store.get("c/0/1", ByteRange::suffix(3), out));
  EXPECT_EQ(as_string(out), "789");
  // overwrite is atomic and leaves no temp files
  store.set("c/0/1", reinterpret_cast<const uint8_t*>("ab"), 2);
  ASSERT_TRUE(store.get("c/0/1", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), "ab");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root / "c" / "0")) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "1");
  }
  EXPECT_EQ(entries, 1);
  store.erase("c/0/1");
  store.erase("c/0/1");  // missing: fine
  EXPECT_FALSE(store.get("c/0/1", ByteRange::whole(), out));
  fs::remove_all(root);
}

TEST(Store, FileStoreNonDurableAndErrors) {
  auto root = fresh_dir("fs2");
  FileStore store(root.string(), /*durable=*/false);
  store.set("x", reinterpret_cast<const uint8_t*>("1"), 1);
  EXPECT_TRUE(store.exists("x"));
  EXPECT_THROW(store.set("../escape", reinterpret_cast<const uint8_t*>("1"), 1), Error);
  fs::create_directories(root / "dir");
  ByteBuffer out;
  try {
    store.get("dir", ByteRange::whole(), out);
    ADD_FAILURE() << "reading a directory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
  if (::geteuid() != 0) {  // root ignores permissions
    fs::create_directories(root / "ro");
    ::chmod((root / "ro").c_str(), 0555);
    try {
      store.set("ro/x", reinterpret_cast<const uint8_t*>("1"), 1);
      ADD_FAILURE() << "write into a read-only directory succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kIo);
      EXPECT_NE(e.sys_errno(), 0);
    }
  }
  fs::remove_all(root);
}

TEST(Store, CallbackStoreBatches) {
  int calls = 0;
  CallbackStore store(
      [&](const std::vector<ByteRequest>& reqs, std::vector<ByteBuffer>& out, std::vector<uint8_t>& found) {
        ++calls;
        for (std::size_t i = 0; i < reqs.size(); ++i) {
          if (reqs[i].key == "missing") continue;
          out[i].append(reqs[i].key.data(), reqs[i].key.size());
          found[i] = 1;
        }
      });
  EXPECT_TRUE(store.batched());
  std::vector<ByteBuffer> out;
  std::vector<uint8_t> found;
  store.get_many({{"a", ByteRange::whole()}, {"missing", ByteRange::whole()}, {"b/c", ByteRange::whole()}}, out, found);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(found, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(as_string(out[2]), "b/c");
  EXPECT_THROW(store.get_many({{"../x", ByteRange::whole()}}, out, found), Error);
  try {
    store.set("a", reinterpret_cast<const uint8_t*>("1"), 1);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
}
