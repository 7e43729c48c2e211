#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Runs in a guest (tools/vm/runner-selftest.sh): turns an edu device's memory decode off and on
as fast as it can on CPU 0, so that QEMU maps and unmaps its BAR over and over, while a process on
CPU 1 sleeps in 200 us steps, each one a store to that CPU's local APIC timer. Exits 0 when both
kept going for the whole run; 1, with the reason, when the sleeper went quiet for 10 s.

Under TCG with the local APICs reached by MMIO (xAPIC), QEMU 10.0 loses such stores now and then
(a store through a stale TLB entry lands on another device when the memory map changes) and
CPU 1 never takes a timer interrupt again: on the machines we measured, within 10 s. The runner
puts the APICs in x2APIC mode (tools/vm/run.sh) so that this cannot happen; this checks it.

Usage: bar-churn.py SECONDS
"""
import os
import sys
import time


def edu_without_driver():
    base = "/sys/bus/pci/devices"
    for dev in sorted(os.listdir(base)):
        path = os.path.join(base, dev)
        with open(os.path.join(path, "vendor")) as v, open(os.path.join(path, "device")) as d:
            if v.read().strip() == "0x1234" and d.read().strip() == "0x11e8" and \
                    not os.path.exists(os.path.join(path, "driver")):
                return path
    return None


def sleeper(out):
    """CPU 1: short sleeps, a count down the pipe every half second."""
    os.sched_setaffinity(0, {1})
    n, last = 0, time.monotonic()
    while True:
        time.sleep(0.0002)
        n += 1
        if time.monotonic() - last >= 0.5:
            last = time.monotonic()
            os.write(out, f"{n}\n".encode())


def main():
    secs = int(sys.argv[1])
    dev = edu_without_driver()
    if dev is None:
        print("bar-churn: no edu device without a driver")
        return 1
    if os.cpu_count() < 2:
        print("bar-churn: needs two CPUs")
        return 1
    rd, wr = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(rd)
        sleeper(wr)
    os.close(wr)
    os.set_blocking(rd, False)
    os.sched_setaffinity(0, {0})
    fd = os.open(os.path.join(dev, "config"), os.O_RDWR)
    command = os.pread(fd, 2, 4)
    off = bytes([command[0] & ~0x2 & 0xff, command[1]])
    on = bytes([command[0] | 0x2, command[1]])
    start = heard = time.monotonic()
    toggles, sleeps, rc = 0, 0, 0
    try:
        while time.monotonic() - start < secs:
            os.pwrite(fd, off, 4)
            os.pwrite(fd, on, 4)
            toggles += 1
            try:
                data = os.read(rd, 4096)
            except BlockingIOError:
                data = b""
            if data:
                sleeps = int(data.split()[-1])
                heard = time.monotonic()
            elif time.monotonic() - heard > 10:
                print(f"bar-churn: the sleeper on CPU 1 has been quiet for 10 s "
                      f"(after {sleeps} sleeps, {toggles} toggles)")
                rc = 1
                break
    finally:
        os.pwrite(fd, command, 4)
        os.kill(child, 9)
        os.waitpid(child, 0)
    if rc == 0:
        print(f"bar-churn: {toggles} BAR toggles on CPU 0, {sleeps} sleeps on CPU 1 in {secs} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
