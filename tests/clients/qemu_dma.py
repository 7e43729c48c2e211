#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""QEMU itself moves bytes through its iommufd backend.

In the guest, a QEMU (the host's binary, seen through the guest's read-only root) is started with
`-object iommufd -device vfio-pci,iommufd=` on the edu device's VFIO cdev: it opens /dev/iommu,
binds the cdev, allocates an IOAS and maps all of its guest RAM there at IOVA = guest physical
address, exactly as when it runs a VM. Its vCPU only halts (a 64 KiB firmware of `cli; hlt`), so
nothing of a guest OS touches the device or the RAM; the test drives both over QEMU's qtest socket
instead: it programs the assigned device's config space (BAR0, memory decoding, bus mastering)
through port I/O, writes a pattern into QEMU's guest RAM, has edu DMA it into its buffer and out to
another guest address, and reads QEMU's guest RAM back. The bytes must land there: edu's DMA went
through the IOMMU page tables the loaded iommufd built from QEMU's own mappings. Then a DMA to a
guest address QEMU has no RAM at (so never mapped) must leave nothing and make the IOMMU report a
fault.

Usage: qemu_dma.py /dev/vfio/devices/vfioN. Prints TAP.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
# Where the assigned device sits on QEMU's root bus: fixed, so config cycles can name it.
SLOT = 4
BAR0 = 0xFD000000
RAM_MB = 128
SRC, DST = 0x100000, 0x200000
UNMAPPED = 0xF000000  # 240 MiB: past the 128 MiB of RAM, within edu's 28-bit DMA mask
EDU_BUF = 0x40000
LEN = 4096


class Qtest:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        for _ in range(300):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("qtest socket never came up")
        self.f = self.s.makefile("rw")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        while True:
            reply = self.f.readline()
            if not reply:
                raise RuntimeError(f"qtest closed after {line!r}")
            if reply.startswith("IRQ"):
                continue
            if not reply.startswith("OK"):
                raise RuntimeError(f"qtest: {line!r} -> {reply.strip()!r}")
            return reply[2:].strip()

    def cfg_addr(self, reg):
        return 0x80000000 | (SLOT << 11) | (reg & 0xFC)

    def cfg_read32(self, reg):
        self.cmd(f"outl 0xcf8 {self.cfg_addr(reg):#x}")
        return int(self.cmd("inl 0xcfc"), 16)

    def cfg_write32(self, reg, val):
        self.cmd(f"outl 0xcf8 {self.cfg_addr(reg):#x}")
        self.cmd(f"outl 0xcfc {val:#x}")

    def read(self, addr, n):
        return bytes.fromhex(self.cmd(f"read {addr:#x} {n}")[2:])

    def write(self, addr, data):
        self.cmd(f"write {addr:#x} {len(data)} 0x{data.hex()}")


def edu_dma(q, src, dst, n, to_ram):
    q.cmd(f"writeq {BAR0 + 0x80:#x} {src:#x}")
    q.cmd(f"writeq {BAR0 + 0x88:#x} {dst:#x}")
    q.cmd(f"writeq {BAR0 + 0x90:#x} {n:#x}")
    q.cmd(f"writeq {BAR0 + 0x98:#x} {0x1 | (0x2 if to_ram else 0):#x}")
    for _ in range(500):
        if not int(q.cmd(f"readq {BAR0 + 0x98:#x}"), 16) & 1:
            return True
        time.sleep(0.01)
    return False


def kmsg_faults(fd):
    n = 0
    while True:
        try:
            line = os.read(fd, 4096).decode(errors="replace")
        except BlockingIOError:
            return n
        if ("DMAR" in line and "fault" in line) or "F_TRANSLATION" in line or "fault from EP" in line:
            n += 1


def main():
    cdev = sys.argv[1]
    name = os.path.basename(cdev)
    bdf = os.path.basename(os.path.realpath(f"/sys/class/vfio-dev/{name}/device"))
    print("TAP version 13")
    print("1..2")
    tmp = tempfile.mkdtemp()
    bios = os.path.join(tmp, "hlt.bin")
    with open(bios, "wb") as f:
        # The reset vector (the last 16 bytes below 4 GiB): cli; hlt; jmp back to the hlt.
        f.write(bytes(65536 - 16) + bytes([0xFA, 0xF4, 0xEB, 0xFD]) + bytes(12))
    sock = os.path.join(tmp, "qtest.sock")
    err = open(os.path.join(tmp, "err"), "w+")
    qemu = subprocess.Popen(
        [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-machine", "q35",
         "-accel", "tcg", "-m", str(RAM_MB), "-bios", bios,
         "-qtest", f"unix:{sock},server=on,wait=off",
         "-object", "iommufd,id=iommufd0",
         "-device", f"vfio-pci,host={bdf},iommufd=iommufd0,id=edu0,bus=pcie.0,addr={SLOT:#x}"],
        stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    results = []
    try:
        q = Qtest(sock)
        ident = q.cfg_read32(0)
        if ident != 0x11E81234:
            raise RuntimeError(f"slot {SLOT} holds {ident:#x}, not edu")
        q.cfg_write32(0x10, BAR0)
        q.cfg_write32(0x04, q.cfg_read32(0x04) | 0x6)  # memory decoding, bus master
        dev_ident = int(q.cmd(f"readl {BAR0:#x}"), 16)
        if dev_ident & 0xFF0000FF != 0x010000ED:
            raise RuntimeError(f"BAR0 reads {dev_ident:#x}, not edu's identification")

        pattern = bytes((i * 13 + 7) & 0xFF for i in range(LEN))
        q.write(SRC, pattern)
        q.write(DST, bytes(LEN))
        ok = edu_dma(q, SRC, EDU_BUF, LEN, False) and edu_dma(q, EDU_BUF, DST, LEN, True)
        got = q.read(DST, LEN)
        if ok and got == pattern:
            results.append(("ok", "qemu_dma_lands", ""))
        else:
            first = next((i for i in range(LEN) if got[i] != pattern[i]), None)
            results.append(("not ok", "qemu_dma_lands",
                            f"DMA finished: {ok}; first differing byte {first}"))

        kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(kmsg, 0, os.SEEK_END)
        before = q.read(DST, LEN)
        finished = edu_dma(q, EDU_BUF, UNMAPPED, LEN, True)
        faults = 0
        for _ in range(50):
            faults += kmsg_faults(kmsg)
            if faults:
                break
            time.sleep(0.02)
        os.close(kmsg)
        # Nothing of QEMU's RAM changed, and the IOMMU saw the DMA to an unmapped address.
        if finished and faults and q.read(DST, LEN) == before:
            results.append(("ok", "qemu_dma_unmapped_faults", ""))
        else:
            results.append(("not ok", "qemu_dma_unmapped_faults",
                            f"DMA finished: {finished}; faults reported: {faults}"))
    except Exception as e:  # noqa: BLE001 - any failure is the test's result
        err.seek(0)
        for line in err.read().splitlines():
            print(f"# qemu: {line}")
        while len(results) < 2:
            results.append(("not ok", ("qemu_dma_lands", "qemu_dma_unmapped_faults")[len(results)], str(e)))
    finally:
        qemu.kill()
        qemu.wait()
    for i, (r, t, note) in enumerate(results, 1):
        print(f"{r} {i} {t}" + (f" # {note}" if note else ""))
    return 0 if all(r == "ok" for r, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
