// SPDX-License-Identifier: GPL-2.0
//! iommufd-fuzz: random and mutated ioctl sequences on one `/dev/iommu` fd from several threads,
//! bounded in calls and time. It looks for what the kernel must never do on bad input: crash,
//! warn, leak, hang, or leave the fd unusable; the caller (make check / check-hard) reads dmesg.
//!
//!   iommufd-fuzz [CALLS] [SECONDS] [THREADS] [SEED]
//!
//! Prints a progress line every `FUZZ_PROGRESS` seconds (300; 0 for none) with the recent rate,
//! then calls, calls/s, and per command how often it succeeded and which errnos it gave: the
//! command coverage.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const IOMMUFD_TYPE: u64 = b';' as u64;
const CMD_BASE: u32 = 0x80;
const CMD_LAST: u32 = 0xa0; // IOMMU_TEST_CMD
const PAGE: u64 = 4096;

/// `_IO(';', nr)`.
fn io(nr: u32) -> u64 {
    (IOMMUFD_TYPE << 8) | u64::from(nr)
}

/// xorshift64*: small, fast, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Values that sit on the edges the kernel must check.
fn interesting_u64(r: &mut Rng, mem: u64) -> u64 {
    match r.below(12) {
        0 => 0,
        1 => 1,
        2 => PAGE,
        3 => r.below(64) * PAGE,
        4 => u64::MAX,
        5 => u64::MAX - r.below(2 * PAGE),
        6 => 1 << 63,
        7 => (1 << 21) * r.below(8),
        8 => mem + r.below(32) * PAGE,
        9 => mem + r.below(1 << 20),
        10 => r.below(1 << 32) * PAGE,
        _ => r.next(),
    }
}

/// Per-command outcome counts: successes and errnos.
#[derive(Default)]
struct Stats {
    by_cmd: BTreeMap<u32, BTreeMap<i32, u64>>,
}

struct Shared {
    fd: i32,
    ids: Vec<AtomicU32>,
    /// Access fds from `IOMMU_TEST_OP_CREATE_ACCESS`, for the access ops.
    fds: Vec<AtomicU32>,
    mem: u64,
    calls: AtomicU64,
    stop: AtomicBool,
}

fn pick_id(r: &mut Rng, s: &Shared) -> u32 {
    match r.below(10) {
        0 => 0,
        1 => r.next() as u32,
        2 => r.below(64) as u32,
        _ => s.ids[r.below(s.ids.len() as u64) as usize].load(Ordering::Relaxed),
    }
}

/// Fills `buf` as the argument of command `nr`, valid-looking or not.
fn build_arg(r: &mut Rng, s: &Shared, nr: u32, buf: &mut [u8; 256]) -> usize {
    // Start from noise or zero, then lay down plausible fields.
    if r.chance(20) {
        for b in buf.iter_mut() {
            *b = r.next() as u8;
        }
    } else {
        buf.fill(0);
    }
    let put32 = |buf: &mut [u8; 256], off: usize, v: u32| buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 = |buf: &mut [u8; 256], off: usize, v: u64| buf[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    let flags = if r.chance(70) { r.below(8) as u32 } else { r.next() as u32 };
    // Struct sizes of the commands, to aim sizes at the edges of the rule.
    let size: usize = match nr {
        0x80 => 8,
        0x81 => 12,
        0x82 | 0x84 => if nr == 0x84 { 32 } else { 24 },
        0x83 => 40,
        0x85 => 40,
        0x86 => 24,
        0x87 => 24,
        0x88 => 12,
        0x89 => 48,
        0x8a => 40,
        0x8b => 16,
        0x8c => 48,
        0x8d => 32,
        0x8e => 16,
        0x90 => 40,
        0x91 => 24,
        0x92 => 8,
        0x93 => 32,
        0x94 => 40,
        0xa0 => 72,
        _ => 32,
    };
    match nr {
        0x80 => put32(buf, 4, pick_id(r, s)),
        0x81 => put32(buf, 4, if r.chance(80) { 0 } else { flags }),
        0x82 | 0x84 => {
            put32(buf, 4, pick_id(r, s));
            put32(buf, 8, r.below(6) as u32);
            put32(buf, 12, if r.chance(90) { 0 } else { 1 });
            // The range array: our scratch memory (filled with edge values) or garbage.
            let arr = if r.chance(85) { s.mem + 64 * PAGE } else { interesting_u64(r, s.mem) };
            put64(buf, 16, arr);
        }
        0x83 => {
            put32(buf, 4, flags);
            put32(buf, 8, pick_id(r, s));
            put32(buf, 12, pick_id(r, s));
            put64(buf, 16, interesting_u64(r, s.mem));
            put64(buf, 24, interesting_u64(r, s.mem));
            put64(buf, 32, interesting_u64(r, s.mem));
        }
        0x85 => {
            put32(buf, 4, flags);
            put32(buf, 8, pick_id(r, s));
            put32(buf, 12, if r.chance(90) { 0 } else { 1 });
            put64(buf, 16, if r.chance(70) { s.mem + r.below(32) * PAGE } else { interesting_u64(r, s.mem) });
            put64(buf, 24, interesting_u64(r, s.mem));
            put64(buf, 32, interesting_u64(r, s.mem));
        }
        0x86 => {
            put32(buf, 4, pick_id(r, s));
            put64(buf, 8, interesting_u64(r, s.mem));
            put64(buf, 16, interesting_u64(r, s.mem));
        }
        0x87 => {
            put32(buf, 4, r.below(3) as u32);
            buf[8..10].copy_from_slice(&(r.below(3) as u16).to_ne_bytes());
            put32(buf, 12, pick_id(r, s));
            put64(buf, 16, r.below(3));
        }
        0x88 => {
            put32(buf, 4, pick_id(r, s));
            buf[8..10].copy_from_slice(&(r.below(4) as u16).to_ne_bytes());
        }
        0x89 => {
            // HWPT_ALLOC: flags NEST_PARENT, DIRTY, FAULT_ID_VALID, PASID; data NONE or SELFTEST.
            put32(buf, 4, if r.chance(80) { r.below(16) as u32 } else { flags });
            put32(buf, 8, pick_id(r, s));
            put32(buf, 12, pick_id(r, s));
            let selftest = r.chance(40);
            put32(buf, 24, if selftest { 0xdead } else if r.chance(90) { 0 } else { flags });
            put32(buf, 28, if selftest { [4u32, 8, 16][r.below(3) as usize] } else { r.below(2) as u32 * 8 });
            put64(buf, 32, if r.chance(80) { s.mem + 64 * PAGE } else { interesting_u64(r, s.mem) });
            put32(buf, 40, pick_id(r, s));
        }
        0x8a => {
            put32(buf, 4, if r.chance(80) { r.below(2) as u32 } else { flags });
            put32(buf, 8, pick_id(r, s));
            put32(buf, 12, r.below(64) as u32);
            put64(buf, 16, if r.chance(80) { s.mem + 65 * PAGE } else { interesting_u64(r, s.mem) });
        }
        0x8b => {
            put32(buf, 4, r.below(3) as u32);
            put32(buf, 8, pick_id(r, s));
        }
        0x8c => {
            put32(buf, 4, pick_id(r, s));
            put32(buf, 8, r.below(3) as u32);
            put64(buf, 16, interesting_u64(r, s.mem));
            put64(buf, 24, interesting_u64(r, s.mem));
            put64(buf, 32, [0u64, 2048, 4096, 1 << 21, 3][r.below(5) as usize]);
            put64(buf, 40, if r.chance(80) { s.mem + 66 * PAGE } else { interesting_u64(r, s.mem) });
        }
        0x8d => {
            put32(buf, 4, pick_id(r, s));
            put64(buf, 8, if r.chance(80) { s.mem + 64 * PAGE } else { interesting_u64(r, s.mem) });
            put32(buf, 16, if r.chance(70) { 0xdeadbeef } else { flags });
            put32(buf, 20, [0u32, 8, 9, 4096, 4097][r.below(5) as usize]);
            put32(buf, 24, r.below(4) as u32);
        }
        0x8e => put32(buf, 4, if r.chance(90) { 0 } else { flags }),
        0x90 => {
            // VIOMMU_ALLOC: the selftest type on a device and a (nest parent) HWPT, optional data.
            put32(buf, 4, if r.chance(90) { 0 } else { flags });
            put32(buf, 8, if r.chance(80) { 0xdeadbeef } else { r.below(3) as u32 });
            put32(buf, 12, pick_id(r, s));
            put32(buf, 16, pick_id(r, s));
            put32(buf, 24, [0u32, 4, 8, 24, 25][r.below(5) as usize]);
            put64(buf, 32, if r.chance(80) { s.mem + 67 * PAGE } else { interesting_u64(r, s.mem) });
        }
        0x91 => {
            put32(buf, 4, pick_id(r, s));
            put32(buf, 8, pick_id(r, s));
            put64(buf, 16, if r.chance(80) { r.below(4) } else { interesting_u64(r, s.mem) });
        }
        0x93 => {
            put32(buf, 4, if r.chance(90) { 0 } else { flags });
            put32(buf, 8, pick_id(r, s));
            put32(buf, 12, if r.chance(80) { 0xbeefbeef } else { r.below(3) as u32 });
            put32(buf, 16, [0u32, 1, 2, 1 << 19, (1 << 19) + 1][r.below(5) as usize]);
        }
        0x94 => {
            put32(buf, 4, if r.chance(90) { 0 } else { flags });
            put32(buf, 8, pick_id(r, s));
            put32(buf, 12, if r.chance(80) { 0xdeadbeef } else { r.below(2) as u32 });
            put32(buf, 16, r.below(3) as u32);
            put64(buf, 24, interesting_u64(r, s.mem));
            put64(buf, 32, [0u64, 1, PAGE / 2, PAGE, 2 * PAGE, u64::MAX][r.below(6) as usize]);
        }
        0xa0 => {
            // The test ops both modules implement: reserved ranges, mock devices on IOAS/HWPT
            // IDs, replace, checks, accesses, PASIDs, faults, dirty marks, memory limit.
            let op = [1u32, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]
                [r.below(22) as usize];
            put32(buf, 4, op);
            let id = match op {
                6 | 7 | 8 | 11 => s.fds[r.below(s.fds.len() as u64) as usize].load(Ordering::Relaxed),
                _ => pick_id(r, s),
            };
            put32(buf, 8, id);
            put32(buf, 12, 0);
            match op {
                1 | 3 | 8 | 13 => {
                    put64(buf, 16, interesting_u64(r, s.mem));
                    put64(buf, 24, interesting_u64(r, s.mem));
                    put64(buf, 32, if r.chance(70) { s.mem } else { interesting_u64(r, s.mem) });
                    put64(buf, 40, r.below(4) * 2048);
                    put32(buf, 40, r.below(8) as u32);
                }
                4 => {
                    put64(buf, 16, r.below(8) * PAGE);
                    put64(buf, 24, if r.chance(80) { s.mem } else { interesting_u64(r, s.mem) });
                    put32(buf, 32, r.below(2) as u32);
                }
                5 => put32(buf, 20, r.below(2) as u32),
                6 => put32(buf, 16, r.below(8) as u32),
                7 => {
                    put32(buf, 16, r.below(2) as u32);
                    put64(buf, 24, interesting_u64(r, s.mem));
                    put64(buf, 32, [PAGE, 2 * PAGE, 100, 1 << 20][r.below(4) as usize]);
                    put64(buf, 40, if r.chance(50) { 0 } else { s.mem });
                }
                10 | 11 | 18 | 19 => {
                    put32(buf, 16, [0u32, 1, 100, 1024, 1 << 20][r.below(5) as usize]);
                    put32(buf, 20, pick_id(r, s));
                    if op == 10 || op == 11 {
                        put32(buf, 16, pick_id(r, s));
                    }
                }
                12 => put32(buf, 28, r.below(8) as u32),
                17 => put32(buf, 16, pick_id(r, s)),
                14 => {
                    put32(buf, 16, pick_id(r, s));
                    put32(buf, 20, r.below(3) as u32);
                }
                _ => {
                    put32(buf, 16, if r.chance(50) { 65536 } else { r.below(1 << 20) as u32 });
                    put32(buf, 20, pick_id(r, s));
                }
            }
        }
        _ => {}
    }
    let user_size = match r.below(10) {
        0 => r.below(size as u64) as usize,
        1 => size + 8 * (1 + r.below(8) as usize),
        2 => r.below(256) as usize,
        _ => size,
    };
    buf[0..4].copy_from_slice(&(user_size as u32).to_ne_bytes());
    user_size
}

fn worker(s: Arc<Shared>, seed: u64, calls: u64, stats: Arc<Mutex<Stats>>) {
    let mut r = Rng(seed | 1);
    let mut local: BTreeMap<u32, BTreeMap<i32, u64>> = BTreeMap::new();
    let mut buf = [0u8; 256];
    for _ in 0..calls {
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        let nr = if r.chance(97) {
            // Weighted to the commands with state to break.
            [
                0x80, 0x81, 0x81, 0x82, 0x83, 0x84, 0x85, 0x85, 0x85, 0x86, 0x86, 0x87, 0x88, 0x89,
                0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x92, 0xa0, 0xa0, 0xa0, 0x90, 0x91, 0x93, 0x94,
            ][r.below(28) as usize]
        } else {
            CMD_BASE + r.below(u64::from(CMD_LAST - CMD_BASE + 16)) as u32
        };
        build_arg(&mut r, &s, nr, &mut buf);
        let arg: *mut u8 = if r.chance(1) { 8 as *mut u8 } else { buf.as_mut_ptr() };
        // SAFETY: the kernel reads and writes at most `size` bytes of `buf` (256 bytes, and the
        // sizes we announce stay below that), or faults on the bogus pointer.
        let ret = unsafe { libc::ioctl(s.fd, io(nr) as _, arg) };
        let outcome = if ret == 0 { 0 } else { std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) };
        *local.entry(nr).or_default().entry(outcome).or_default() += 1;
        let word = |buf: &[u8; 256], off: usize| u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap());
        let remember = |id: u32, r: &mut Rng| s.ids[r.below(s.ids.len() as u64) as usize].store(id, Ordering::Relaxed);
        if ret == 0 && arg == buf.as_mut_ptr() {
            match nr {
                0x81 => remember(word(&buf, 8), &mut r),
                0x89 => remember(word(&buf, 16), &mut r),
                0x90 | 0x94 => remember(word(&buf, 20), &mut r),
                0x91 => remember(word(&buf, 12), &mut r),
                0x93 => {
                    // A vEVENTQ: keep its ID, drain and close its fd.
                    remember(word(&buf, 20), &mut r);
                    let fd = word(&buf, 24) as i32;
                    let mut ev = [0u8; 64];
                    // SAFETY: an fd the kernel just gave us, read into our buffer.
                    unsafe {
                        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                        libc::read(fd, ev.as_mut_ptr().cast(), ev.len());
                        libc::close(fd);
                    }
                }
                0x8e => {
                    // A fault queue: keep its ID, close its fd (the object stays).
                    remember(word(&buf, 8), &mut r);
                    // SAFETY: an fd the kernel just gave us.
                    unsafe { libc::close(word(&buf, 12) as i32) };
                }
                0xa0 => match word(&buf, 4) {
                    // MOCK_DOMAIN: the selftest object, the HWPT and the device.
                    2 => {
                        for off in [16, 20, 24] {
                            remember(word(&buf, off), &mut r);
                        }
                    }
                    // CREATE_ACCESS: an access fd; an old one is closed to make room.
                    5 => {
                        let slot = &s.fds[r.below(s.fds.len() as u64) as usize];
                        let old = slot.swap(word(&buf, 16), Ordering::Relaxed);
                        if old > 2 {
                            // SAFETY: an access fd we own; a racing thread at worst gets EBADF.
                            unsafe { libc::close(old as i32) };
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        s.calls.fetch_add(1, Ordering::Relaxed);
    }
    let mut st = stats.lock().unwrap();
    for (cmd, m) in local {
        for (e, n) in m {
            *st.by_cmd.entry(cmd).or_default().entry(e).or_default() += n;
        }
    }
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let calls = *args.first().unwrap_or(&100_000);
    let seconds = *args.get(1).unwrap_or(&60);
    let threads = *args.get(2).unwrap_or(&4);
    let seed = *args.get(3).unwrap_or(&0x5eed);
    // Seconds between progress lines; 0 for none.
    let progress_secs = std::env::var("FUZZ_PROGRESS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);

    let file = OpenOptions::new().read(true).write(true).open("/dev/iommu").expect("open /dev/iommu");
    // Scratch memory the arguments point into: mapped user memory, a page of edge-valued IOVA
    // ranges for ALLOW_IOVAS/IOVA_RANGES.
    // SAFETY: a fresh anonymous mapping, not aliased.
    let mem = unsafe {
        libc::mmap(std::ptr::null_mut(), (128 * PAGE) as usize, libc::PROT_READ | libc::PROT_WRITE,
                   libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    assert!(mem != libc::MAP_FAILED, "mmap");
    let mut r = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    // SAFETY: 64 pages in, inside the mapping; 16-byte ranges, 16 of them.
    let ranges = unsafe { std::slice::from_raw_parts_mut((mem as *mut u64).add((64 * PAGE / 8) as usize), 32) };
    for v in ranges.iter_mut() {
        *v = interesting_u64(&mut r, mem as u64);
    }
    let shared = Arc::new(Shared {
        fd: file.as_raw_fd(),
        ids: (0..16).map(|i| AtomicU32::new(i)).collect(),
        fds: (0..4).map(|_| AtomicU32::new(u32::MAX)).collect(),
        mem: mem as u64,
        calls: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (s, st) = (shared.clone(), stats.clone());
            std::thread::spawn(move || worker(s, seed.wrapping_add(t * 7919), calls / threads, st))
        })
        .collect();
    // A progress line per interval with the rate in it, to see how the rate changes as the
    // objects the calls leave behind pile up (it falls for both modules: see testing.rst).
    let interval = Duration::from_secs(progress_secs.max(1));
    let (mut last_at, mut last_calls) = (Instant::now(), 0u64);
    while handles.iter().any(|h| !h.is_finished()) {
        if start.elapsed() > Duration::from_secs(seconds) {
            shared.stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(50));
        if progress_secs > 0 && last_at.elapsed() >= interval {
            let now = shared.calls.load(Ordering::Relaxed);
            let rate = (now - last_calls) as f64 / last_at.elapsed().as_secs_f64();
            println!("# progress: {:.0}s {} calls, {:.0} calls/s in the last {}s", start.elapsed().as_secs_f64(),
                     now, rate, interval.as_secs());
            (last_at, last_calls) = (Instant::now(), now);
        }
    }
    for h in handles {
        h.join().expect("worker panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = shared.calls.load(Ordering::Relaxed);

    // The fd must still work after all that.
    let mut alloc = [12u32, 0, 0];
    // SAFETY: a valid iommu_ioas_alloc.
    let ok = unsafe { libc::ioctl(shared.fd, io(0x81) as _, alloc.as_mut_ptr()) } == 0;
    let st = stats.lock().unwrap();
    println!("# fuzz: {} calls in {:.1}s, {:.0} calls/s, {} threads, seed {:#x}", total, elapsed,
             total as f64 / elapsed, threads, seed);
    let mut covered = 0;
    for (cmd, m) in &st.by_cmd {
        let oks = m.get(&0).copied().unwrap_or(0);
        covered += u32::from(oks > 0);
        let errs: Vec<String> = m.iter().filter(|(e, _)| **e != 0).map(|(e, n)| format!("{}:{}", e, n)).collect();
        println!("# cmd {:#x}: {} ok, errnos {}", cmd, oks, errs.join(" "));
    }
    println!("# commands that succeeded at least once: {}", covered);
    println!("TAP version 13\n1..1");
    if ok && total > 0 {
        println!("ok 1 fuzz.fd_survives");
    } else {
        println!("not ok 1 fuzz.fd_survives");
        std::process::exit(1);
    }
}
