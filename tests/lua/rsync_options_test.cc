#include "lua/rsync_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd::lua {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

RsyncTableValue Flag(bool on) { return RsyncTableValue{on, std::nullopt, {}}; }
RsyncTableValue Text(std::string t) { return RsyncTableValue{true, std::move(t), {}}; }
RsyncTableValue Extra(std::vector<std::string> list) { return RsyncTableValue{true, std::nullopt, std::move(list)}; }

std::vector<std::string> Texts(const std::vector<RsyncArg>& args) {
  std::vector<std::string> out;
  for (const RsyncArg& a : args) out.push_back(a.text);
  return out;
}

// What the table gives, read back: the options and the notes.
Result<SyncConfig> Read(const std::map<std::string, RsyncTableValue>& table) {
  SyncConfig s;
  s.host = "peer";
  s.rsync = RsyncOptions{};
  s.rsync.links = s.rsync.times = false;
  auto r = ApplyRsyncArgs(s, RsyncArgsFromTable(table, "sync[1].rsync"), "f:2");
  if (!r) return std::unexpected(r.error());
  return s;
}

std::string Refusal(const std::map<std::string, RsyncTableValue>& table) {
  auto s = Read(table);
  return s ? std::string("(accepted)") : s.error().message;
}

TEST(RsyncOptionsTest, TableBecomesLsyncdsArguments) {
  // lsyncd 2.2.3: -lts by default, archive spelled out, _extra, then --name=VALUE keys.
  EXPECT_THAT(Texts(RsyncArgsFromTable({}, "r")), ElementsAre("-l", "-s", "-t"));
  EXPECT_THAT(Texts(RsyncArgsFromTable({{"archive", Flag(true)}, {"perms", Flag(false)},
                                        {"chmod", Text("g+w")},
                                        {"_extra", Extra({"--chmod=o-r"})}},
                                       "r")),
              ElementsAre("-g", "-l", "-o", "-s", "-r", "-t", "-D", "--chmod=o-r", "--chmod=g+w"));
}

TEST(RsyncOptionsTest, LinkCopyingFromTheTableAndExtra) {
  auto s = Read({{"copy_links", Flag(true)}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->Follow(), FollowLinks::kAll);
  s = Read({{"copy_unsafe_links", Flag(true)}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->Follow(), FollowLinks::kUnsafe);
  s = Read({{"_extra", Extra({"-avL", "--no-L"})}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->Follow(), FollowLinks::kNone);
}

TEST(RsyncOptionsTest, BackupsAsRsyncReadsThem) {
  auto s = Read({{"backup", Flag(true)}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_TRUE(s->Backups());
  EXPECT_EQ(s->BackupSuffix(), "~");
  EXPECT_FALSE(s->KeepDirTimes());  // -O is implied beside the files.
  EXPECT_THAT(s->filter_rules, ElementsAre("P *~"));
  s = Read({{"backup_dir", Text("/var/backups/spool")}, {"archive", Flag(true)}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_TRUE(s->Backups());
  EXPECT_EQ(s->BackupSuffix(), "");
  EXPECT_TRUE(s->KeepDirTimes());
  EXPECT_TRUE(s->filter_rules.empty());
  EXPECT_THAT(Refusal({{"backup", Flag(true)}, {"suffix", Text("")}}),
              HasSubstr("f:2: sync[1].rsync.suffix: --suffix cannot be empty without a --backup-dir"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"-b", "--suffix=a/b"})}}),
              HasSubstr("--suffix cannot contain slashes: a/b"));
  s = Read({{"_extra", Extra({"-a", "-O", "-J"})}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_FALSE(s->KeepDirTimes());
  EXPECT_FALSE(s->KeepLinkTimes());
  EXPECT_TRUE(s->KeepTimes());
}

TEST(RsyncOptionsTest, AclsImplyPermsAndXattrsCarryTheirScope) {
  auto s = Read({{"acls", Flag(true)}, {"_extra", Extra({"-X"})}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_TRUE(s->KeepPerms());
  EXPECT_TRUE(s->Xattrs().Carries("system.posix_acl_access"));
  EXPECT_TRUE(s->Xattrs().Carries("security.selinux"));
  EXPECT_FALSE(s->Xattrs().Carries("system.nfs4_acl"));
  s = Read({{"acls", Flag(true)}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_FALSE(s->Xattrs().Carries("user.mime_type"));
  EXPECT_TRUE(s->Xattrs().Carries("system.posix_acl_default"));
}

TEST(RsyncOptionsTest, ArchiveWithAnExplicitFalseKeepsItOff) {
  auto s = Read({{"archive", Flag(true)}, {"perms", Flag(false)}, {"owner", Flag(false)}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_FALSE(s->KeepPerms());
  EXPECT_FALSE(s->KeepOwner());
  EXPECT_TRUE(s->KeepGroup());
  EXPECT_TRUE(s->KeepTimes());
  EXPECT_TRUE(s->KeepDevices());
}

TEST(RsyncOptionsTest, ExtraFlagsApplyInOrderAndNoFormsTurnOff) {
  auto s = Read({{"_extra", Extra({"-a", "--no-perms", "--no-o", "-H", "--numeric-ids", "-u",
                                   "--existing", "--ignore-existing", "--size-only", "-c",
                                   "--safe-links", "--max-size=1.5M", "--min-size", "10k",
                                   "--chown=www-data:", "--delete-excluded", "-vP",
                                   "--info=progress2"})}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  const RsyncOptions& o = s->rsync;
  EXPECT_FALSE(o.perms);
  EXPECT_TRUE(o.owner);  // --chown=USER: implies -o after --no-o.
  EXPECT_TRUE(o.group);
  EXPECT_TRUE(o.hard_links);
  EXPECT_TRUE(o.numeric_ids);
  EXPECT_TRUE(o.update);
  EXPECT_TRUE(o.existing);
  EXPECT_TRUE(o.ignore_existing);
  EXPECT_TRUE(o.size_only);
  EXPECT_TRUE(o.checksum);
  EXPECT_TRUE(o.safe_links);
  EXPECT_TRUE(o.delete_excluded);
  EXPECT_EQ(o.max_size, 1572864u);
  EXPECT_EQ(o.min_size, 10240u);
  EXPECT_EQ(o.usermap, "*:www-data");
  EXPECT_FALSE(o.groupmap);
  EXPECT_THAT(s->notes, ElementsAre(HasSubstr("-v (in \"-vP\"): output only"),
                                    HasSubstr("-P: an interrupted file is sent again"),
                                    HasSubstr("--info=progress2: output only")));
}

TEST(RsyncOptionsTest, WhatCannotBeCarriedIsRefusedWithTheReason) {
  EXPECT_THAT(Refusal({{"dry_run", Flag(true)}}),
              HasSubstr("f:2: sync[1].rsync.dry_run: -n is refused: lsyncd with it changes "
                        "nothing on the standby"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"--files-from=/etc/list"})}}),
              HasSubstr("f:2: sync[1].rsync._extra: --files-from=/etc/list is refused: syncd "
                        "replicates the whole source tree"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"--remove-source-files"})}}),
              HasSubstr("never deletes on the active node"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"-avE"})}}),
              HasSubstr("-E (in \"-avE\") is refused: not carried by syncd yet"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"--frobnicate"})}}),
              HasSubstr("--frobnicate is refused: not an rsync option syncd knows"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"/etc/"})}}), HasSubstr("is not an option"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"--chmod"})}}), HasSubstr("--chmod is refused: needs a value"));
  EXPECT_THAT(Refusal({{"chmod", Text("u+q")}}),
              HasSubstr("f:2: sync[1].rsync.chmod: invalid chmod rule \"u+q\""));
  EXPECT_THAT(Refusal({{"max_size", Text("lots")}}), HasSubstr("--max-size: \"lots\" is not a size"));
  EXPECT_THAT(Refusal({{"usermap", Text("a:b")}, {"chown", Text("c:d")}}),
              HasSubstr("f:2: sync[1].rsync.usermap: --usermap=a:b is refused: --usermap (or "
                        "--chown) given twice"));
  EXPECT_THAT(Refusal({{"_extra", Extra({"--groupmap=a:b", "--chown=:c"})}}),
              HasSubstr("--chown and --usermap/--groupmap together"));
  // --no-X asks for what syncd does anyway.
  EXPECT_EQ(Refusal({{"_extra", Extra({"--no-xattrs", "--no-acls"})}}), "(accepted)");
}

TEST(RsyncOptionsTest, BwlimitIsKibPerSecondUnlessSaidOtherwise) {
  auto kib = Read({{"bwlimit", Text("100")}});
  ASSERT_TRUE(kib.has_value()) << kib.error().message;
  EXPECT_EQ(kib->rsync.bwlimit, 102400u);
  auto mb = Read({{"_extra", Extra({"--bwlimit=2MB"})}});
  ASSERT_TRUE(mb.has_value());
  EXPECT_EQ(mb->rsync.bwlimit, 2000000u);
  auto none = Read({{"bwlimit", Text("0")}});
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->rsync.bwlimit);
  EXPECT_THAT(Refusal({{"bwlimit", Text("fast")}}), HasSubstr("--bwlimit: \"fast\" is not a rate"));
}

TEST(RsyncOptionsTest, RsyncPathPrefixRunsTheAgentThroughIt) {
  auto sudo = Read({{"rsync_path", Text("sudo -n /usr/bin/rsync")}});
  ASSERT_TRUE(sudo.has_value()) << sudo.error().message;
  EXPECT_EQ(sudo->agent_command, "sudo -n syncd --server");
  auto plain = Read({{"rsync_path", Text("/usr/local/bin/rsync")}});
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->agent_command, "syncd --server");
  EXPECT_THAT(Refusal({{"rsync_path", Text("mkdir -p /x && rsync")}}), HasSubstr("a shell command line"));
  EXPECT_THAT(Refusal({{"rsync_path", Text("/opt/wrapper")}}), HasSubstr("a prefix such as sudo"));
}

TEST(RsyncOptionsTest, SizesAsRsyncReadsThem) {
  EXPECT_EQ(ParseRsyncSize("100", 'b'), 100u);
  EXPECT_EQ(ParseRsyncSize("100", 'k'), 102400u);
  EXPECT_EQ(ParseRsyncSize("2k", 'b'), 2048u);
  EXPECT_EQ(ParseRsyncSize("2KB", 'b'), 2000u);
  EXPECT_EQ(ParseRsyncSize("2KiB", 'b'), 2048u);
  EXPECT_EQ(ParseRsyncSize("1.5m", 'b'), 1572864u);
  EXPECT_EQ(ParseRsyncSize("1G+1", 'b'), 1073741825u);
  EXPECT_EQ(ParseRsyncSize("1k-1", 'b'), 1023u);
  EXPECT_FALSE(ParseRsyncSize("", 'b'));
  EXPECT_FALSE(ParseRsyncSize("k", 'b'));
  EXPECT_FALSE(ParseRsyncSize("5q", 'b'));
  EXPECT_FALSE(ParseRsyncSize("5kx", 'b'));
}

}  // namespace
}  // namespace syncd::lua
