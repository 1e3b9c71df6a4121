"""A seccomp filter that stops a sandboxed kernel from making user namespaces (stage: "sandbox").

Inside the grading sandbox the kernel runs as an unprivileged uid with no capabilities, but Linux
lets any process `unshare(CLONE_NEWUSER | CLONE_NEWNET)` and become root of new namespaces: with
CAP_NET_ADMIN there, nf_tables and other kernel interfaces meant for root are in reach (the way
several nf_tables privilege escalations were reached). bwrap's `--disable-userns` closes this only
when bwrap itself makes a user namespace, which a root grader does not (it drops to a uid of its own
per sandbox instead). So the sandbox installs this classic BPF program with `bwrap --seccomp`:

- `unshare` and `clone` with CLONE_NEWUSER in their flags fail with EPERM;
- `clone3` fails with ENOSYS (its flags sit in memory a filter cannot read; the C library then falls
  back to `clone`, so threads and subprocesses keep working);
- a system call of another ABI (i386 through `int 0x80`, x32) fails with EPERM, so the filter cannot
  be walked around through the other table;
- everything else is allowed.

Nothing the grader does needs nested namespaces. Written by hand (no libseccomp binding in the
learner's environment): a dozen instructions, decoded in the tests.
"""
from __future__ import annotations

import os
import platform
import struct

CLONE_NEWUSER = 0x10000000
EPERM, ENOSYS = 1, 38

# (AUDIT_ARCH_*, {name: syscall number}) per machine
ARCHES = {
    "x86_64": (0xC000003E, {"clone": 56, "unshare": 272, "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "unshare": 97, "clone3": 435}),
}
X32_SYSCALL_BIT = 0x40000000

# classic BPF opcodes
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

# offsets in struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
NR, ARCH, ARG0_LOW = 0, 4, 16  # little-endian: the low half of args[0] first


class SeccompUnavailable(RuntimeError):
    pass


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple:
    return (code, jt, jf, k)


def program(machine: str | None = None) -> list[tuple]:
    """The filter's instructions (code, jt, jf, k) for this machine."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise SeccompUnavailable(f"no user-namespace filter for {machine!r} (known: {', '.join(ARCHES)})")
    audit_arch, nr = ARCHES[machine]
    deny, nosys, allow = RET_ERRNO | EPERM, RET_ERRNO | ENOSYS, RET_ALLOW
    return [
        _ins(LD_W_ABS, ARCH),                       # 0
        _ins(JEQ_K, audit_arch, 1, 0),              # 1: native ABI? skip the deny
        _ins(RET_K, deny),                          # 2
        _ins(LD_W_ABS, NR),                         # 3
        _ins(JGE_K, X32_SYSCALL_BIT, 0, 1),         # 4: x32 numbers
        _ins(RET_K, deny),                          # 5
        _ins(JEQ_K, nr["clone3"], 0, 1),            # 6
        _ins(RET_K, nosys),                         # 7
        _ins(JEQ_K, nr["unshare"], 1, 0),           # 8 -> 10
        _ins(JEQ_K, nr["clone"], 0, 3),             # 9 -> 10, else 13
        _ins(LD_W_ABS, ARG0_LOW),                   # 10: the flags
        _ins(JSET_K, CLONE_NEWUSER, 0, 1),          # 11
        _ins(RET_K, deny),                          # 12
        _ins(RET_K, allow),                         # 13
    ]


def compiled(machine: str | None = None) -> bytes:
    """The filter as the array of struct sock_filter that `bwrap --seccomp FD` reads."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in program(machine))


def run(instructions: list[tuple], nr_: int, arch: int, arg0: int) -> int:
    """Evaluate the filter on one system call, as the kernel would (for the tests)."""
    data = struct.pack("=iIQ6Q", nr_, arch, 0, arg0 & 0xFFFFFFFFFFFFFFFF, 0, 0, 0, 0, 0)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = instructions[pc]
        if code == LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == RET_K:
            return k
        elif code in (JEQ_K, JGE_K, JSET_K):
            hit = acc == k if code == JEQ_K else acc >= k if code == JGE_K else bool(acc & k)
            pc += jt if hit else jf
        else:  # pragma: no cover
            raise ValueError(f"unknown opcode {code:#x}")
        pc += 1


def write(folder: str | os.PathLike) -> str:
    """Write the compiled filter into `folder`; returns its path (bwrap reads it on a file descriptor)."""
    path = os.path.join(folder, "no-userns.bpf")
    with open(path, "wb") as f:
        f.write(compiled())
    return path
