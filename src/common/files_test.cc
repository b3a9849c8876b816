#include "common/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "testing/temp_dir.h"

namespace drover {
namespace {

TEST(Files, AtomicWriteReplacesWholeWithTheModeAndReadsBack) {
  testing::TempDir dir;
  std::string p = dir.File("state.json");
  EXPECT_EQ(ReadFile(p), std::nullopt);
  ASSERT_TRUE(WriteFileAtomic(p, "first", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(p, std::string("sec\0ond", 7), 0600).ok());
  EXPECT_EQ(ReadFile(p), std::string("sec\0ond", 7));
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temp file is left behind, and a directory that does not exist is an error.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    entries += !e.is_directory();
  EXPECT_EQ(entries, 1);
  EXPECT_FALSE(WriteFileAtomic(dir.File("missing/x"), "y", 0600).ok());
}

}  // namespace
}  // namespace drover
