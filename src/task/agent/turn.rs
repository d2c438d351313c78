//! One child-process turn, the same for every agent: the child runs in its own process group,
//! gets its stdin ([`Stdin`]: one message then EOF, or a conversation the agent's mapper answers
//! until the turn is over), its stdout lines go through the agent's mapper to the emitter, and a
//! stop or the task deadline ends the group. The agent builds the command and reads the result
//! ([`Finished`]) into the turn's one terminal event.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::redact::redact;
use crate::task::emitter::Emitter;
use crate::task::events::ResponsesEvent;
use crate::task::failure::TaskFailure;
use crate::task::orphans;
use crate::task::process;
use crate::task::runner::{stopped, StopSignal};

/// How long the agent gets after SIGINT before its group is killed. Short: a cancel is settled on
/// the server at once (see [`run`]) and the group must be gone within a second.
const STOP_GRACE: Duration = Duration::from_millis(300);
/// Stderr lines kept for error messages.
const STDERR_TAIL_LINES: usize = 12;
const STDERR_LINE_MAX_CHARS: usize = 400;
/// How long a server-like agent may take to exit after its turn is over and its stdin closed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// An agent's stdout reader: lines in, Responses events out.
pub(crate) trait LineMapper {
    fn feed(&mut self, line: &str) -> Vec<ResponsesEvent>;
    /// The answer text streamed so far (a cancelled turn keeps it).
    fn text(&self) -> &str;
    /// Lines to write to the child's stdin in answer to what it printed ([`Stdin::Conversation`]).
    fn replies(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The agent's turn is over although the child may still run (a server-like agent): its
    /// stdin is closed so it exits.
    fn turn_over(&self) -> bool {
        false
    }
}

/// What the child reads on stdin.
pub(crate) enum Stdin {
    /// Written, then stdin is closed so the agent runs exactly one turn.
    Once(String),
    /// The opening lines; stdin stays open for the mapper's [`LineMapper::replies`] until
    /// [`LineMapper::turn_over`].
    Conversation(Vec<String>),
}

/// What the turn's child is, for the loop and its logs.
pub(crate) struct ChildTurn<'a> {
    /// The agent's name in logs (`"claude"`).
    pub agent: &'static str,
    pub task_id: i64,
    pub subtask_id: i64,
    pub cwd: &'a Path,
    pub stdin: Stdin,
    /// Whether the agent resumes an earlier session (logged).
    pub resume: bool,
    /// The value of [`orphans::TURN_MARKER`] for this turn ([`orphans::turn_id`]).
    pub turn_id: String,
    pub deadline: Instant,
}

/// How the child's turn ended.
pub(crate) enum TurnEnd {
    /// The child ended by itself (its exit code, if it had one).
    Exited(Option<i32>),
    /// A stop was requested (the message goes into `response.incomplete`).
    Cancelled(String),
    TimedOut,
}

pub(crate) struct Finished {
    pub end: TurnEnd,
    /// The last lines of stderr, redacted, for error messages.
    pub stderr_tail: String,
}

impl Finished {
    /// The turn's terminal event: a stop or a timeout ends every agent's turn alike; an exit is
    /// read by the agent (`on_exit(exit code, stderr tail)`).
    pub fn terminal(
        &self,
        emitter: &Emitter,
        text: &str,
        task_timeout: Duration,
        on_exit: impl FnOnce(Option<i32>, &str) -> ResponsesEvent,
    ) -> ResponsesEvent {
        match &self.end {
            TurnEnd::Cancelled(message) => emitter.turn().incomplete(text, message),
            TurnEnd::TimedOut => TaskFailure::Timeout {
                limit: task_timeout,
            }
            .event(),
            TurnEnd::Exited(exit) => on_exit(*exit, &self.stderr_tail),
        }
    }
}

/// Run `cmd` (arguments and environment set by the agent) for one turn. `Err` only if it could
/// not start; then nothing ran.
pub(crate) async fn run(
    mut cmd: Command,
    turn: ChildTurn<'_>,
    mapper: &mut impl LineMapper,
    emitter: &Emitter,
    stop: &mut StopSignal,
) -> std::io::Result<Finished> {
    let agent = turn.agent;
    // Ties the agent's tools to this turn, also those that leave its process tree.
    cmd.env(orphans::TURN_MARKER, &turn.turn_id)
        .current_dir(turn.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    process::isolate(&mut cmd);
    let mut child = cmd.spawn()?;
    // Whatever way this turn ends (even dropped), the agent's tools do not outlive it.
    let mut group = process::GroupGuard::new(&child);
    // `child.id()` is gone once the child is reaped; the group's id is needed after that.
    #[cfg(unix)]
    let pgid = child.id();
    tracing::info!(task_id = turn.task_id, subtask_id = turn.subtask_id, pid = ?child.id(), resume = turn.resume, "{agent} started");
    // Lines go to stdin in order through one writer; dropping the sender closes stdin.
    let (stdin_tx, mut stdin_rx) = mpsc::unbounded_channel::<String>();
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            while let Some(line) = stdin_rx.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            let _ = stdin.shutdown().await;
        });
    }
    let mut stdin_tx = match turn.stdin {
        Stdin::Once(line) => {
            let _ = stdin_tx.send(line);
            // Closes stdin once the line is written: the agent runs exactly one turn.
            drop(stdin_tx);
            None
        }
        Stdin::Conversation(lines) => {
            lines.into_iter().for_each(|line| {
                let _ = stdin_tx.send(line);
            });
            Some(stdin_tx)
        }
    };
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_reader = child.stderr.take().map(|stderr| {
        let tail = tail.clone();
        let task_id = turn.task_id;
        tokio::spawn(async move { collect_stderr(stderr, tail, task_id, agent).await })
    });
    let deadline = tokio::time::sleep_until(turn.deadline);
    tokio::pin!(deadline);
    // Armed once the turn is over: a child that does not exit by then is stopped.
    let exit_grace = tokio::time::sleep_until(turn.deadline);
    tokio::pin!(exit_grace);
    let mut over = false;
    let mut interrupted = None;
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::with_capacity(64 * 1024, stdout);
        let mut line = Vec::new();
        interrupted = loop {
            line.clear();
            tokio::select! {
                read = reader.read_until(b'\n', &mut line) => match read {
                    // Bytes, not `lines()`: one invalid UTF-8 byte must not end the relay.
                    Ok(n) if n > 0 => {
                        mapper
                            .feed(&String::from_utf8_lossy(&line))
                            .into_iter()
                            .for_each(|e| emitter.emit(e));
                        if let Some(tx) = &stdin_tx {
                            mapper.replies().into_iter().for_each(|reply| {
                                let _ = tx.send(reply);
                            });
                        }
                        if !over && mapper.turn_over() {
                            over = true;
                            stdin_tx = None;
                            exit_grace.as_mut().reset(Instant::now() + EXIT_GRACE);
                        }
                    }
                    _ => break None,
                },
                message = stopped(stop) => break Some(TurnEnd::Cancelled(message)),
                _ = &mut deadline => break Some(TurnEnd::TimedOut),
                // The turn's result is known: the lingering child is stopped like a finished one.
                _ = &mut exit_grace, if over => break Some(TurnEnd::Exited(None)),
            }
        };
    }
    // Whatever the agent still waits for on stdin, it gets EOF now.
    drop(stdin_tx);
    let exit = if interrupted.is_none() {
        tokio::select! {
            status = child.wait() => Some(status.ok().and_then(|s| s.code())),
            message = stopped(stop) => { interrupted = Some(TurnEnd::Cancelled(message)); None }
            _ = &mut deadline => { interrupted = Some(TurnEnd::TimedOut); None }
        }
    } else {
        None
    };
    let exit = match exit {
        Some(code) => {
            // Tools the agent left running in the background do not outlive the turn.
            #[cfg(unix)]
            if let Some(pgid) = pgid {
                process::signal_group(pgid, process::Signal::Kill);
            }
            code
        }
        None => {
            if let Some(TurnEnd::Cancelled(message)) = &interrupted {
                // The text so far is known: settle the cancel on the server now rather than after
                // the stop. The slot stays held until the group is gone (the turn returns only
                // then); the same event built again by the agent is dropped by the emitter.
                emitter.emit(emitter.turn().incomplete(mapper.text(), message));
            }
            process::stop(&mut child, STOP_GRACE).await
        }
    };
    // Reaped and its group ended: the id may now be reused by an unrelated group.
    group.disarm();
    let leftovers = orphans::kill_turn_leftovers(&turn.turn_id);
    if leftovers > 0 {
        tracing::info!(
            task_id = turn.task_id,
            leftovers,
            "ended processes the agent left running"
        );
    }
    if let Some(reader) = stderr_reader {
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    }
    tracing::info!(task_id = turn.task_id, subtask_id = turn.subtask_id, exit_code = ?exit, "{agent} exited");
    Ok(Finished {
        end: interrupted.unwrap_or(TurnEnd::Exited(exit)),
        stderr_tail: stderr_text(&tail),
    })
}

async fn collect_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    task_id: i64,
    agent: &'static str,
) {
    // Read to the end whatever the bytes are: a reader that stopped early would let the pipe
    // fill up and block the agent.
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if !matches!(reader.read_until(b'\n', &mut raw).await, Ok(n) if n > 0) {
            break;
        }
        let line = String::from_utf8_lossy(&raw);
        let line = redact(line.trim_end()).into_owned();
        tracing::debug!(task_id, line = %line, "{agent} stderr");
        if line.trim().is_empty() {
            continue;
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(crate::task::payload::truncate_chars(
            &line,
            STDERR_LINE_MAX_CHARS,
        ));
    }
}

fn stderr_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    tail.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}
