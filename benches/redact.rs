//! Redaction cost as the secret set grows: registering a task's secrets, the first log line
//! after (the automaton is rebuilt lazily), and every later line. For comparison, the previous
//! scheme (a list re-sorted on every insert, one `contains` per secret per line) is timed on the
//! sizes where it finishes in reasonable time. Also: parsing a payload with 100k `*_KEY` entries
//! (refused by the entry bound) and one with 1,000 (accepted).
//!
//! Run: `cargo bench -p wegent-executor --bench redact` (JSON in `bench-results/redact.json`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wegent_executor::redact;
use wegent_executor::task::payload;

const LINES: usize = 20_000;

fn main() {
    let sizes = [100usize, 1_000, 10_000, 100_000];
    let mut current = Vec::new();
    let mut previous = Vec::new();
    for &n in &sizes {
        current.push(current_scheme(n));
        if n <= 10_000 {
            previous.push(previous_scheme(n));
        }
    }
    let results = json!({
        "line_bytes": line(0).len(),
        "aho_corasick": current,
        "previous_sorted_list": previous,
        "payload_parse": payload_parse(),
    });
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("redact.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
}

fn secrets(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sk-bench-secret-{i:09}")).collect()
}

/// A typical log line, with one secret in it every tenth line.
fn line(i: usize) -> String {
    let secret = if i.is_multiple_of(10) {
        format!("sk-bench-secret-{:09}", i % 100)
    } else {
        "nothing-secret-here".to_owned()
    };
    format!(
        "2026-12-01T14:00:00.000000Z  INFO wegent_executor::task::runner: claude started task_id=42 subtask_id=43 pid=Some(12345) value={secret}"
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn current_scheme(n: usize) -> Value {
    let list = secrets(n);
    let start = Instant::now();
    let hold = redact::hold_secrets(&list, Duration::ZERO);
    let register = start.elapsed();
    let start = Instant::now();
    assert!(redact::redact(&line(0)).contains("[REDACTED]"));
    let first_line = start.elapsed();
    let lines: Vec<String> = (0..LINES).map(line).collect();
    let start = Instant::now();
    let mut masked = 0;
    for l in &lines {
        masked += usize::from(redact::redact(l).len() != l.len());
    }
    let per_line = start.elapsed() / LINES as u32;
    assert_eq!(masked, LINES / 10);
    drop(hold);
    json!({
        "secrets": n,
        "register_ms": ms(register),
        "first_line_rebuild_ms": ms(first_line),
        "per_line_us": per_line.as_secs_f64() * 1e6,
    })
}

/// The scheme this replaced, reproduced here to compare.
fn previous_scheme(n: usize) -> Value {
    let start = Instant::now();
    let mut list: Vec<String> = Vec::new();
    for s in secrets(n) {
        if !list.contains(&s) {
            list.push(s);
            list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
    let register = start.elapsed();
    let rounds = LINES.min(2_000_000 / n.max(1)).max(10);
    let lines: Vec<String> = (0..rounds).map(line).collect();
    let start = Instant::now();
    for l in &lines {
        let mut out = std::borrow::Cow::Borrowed(l.as_str());
        for s in &list {
            if out.contains(s.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(s.as_str(), "[REDACTED]"));
            }
        }
        std::hint::black_box(out);
    }
    let per_line = start.elapsed() / rounds as u32;
    json!({
        "secrets": n,
        "register_ms": ms(register),
        "per_line_us": per_line.as_secs_f64() * 1e6,
    })
}

fn payload_parse() -> Value {
    let payload_with = |n: usize| {
        let env: serde_json::Map<String, Value> = (0..n)
            .map(|i| {
                (
                    format!("X{i}_API_KEY"),
                    json!(format!("hostile-key-{i:08}")),
                )
            })
            .collect();
        json!({"task_id": 1, "subtask_id": 2, "model_config": {"env": env}})
    };
    let mut out = serde_json::Map::new();
    for n in [1_000usize, 100_000] {
        let p = payload_with(n);
        let start = Instant::now();
        let req = payload::parse(&p).unwrap();
        let elapsed = start.elapsed();
        out.insert(
            format!("{n}_entries"),
            json!({"ms": ms(elapsed), "refused": req.refusal.is_some(), "secrets": req.secrets.len()}),
        );
    }
    Value::Object(out)
}
