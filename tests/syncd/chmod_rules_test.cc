#include "syncd/chmod_rules.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <array>

namespace syncd {
namespace {

// Measured with rsync 3.5.0 under umask 022: `rsync -r --perms --chmod=SPEC src/ dst/` on files
// with each of kStart's modes and on directories made 0755.
constexpr std::array<uint32_t, 10> kStart = {0644, 0755, 0600, 0700, 04755,
                                             02750, 01777, 0000, 0610, 0060};
struct Case {
  const char* spec;
  std::array<uint32_t, 10> files;
  uint32_t dir;
};
const Case kCases[] = {
    {"a+rX", {0644, 0755, 0644, 0755, 04755, 02755, 01777, 0444, 0755, 0464}, 0755},
    {"Du=rwx,Dgo=rx,Fu=rw,Fgo=r", {0644, 0644, 0644, 0644, 04644, 02644, 01644, 0644, 0644, 0644}, 0755},
    {"go-w", {0644, 0755, 0600, 0700, 04755, 02750, 01755, 00, 0610, 040}, 0755},
    {"+x", {0755, 0755, 0711, 0711, 04755, 02751, 01777, 0111, 0711, 0171}, 0755},
    {"=r", {0444, 0444, 0444, 0444, 04444, 02444, 01444, 0444, 0444, 0444}, 0444},
    {"755", {0755, 0755, 0755, 0755, 0755, 0755, 0755, 0755, 0755, 0755}, 0755},
    {"D2775,F664", {0664, 0664, 0664, 0664, 0664, 0664, 0664, 0664, 0664, 0664}, 02775},
    {"u+s,g+s", {06644, 06755, 06600, 06700, 06755, 06750, 07777, 06000, 06610, 06060}, 06755},
    {"a+s", {06644, 06755, 06600, 06700, 06755, 06750, 07777, 06000, 06610, 06060}, 06755},
    {"o+s", {04644, 04755, 04600, 04700, 04755, 06750, 05777, 04000, 04610, 04060}, 04755},
    {"+t", {01644, 01755, 01600, 01700, 05755, 03750, 01777, 01000, 01610, 01060}, 01755},
    {"g=u", {0664, 0775, 0660, 0770, 04775, 0770, 01777, 00, 0660, 00}, 0775},
    {"o=g", {0644, 0755, 0600, 0700, 04755, 02755, 0777, 00, 0611, 066}, 0755},
    {"u-g", {0244, 0255, 0600, 0700, 04255, 02250, 01077, 00, 0610, 060}, 0255},
    {"=X", {00, 0111, 00, 0111, 04111, 02111, 01111, 00, 0111, 00}, 0111},
    {"g+X", {0644, 0755, 0600, 0710, 04755, 02750, 01777, 00, 0610, 060}, 0755},
    {"Fa-x,Da+x", {0644, 0644, 0600, 0600, 04644, 02640, 01666, 00, 0600, 060}, 0755},
    {"u=rwX,go=rX", {0644, 0755, 0644, 0755, 04755, 02755, 01755, 0644, 0755, 0644}, 0755},
    {"ug=rw", {0664, 0665, 0660, 0660, 04665, 02660, 01667, 0660, 0660, 0660}, 0665},
    {"0", {00, 00, 00, 00, 00, 00, 00, 00, 00, 00}, 00},
    {"-rwx", {00, 00, 00, 00, 04000, 02000, 01022, 00, 00, 020}, 00},
    {"+X,o-rwx", {0640, 0750, 0600, 0710, 04750, 02750, 01770, 00, 0710, 060}, 0750},
    {"u=,g=u", {04, 05, 00, 00, 04005, 00, 01007, 00, 00, 00}, 05},
};

TEST(ChmodRulesTest, GivesWhatRsyncGives) {
  for (const Case& c : kCases) {
    auto rules = ChmodRules::Parse(std::string_view(c.spec), 022);
    ASSERT_TRUE(rules.has_value()) << c.spec;
    for (size_t i = 0; i < kStart.size(); ++i)
      EXPECT_EQ(rules->Apply(kStart[i], false), c.files[i])
          << c.spec << " on a file " << std::oct << kStart[i];
    EXPECT_EQ(rules->Apply(0755, true), c.dir) << c.spec << " on a directory";
  }
}

TEST(ChmodRulesTest, RefusesWhatRsyncRefuses) {
  // rsync 3.5.0 ends with "Invalid argument passed to --chmod" on each of these.
  for (const char* spec : {"", "u+r-w", "x", "D", "DF+x", "u+rg", "g=u+r", "a+r,", "8",
                           "17777", "ua755", "u+q", ",a+r"}) {
    auto rules = ChmodRules::Parse(std::string_view(spec), 022);
    ASSERT_FALSE(rules.has_value()) << '"' << spec << '"';
    EXPECT_NE(rules.error().message.find(spec), std::string::npos) << rules.error().message;
  }
  EXPECT_TRUE(ChmodRules::Parse(std::string_view("a+"), 022).has_value());  // rsync takes it.
}

TEST(ChmodRulesTest, ClausesWithoutWhoFollowTheUmask) {
  auto rules = ChmodRules::Parse(std::string_view("+rwx"), 077);
  ASSERT_TRUE(rules.has_value());
  EXPECT_EQ(rules->Apply(0, false), 0700u);
  auto explicit_who = ChmodRules::Parse(std::string_view("a+rwx"), 077);
  ASSERT_TRUE(explicit_who.has_value());
  EXPECT_EQ(explicit_who->Apply(0, false), 0777u);
}

TEST(ChmodRulesTest, SeveralValuesApplyInOrder) {
  auto rules = ChmodRules::Parse(std::vector<std::string>{"a=r", "u+w", "Da+x"}, 022);
  ASSERT_TRUE(rules.has_value());
  EXPECT_EQ(rules->Apply(0777, false), 0644u);
  EXPECT_EQ(rules->Apply(0700, true), 0755u);
  EXPECT_FALSE(ChmodRules::Parse(std::vector<std::string>{"a=r", "bad"}, 022).has_value());
}

TEST(ChmodRulesTest, CurrentUmaskReadsTheProcessMask) {
  mode_t old = ::umask(027);
  EXPECT_EQ(CurrentUmask(), 027u);
  ::umask(old);
}

}  // namespace
}  // namespace syncd
