#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
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

TEST(Store, FileStoreKeysCannotLeaveTheRoot) {
  auto base = fresh_dir("beneath");
  const fs::path root = base / "arr";
  FileStore store(root.string(), /*durable=*/false);
  store.set("c/0/0", reinterpret_cast<const uint8_t*>("in"), 2);
  fs::create_directories(base / "outside");
  {
    std::FILE* f = std::fopen((base / "outside" / "secret").c_str(), "wb");
    std::fputs("secret", f);
    std::fclose(f);
  }
  ByteBuffer out;
  auto expect_unsafe = [&](auto&& fn) {
    try {
      fn();
      ADD_FAILURE() << "escaping key accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsafePath) << e.what();
    }
  };
  // a key that is a link out of the root, relative or absolute
  fs::create_symlink("../../../outside/secret", root / "c" / "0" / "1");
  fs::create_symlink(base / "outside" / "secret", root / "c" / "0" / "2");
  expect_unsafe([&] { store.get("c/0/1", ByteRange::whole(), out); });
  expect_unsafe([&] { store.get("c/0/2", ByteRange::whole(), out); });
  expect_unsafe([&] { store.snapshot("c/0/2"); });
  // a directory that links out: reads, writes and erases through it are refused
  fs::create_symlink(base / "outside", root / "c" / "1");
  expect_unsafe([&] { store.get("c/1/secret", ByteRange::whole(), out); });
  expect_unsafe([&] { store.set("c/1/new", reinterpret_cast<const uint8_t*>("x"), 1); });
  expect_unsafe([&] { store.erase("c/1/secret"); });
  expect_unsafe([&] { store.set("c/1/deeper/new", reinterpret_cast<const uint8_t*>("x"), 1); });
  EXPECT_TRUE(fs::exists(base / "outside" / "secret"));
  EXPECT_FALSE(fs::exists(base / "outside" / "new"));
  EXPECT_FALSE(fs::exists(base / "outside" / "deeper"));
  // links that stay inside are followed, relative or absolute
  fs::create_symlink("0", root / "c" / "2");
  fs::create_symlink(root / "c" / "0" / "0", root / "c" / "3");
  ASSERT_TRUE(store.get("c/2/0", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), "in");
  ASSERT_TRUE(store.get("c/3", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), "in");
  // a sub-store keeps the root as its boundary
  auto sub = store.sub("c");
  EXPECT_EQ(sub->prefix(), "c");
  ASSERT_TRUE(sub->get("0/0", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), "in");
  auto linked = store.sub("c/1");
  expect_unsafe([&] { linked->get("secret", ByteRange::whole(), out); });
  // the explicit opt-in follows links out of the root
  FileStore open_store(root.string(), false, /*allow_external_links=*/true);
  ASSERT_TRUE(open_store.get("c/0/2", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), "secret");
  fs::remove_all(base);
}

TEST(Store, FileStoreUpdateLockSerialisesOneKey) {
  auto root = fresh_dir("lock");
  FileStore a(root.string(), false), b(root.string(), false);  // two handles, like two processes
  auto held = a.lock_for_update("c/0/0");
  ASSERT_NE(held, nullptr);
  EXPECT_TRUE(fs::exists(root / FileStore::kLockFile));
  std::atomic<bool> got{false};
  std::thread other([&] {
    auto mine = b.lock_for_update("c/0/0");
    got = true;
  });
  auto unrelated = b.lock_for_update("c/9/9");  // another key does not wait
  EXPECT_NE(unrelated, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(got.load());
  held.reset();
  other.join();
  EXPECT_TRUE(got.load());
  fs::remove_all(root);
}

TEST(Store, DeferredWritesRecordEachDirectoryToSyncOnce) {
  const fs::path root = fresh_dir("deferred");
  FileStore store(root.string(), /*durable=*/true);
  EXPECT_TRUE(store.write_waits());
  DirtyDirs dirs;
  const uint8_t bytes[] = {1, 2, 3};
  for (const char* key : {"c/0/0", "c/0/1", "c/1/0", "zarr.json"}) store.set_deferred(key, bytes, 3, dirs);
  ByteBuffer out;
  ASSERT_TRUE(store.get("c/0/1", ByteRange::whole(), out));  // visible before the sync
  EXPECT_EQ(out.size(), 3u);
  // The directories renamed into (c/0, c/1, the root) and the parents of those created (c, root).
  const std::vector<std::string> recorded = dirs.take();
  EXPECT_EQ(recorded, (std::vector<std::string>{"", "c", "c/0", "c/1"}));
  for (const std::string& d : recorded) EXPECT_NO_THROW(store.sync_dir(d));
  EXPECT_TRUE(dirs.take().empty());  // each directory once, then forgotten
  DirtyDirs twice;
  twice.add("c/0");
  twice.add("c/0");
  EXPECT_EQ(twice.take(), std::vector<std::string>{"c/0"});

  // A directory that vanished before its sync: a named I/O error with its path.
  store.set_deferred("d/0", bytes, 3, dirs);
  fs::remove_all(root / "d");
  try {
    store.sync_dir("d");
    ADD_FAILURE() << "sync of a removed directory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find((root / "d").string()), std::string::npos) << e.what();
  }
  FileStore loose(root.string(), /*durable=*/false);  // nothing to sync without durability
  EXPECT_FALSE(loose.write_waits());
  DirtyDirs none;
  loose.set_deferred("e/0", bytes, 3, none);
  EXPECT_TRUE(none.take().empty());
  fs::remove_all(root / "e");
  EXPECT_NO_THROW(loose.sync_dir("e"));
  fs::remove_all(root);
}

TEST(Store, UnpublishedTreeWritesValuesInPlace) {
  const fs::path root = fresh_dir("unpublished");
  FileStore tree(root.string(), /*durable=*/true, /*allow_external_links=*/false, /*unpublished=*/true);
  EXPECT_TRUE(tree.unpublished());
  EXPECT_TRUE(tree.sub("a")->unpublished());
  const uint8_t bytes[] = {1, 2, 3};
  DirtyDirs dirs;
  tree.set_deferred("c/0/0", bytes, 3, dirs);
  struct stat first {};
  ASSERT_EQ(::stat((root / "c/0/0").c_str(), &first), 0);
  tree.set_deferred("c/0/0", bytes + 2, 1, dirs);  // the same file, truncated: no temp, no rename
  struct stat second {};
  ASSERT_EQ(::stat((root / "c/0/0").c_str(), &second), 0);
  EXPECT_EQ(first.st_ino, second.st_ino);
  ByteBuffer out;
  ASSERT_TRUE(tree.get("c/0/0", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), std::string(1, '\3'));
  // Its directory and the parents of those created are still recorded, to be synced.
  EXPECT_EQ(dirs.take(), (std::vector<std::string>{"", "c", "c/0"}));
  for (const auto& entry : fs::directory_iterator(root / "c/0")) EXPECT_EQ(entry.path().filename(), "0");

  // A published store replaces the file (a new inode), as readers need.
  FileStore published(root.string(), /*durable=*/true);
  published.set("c/0/0", bytes, 3);
  struct stat third {};
  ASSERT_EQ(::stat((root / "c/0/0").c_str(), &third), 0);
  EXPECT_NE(third.st_ino, second.st_ino);

  // A symlink at a key is not written through; the failed value is removed, its target untouched.
  fs::create_directories(root / "outside");
  { std::FILE* f = std::fopen((root / "outside/t").c_str(), "w"); std::fputs("keep", f); std::fclose(f); }
  fs::create_symlink(root / "outside/t", root / "c/0/1");
  EXPECT_THROW(tree.set("c/0/1", bytes, 3), Error);
  ASSERT_TRUE(published.get("outside/t", ByteRange::whole(), out));
  EXPECT_EQ(as_string(out), "keep");
  fs::remove_all(root);
}
