//! Processes of a task, found through `/proc`: the CLI and its tools run in the task workspace.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

/// Pids whose working directory is `dir`.
pub fn processes_with_cwd(dir: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

/// Pids with `arg` among their command-line arguments (e.g. a unique target directory).
pub fn processes_with_arg(arg: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
}

/// The process group of `pid` (field 5 of `/proc/<pid>/stat`).
pub fn process_group(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Does any process (other than a zombie) still belong to group `pgid`?
pub fn group_has_live_members(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| process_group(pid) == Some(pgid) && !is_zombie(pid))
}

pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

/// Await (bounded) that every pid is gone: SIGKILL delivery and reaping are asynchronous.
pub async fn await_gone(pids: &[u32]) {
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        while pids.iter().copied().any(alive) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let left: Vec<_> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(gone.is_ok(), "processes survived the stop: {left:?}");
}

/// Await (bounded) that process group `pgid` has no live member left.
pub async fn await_group_gone(pgid: i32) {
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        while group_has_live_members(pgid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "process group {pgid} survived the stop");
}
