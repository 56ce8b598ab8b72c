#include "syncd/filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd {
namespace {

struct Case {
  std::vector<std::string> rules;  // Canonical rules.
  std::string path;
  bool is_dir;
  bool excluded;
};

Filter Make(const std::vector<std::string>& rules) {
  auto f = Filter::Parse(rules);
  EXPECT_TRUE(f.has_value()) << ::testing::PrintToString(rules);
  return f.value_or(Filter());
}

class FilterTest : public ::testing::TestWithParam<Case> {};

// The same cases run against the real rsync binary in tests/integration/rsync_filter_test.cc;
// these check the matcher alone, fast.
TEST_P(FilterTest, MatchesLikeRsync) {
  const Case& c = GetParam();
  EXPECT_EQ(Make(c.rules).Excluded(c.path, c.is_dir), c.excluded)
      << "rules " << ::testing::PrintToString(c.rules) << " path " << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, FilterTest,
    ::testing::Values(
        // The seed's exclude: every dot-file and dot-directory, at any depth.
        Case{{"- .*"}, ".hidden", false, true}, Case{{"- .*"}, "a/.swp", false, true},
        Case{{"- .*"}, "a/b.txt", false, false}, Case{{"- .*"}, ".git/config", false, true},
        // `*` stops at '/', `**` does not.
        Case{{"- *.tmp"}, "d/x.tmp", false, true}, Case{{"- d/*.tmp"}, "d/e/x.tmp", false, false},
        Case{{"- d/**.tmp"}, "d/e/x.tmp", false, true},
        // A leading '/' anchors at the root; otherwise a pattern with '/' matches a tail.
        Case{{"- /cache"}, "cache", true, true}, Case{{"- /cache"}, "a/cache", true, false},
        Case{{"- a/cache"}, "x/a/cache", true, true}, Case{{"- a/cache"}, "xa/cache", true, false},
        // A trailing '/' matches directories only; what is beneath an excluded one goes too.
        Case{{"- tmp/"}, "tmp", false, false}, Case{{"- tmp/"}, "tmp/a/b", false, true},
        // A leading "**/" matches at the top level too.
        Case{{"- **/cache/**"}, "cache/f", false, true}, Case{{"- **/cache/**"}, "a/cache/f", false, true},
        Case{{"- **/cache/**"}, "cache", true, false},
        // "dir/***" is the directory and everything inside it.
        Case{{"- logs/***"}, "logs", true, true}, Case{{"- logs/***"}, "logs", false, false},
        Case{{"- logs/***"}, "x/logs/y", false, true},
        // Classes, POSIX classes, negation, ranges, a literal ']' first.
        Case{{"- [[:digit:]]*"}, "7days", false, true}, Case{{"- [[:digit:]]*"}, "days7", false, false},
        Case{{"- [![:alpha:]]*"}, "_x", false, true}, Case{{"- []a]x"}, "]x", false, true},
        Case{{"- [a-c].txt"}, "b.txt", false, true}, Case{{"- [^a-c].txt"}, "b.txt", false, false},
        Case{{"- [[:bogus:]]"}, "b", false, false}, Case{{"- [abc"}, "[abc", false, false},
        // A backslash escapes only in a pattern with wildcards; otherwise it is literal.
        Case{{"- a\\*b"}, "a*b", false, true}, Case{{"- a\\*b"}, "axb", false, false},
        Case{{"- a\\b"}, "a\\b", false, true}, Case{{"- a\\b"}, "ab", false, false},
        Case{{"- a]b"}, "a]b", false, true},
        // An include before an exclude wins.
        Case{{"+ *.tmp", "- *"}, "x.tmp", false, false},
        // First match wins: the classic "only the top directories' .conf files".
        Case{{"+ /*/", "+ /*/*.conf", "- *"}, "etc", true, false},
        Case{{"+ /*/", "+ /*/*.conf", "- *"}, "etc/a.conf", false, false},
        Case{{"+ /*/", "+ /*/*.conf", "- *"}, "etc/a.txt", false, true},
        Case{{"+ /*/", "+ /*/*.conf", "- *"}, "etc/sub", true, true},
        Case{{"+ /*/", "+ /*/*.conf", "- *"}, "top.conf", false, true},
        // Negation: exclude everything that does not match.
        Case{{"-! *.php"}, "index.php", false, false}, Case{{"-! *.php"}, "x.js", false, true},
        // Receiver-only rules do not hide; sender-only ones do.
        Case{{"P *.keep"}, "a.keep", false, false}, Case{{"H *.hide"}, "a.hide", false, true},
        Case{{"-r *.x"}, "a.x", false, false}, Case{{"-s *.x"}, "a.x", false, true}));

TEST(FilterTest, RootIsNeverExcluded) { EXPECT_FALSE(Filter::Excluding({"*"}).Excluded("", true)); }

TEST(FilterTest, ProtectionFollowsTheReceiverSideRules) {
  auto f = Filter::Parse({"- *.tmp", "P /keep/", "H *.log", "R *.junk", "- *.junk", "-p .lock"});
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_TRUE(f->Protected("a/x.tmp", false));
  EXPECT_TRUE(f->Protected("keep", true));
  EXPECT_FALSE(f->Protected("keep/inside", false)) << "only the name is tested, as rsync does";
  EXPECT_FALSE(f->Protected("a.log", false)) << "hide is for the sending side";
  EXPECT_FALSE(f->Protected("a.junk", false)) << "risk comes first";
  EXPECT_TRUE(f->Protected(".lock", false));
  EXPECT_FALSE(f->Protected(".lock", false, /*in_deleted_dir=*/true)) << "perishable";
  EXPECT_TRUE(f->protects());
  auto deleting = Filter::Parse({"- *.tmp"}, /*delete_excluded=*/true);
  ASSERT_TRUE(deleting);
  EXPECT_TRUE(deleting->Excluded("x.tmp", false));
  EXPECT_FALSE(deleting->Protected("x.tmp", false));
  EXPECT_FALSE(deleting->protects());
  EXPECT_EQ(deleting->Rules(), std::vector<std::string>{"-s *.tmp"});
}

TEST(FilterTest, ClearDropsEarlierRules) {
  auto f = Filter::Parse({"- *.tmp", "!", "- *.bak"});
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->Excluded("x.tmp", false));
  EXPECT_TRUE(f->Excluded("x.bak", false));
}

TEST(FilterRuleTest, CanonicalFormsOfRsyncSyntax) {
  EXPECT_EQ(CanonicalFilterRule("- *.tmp").value(), "- *.tmp");
  EXPECT_EQ(CanonicalFilterRule("exclude *.tmp").value(), "- *.tmp");
  EXPECT_EQ(CanonicalFilterRule("include,! x").value(), "+! x");
  EXPECT_EQ(CanonicalFilterRule("-_x y").value(), "- x y");
  EXPECT_EQ(CanonicalFilterRule("protect /keep").value(), "P /keep");
  EXPECT_EQ(CanonicalFilterRule("clear").value(), "!");
  EXPECT_EQ(CanonicalPatternRule("+ keep"), "+ keep");
  EXPECT_EQ(CanonicalPatternRule("- *.tmp"), "- *.tmp");  // Not the literal name "- *.tmp".
  EXPECT_EQ(CanonicalPatternRule("+keep"), "- +keep");
  EXPECT_EQ(CanonicalPatternRule("x", /*include=*/true), "+ x");
  EXPECT_THAT(CanonicalFilterRule("x y").error().message, ::testing::HasSubstr("unknown rule"));
  EXPECT_THAT(CanonicalFilterRule(". merge").error().message, ::testing::HasSubstr("merge"));
  EXPECT_THAT(CanonicalFilterRule("-x y").error().message, ::testing::HasSubstr("xattr"));
  EXPECT_THAT(CanonicalFilterRule("-q y").error().message, ::testing::HasSubstr("invalid modifier 'q'"));
  EXPECT_THAT(CanonicalFilterRule("P,s y").error().message, ::testing::HasSubstr("side"));
  EXPECT_THAT(CanonicalFilterRule("-").error().message, ::testing::HasSubstr("no pattern"));
}

TEST(GlobMatchTest, StarsAndEscapes) {
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("**", "a/b/c"));
  EXPECT_FALSE(GlobMatch("*", "a/b"));
  EXPECT_TRUE(GlobMatch("a/**/b", "a/x/y/b"));
  EXPECT_TRUE(GlobMatch("*/*/*/*/*/*/*/x", "a/b/c/d/e/f/g/x"));
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*b", std::string(60, 'a')));  // Prunes, ends.
}

}  // namespace
}  // namespace syncd
