#!/usr/bin/env python3
"""Writes the fuzzer's seed corpus: one file per kind of request, each a byte stream as the
agent reads it after HELLO and OPEN. The layout follows transport/PROTOCOL.md."""
import os
import struct
import subprocess
import sys

def frame(t, payload=b""):
    return struct.pack(">IB", len(payload) + 1, t) + payload

def s(b):
    return struct.pack(">I", len(b)) + b

def meta(mode=0o644):
    return struct.pack(">III", mode, 0, 0) + s(b"root") + s(b"root") + struct.pack(">qI", 1600000000, 5)

def u64(v):
    return struct.pack(">Q", v)

def put(seq, path, content, hash_=(0, 0), status=0):
    return (frame(0x10, u64(seq) + s(path) + u64(len(content)) + meta()) +
            frame(0x11, u64(seq) + content) +
            frame(0x12, u64(seq) + bytes([status]) + u64(hash_[0]) + u64(hash_[1])))

def commit(seq):
    return frame(0x20, u64(seq))

seeds = {
    "put_commit": put(2, b"a.txt", b"hello") + commit(3),
    "put_abort": put(2, b"d/b", b"partial", status=1) + commit(3),
    "mkdir_put_rename_delete": (frame(0x13, u64(2) + s(b"dir") + meta(0o755)) +
                                put(3, b"dir/f", b"x" * 100) +
                                frame(0x17, u64(4) + s(b"dir") + s(b"moved")) +
                                frame(0x15, u64(5) + s(b"moved/f")) + commit(6)),
    "symlink_setmeta": (frame(0x14, u64(2) + s(b"link") + s(b"../../etc/passwd") + meta(0o777)) +
                        frame(0x16, u64(3) + s(b"link") + bytes([3]) + meta(0o600)) + commit(4)),
    "list": frame(0x03, u64(2)),
    "escapes": (put(2, b"../x", b"no") + put(3, b"/abs", b"no") + put(4, b"a/./b", b"no") +
                frame(0x15, u64(5) + s(b"")) + commit(6)),
    "signature_patch": (put(2, b"base", b"0123456789" * 1000) + commit(3) +
                        frame(0x18, u64(4) + s(b"base")) +
                        frame(0x19, u64(5) + s(b"base") + u64(10) + meta()) +
                        frame(0x11, u64(5) + b"rs\x026" + b"\x41\x0a" + b"ABCDEFGHIJ" + b"\x00") +
                        frame(0x12, u64(5) + b"\x00" + u64(0) + u64(0)) + commit(6)),
}
try:
    z = subprocess.run(["zstd", "-q", "-c"], input=put(2, b"z", b"z" * 5000) + commit(3),
                       capture_output=True, check=True).stdout
    seeds["zstd_put"] = frame(0x30, z)
except (OSError, subprocess.CalledProcessError):
    print("make_corpus: zstd not found; no zstd seed", file=sys.stderr)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
