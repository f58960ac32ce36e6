#!/usr/bin/env python3
"""Shares of a `perf record --call-graph` profile by work and by thread.

Usage: perf script -i perf.data | scripts/profile-by-work.py

Each sample is counted once, under the innermost frame of its stack that names its work
(see WORK: the first pattern that matches a frame, innermost frame first); a sample no
frame names is "other". Threads are grouped by name, with numbers dropped ("bank-journal",
"tokio-runtime-w"). Used for docs/PERFORMANCE.md, "Where the time goes".
"""

import re
import sys
from collections import Counter

# (work, pattern on a frame's symbol or object), innermost match wins.
WORK = [
    ("signatures (curve25519, ed25519, SHA-512)", r"curve25519|ed25519|sha2::|sha512|Sha512|scalar|edwards|FieldElement"),
    ("receipt hashing (SHA-256)", r"sha256|Sha256"),
    ("SQLite (derived state)", r"sqlite3|rusqlite"),
    ("log append and fdatasync, in the kernel", r"fdatasync|sync_data|ext4_sync|jbd2|file_write|pwrite|FileLog"),
    ("allocation (mimalloc)", r"mi_|mimalloc"),
    ("memcpy", r"memcpy|memmove|__memset"),
    ("futex and scheduling", r"futex|schedule|__sched|pthread_cond|syscall_exit|finish_task_switch"),
    ("rustls (TLS records)", r"rustls|ring::|aes_gcm|gcm_|aesni|chacha"),
    ("h2, hyper, tonic", r"\bh2::|hyper::|tonic::|tower::"),
    ("prost (encoding, decoding)", r"prost::"),
    ("sockets, in the kernel", r"tcp_|sock_|__sys_sendmsg|__sys_recvmsg|inet_|ip_|skb_|loopback|net_rx"),
    ("tokio", r"tokio::"),
    ("Corridor's own code", r"corridor::"),
]
COMPILED = [(work, re.compile(pattern)) for work, pattern in WORK]


def thread_group(comm):
    return re.sub(r"[-_ ]?\d+$", "", comm.strip())


def main():
    by_work, by_thread, total = Counter(), Counter(), 0
    comm, frames = None, []

    def flush():
        nonlocal total
        if comm is None:
            return
        total += 1
        by_thread[thread_group(comm)] += 1
        for frame in frames:
            for work, pattern in COMPILED:
                if pattern.search(frame):
                    by_work[work] += 1
                    return
        by_work["other"] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, frames = None, []
        elif not line.startswith((" ", "\t")):
            comm = line.split()[0] if line.split() else "?"
            frames = []
        else:
            frames.append(line.strip())
    flush()
    if not total:
        sys.exit("no samples on stdin (pipe `perf script` into this)")
    print(f"{total} samples\n\n| work | share |\n|---|---|")
    for work, count in by_work.most_common():
        print(f"| {work} | {100 * count / total:.1f}% |")
    print("\n| thread | share |\n|---|---|")
    for thread, count in by_thread.most_common(12):
        print(f"| {thread} | {100 * count / total:.1f}% |")


if __name__ == "__main__":
    main()
