//! Giving back the binary's start-up pages once an action is ready.
//!
//! Most of what a ready action holds resident is not its heap (under 1 MiB) but pages of the
//! binary's own file: the CLI parser, logging set-up, the async runtime's construction and the
//! websocket handshake all ran once, and the kernel maps up to 64 KiB of neighbours around each
//! page it faults in ("fault-around"), so the start-up alone leaves ~5 MiB of the one binary
//! mapped. Under Docker with fuse-overlayfs every container maps its own copy of the image's
//! file, so those pages are paid once per container.
//!
//! [`drop_startup_pages`] drops this process's page-table entries for the clean, read-only
//! mappings of its own executable (`MADV_DONTNEED`). What the request loop runs is faulted back
//! from the page cache on its first use, a few hundred page faults once; the rest stops being
//! this process's and is the first the kernel reclaims when memory is short. Mappings that are
//! writable, or read-only but written once (the relocated `RELRO` pages, copy-on-write copies
//! of the file), are never touched: their contents are not in the file.

use std::path::Path;

/// What [`drop_startup_pages`] gave back: mappings and bytes they had resident.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub mappings: usize,
    pub resident_bytes: u64,
}

/// One mapping of `/proc/self/smaps` that may be dropped: start, length, resident bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clean {
    start: usize,
    len: usize,
    rss: u64,
}

/// The clean, read-only, private mappings of `exe` in an smaps text. A mapping qualifies only
/// when its permissions have no `w`, it is private (`p`), it maps `exe`, and its `Anonymous:`
/// count is 0 — any copied-on-write page means the mapping holds data the file does not.
fn clean_mappings(smaps: &str, exe: &Path) -> Vec<Clean> {
    /// The mapping being read.
    struct Cur {
        m: Clean,
        /// Private, never writable, and of `exe`.
        eligible: bool,
        /// Its `Anonymous:` line said 0 (no line, or anything else, and it stays).
        no_anon: bool,
    }
    fn finish(cur: Option<Cur>, out: &mut Vec<Clean>) {
        if let Some(Cur { m, eligible: true, no_anon: true }) = cur {
            out.push(m);
        }
    }
    let exe = exe.to_string_lossy();
    let mut out = Vec::new();
    let mut cur: Option<Cur> = None;
    for line in smaps.lines() {
        let mut f = line.split_ascii_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|(a, _)| !a.is_empty() && a.bytes().all(|c| c.is_ascii_hexdigit())) {
            finish(cur.take(), &mut out);
            let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else { continue };
            let perms = f.next().unwrap_or("");
            // Then offset, device, inode, and the path (which may hold spaces).
            let path = line.splitn(6, |c: char| c.is_ascii_whitespace()).nth(5).unwrap_or("").trim();
            let eligible = perms.len() == 4 && !perms.contains('w') && perms.ends_with('p') && path == exe;
            cur = Some(Cur { m: Clean { start: a, len: b.saturating_sub(a), rss: 0 }, eligible, no_anon: false });
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        match first {
            "Rss:" => c.m.rss = f.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024,
            "Anonymous:" => c.no_anon = f.next() == Some("0"),
            _ => {}
        }
    }
    finish(cur.take(), &mut out);
    out
}

/// Drop this process's resident pages of its executable's clean read-only mappings (see the
/// module docs). Best effort: anything it cannot read or advise is left as it is.
pub fn drop_startup_pages() -> Dropped {
    let (Ok(exe), Ok(smaps)) = (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/smaps")) else {
        return Dropped::default();
    };
    let mut d = Dropped::default();
    for m in clean_mappings(&smaps, &exe) {
        if advise_dontneed(m.start, m.len) {
            d.mappings += 1;
            d.resident_bytes += m.rss;
        }
    }
    d
}

#[allow(unsafe_code)]
fn advise_dontneed(start: usize, len: usize) -> bool {
    // SAFETY: the range is a whole mapping of this process, private, never writable and with no
    // copied-on-write page (checked in `clean_mappings`), so every page of it is the file's
    // content: dropping the entries changes no byte any code can see, the next access maps the
    // same page again from the file. Code running in it (this call's caller) faults back in.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5555dc000000-5555dc4b0000 r--p 00000000 fe:00 10265206                   /bin/stampede
Rss:                1472 kB
Anonymous:             0 kB
5555dc4b0000-5555dd483000 r-xp 004af000 fe:00 10265206                   /bin/stampede
Size:              16204 kB
Rss:                4236 kB
Anonymous:             0 kB
5555dd483000-5555dd516000 r--p 01481000 fe:00 10265206                   /bin/stampede
Rss:                 588 kB
Anonymous:           572 kB
5555dd516000-5555dd51b000 rw-p 01513000 fe:00 10265206                   /bin/stampede
Rss:                  20 kB
Anonymous:            20 kB
7f2b15a00000-7f2b15eb0000 r--p 00000000 fe:00 99                         /lib/other.so
Rss:                 100 kB
Anonymous:             0 kB
7ffd9e616000-7ffd9e637000 rw-p 00000000 00:00 0                          [stack]
Rss:                  40 kB
Anonymous:            40 kB
";

    #[test]
    fn only_the_executables_clean_read_only_mappings_qualify() {
        let got = clean_mappings(SMAPS, Path::new("/bin/stampede"));
        assert_eq!(
            got,
            vec![
                Clean { start: 0x5555dc000000, len: 0x4b0000, rss: 1472 * 1024 },
                Clean { start: 0x5555dc4b0000, len: 0xfd3000, rss: 4236 * 1024 },
            ],
            "the relocated RELRO mapping (read-only but written), the writable one, other files and anonymous maps stay"
        );
    }

    #[test]
    fn a_mapping_not_shown_to_hold_no_anonymous_page_is_not_dropped() {
        let unreadable = "5555dc000000-5555dc4b0000 r--p 00000000 fe:00 1 /x\nRss: 8 kB\nAnonymous: ? kB\n";
        let missing = "5555dc000000-5555dc4b0000 r--p 00000000 fe:00 1 /x\nRss: 8 kB\n";
        assert!(clean_mappings(unreadable, Path::new("/x")).is_empty());
        assert!(clean_mappings(missing, Path::new("/x")).is_empty());
    }

    #[test]
    fn code_and_constants_read_the_same_after_the_drop() {
        // A table in the binary's read-only data, and code reading it: both faulted back in.
        static TABLE: [u8; 64 * 1024] = {
            let mut t = [0u8; 64 * 1024];
            let mut i = 0;
            while i < t.len() {
                t[i] = (i * 31 % 251) as u8;
                i += 1;
            }
            t
        };
        let sum = |t: &[u8]| t.iter().enumerate().map(|(i, b)| (i as u64 + 1) * u64::from(*b)).sum::<u64>();
        let before = sum(std::hint::black_box(&TABLE));
        let d = drop_startup_pages();
        assert!(d.mappings >= 1 && d.resident_bytes > 0, "the test binary has clean pages of its own: {d:?}");
        assert_eq!(sum(std::hint::black_box(&TABLE)), before);
    }
}
