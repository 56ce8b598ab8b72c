#include "syncd/active_mark.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace syncd {
namespace {

class ActiveMarkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    ::setenv("SYNCD_RUN_DIR", (dir_ + "/run").c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("SYNCD_RUN_DIR");
  }
  testing::TempDir tmp_{"mark-test"};
  std::string dir_;
};

TEST_F(ActiveMarkTest, MarkCoversTheSourceWhatLiesInItAndWhatHoldsIt) {
  std::string srv = dir_ + "/srv";
  std::string spool = srv + "/spool";
  std::filesystem::create_directories(spool + "/php");
  std::filesystem::create_directories(srv + "/spool2");
  std::filesystem::create_directory_symlink(spool, dir_ + "/link");
  {
    auto mark = ActiveMark::Take(spool);
    ASSERT_TRUE(mark.has_value()) << mark.error().message;
    auto over = ActiveSyncdOver(spool, -1);
    ASSERT_TRUE(over.has_value());
    EXPECT_NE(over->find(spool), std::string::npos);
    EXPECT_TRUE(ActiveSyncdOver(spool + "/php", -1).has_value());
    EXPECT_TRUE(ActiveSyncdOver(srv, -1).has_value());
    EXPECT_TRUE(ActiveSyncdOver(dir_ + "/link", -1).has_value()) << "another name, the same directory";
    EXPECT_FALSE(ActiveSyncdOver(srv + "/spool2", -1).has_value());
    EXPECT_FALSE(ActiveSyncdOver(spool, static_cast<int>(::getpid())).has_value())
        << "a syncd's own local agent is not a second active node";
    auto second = ActiveMark::Take(spool);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code, EBUSY);
  }
  EXPECT_FALSE(ActiveSyncdOver(spool, -1).has_value()) << "the mark outlived its syncd";
}

}  // namespace
}  // namespace syncd
