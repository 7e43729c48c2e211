#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns one `make check` run's raw output into results/tests.tsv and results/summary.txt, decides
the gate, and prints the closing `N passed, N failed` line. Exit status 0 only if nothing gated
failed.

Raw layout (results/raw/): host-tests.txt (cargo test output), and per implementation <impl>/:
<suite>.tap, <suite>.rc, dmesg.txt, done, load.failed, unload.failed.

Gated: the host tests, our own selftest suites (against every implementation run: they state
upstream's behaviour, so the C module must pass them too), the kernel health rows (module load and
unload, a clean dmesg, the guest finishing), and the upstream tests named in
tests/upstream-pass.list, against the Rust module. Other upstream results are reported only.
"""
import os
import re
import sys

UPSTREAM_SUITES = ("iommufd", "iommufd_fail_nth")
SPLAT = re.compile(r"(WARNING:|BUG:|Oops|KASAN:|UBSAN:|kernel BUG|panicked at|"
                   r"unreferenced object|possible circular locking|possible recursive locking|"
                   r"inconsistent lock state|sleeping function called from invalid context|"
                   r"Kernel panic|blocked for more than|soft lockup|hard LOCKUP)")
# A kmemleak report whose allocation backtrace has these frames, in this order, is the IOMMU
# core's and shows with the C module too: iommu_mock_device_add() calls iommu_fwspec_init(),
# which sets up dev->iommu (dev_iommu_get(), a frame of its own only where it is not inlined:
# clang inlines it) and then allocates the fwspec; when that allocation fails under fault
# injection, iommu_fwspec_init() returns -ENOMEM with dev->iommu left set, and
# iommu_mock_device_add() returns without freeing it (it frees only when device_add() fails).
# Nothing of ours allocates inside iommu_fwspec_init(). It is counted, named in the note, and
# does not fail the run; any other report does.
KNOWN_LEAK = ("iommu_fwspec_init", "iommu_mock_device_add")
KNOWN_LEAK_WHY = ("dev_iommu from iommu_fwspec_init() in iommu_mock_device_add() when the fwspec "
                  "allocation fails (IOMMU core; C too)")


def scan_splats(dmesg):
    """Splat lines of a dmesg, less the kmemleak reports of the known IOMMU-core leak; returns
    (splats, how many known reports were set aside)."""
    lines = dmesg.splitlines()
    splats, known, i = [], 0, 0
    while i < len(lines):
        line = lines[i]
        if "unreferenced object" in line:
            # The report runs to the next one or to the first line that is not indented.
            j = i + 1
            while j < len(lines) and "unreferenced object" not in lines[j] and \
                    re.match(r"^(\[\s*[\d.]+\])?\s", lines[j]):
                j += 1
            frames = [f.split("+")[0].split()[-1] for f in lines[i + 1:j] if "+0x" in f]
            it = iter(frames)
            if all(any(f == want for f in it) for want in KNOWN_LEAK):
                known += 1
            else:
                splats.append(line)
            i = j
            continue
        if SPLAT.search(line):
            splats.append(line)
        i += 1
    return splats, known


TAP = re.compile(r"^(not )?ok \d+ (\S+)(?:\s+#\s*(SKIP|skip)\s*(.*))?")
CARGO = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")


def parse_tap(path):
    rows = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = TAP.match(line.rstrip("\n"))
                if not m:
                    continue
                if m.group(3):
                    rows.append((m.group(2), "skip", m.group(4).strip()))
                else:
                    rows.append((m.group(2), "fail" if m.group(1) else "ok", ""))
    except FileNotFoundError:
        pass
    return rows


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


def tasks_line(tasks, n):
    """The first `n` of `tasks` (each `[name, frame, frame, ...]`, innermost frame first) as
    `name: frame < frame < ...; ...`, for one failure line."""
    return "; ".join(f"{t[0]}: {' < '.join(t[1:]) or '(no stack)'}" for t in tasks[:n])


def stuck_summary(text):
    """The tasks of a <suite>.stuck file (guest-tests.sh) as `comm: frame < frame < ...`, the
    innermost frames first, short enough for one failure line."""
    tasks, cur = [], None
    for line in text.splitlines():
        if line.startswith("task "):
            cur = [line.split(None, 2)[-1]]
            tasks.append(cur)
        elif cur is not None and "]" in line:
            frame = line.split("]", 1)[1].strip().split("+")[0]
            if frame and len(cur) < 9:
                cur.append(frame)
    if not tasks:
        return "no task in state D (the suite's process ignored its kill)"
    return tasks_line(tasks, 3)


NMI_TASK = re.compile(r"\]\s+task:(\S+)\s+state:(\S+)")
# A stack frame (`name+0x1f/0x80`, not the unreliable `? name+...`), and those every sleeper has.
FRAME = re.compile(r"^([A-Za-z_][\w.]*)\+0x")
DULL_FRAME = re.compile(r"^(__schedule|schedule|schedule_timeout|schedule_preempt_disabled|"
                        r"entry_SYSCALL|do_syscall_64)")


def nmi_summary(console):
    """The tasks the host's NMI at the VM limit printed (tools/vm/run.sh), as `comm (state):
    frame < frame ...`: those asleep uninterruptibly, and those with an iommufd or VFIO frame."""
    at = console.find("NMI received for unknown reason")
    if at < 0:
        return ""
    tasks, cur = [], None
    for line in console[at:].splitlines():
        m = NMI_TASK.search(line)
        if m:
            cur = [f"{m.group(1)} ({m.group(2)})"]
            tasks.append(cur)
        elif cur is not None and "]" in line:
            frame = FRAME.match(line.split("]", 1)[1].strip())
            if frame and not DULL_FRAME.match(frame.group(1)) and len(cur) < 8:
                cur.append(frame.group(1))
    pick = [t for t in tasks if t[0].endswith("(D)") or
            any("iommufd" in f or "vfio" in f for f in t[1:])]
    if not pick:
        return "no task asleep uninterruptibly or in iommufd/VFIO"
    return tasks_line(pick, 4)


LOCKUP = re.compile(r"hard LOCKUP on cpu (\d+)")


def lockup_summary(console):
    """Where the CPU a hard-lockup report names was, from the NMI backtrace the detector asked of
    it: `cpu N: frame < frame < ..., interrupts on|off`. A CPU in the idle halt with interrupts on
    is the emulator's stall (Documentation/testing.rst), not a kernel that spins."""
    m = LOCKUP.search(console)
    if not m:
        return ""
    cpu = m.group(1)
    at = console.find(f"NMI backtrace for cpu {cpu}", m.end())
    if at < 0:
        return f"cpu {cpu}: no backtrace"
    frames, irqs = [], "?"
    for line in console[at:].splitlines()[1:]:
        text = line.split("]", 1)[1].strip() if "]" in line else line.strip()
        if text.startswith("RIP: 0010:"):
            frames.append(text[len("RIP: 0010:"):].split("+")[0])
        elif text.startswith("RSP:") and "EFLAGS:" in text:
            irqs = "on" if int(text.split("EFLAGS:")[1].split()[0], 16) & 0x200 else "off"
        elif FRAME.match(text) and len(frames) < 5:
            frames.append(text.split("+")[0])
        elif text.startswith("</TASK>") or text.startswith("</IRQ>") or "NMI backtrace" in text:
            break
    return f"cpu {cpu}: {' < '.join(frames) or '(no frames)'}, interrupts {irqs}"


def misrouted_mmio(console):
    """QEMU's own line for an MMIO access that reached VT-d's registers past their end: a store
    the TCG stale-TLB race sent to the wrong device (tools/vm/run.sh). QEMU prints only the
    first of a run. Empty if there is none."""
    return next((l.strip() for l in console.splitlines() if "MMIO over range" in l), "")


def why_unfinished(raw, d):
    """Why an implementation's run has no `done` marker, from what the guest and the console
    left: a stuck suite, or the last suite that started and the first splat of the console."""
    stuck = read(os.path.join(d, "stuck")).strip()
    if stuck:
        return f"suite {stuck} got stuck in the kernel and the run stopped there"
    name = f"console-{os.path.basename(d)}.log"
    console = read(os.path.join(raw, name))
    last = [l for l in console.splitlines() if l.startswith("[guest]")]
    splat = next((l.strip() for l in console.splitlines() if SPLAT.search(l) or
                  "still waiting" in l), "")
    parts = [f"guest crashed or timed out (results/raw/{name})"]
    if last:
        parts.append(f"last guest line: {last[-1][8:][:100]}")
    nmi = nmi_summary(console)
    if nmi:
        parts.append(f"tasks at the VM limit: {nmi[:400]}")
    elif splat:
        parts.append(f"console: {splat[:160]}")
    lockup = lockup_summary(console)
    if lockup:
        parts.append(f"locked {lockup}")
    misrouted = misrouted_mmio(console)
    if misrouted:
        parts.append(f"QEMU misrouted an MMIO access: {misrouted[:120]}")
    return "; ".join(parts)


# The IOMMU a column ran on, by its label's suffix (check.sh): the x86 guest's VT-d unless named.
PLATFORMS = {"smmuv3": "smmuv3", "armvirtio": "virtio-iommu-arm64", "virtio": "virtio-iommu",
             "vtdfl": "vtd-fl", "nested": "smmuv3-fwb"}


def platform(suite, impl):
    """The platform of a row: `host` for what ran on the build machine, else the guest's IOMMU."""
    if suite in ("host", "style", "production", "install", "intree", "runner"):
        return "host" if suite in ("host", "style") else "vtd"
    suffix = impl.split("-", 1)[1] if "-" in impl else ""
    return PLATFORMS.get(suffix, "vtd")


def main():
    raw, repo, impls = sys.argv[1], sys.argv[2], sys.argv[3].split()
    results = os.path.dirname(raw.rstrip("/"))
    allow = set()
    for line in read(os.path.join(repo, "tests/upstream-pass.list")).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            suite, test = line.split()
            allow.add((suite, test))
    ours = sorted(os.path.basename(p)[:-2] for p in os.listdir(os.path.join(repo, "tests/selftests"))
                  if p.endswith(".c")) + ["fuzz"]

    rows = []  # suite, test, impl, result, gated, note

    host = read(os.path.join(raw, "host-tests.txt"))
    host_rows = [(m.group(1), {"ok": "ok", "FAILED": "fail", "ignored": "skip"}[m.group(2)])
                 for m in map(CARGO.match, host.splitlines()) if m]
    if not host_rows:
        host_rows = [("(no host tests ran)", "fail")]
    rows += [("host", t, "rust", r, True, "") for t, r in host_rows]

    style = parse_tap(os.path.join(raw, "style.tap")) or [("(style)", "fail", "no output")]
    rows += [("style", t, "rust", r, True, n) for t, r, n in style]

    # The production build's contents (check.sh, the nocontainer kernel's module): written only
    # when that kernel was built.
    production = parse_tap(os.path.join(raw, "production.tap"))
    rows += [("production", t, "rust", r, True, n) for t, r, n in production]

    # The install paths (tests/install/run.sh): written only on the default kernel.
    install = parse_tap(os.path.join(raw, "install.tap"))
    rows += [("install", t, "rust", r, True, n) for t, r, n in install]

    # Ours applied in tree (tests/intree/run.sh): the series, the two kernels' builds and
    # contents; their boots' results are the rust-intree and rust-builtin columns.
    intree = parse_tap(os.path.join(raw, "intree.tap"))
    rows += [("intree", t, "rust", r, True, n) for t, r, n in intree]

    # The VM runner's own checks (a panicking or hanging guest fails fast): infrastructure on the
    # Rust side of the project, like the host tests.
    runner = parse_tap(os.path.join(raw, "runner.tap")) or [("(runner self-test)", "fail", "no output")]
    rows += [("runner", t, "rust", r, True, n) for t, r, n in runner]

    for impl in impls:
        d = os.path.join(raw, impl)
        skipped = read(os.path.join(d, "skipped")).strip()
        if skipped:
            rows.append(("kernel", "guest_finished", impl, "fail", True, skipped))
            continue
        finished = os.path.exists(os.path.join(d, "done"))
        rows.append(("kernel", "guest_finished", impl, "ok" if finished else "fail", True,
                     "" if finished else why_unfinished(raw, d)))
        loaded = not os.path.exists(os.path.join(d, "load.failed"))
        rows.append(("kernel", "module_load", impl, "ok" if loaded else "fail", True, ""))
        if finished and loaded:
            unloaded = not os.path.exists(os.path.join(d, "unload.failed"))
            rows.append(("kernel", "module_unload", impl, "ok" if unloaded else "fail", True, ""))
        dmesg = read(os.path.join(d, "dmesg.txt"))
        splats, known = scan_splats(dmesg)
        note = splats[0].strip()[:200] if splats else ("" if dmesg else "no dmesg")
        if known and not splats:
            note = f"{known} known upstream kmemleak report(s), not ours: {KNOWN_LEAK_WHY}"
        rows.append(("kernel", "dmesg_clean", impl, "fail" if splats or not dmesg else "ok", True,
                     note))
        # kmemleak's own report (guest-tests.sh saves it after the unload, on kernels that have
        # it): its entries do not reach dmesg whole, so it is read here.
        leaks = os.path.join(d, "kmemleak.txt")
        if os.path.exists(leaks):
            leaked, known = scan_splats(read(leaks))
            note = f"{len(leaked)} unreferenced object(s): {leaked[0].strip()[:150]}" if leaked else ""
            if known:
                note = (note + "; " if note else "") + \
                    f"{known} known upstream report(s), not ours: {KNOWN_LEAK_WHY}"
            rows.append(("kernel", "kmemleak_clean", impl, "fail" if leaked else "ok", True, note))
        # Reported, not gated: a misrouted access is the emulator's.
        console = read(os.path.join(raw, f"console-{impl}.log"))
        if console:
            misrouted = misrouted_mmio(console)
            rows.append(("kernel", "qemu_mmio_in_range", impl, "fail" if misrouted else "ok", False,
                         misrouted[:160]))

        # A run that names its suites (the clients-only boots of another kernel profile) is
        # judged on those alone.
        named = read(os.path.join(d, "suites")).split()
        for suite in named or ours + ["clients"] + list(UPSTREAM_SUITES):
            tap = parse_tap(os.path.join(d, suite + ".tap"))
            rc = read(os.path.join(d, suite + ".rc")).strip()
            upstream = suite in UPSTREAM_SUITES
            seen = set()
            for test, result, note in tap:
                seen.add(test)
                # Ours on another kernel (rust-intree, rust-builtin) is gated as ours.
                gated = (not upstream) or (impl.split("-")[0] == "rust" and (suite, test) in allow)
                rows.append((suite, test, impl, result, gated, note))
            if upstream and impl.split("-")[0] == "rust":
                for s, t in sorted(allow):
                    if s == suite and t not in seen:
                        rows.append((suite, t, impl, "fail", True, "listed but did not run"))
            stuck = os.path.join(d, suite + ".stuck")
            if os.path.exists(stuck):
                rows.append((suite, "(suite)", impl, "fail", True,
                             "stuck in the kernel: " + stuck_summary(read(stuck))))
            elif not upstream and (not tap or rc in ("124", "137")):
                why = "timed out" if rc in ("124", "137") else f"no TAP output (exit {rc or 'none'})"
                rows.append((suite, "(suite)", impl, "fail", True, why))

    with open(os.path.join(results, "tests.tsv"), "w") as f:
        f.write("suite\ttest\timpl\tplatform\tresult\tgated\tnote\n")
        for s, t, i, r, g, n in rows:
            f.write(f"{s}\t{t}\t{i}\t{platform(s, i)}\t{r}\t{'yes' if g else 'no'}\t{n}\n")

    suites = []
    for s, *_ in rows:
        if s not in suites:
            suites.append(s)
    lines = [f"{'suite':<20}" + "".join(f"{i + ' ok/fail/skip':>31}" for i in impls)]
    for s in suites:
        cells = []
        for i in impls:
            rs = [r for (ss, _, ii, r, _, _) in rows if ss == s and ii == i]
            cells.append(f"{rs.count('ok')}/{rs.count('fail')}/{rs.count('skip')}" if rs else "-")
        lines.append(f"{s:<20}" + "".join(f"{c:>31}" for c in cells))
    gated = [r for r in rows if r[4]]
    passed = sum(1 for r in gated if r[3] == "ok")
    failed = sum(1 for r in gated if r[3] == "fail")
    skipped = sum(1 for r in gated if r[3] == "skip")
    lines.append("")
    lines.append(f"gated: {passed} passed, {failed} failed, {skipped} skipped")
    summary = "\n".join(lines) + "\n"
    with open(os.path.join(results, "summary.txt"), "w") as f:
        f.write(summary)
    print(summary)
    for s, t, i, r, g, n in gated:
        if r == "fail":
            print(f"FAIL {s} {t} [{i}] {n}")
        elif r == "skip":
            print(f"SKIP {s} {t} [{i}] {n}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
