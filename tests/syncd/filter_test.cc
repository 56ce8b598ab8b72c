#include "syncd/filter.h"

#include <gtest/gtest.h>

namespace syncd {
namespace {

struct Case {
  std::vector<std::string> patterns;
  std::string path;
  bool is_dir;
  bool excluded;
};

class FilterTest : public ::testing::TestWithParam<Case> {};

TEST_P(FilterTest, MatchesLikeRsync) {
  const Case& c = GetParam();
  Filter f(c.patterns);
  EXPECT_EQ(f.Excluded(c.path, c.is_dir), c.excluded)
      << "patterns " << ::testing::PrintToString(c.patterns) << " path " << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, FilterTest,
    ::testing::Values(
        // The seed's exclude: every dot-file and dot-directory, at any depth.
        Case{{".*"}, ".hidden", false, true}, Case{{".*"}, "a/.swp", false, true},
        Case{{".*"}, "a/b.txt", false, false}, Case{{".*"}, ".git/config", false, true},
        Case{{".*"}, "sess_abc", false, false},
        // `*` stops at '/', `**` does not.
        Case{{"*.tmp"}, "x.tmp", false, true}, Case{{"*.tmp"}, "d/x.tmp", false, true},
        Case{{"d/*.tmp"}, "d/x.tmp", false, true}, Case{{"d/*.tmp"}, "d/e/x.tmp", false, false},
        Case{{"d/**.tmp"}, "d/e/x.tmp", false, true},
        // A leading '/' anchors at the root; otherwise a pattern with '/' matches a tail.
        Case{{"/cache"}, "cache", true, true}, Case{{"/cache"}, "a/cache", true, false},
        Case{{"a/cache"}, "x/a/cache", true, true}, Case{{"a/cache"}, "xa/cache", true, false},
        // A trailing '/' matches directories only.
        Case{{"tmp/"}, "tmp", true, true}, Case{{"tmp/"}, "tmp", false, false},
        // Anything under an excluded directory is excluded.
        Case{{"tmp/"}, "tmp/a/b", false, true}, Case{{"/cache"}, "cache/x", false, true},
        // '?' and classes.
        Case{{"file?.log"}, "file1.log", false, true}, Case{{"file?.log"}, "file10.log", false, false},
        Case{{"[ab]*"}, "apple", false, true}, Case{{"[!ab]*"}, "apple", false, false},
        Case{{"[a-c].txt"}, "b.txt", false, true},
        // dir/*** is the directory and everything inside it.
        Case{{"logs/***"}, "logs", true, true}, Case{{"logs/***"}, "logs/x/y", false, true},
        // Names with bracket characters are plain names when they are not a class.
        Case{{"a]b"}, "a]b", false, true}, Case{{}, "a]b", false, false}));

TEST(GlobMatchTest, EscapedWildcardIsLiteral) {
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
}

TEST(FilterTest, RootIsNeverExcluded) { EXPECT_FALSE(Filter({"*"}).Excluded("", true)); }

}  // namespace
}  // namespace syncd
