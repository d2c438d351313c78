//! Secrets from a task payload reach the child only through its environment: not its command
//! line, not a log line, not a file outside the task directory, not an event to the server.
//! Its own test binary, so the captured global log sees every thread.
#![cfg(unix)]

#[path = "support/log_capture.rs"]
mod log_capture;
#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::Path;
use std::time::Duration;

use mock_anthropic::{MockAnthropic, Script};
use task_harness::{config, payload, Rig};

const MODEL_KEY: &str = "sk-ant-SECRET-model-key-0123456789";
const GIT_TOKEN: &str = "ghp_SECRETgitTOKEN0123456789";
const TASK_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.SECRET-task-token.sig0123";
const EXTRA_TOKEN: &str = "extra-SECRET-env-token-0123";
const SECRETS: [&str; 4] = [MODEL_KEY, GIT_TOKEN, TASK_TOKEN, EXTRA_TOKEN];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_secrets_stay_out_of_argv_logs_files_and_events() {
    log_capture::install();

    let mock = MockAnthropic::start(Script::Slow {
        chunks: 20,
        interval: Duration::from_millis(100),
    })
    .await;
    let rig = Rig::new(config());
    let mut p = payload(7, 8, "do the thing", &mock.url);
    p["model_config"]["api_key"] = MODEL_KEY.into();
    p["model_config"]["env"] = serde_json::json!({"EXTRA_API_TOKEN": EXTRA_TOKEN});
    p["user"]["git_token"] = GIT_TOKEN.into();
    p["auth_token"] = TASK_TOKEN.into();
    rig.manager.execute(p);

    // While the CLI streams, no process on the machine has a secret on its command line.
    let mut events = Vec::new();
    loop {
        let e = rig.next().await;
        let delta = e.name == "response.output_text.delta";
        events.push(e);
        if delta {
            break;
        }
    }
    let cmdlines = all_cmdlines();
    assert!(
        cmdlines.iter().any(|c| c.contains("stream-json")),
        "the CLI should be visible while it runs"
    );
    for secret in SECRETS {
        assert!(
            !cmdlines.iter().any(|c| c.contains(secret)),
            "{secret} on a command line"
        );
    }
    events.extend(rig.until_terminal(8).await);
    assert_eq!(events.last().unwrap().name, "response.completed");

    // The key did reach the child (through its environment): the API saw it.
    assert_eq!(mock.requests()[0].api_key.as_deref(), Some(MODEL_KEY));

    let log = log_capture::text();
    assert!(log.contains("claude started"), "the log capture works");
    let sent =
        serde_json::to_string(&events.iter().map(|e| &e.payload).collect::<Vec<_>>()).unwrap();
    for secret in SECRETS {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(
            !sent.contains(secret),
            "{secret} in an event for the server"
        );
    }
    // Nothing under the executor home holds a secret — inside the task directory included.
    let mut files = Vec::new();
    walk(rig.home.path(), &mut files);
    assert!(
        files.len() > 1,
        "the CLI wrote its session under the task directory"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
}

fn all_cmdlines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            name.to_str()?.parse::<u32>().ok()?;
            let raw = std::fs::read(Path::new("/proc").join(&name).join("cmdline")).ok()?;
            Some(String::from_utf8_lossy(&raw).replace('\0', " "))
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}
