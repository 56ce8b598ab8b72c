-- Quick start: replicates a demo tree into a second local directory. The target is local, so
-- syncd starts its own agent (`syncd --server`) as a child process and speaks the same
-- protocol to it that it speaks over SSH to a standby node.
local demo = os.getenv("SYNCD_DEMO_DIR") or "/tmp/syncd-demo"

settings {
  nodaemon = true,
}

sync {
  default.rsync,
  source = demo .. "/active",
  target = demo .. "/standby",
  exclude = { '.*' },
  rsync = { archive = true },
}
