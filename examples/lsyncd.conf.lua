-- The Session Manager failover pair: the lsyncd configuration from the failover guide
-- (chapter V, Ubuntu LTS variant), unchanged. syncd runs it as it is:
--
--   syncd /etc/lsyncd/lsyncd.conf.lua
--
-- on the active node, with `syncd --server` installed on "the-other-osm". The RHEL variant
-- differs only in the PHP session folder: /var/lib/php/session.
host = "the-other-osm"
folders = {
  "/var/spool/ovd/session-manager",
  "/etc/ovd/session-manager",
  "/var/lib/php/sessions",
}
settings {
  logfile = "/var/log/lsyncd.log",
  insist = true,
}
for _, folder in ipairs( folders ) do
  sync {
    default.rsyncssh,
    source = folder,
    host = host,
    targetdir = folder,
    exclude = {'.*'},
    rsync = {
      archive = true,
      prune_empty_dirs = true,
      _extra = {'--rsh=ssh -i /root/.ssh/sync_rsa'},
    },
    ssh = {
      identityFile = '/root/.ssh/sync_rsa',
    },
  }
end
