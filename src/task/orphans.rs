//! Children of a device that died: found and ended at the next start.
//!
//! `PR_SET_PDEATHSIG` ends the device's direct children with it (Linux, see
//! [`super::process::isolate`]), but Claude Code starts each tool in a session of its own, and
//! those grandchildren live on, with the task's API keys in their environment. Every child of
//! the device carries [`MARKER`] naming the device process that started it (its pid and start
//! time: unique on this machine). At start the device reads the run recorded by its previous
//! start in `<home>/run/device`; if that process is gone, every process still carrying its
//! marker is an orphan of it and is killed.
//!
//! Linux only (`/proc/<pid>/environ`); macOS has no readable environment of other processes
//! and no `PDEATHSIG`: there, children of a dead device are not ended (documented in README).
//! Windows: see README (job objects).

use std::path::{Path, PathBuf};

/// The environment variable that ties a child to the device process that started it.
pub const MARKER: &str = "WEGENT_DEVICE_RUN";

const RUN_DIR: &str = "run";
const RUN_FILE: &str = "device";

/// This device process as `<pid>-<start time>`: what its children carry in [`MARKER`].
pub fn current_run() -> String {
    let pid = std::process::id();
    format!("{pid}-{}", start_time(pid).unwrap_or(0))
}

#[cfg(target_os = "linux")]
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(super::process::stat_fields(&stat)?.start_time)
}

#[cfg(not(target_os = "linux"))]
fn start_time(_pid: u32) -> Option<u64> {
    None
}

fn run_file(home: &Path) -> PathBuf {
    home.join(RUN_DIR).join(RUN_FILE)
}

/// Whether the run `run` (`<pid>-<start time>`) is a process that still exists.
fn run_alive(run: &str) -> bool {
    let Some((pid, start)) = run.split_once('-') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(start)
}

/// Whether an environment block (`NAME=value\0…`, as in `/proc/<pid>/environ`) carries the
/// marker of `run`.
pub fn carries_marker(environ: &[u8], run: &str) -> bool {
    let wanted = format!("{MARKER}={run}");
    environ
        .split(|b| *b == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// End the children of the previous device run on this home if that run is gone, then record
/// this run. Returns how many processes were killed. Never fails the start: problems are logged.
pub fn reap_previous_run(home: &Path) -> usize {
    let file = run_file(home);
    let previous = std::fs::read_to_string(&file).ok();
    let killed = match previous.as_deref().map(str::trim) {
        Some(run) if !run.is_empty() && run != current_run() && !run_alive(run) => kill_marked(run),
        _ => 0,
    };
    if killed > 0 {
        tracing::warn!(
            killed,
            "ended processes left running by a previous run of this device that did not stop cleanly"
        );
    }
    let write = std::fs::create_dir_all(file.parent().unwrap_or(home))
        .and_then(|()| std::fs::write(&file, current_run()));
    if let Err(e) = write {
        tracing::warn!(path = %file.display(), error = %e, "could not record this run; children left by a crash will not be ended at the next start");
    }
    killed
}

/// End every process this device process started, with all they started, at once (Linux): a
/// second Ctrl-C does not wait for a polite stop, and nothing may outlive the device. Returns
/// how many processes were killed. Elsewhere returns 0; the runtime's shutdown then kills the
/// process groups it still holds.
pub fn kill_own_children() -> usize {
    kill_marked(&current_run())
}

#[cfg(target_os = "linux")]
fn kill_marked(run: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let me = std::process::id();
    let mut killed = 0;
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        if pid == me {
            continue;
        }
        let Some(before) = start_time(pid) else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        // The same process before and after reading its environment: not a reused pid.
        if carries_marker(&environ, run) && start_time(pid) == Some(before) {
            if let Ok(p) = libc::pid_t::try_from(pid) {
                // SAFETY: kill only sends a signal, to a process that carries our marker.
                if unsafe { libc::kill(p, libc::SIGKILL) } == 0 {
                    killed += 1;
                }
            }
        }
    }
    killed
}

#[cfg(not(target_os = "linux"))]
fn kill_marked(_run: &str) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_matched_exactly() {
        let env = b"PATH=/bin\0WEGENT_DEVICE_RUN=42-1000\0HOME=/root\0";
        assert!(carries_marker(env, "42-1000"));
        assert!(!carries_marker(env, "42-100"));
        assert!(!carries_marker(b"WEGENT_DEVICE_RUN=42-10000\0", "42-1000"));
        assert!(!carries_marker(b"", "42-1000"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_run_is_alive_and_a_made_up_one_is_not() {
        assert!(run_alive(&current_run()));
        assert!(!run_alive("1-1"));
        assert!(!run_alive("garbage"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_start_kills_only_the_marked_children_of_a_dead_run_and_records_itself() {
        let home = tempfile::tempdir().unwrap();
        let dead_run = "999999999-1";
        std::fs::create_dir_all(home.path().join("run")).unwrap();
        std::fs::write(run_file(home.path()), dead_run).unwrap();
        let spawn = |run: &str| {
            std::process::Command::new("sleep")
                .arg("300")
                .env(MARKER, run)
                .spawn()
                .unwrap()
        };
        let mut orphan = spawn(dead_run);
        let mut other = spawn("999999999-2");
        assert_eq!(reap_previous_run(home.path()), 1);
        assert!(
            orphan.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
        assert!(
            other.try_wait().unwrap().is_none(),
            "an unrelated run is left alone"
        );
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(
            std::fs::read_to_string(run_file(home.path())).unwrap(),
            current_run()
        );
        // Our own run is alive: a second start on the same home kills nothing.
        assert_eq!(reap_previous_run(home.path()), 0);
    }
}
