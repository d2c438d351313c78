//! Keeping the long-lived tray process small once a burst of work is over (start-up, the token
//! window closed).
//!
//! Where an idle tray's memory goes (measured, `ci/gui-stage.sh` → `bench-results/tray.json`):
//! most of it is pages of mapped files that only start-up touched. The tray links WebKitGTK
//! (Tauri's runtime does), and loading it relocates WebKit, JavaScriptCore, ICU, GStreamer and
//! the flite speech voices WebKit depends on: megabytes of relocation tables and init code read
//! once, never again, since the tray itself never creates a webview (the token window runs in a
//! process of its own). The kernel keeps such pages mapped until memory runs short.
//! [`trim`] hands them back at once, together with malloc's free heap.

use std::ops::Range;
use std::time::Duration;

/// Start-up is over by then: the core has connected (or is waiting for a token), the tray is
/// drawn, the menu rendered.
pub const SETTLE_AFTER_START: Duration = Duration::from_secs(8);
/// Then again now and then: tasks and menu use bring pages back, and the tray lives for days.
pub const TRIM_EVERY: Duration = Duration::from_secs(10 * 60);

/// [`trim`] once start-up has settled, then every [`TRIM_EVERY`], on the async runtime.
pub fn trim_from_time_to_time() {
    tauri::async_runtime::spawn(async {
        tokio::time::sleep(SETTLE_AFTER_START).await;
        loop {
            trim();
            tokio::time::sleep(TRIM_EVERY).await;
        }
    });
}

/// Gives back to the system: malloc's free heap, and the pages of read-only file mappings that
/// only this process holds (the kernel skips pages another process maps too, so nothing is
/// taken from anyone). A page needed again is read back on its next use.
pub fn trim() {
    give_back_free_heap();
    #[cfg(target_os = "linux")]
    page_out_file_pages();
}

/// Returns the free pages at the top of the heap and in malloc's per-thread arenas to the
/// system. glibc keeps them otherwise, and the tray lives for days.
pub fn give_back_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory that malloc holds as free.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(target_os = "linux")]
fn page_out_file_pages() {
    let maps = match std::fs::read_to_string("/proc/self/maps") {
        Ok(maps) => maps,
        Err(e) => {
            tracing::debug!("memory trim: cannot read /proc/self/maps: {e}");
            return;
        }
    };
    let ranges = read_only_file_ranges(&maps);
    let mut refused = 0;
    for range in &ranges {
        // SAFETY: the range is a whole mapping of this process, read-only and file-backed:
        // MADV_PAGEOUT only drops clean pages, which the kernel reads back from the file on
        // their next use; no content can be lost.
        let rc = unsafe {
            libc::madvise(
                range.start as *mut libc::c_void,
                range.end - range.start,
                libc::MADV_PAGEOUT,
            )
        };
        refused += usize::from(rc != 0);
    }
    // Kernels before 5.4 do not know MADV_PAGEOUT: nothing happens, nothing breaks.
    tracing::debug!(
        mappings = ranges.len(),
        refused,
        "memory trim: file pages handed back"
    );
}

/// The address ranges of `/proc/<pid>/maps` lines that map a file read-only and private (code,
/// read-only data, relocation tables): writable mappings, shared memory, anonymous memory, the
/// stack and the kernel's own (`[vdso]`, `[vvar]`) are left alone.
pub fn read_only_file_ranges(maps: &str) -> Vec<Range<usize>> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (range, perms) = (fields.next()?, fields.next()?);
            let path = fields.nth(3)?;
            // r-?p: readable, not writable, private (shared memory is not a file's cache).
            let perms = perms.as_bytes();
            if !path.starts_with('/')
                || perms.len() < 4
                || perms[0] != b'r'
                || perms[1] == b'w'
                || perms[3] != b'p'
            {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start < end).then_some(start..end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0e00000 r--p 00000000 103:02 1234 /usr/bin/wegent-device
55d0c0e00000-55d0c2000000 r-xp 00e00000 103:02 1234 /usr/bin/wegent-device
55d0c2000000-55d0c2200000 r--p 02000000 103:02 1234 /usr/bin/wegent-device
55d0c2200000-55d0c2210000 rw-p 02200000 103:02 1234 /usr/bin/wegent-device
55d0c3000000-55d0c3400000 rw-p 00000000 00:00 0    [heap]
7f0000000000-7f0000700000 r--p 00000000 103:02 99 /usr/lib/x86_64-linux-gnu/libwebkit2gtk-4.1.so.0.19.9
7f0000700000-7f0000800000 ---p 00700000 103:02 99 /usr/lib/x86_64-linux-gnu/libwebkit2gtk-4.1.so.0.19.9
7f0001000000-7f0001100000 rw-s 00000000 00:01 7 /memfd:wayland-shm (deleted)
7f0002000000-7f0002001000 rw-p 00000000 00:00 0
7f0003000000-7f0003010000 r--s 00000000 00:05 42 /SYSV00000000 (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0 [vdso]
";

    #[test]
    fn only_read_only_file_mappings_are_chosen() {
        let ranges = read_only_file_ranges(MAPS);
        assert_eq!(
            ranges,
            vec![
                0x55d0c0000000..0x55d0c0e00000,
                0x55d0c0e00000..0x55d0c2000000,
                0x55d0c2000000..0x55d0c2200000,
                0x7f0000000000..0x7f0000700000,
            ]
        );
    }

    #[test]
    fn broken_lines_are_skipped() {
        assert!(read_only_file_ranges("garbage\n\nzz-yy r--p 0 0:0 1 /x\n").is_empty());
    }

    /// Resident pages of mapped files (KiB), from /proc/self/status.
    #[cfg(target_os = "linux")]
    fn rss_file_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_ascii_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn trimming_hands_back_file_pages_and_the_process_goes_on() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::env::current_exe().unwrap();
        let code = maps
            .lines()
            .find(|l| l.contains(" r-xp ") && l.ends_with(exe.to_str().unwrap()))
            .expect("the test binary's code mapping");
        let start = usize::from_str_radix(code.split('-').next().unwrap(), 16).unwrap();
        assert!(read_only_file_ranges(&maps)
            .iter()
            .any(|r| r.start == start));

        let before = rss_file_kib();
        trim();
        let after = rss_file_kib();
        // This test binary's own pages are mapped by no other process: they go.
        assert!(after < before, "RssFile {before} KiB -> {after} KiB");
        // And the code that was handed back still runs (read back on use).
        assert!(read_only_file_ranges(&maps).len() > 1);
    }
}
