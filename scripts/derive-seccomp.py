#!/usr/bin/env python3
"""Derives config/seccomp.json from Docker 20.10's default seccomp profile.

    python3 scripts/derive-seccomp.py UPSTREAM.json > config/seccomp.json

UPSTREAM.json is moby's profiles/seccomp/default.json at tag v20.10.24 (Apache-2.0), e.g.
    git -C moby show v20.10.24:profiles/seccomp/default.json > /tmp/default.json
Its sha256 must be the one below: the changes are made against that exact text, and a different
upstream is an error rather than a silently different profile. docs/SECURITY-notes.md explains each
change; src/sandbox/seccomp.ts checks the result at start-up.
"""
import hashlib
import json
import sys

UPSTREAM = {
    "repository": "https://github.com/moby/moby",
    "tag": "v20.10.24",
    "commit": "5d6db842238e3c4f5f9fb9ad70ea46b35227d084",
    "path": "profiles/seccomp/default.json",
    "sha256": "ce3585b856aa4a193671fd8280d0d0612a998bd3f10bdb2f8530dfa958c6197f",
    "license": "Apache-2.0 (Copyright 2013-2018 Docker, Inc.); this file is a modified version of it",
}

EPERM, ENOSYS = 1, 38
# clone(2) flags that create namespaces: NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (Docker's mask).
CLONE_NS_MASK = 0x7E020000
# socket(2) families a program without network may need: AF_UNIX, AF_INET, AF_INET6 (loopback only,
# NetworkMode none) and AF_NETLINK (glibc's getaddrinfo, interface listings in Go, Java, Node.js).
SOCKET_FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}

# Taken out of the unconditional allow list.
REMOVED = {
    "io_uring_setup": "io_uring: a large kernel attack surface (many privilege-escalation CVEs) that also bypasses seccomp's view of the calls it performs; ENOSYS, as on a kernel built without it",
    "io_uring_enter": "io_uring, see io_uring_setup",
    "io_uring_register": "io_uring, see io_uring_setup",
    "prlimit64": "only on the caller itself (pid 0, as glibc's getrlimit/setrlimit call it): another process (the supervisor, PID 1) must not have its limits changed",
    "socket": "only AF_UNIX, AF_INET, AF_INET6, AF_NETLINK: AF_VSOCK is not network-namespaced and reaches the host (or other sandboxes over vsock loopback) even with NetworkMode none",
    "socketcall": "the 32-bit multiplexer hides socket()'s family from seccomp; 32-bit code uses the direct socket calls",
}

# Denied explicitly (the default action would deny them too; listing them documents the intent and is
# what src/sandbox/seccomp.ts checks). Docker allowed several of these when the container had a capability.
DENIED_EPERM = [
    "userfaultfd", "perf_event_open", "bpf",
    "keyctl", "add_key", "request_key",
    "unshare", "setns",
    "mount", "umount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "kexec_load", "kexec_file_load", "reboot",
    "open_by_handle_at", "name_to_handle_at",
    "init_module", "finit_module", "delete_module",
    "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "process_madvise",
    "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "fanotify_init", "syslog", "vhangup",
    "iopl", "ioperm", "settimeofday", "stime", "clock_settime", "sethostname", "setdomainname",
    "get_mempolicy", "mbind", "set_mempolicy",
]
DENIED_ENOSYS = {
    "clone3": "glibc (pthread_create, posix_spawn) falls back to clone(2) on ENOSYS, whose flags seccomp can check; clone3's are behind a pointer",
    "io_uring_setup": REMOVED["io_uring_setup"],
    "io_uring_enter": "io_uring, see io_uring_setup",
    "io_uring_register": "io_uring, see io_uring_setup",
}


def main(path):
    raw = open(path, "rb").read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != UPSTREAM["sha256"]:
        sys.exit(f"{path}: sha256 {digest}, expected {UPSTREAM['sha256']} (moby {UPSTREAM['tag']} {UPSTREAM['path']})")
    upstream = json.loads(raw)
    rules = upstream["syscalls"]
    base = rules[0]
    assert base["action"] == "SCMP_ACT_ALLOW" and not base["args"] and not base["includes"], "unexpected upstream layout"
    for name in REMOVED:
        assert name in base["names"], name
    allow = [n for n in base["names"] if n not in REMOVED]

    out_rules = [dict(base, names=allow, comment="Docker 20.10's unconditional allow list, without " + ", ".join(sorted(REMOVED)))]
    dropped = []
    for rule in rules[1:]:
        if rule.get("includes", {}).get("caps"):
            # Allowed only when the container holds a capability: ours never should, and the profile
            # must not depend on it (someone adding CAP_SYS_ADMIN must not re-open mount, bpf, ...).
            dropped.append(rule)
            continue
        rule = json.loads(json.dumps(rule))
        if rule.get("excludes", {}).get("caps"):
            # clone without namespace flags and clone3 -> ENOSYS apply whatever the capabilities.
            del rule["excludes"]["caps"]
        if rule["names"] == ["clone3"]:
            rule["comment"] = DENIED_ENOSYS["clone3"]
        out_rules.append(rule)

    assert any(r["names"] == ["clone3"] and r.get("errnoRet") == ENOSYS for r in out_rules)
    out_rules.append({
        "names": ["io_uring_setup", "io_uring_enter", "io_uring_register"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS, "args": [],
        "comment": DENIED_ENOSYS["io_uring_setup"], "includes": {}, "excludes": {},
    })
    out_rules.append({
        "names": ["prlimit64"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}],
        "comment": REMOVED["prlimit64"], "includes": {}, "excludes": {},
    })
    for family, number in SOCKET_FAMILIES.items():
        out_rules.append({
            "names": ["socket"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": number, "op": "SCMP_CMP_EQ"}],
            "comment": f"socket({family}); " + REMOVED["socket"], "includes": {}, "excludes": {},
        })
    allowed_anywhere = {n for r in out_rules if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    clash = allowed_anywhere & set(DENIED_EPERM)
    assert not clash, clash
    out_rules.append({
        "names": DENIED_EPERM, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM, "args": [],
        "comment": "denied whatever the container's capabilities: namespaces, mounts, kernel keyrings, BPF, perf, userfaultfd, modules, kexec, file handles, other processes' memory",
        "includes": {}, "excludes": {},
    })

    profile = {
        "_comment": [
            "braindrill's seccomp profile (docs/SECURITY-notes.md). Generated by scripts/derive-seccomp.py",
            "from Docker 20.10's default profile (moby, Apache-2.0; see _upstream): the same allow list, minus",
            "io_uring (ENOSYS), prlimit64 on other processes, socket families other than unix/inet/inet6/netlink,",
            "socketcall, and every capability-conditional allowance. Denied calls fail with EPERM (ENOSYS for",
            "clone3 and io_uring); nothing is ever killed. Passed as SecurityOpt seccomp=<JSON text> by the engine",
            "(src/sandbox/seccomp.ts validates it at start-up). Fields starting with _ are ignored by Docker.",
        ],
        "_upstream": UPSTREAM,
        "_dropped_capability_rules": [{"caps": r["includes"]["caps"], "names": r["names"]} for r in dropped],
        "defaultAction": upstream["defaultAction"],
        "archMap": upstream["archMap"],
        "syscalls": out_rules,
    }
    json.dump(profile, sys.stdout, indent="\t")
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
