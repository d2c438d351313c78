//! Child processes in their own process group, and stopping a whole group politely.
//!
//! Claude Code runs tools (shells, builds) as its children; stopping only the `claude` pid would
//! leave them running. Unix: the child leads a new process group and signals go to the group.
//! Elsewhere: the child is killed directly (Windows has no process groups of this kind).

use std::time::Duration;

use tokio::process::{Child, Command};

/// Signals of a stop: SIGINT lets the CLI end its turn cleanly, SIGKILL ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))]
pub enum Signal {
    Interrupt,
    Kill,
}

/// Put the child in a new process group (unix) and kill it if its handle is dropped.
///
/// Linux: the child also dies with the device (`PR_SET_PDEATHSIG`), even when the device is
/// SIGKILLed or crashes. The signal fires when the *thread* that forked the child ends, not the
/// process: children are spawned from async code, that is from the runtime's worker threads
/// (or the thread running `block_on`), which live as long as the device's runtime — never from
/// `spawn_blocking` threads, which come and go. Grandchildren do not inherit it; the ones that
/// escape are ended at the next start ([`super::orphans`]).
pub fn isolate(cmd: &mut Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid is async-signal-safe; read here, in the parent, before the fork.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (prctl, getppid), allocating nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The device may have died between the fork and the prctl: then no signal
                // comes, and the child must not start.
                if libc::getppid() != parent {
                    // No allocation after a fork: a raw OS error.
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
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

/// How long [`stop`] waits for a killed group's members to die (SIGKILL is delivered
/// asynchronously); a member stuck in uninterruptible I/O is not waited for longer.
#[cfg(unix)]
const GROUP_END_WAIT: Duration = Duration::from_secs(1);

/// Wait, bounded, until group `pgid` and the noted `tree` have no live member, so a caller
/// that frees a slot after [`stop`] frees it for processes that are really gone.
#[cfg(unix)]
async fn await_group_end(pgid: u32, tree: &Tree) {
    let _ = tokio::time::timeout(GROUP_END_WAIT, async {
        while group_has_live_members(pgid) || tree.any_alive() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Linux: a member that is not a zombie (an init that reaps slowly must not hold us up).
#[cfg(target_os = "linux")]
fn group_has_live_members(pgid: u32) -> bool {
    all_processes()
        .iter()
        .any(|(_, f)| f.state != 'Z' && f.pgid == pgid)
}

/// Elsewhere: any member, zombies included (bounded by [`GROUP_END_WAIT`]).
#[cfg(all(unix, not(target_os = "linux")))]
fn group_has_live_members(pgid: u32) -> bool {
    group_alive(pgid)
}

/// The fields of `/proc/<pid>/stat` the device uses.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFields {
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    /// Start time in clock ticks after boot: with the pid, it names one process for good.
    pub start_time: u64,
}

/// Parse `/proc/<pid>/stat`; the command name may hold spaces and parentheses.
#[cfg(target_os = "linux")]
pub fn stat_fields(stat: &str) -> Option<StatFields> {
    let open = stat.find('(')?;
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.get(open + 1..)?.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(StatFields {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Stop `child` and everything it started: SIGINT (the CLI ends its turn cleanly if it can),
/// then SIGKILL to the whole group after `grace`. Returns the child's exit code (`None`: by
/// signal). Returns only once the leader is reaped and the group was sent SIGKILL.
pub async fn stop(child: &mut Child, grace: Duration) -> Option<i32> {
    #[cfg(unix)]
    {
        let Some(pgid) = child.id() else {
            // Already reaped.
            return child.wait().await.ok().and_then(|s| s.code());
        };
        // Claude Code runs each tool in a session of its own (another process group): the group
        // signal misses them, and once the CLI exits they are re-parented and cannot be told
        // apart. Note the whole tree while it is still linked.
        let mut tree = Tree::snapshot(pgid);
        signal_group(pgid, Signal::Interrupt);
        let status = match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tree.extend(Tree::snapshot(pgid));
                signal_group(pgid, Signal::Kill);
                tree.kill();
                child.wait().await
            }
        };
        // The leader is gone; its tools may not be.
        signal_group(pgid, Signal::Kill);
        tree.kill();
        await_group_end(pgid, &tree).await;
        status.ok().and_then(|s| s.code())
    }
    #[cfg(not(unix))]
    {
        let _ = grace;
        let _ = child.start_kill();
        child.wait().await.ok().and_then(|s| s.code())
    }
}

/// The descendants of a process, each named by pid and start time (a pid alone may be reused
/// by an unrelated process once its owner is gone). Linux reads `/proc`; elsewhere the tree is
/// empty and only the process group is signalled.
#[derive(Debug, Default)]
pub struct Tree {
    members: Vec<(u32, u64)>,
}

impl Tree {
    /// Every process below `root` now.
    pub fn snapshot(root: u32) -> Self {
        #[cfg(target_os = "linux")]
        {
            let all = all_processes();
            let mut members: Vec<(u32, u64)> = Vec::new();
            let mut frontier = vec![root];
            while let Some(parent) = frontier.pop() {
                for (pid, f) in all.iter().filter(|(_, f)| f.ppid == parent) {
                    if !members.iter().any(|(p, _)| p == pid) {
                        members.push((*pid, f.start_time));
                        frontier.push(*pid);
                    }
                }
            }
            Self { members }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = root;
            Self::default()
        }
    }

    pub fn extend(&mut self, other: Tree) {
        for m in other.members {
            if !self.members.contains(&m) {
                self.members.push(m);
            }
        }
    }

    /// SIGKILL every member that is still the same process.
    pub fn kill(&self) {
        #[cfg(target_os = "linux")]
        for &(pid, start) in &self.members {
            if same_process(pid, start) {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill only sends a signal to a process we verified is ours.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }

    /// Whether a member is still alive (not a zombie).
    #[cfg_attr(not(unix), allow(dead_code))]
    fn any_alive(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.members.iter().any(|&(pid, start)| {
                read_stat(pid).is_some_and(|f| f.start_time == start && f.state != 'Z')
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }
}

#[cfg(target_os = "linux")]
fn read_stat(pid: u32) -> Option<StatFields> {
    stat_fields(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` is still the process that started at `start_time`.
#[cfg(target_os = "linux")]
pub fn same_process(pid: u32, start_time: u64) -> bool {
    read_stat(pid).is_some_and(|f| f.start_time == start_time)
}

#[cfg(target_os = "linux")]
fn all_processes() -> Vec<(u32, StatFields)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
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

    async fn await_no_members(pgid: u32) {
        let gone = tokio::time::timeout(Duration::from_secs(10), async {
            while !live_members(pgid).is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "still alive: {:?}", live_members(pgid));
    }

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "4242 (my (odd) cmd) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        let f = stat_fields(stat).unwrap();
        assert_eq!(f.comm, "my (odd) cmd");
        assert_eq!(
            (f.state, f.ppid, f.pgid, f.start_time),
            ('S', 1, 4240, 987654)
        );
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_fields(&own).is_some());
    }

    #[tokio::test]
    async fn a_dropped_guard_kills_the_whole_group_and_a_disarmed_one_nothing() {
        let start = |script: &str| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", script]);
            isolate(&mut cmd);
            cmd.spawn().unwrap()
        };
        let child = start("sleep 300 & wait");
        let pgid = child.id().unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while live_members(pgid).len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the grandchild never started");
        let guard = GroupGuard::new(&child);
        drop(child); // kill_on_drop: the leader only
        drop(guard);
        await_no_members(pgid).await;

        let mut child = start("sleep 300 >/dev/null 2>&1 & echo started");
        let pgid = child.id().unwrap();
        let mut guard = GroupGuard::new(&child);
        guard.disarm();
        child.wait().await.unwrap();
        assert_eq!(
            live_members(pgid).len(),
            1,
            "the background sleep is left alone"
        );
        signal_group(pgid, Signal::Kill);
        await_no_members(pgid).await;
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
            started.elapsed() >= Duration::from_millis(100),
            "INT is ignored here, so only the SIGKILL after the grace ends it"
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
