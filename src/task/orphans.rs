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
//! Not to wait for that next start, a [`Sentinel`] watches the device process while it runs
//! and ends its marked processes within about a second of its death.
//!
//! Linux only (`/proc/<pid>/environ`); macOS has no readable environment of other processes
//! and no `PDEATHSIG`: there, children of a dead device are not ended (documented in README).
//! Windows: see README (job objects).

use std::path::{Path, PathBuf};

/// The environment variable that ties a child to the device process that started it.
pub const MARKER: &str = "WEGENT_DEVICE_RUN";
/// The environment variable that ties the CLI and its tools to their turn (subtask id).
pub const TURN_MARKER: &str = "WEGENT_DEVICE_TURN";

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

/// Whether an environment block (`NAME=value\0…`, as in `/proc/<pid>/environ`) holds every
/// one of `entries` (`NAME=value`, exactly).
pub fn carries_all(environ: &[u8], entries: &[String]) -> bool {
    entries
        .iter()
        .all(|entry| environ.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
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

/// The value of [`TURN_MARKER`] for one turn: its subtask id within the task's private
/// directory, so two devices in one process (tests; each with its own home) never match.
pub fn turn_id(task_dir: &Path, subtask_id: i64) -> String {
    format!("{subtask_id}@{}", task_dir.display())
}

/// End what a finished or stopped turn left running (Linux): tools the agent started in
/// sessions of their own (a daemon, `setsid … &`) leave the CLI's process group and, once the
/// CLI exits, its tree; they still carry the turn's [`TURN_MARKER`] ([`turn_id`]). Returns how
/// many were killed.
pub fn kill_turn_leftovers(turn: &str) -> usize {
    kill_carrying(&[
        format!("{MARKER}={}", current_run()),
        format!("{TURN_MARKER}={turn}"),
    ])
}

fn kill_marked(run: &str) -> usize {
    kill_carrying(&[format!("{MARKER}={run}")])
}

/// SIGKILL every other process whose environment holds all of `entries` (`NAME=value`).
#[cfg(target_os = "linux")]
fn kill_carrying(entries: &[String]) -> usize {
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
        if carries_all(&environ, entries) && start_time(pid) == Some(before) {
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
fn kill_carrying(_entries: &[String]) -> usize {
    0
}

/// A small watcher process that ends this run's marked processes when the device process dies
/// (Linux), so tools do not outlive a SIGKILLed device until its next start.
///
/// Why `/bin/sh` and a pipe: the watcher must not be our binary (the tray is another one, and
/// either may be replaced on disk while running), and it must learn of the death without
/// polling. It reads the pipe whose only write end this device process holds (close-on-exec, so
/// no other child inherits it): the kernel closes that end whenever the process dies, SIGKILL
/// included, and the read returns. The watcher runs in a session of its own (a Ctrl-C on the
/// terminal or a kill of the device's group does not end it early), without [`MARKER`] (it
/// would kill itself) and without the device's settings or token ([`super::child_env::scrub`]).
///
/// Dropping it (a clean stop of the device) closes the pipe too; the watcher then finds the
/// device process still alive and exits without killing anything: other devices of the same
/// process (tests) share the run marker.
pub struct Sentinel {
    pipe: Option<std::io::PipeWriter>,
    watcher: Option<std::process::Child>,
}

/// The watcher, run as `sh -c SENTINEL_SCRIPT sentinel <run>`: wait for end of file on stdin;
/// if the run (`<pid>-<start time>`) is gone (or a zombie) within about two seconds, SIGKILL
/// every process whose environment holds `WEGENT_DEVICE_RUN=<run>` exactly (`grep -z -x -F`:
/// NUL-separated entries, whole entry, no pattern characters: the rule of [`carries_all`]),
/// sweeping again while a sweep finds any (tools that forked meanwhile). A pid is killed right
/// after its environment matched: the window for pid reuse is a few microseconds.
#[cfg(target_os = "linux")]
const SENTINEL_SCRIPT: &str = r#"
read -r _
run=$1
pid=${run%%-*}
start=${run#*-}
gone() {
  { read -r stat < "/proc/$pid/stat"; } 2>/dev/null || return 0
  set -- ${stat##*\)}
  [ "$1" = Z ] || [ "$1" = X ] || [ "${20}" != "$start" ]
}
tries=0
until gone; do
  tries=$((tries + 1))
  [ "$tries" -le 20 ] || exit 0
  sleep 0.1
done
sweeps=0
while [ "$sweeps" -lt 10 ]; do
  sweeps=$((sweeps + 1))
  found=$(grep -lsxzF -e "WEGENT_DEVICE_RUN=$run" /proc/[0-9]*/environ)
  [ -n "$found" ] || exit 0
  for file in $found; do
    file=${file#/proc/}
    kill -9 "${file%/environ}" 2>/dev/null
  done
done
"#;

impl Sentinel {
    /// Start the watcher of this device process. `None` where there is none (not Linux) or it
    /// could not start (logged): the next start still ends what a crash left.
    pub fn start() -> Option<Sentinel> {
        #[cfg(target_os = "linux")]
        {
            match Self::spawn() {
                Ok(sentinel) => return Some(sentinel),
                Err(e) => {
                    tracing::warn!(error = %e, "could not start the watcher that ends this device's tools if it is killed; they are ended at its next start")
                }
            }
        }
        None
    }

    #[cfg(target_os = "linux")]
    fn spawn() -> std::io::Result<Sentinel> {
        // Both ends close-on-exec; the read end becomes the watcher's stdin (dup2 clears the
        // flag there only).
        let (read, write) = std::io::pipe()?;
        let watcher = watcher(&current_run()).stdin(read).spawn()?;
        Ok(Sentinel {
            pipe: Some(write),
            watcher: Some(watcher),
        })
    }
}

/// The watcher of run `run`, waiting on its stdin (which the caller sets).
#[cfg(target_os = "linux")]
fn watcher(run: &str) -> std::process::Command {
    use std::os::unix::process::CommandExt;

    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(SENTINEL_SCRIPT)
        .arg("wegent-device-sentinel")
        .arg(run)
        .env_clear()
        .envs(super::child_env::scrub(std::env::vars_os()))
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs between fork and exec and calls only setsid, which is
    // async-signal-safe, allocating nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        drop(self.pipe.take());
        if let Some(mut watcher) = self.watcher.take() {
            // It exits within about two seconds (the device lives on); reap it off this thread.
            std::thread::spawn(move || watcher.wait());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_matched_exactly() {
        let env = b"PATH=/bin\0WEGENT_DEVICE_RUN=42-1000\0WEGENT_DEVICE_TURN=7\0";
        let run = |r: &str| vec![format!("{MARKER}={r}")];
        assert!(carries_all(env, &run("42-1000")));
        assert!(!carries_all(env, &run("42-100")));
        assert!(!carries_all(
            b"WEGENT_DEVICE_RUN=42-10000\0",
            &run("42-1000")
        ));
        assert!(!carries_all(b"", &run("42-1000")));
        let turn = |t: &str| vec![format!("{MARKER}=42-1000"), format!("{TURN_MARKER}={t}")];
        assert!(carries_all(env, &turn("7")));
        assert!(!carries_all(env, &turn("8")));
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
        // No pid is 999999999 (above any pid_max): a dead run, unique to this test process.
        let dead_run = &format!("999999999-{}", std::process::id());
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
        let mut other = spawn(&format!("999999999-{}0", std::process::id()));
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

    #[cfg(target_os = "linux")]
    #[test]
    fn the_sentinel_kills_exactly_the_marked_processes_of_a_dead_run_and_spares_a_live_one() {
        let spawn = |run: &str| {
            std::process::Command::new("sleep")
                .arg("300")
                .env(MARKER, run)
                .spawn()
                .unwrap()
        };
        let dead_run = &format!("999999998-{}", std::process::id());
        let mut marked = spawn(dead_run);
        let mut similar = spawn(&format!("{dead_run}0"));
        let mut alive_marked = spawn(&current_run());
        // Stdin at end of file at once: as when the device process has died.
        let watch = |run: &str| {
            watcher(run)
                .stdin(std::process::Stdio::null())
                .status()
                .unwrap()
        };
        assert!(watch(dead_run).success());
        // The kill was sent before the watcher exited; its delivery is asynchronous.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let ended = loop {
            match marked.try_wait().unwrap() {
                Some(status) => break Some(status),
                None if std::time::Instant::now() > deadline => break None,
                None => std::thread::yield_now(),
            }
        };
        let _ = marked.kill();
        assert!(
            ended.is_some_and(|s| s.code().is_none()),
            "the marked process of the dead run was not killed: {ended:?}"
        );
        // This process lives: a clean stop of one device, nothing to end.
        assert!(watch(&current_run()).success());
        for child in [&mut similar, &mut alive_marked] {
            assert!(child.try_wait().unwrap().is_none(), "left alone");
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
