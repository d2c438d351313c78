//! Child processes in their own process group, and stopping a whole group politely.
//!
//! Claude Code runs tools (shells, builds) as its children; stopping only the `claude` pid would
//! leave them running. Unix: the child leads a new process group and signals go to the group.
//! Elsewhere: the child is killed directly (Windows has no process groups of this kind).

use std::time::Duration;

use tokio::process::{Child, Command};

/// Escalating signals of a stop: SIGINT lets the CLI end its turn cleanly, SIGTERM asks again,
/// SIGKILL ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))]
pub enum Signal {
    Interrupt,
    Terminate,
    Kill,
}

/// Put the child in a new process group (unix) and kill it if its handle is dropped.
pub fn isolate(cmd: &mut Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.kill_on_drop(true);
}

/// Whether this process runs as root (the CLI refuses `bypassPermissions` then, unless told it is
/// in a sandbox).
pub fn is_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Send `signal` to the process group led by `pgid`. Returns false if the group is gone.
#[cfg(unix)]
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    let sig = match signal {
        Signal::Interrupt => libc::SIGINT,
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: killpg only sends a signal; a stale pgid yields ESRCH, which we report as false.
    unsafe { libc::killpg(pgid, sig) == 0 }
}

/// Whether any process of the group led by `pgid` is still alive (zombies count until reaped).
#[cfg(unix)]
pub fn group_alive(pgid: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::killpg(pgid, 0) == 0 }
}

/// Stop `child` and everything it started: SIGINT, then SIGTERM, then SIGKILL, each after
/// `grace` if the child is still running. Returns the child's exit code (`None`: by signal).
pub async fn stop(child: &mut Child, grace: Duration) -> Option<i32> {
    #[cfg(unix)]
    {
        let Some(pgid) = child.id() else {
            // Already reaped.
            return child.wait().await.ok().and_then(|s| s.code());
        };
        for signal in [Signal::Interrupt, Signal::Terminate] {
            signal_group(pgid, signal);
            if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
                // The leader is gone; its tools may not be.
                signal_group(pgid, Signal::Kill);
                return status.ok().and_then(|s| s.code());
            }
        }
        signal_group(pgid, Signal::Kill);
        child.wait().await.ok().and_then(|s| s.code())
    }
    #[cfg(not(unix))]
    {
        let _ = grace;
        let _ = child.start_kill();
        child.wait().await.ok().and_then(|s| s.code())
    }
}

/// Kills a child's whole process group when dropped while armed: a future that owns a child
/// and is dropped mid-await (task aborted, runtime shut down) must not leave the child's own
/// children behind (`kill_on_drop` reaches only the leader). Disarm once the child is reaped,
/// since a reaped leader's group id may be reused.
#[derive(Debug)]
pub struct GroupGuard(Option<u32>);

impl GroupGuard {
    pub fn new(child: &Child) -> Self {
        Self(child.id())
    }

    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.0 {
            signal_group(pgid, Signal::Kill);
        }
    }
}

/// Kill the child's whole group at once (timeouts of commands that get no second chance).
pub async fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pgid) = child.id() {
        signal_group(pgid, Signal::Kill);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Members of process group `pgid` that are not zombies (an init that does not reap must not
    /// fail the test).
    fn live_members(pgid: u32) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let Some((_, rest)) = stat.rsplit_once(')') else {
                    return false;
                };
                let fields: Vec<&str> = rest.split_whitespace().collect();
                fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
            })
            .collect()
    }

    #[tokio::test]
    async fn stop_ends_the_group_including_grandchildren() {
        let mut cmd = Command::new("sh");
        // The shell ignores SIGINT and SIGTERM; its grandchild `sleep` would outlive a plain kill.
        cmd.args(["-c", "trap '' INT TERM; sleep 30 & wait"]);
        isolate(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let pgid = child.id().unwrap();
        assert!(group_alive(pgid));
        // Wait until the shell has set its traps and started the grandchild.
        tokio::time::timeout(Duration::from_secs(5), async {
            while live_members(pgid).len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the grandchild never started");
        let started = std::time::Instant::now();
        stop(&mut child, Duration::from_millis(100)).await;
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "INT and TERM are ignored here, so only the final SIGKILL ends it"
        );
        // SIGKILL delivery is asynchronous: await the group's end, bounded.
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            while !live_members(pgid).is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "still alive: {:?}", live_members(pgid));
    }
}
