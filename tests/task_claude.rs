//! TaskManager with the real Claude Code CLI against a mock Anthropic API: answers, tools,
//! failures, cancel, timeout, resume.
#![cfg(unix)]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::time::Duration;

use mock_anthropic::{MockAnthropic, Script};
use serde_json::json;
use task_harness::{config, final_text, names, payload, text_of_deltas, Rig, WAIT};
use wegent_executor::status::DeviceEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_answer_streams_and_completes() {
    let mock =
        MockAnthropic::start(Script::Text("Hello from the mock API, ünïcode ✓".into())).await;
    let mut rig = Rig::new(config());
    rig.manager.execute(payload(3, 4, "say hello", &mock.url));

    let events = rig.until_terminal(4).await;
    let names = names(&events);
    assert_eq!(names.first(), Some(&"response.created"), "{names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    assert!(names.contains(&"response.output_text.delta"), "{names:?}");
    let deltas: Vec<_> = events
        .iter()
        .filter(|e| e.name == "response.output_text.delta")
        .collect();
    let mut expected_offset = 0;
    for d in &deltas {
        assert_eq!(d.payload["data"]["offset"], expected_offset);
        expected_offset += d.payload["data"]["delta"].as_str().unwrap().chars().count();
    }
    let done = events.last().unwrap();
    assert_eq!(final_text(done), "Hello from the mock API, ünïcode ✓");
    assert_eq!(text_of_deltas(&events), final_text(done));
    assert_eq!(done.payload["task_id"], 3);
    assert_eq!(done.payload["message_id"], 2);
    assert_eq!(
        done.payload["data"]["response"]["usage"]["output_tokens"]
            .as_u64()
            .map(|n| n > 0),
        Some(true)
    );

    // The key from model_config reached the API, and the `/v1` of the base URL was not doubled.
    let seen = mock.requests();
    assert_eq!(seen[0].api_key.as_deref(), Some("sk-fake"));
    assert_eq!(seen[0].prompt, "say hello");
    assert_eq!(seen[0].model, "claude-sonnet-4-5");

    assert!(matches!(
        rig.events.recv().await,
        Ok(DeviceEvent::TaskStarted { task_id: 3, .. })
    ));
    assert!(
        matches!(rig.events.recv().await, Ok(DeviceEvent::TaskCompleted { task_id: 3, ref title }) if title == "say hello")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_turn_really_writes_a_file_in_the_workspace() {
    let mock = MockAnthropic::start(Script::RunCommand {
        command: "echo hello from the tool > hello.txt".into(),
        then: "Created hello.txt.".into(),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager
        .execute(payload(10, 11, "create hello.txt", &mock.url));

    let events = rig.until_terminal(11).await;
    let names = names(&events);
    assert_eq!(names.last(), Some(&"response.completed"), "{events:#?}");
    let added = events
        .iter()
        .find(|e| e.name == "response.output_item.added")
        .expect("tool start");
    assert_eq!(added.payload["data"]["item"]["name"], "Bash");
    let done = events
        .iter()
        .find(|e| e.name == "response.output_item.done")
        .expect("tool result");
    assert_eq!(done.payload["data"]["item"]["status"], "completed");
    assert_eq!(
        final_text(events.last().unwrap()),
        "Running the command.\n\nCreated hello.txt."
    );
    let written = std::fs::read_to_string(rig.workspace(10).join("hello.txt")).unwrap();
    assert_eq!(written.trim(), "hello from the tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_error_becomes_an_error_event_with_the_clis_message() {
    let mock = MockAnthropic::start(Script::ApiError {
        status: 500,
        message: "mock api_error".into(),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager.execute(payload(20, 21, "hi", &mock.url));

    let events = rig.until_terminal(21).await;
    let last = events.last().unwrap();
    assert_eq!(last.name, "error", "{events:#?}");
    assert_eq!(last.payload["data"]["code"], "api_error");
    let message = last.payload["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("500") && message.contains("mock api_error"),
        "{message}"
    );
    assert!(!names(&events).contains(&"response.completed"));
    // The synthetic "API Error" message is not presented as the answer.
    assert_eq!(text_of_deltas(&events), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_that_echoes_the_api_key_is_redacted() {
    const KEY: &str = "sk-ant-leaky-key-0123456789";
    let mock = MockAnthropic::start(Script::ApiError {
        status: 500,
        message: format!("quota exceeded for {KEY}"),
    })
    .await;
    let mut rig = Rig::new(config());
    let mut p = payload(25, 26, "hi", &mock.url);
    p["model_config"]["api_key"] = KEY.into();
    rig.manager.execute(p);

    let events = rig.until_terminal(26).await;
    let message = events.last().unwrap().payload["data"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("quota exceeded for [REDACTED]"),
        "{message}"
    );
    let sent =
        serde_json::to_string(&events.iter().map(|e| &e.payload).collect::<Vec<_>>()).unwrap();
    assert!(!sent.contains(KEY));
    loop {
        if let Ok(DeviceEvent::TaskFailed { reason, .. }) = rig.events.recv().await {
            assert!(!reason.contains(KEY), "{reason}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_slow_stream_and_its_process_group() {
    let mock = MockAnthropic::start(Script::Slow {
        chunks: 200,
        interval: Duration::from_millis(100),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager
        .execute(payload(30, 31, "write slowly", &mock.url));

    // Wait for the answer to start streaming, then cancel.
    let mut events = Vec::new();
    loop {
        let e = rig.next().await;
        let delta = e.name == "response.output_text.delta";
        events.push(e);
        if delta {
            break;
        }
    }
    let claude_pids = processes_with_cwd(&rig.workspace(30));
    assert!(
        !claude_pids.is_empty(),
        "the CLI should be running in the task workspace"
    );
    rig.manager
        .cancel(&json!({"task_id": 30, "subtask_id": 31}));
    events.extend(rig.until_terminal(31).await);

    let last = events.last().unwrap();
    assert_eq!(last.name, "response.incomplete");
    assert_eq!(last.payload["data"]["response"]["status"], "cancelled");
    assert_eq!(
        last.payload["data"]["response"]["error"]["code"],
        "cancelled"
    );
    assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
    // Every process that ran in the workspace is gone (SIGKILL delivery is asynchronous, so
    // await it, bounded).
    await_gone(claude_pids).await;
    // The slot frees right after the terminal event.
    let mut slots = rig.manager.slots();
    tokio::time::timeout(WAIT, slots.wait_for(|s| s.running.is_empty()))
        .await
        .expect("slot not freed")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_hits_the_task_timeout() {
    let mock = MockAnthropic::start(Script::Stall).await;
    let rig = Rig::new(wegent_executor::config::TaskConfig {
        task_timeout: Duration::from_secs(6),
        ..config()
    });
    rig.manager.execute(payload(40, 41, "hang", &mock.url));
    tokio::time::timeout(WAIT, mock.wait_for_requests(1))
        .await
        .expect("the CLI reached the mock");
    let pids = processes_with_cwd(&rig.workspace(40));
    assert!(!pids.is_empty(), "the CLI runs in the task workspace");

    let events = rig.until_terminal(41).await;
    let last = events.last().unwrap();
    assert_eq!(last.name, "error", "{events:#?}");
    assert_eq!(last.payload["data"]["code"], "timeout");
    assert!(last.payload["data"]["message"]
        .as_str()
        .unwrap()
        .contains("timeout (6 s)"));
    await_gone(pids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_claude_fails_the_task_with_the_install_command() {
    let rig = Rig::new(wegent_executor::config::TaskConfig {
        claude_path: Some("/nonexistent/bin/claude".into()),
        ..config()
    });
    rig.manager
        .execute(payload(50, 51, "hi", "http://127.0.0.1:9"));
    let events = rig.until_terminal(51).await;
    assert_eq!(names(&events), ["response.created", "error"]);
    let data = &events[1].payload["data"];
    assert_eq!(data["code"], "claude_not_found");
    assert!(data["message"]
        .as_str()
        .unwrap()
        .contains("npm install -g @anthropic-ai/claude-code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_bot_never_runs_claude() {
    // A working Claude and mock API, and no Codex CLI: the bot's shell type alone decides, so
    // the task fails for want of Codex rather than running Claude with a Codex bot's config.
    let mock = MockAnthropic::start(Script::Text("Claude answered".into())).await;
    let rig = Rig::new(wegent_executor::config::TaskConfig {
        codex_path: Some("/nonexistent/bin/codex".into()),
        ..config()
    });
    let mut codex_task = payload(80, 81, "hi", &mock.url);
    codex_task["bot"][0]["shell_type"] = "CodeX".into();
    rig.manager.execute(codex_task);
    let events = rig.until_terminal(81).await;
    assert_eq!(names(&events), ["response.created", "error"]);
    assert_eq!(events[0].payload["data"]["shell_type"], "codex");
    let data = &events[1].payload["data"];
    assert_eq!(data["code"], "codex_not_found");
    assert!(data["message"]
        .as_str()
        .unwrap()
        .contains("npm install -g @openai/codex@0.171.0"));
    assert!(mock.requests().is_empty(), "Claude must not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_message_resumes_the_same_claude_session() {
    let mock = MockAnthropic::start(Script::Text("noted".into())).await;
    let rig = Rig::new(config());
    rig.manager
        .execute(payload(60, 61, "remember the word kiwi", &mock.url));
    assert_eq!(
        rig.until_terminal(61).await.last().unwrap().name,
        "response.completed"
    );
    rig.manager
        .execute(payload(60, 62, "which word?", &mock.url));
    assert_eq!(
        rig.until_terminal(62).await.last().unwrap().name,
        "response.completed"
    );

    // The second request carries the first turn: the CLI resumed the saved session.
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].prompt, "remember the word kiwi",
        "first user message of the resumed conversation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_execute_hook_fails_the_task_with_its_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho \"no repo for task $WEGENT_TASK_ID\" >&2\nexit 2\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rig = Rig::new(wegent_executor::config::TaskConfig {
        pre_execute_hook: Some(hook),
        ..config()
    });
    rig.manager
        .execute(payload(70, 71, "hi", "http://127.0.0.1:9"));
    let events = rig.until_terminal(71).await;
    let data = &events.last().unwrap().payload["data"];
    assert_eq!(data["code"], "hook_failed");
    assert_eq!(
        data["message"],
        "The pre-execute hook exited with status 2: no repo for task 70"
    );
}

/// Pids whose working directory is `dir` (the CLI and its tools run in the task workspace).
fn processes_with_cwd(dir: &std::path::Path) -> Vec<u32> {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

async fn await_gone(pids: Vec<u32>) {
    let alive =
        |pid: &u32| std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid);
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        while pids.iter().any(alive) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let left: Vec<_> = pids.iter().filter(|p| alive(p)).collect();
    assert!(gone.is_ok(), "processes survived the stop: {left:?}");
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
