//! (c) An in-process fuzz loop on stable Rust: random and mutated inputs through the frame codec
//! (`sio::codec::decode`, with the re-encode round trip of `fuzz/fuzz_targets/decode.rs`), the
//! `task:execute` parser (`task::payload::parse`, on structurally mutated real payloads and on
//! byte-mutated whole frames decoded first) and the CLI output mapping
//! (`task::agent::claude::stream::StreamMapper::feed`). Any panic is a failure; the input is kept.
//!
//! Seeds: the real frames in `fuzz/seeds/decode/`, the captured payloads (`tests/fixtures/`,
//! `devserver/assets/`, the §16 payloads of `tests/fixtures/task-execute/`), and stream-json
//! lines of the pinned Claude CLI.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use wegent_executor::sio::codec::{decode, encode_ack, encode_event, Frame, SioPacket};
use wegent_executor::task::agent::claude::stream::StreamMapper;
use wegent_executor::task::events::Turn;
use wegent_executor::task::payload;

/// Tokens that tend to reach deep into a JSON or Socket.IO parser.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "42",
    "43",
    "44",
    "/local-executor,",
    "0",
    "-1",
    "18446744073709551616",
    "1e999",
    "-0",
    "null",
    "true",
    "\\u0000",
    "\\ud800",
    "é",
    "🌍",
    "\u{0}",
    "[[[[[[[[[[",
    "{\"a\":",
    "\"task_id\":",
    "\"subtask_id\":",
    "2[\"task:execute\",",
];

/// Claude CLI `--output-format stream-json` lines (as the pinned CLI writes them).
const STREAM_LINES: &[&str] = &[
    r#"{"type":"system","subtype":"init","session_id":"s-1","tools":["Bash"],"model":"m"}"#,
    r#"{"type":"stream_event","api_message_id":"a","event":{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}}"#,
    r#"{"type":"stream_event","api_message_id":"a","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}}"#,
    r#"{"type":"stream_event","api_message_id":"a","event":{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"co"}}}"#,
    r#"{"type":"assistant","message":{"id":"a","content":[{"type":"text","text":"héllo 🌍"}]}}"#,
    r#"{"type":"assistant","message":{"id":"a","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}"#,
    r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"a.txt","is_error":false}]}}"#,
    r#"{"type":"assistant","message":{"id":"a","content":[{"type":"thinking","thinking":"hmm"}]}}"#,
    r#"{"type":"result","subtype":"success","is_error":false,"result":"Hello","usage":{"input_tokens":3,"output_tokens":2}}"#,
    r#"{"type":"result","subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (1)"]}"#,
];

pub struct FuzzOutcome {
    pub inputs: u64,
    /// Frames whose re-encoded form decodes to another packet (not a panic: a number beyond
    /// `u64` is parsed as a float, and serde_json's float parsing is not exact to the last bit).
    pub round_trip_mismatches: Vec<String>,
    pub per_target: Value,
    pub seconds: f64,
    pub panics: Vec<String>,
    pub seeds: Value,
}

/// Runs `total` inputs: 70 % codec, 20 % payload, 10 % mapping.
pub fn run(total: u64, seed: u64) -> FuzzOutcome {
    let mut rng = SmallRng::seed_from_u64(seed);
    let frames = frame_seeds();
    let payloads = payload_seeds();
    let mut panics = Vec::new();
    let mut mismatches = Vec::new();
    // A panic is reported in the summary; the default hook's backtrace would flood the log.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();

    let codec_n = total * 7 / 10;
    let payload_n = total * 2 / 10;
    let mapping_n = total - codec_n - payload_n;
    let t = Instant::now();
    for _ in 0..codec_n {
        let input = mutate(
            &frames[rng.random_range(0..frames.len())],
            &frames,
            &mut rng,
        );
        let text = String::from_utf8_lossy(&input).into_owned();
        match catch_unwind(|| codec_round_trip(&text)) {
            Ok(true) => {}
            Ok(false) => keep(&mut mismatches, "codec round trip", &text),
            Err(_) => keep(&mut panics, "codec", &text),
        }
    }
    let codec_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut whole_frames = 0u64;
    let mut work: Vec<Value> = payloads.iter().map(|(_, v)| v.clone()).collect();
    for i in 0..payload_n {
        let which = rng.random_range(0..work.len());
        // One in 50: a whole byte-mutated frame through the codec first (slow: 72 KB of JSON).
        if i % 50 == 0 {
            whole_frames += 1;
            let frame = format!("42/local-executor,[\"task:execute\",{}]", payloads[which].1);
            let input = mutate_sparse(frame.as_bytes(), &mut rng);
            let text = String::from_utf8_lossy(&input).into_owned();
            if catch_unwind(|| parse_frame(&text)).is_err() {
                keep(&mut panics, "payload (frame)", &text);
            }
            continue;
        }
        let undo = mutate_value(&mut work[which], &mut rng);
        let target = &work[which];
        if catch_unwind(AssertUnwindSafe(|| {
            let _ = payload::parse(target);
        }))
        .is_err()
        {
            keep(&mut panics, "payload", &target.to_string());
        }
        restore(&mut work[which], undo);
    }
    let payload_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let lines: Vec<Vec<u8>> = STREAM_LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
    let mut mapper = new_mapper();
    for i in 0..mapping_n {
        if i % 1000 == 0 {
            mapper = new_mapper();
        }
        let input = mutate(&lines[rng.random_range(0..lines.len())], &lines, &mut rng);
        let text = String::from_utf8_lossy(&input).into_owned();
        if catch_unwind(AssertUnwindSafe(|| {
            let _ = mapper.feed(&text);
            let _ = mapper.finish(Some(0), "");
        }))
        .is_err()
        {
            keep(&mut panics, "mapping", &text);
            mapper = new_mapper();
        }
    }
    let mapping_secs = t.elapsed().as_secs_f64();
    std::panic::set_hook(hook);

    let rate = |n: u64, s: f64| (n as f64 / s.max(1e-9)).round();
    FuzzOutcome {
        inputs: total,
        seconds: started.elapsed().as_secs_f64(),
        per_target: json!({
            "codec_decode": {"inputs": codec_n, "per_sec": rate(codec_n, codec_secs)},
            "payload_parse": {"inputs": payload_n, "whole_frames_through_codec": whole_frames, "per_sec": rate(payload_n, payload_secs)},
            "mapping_feed": {"inputs": mapping_n, "per_sec": rate(mapping_n, mapping_secs)},
        }),
        panics,
        round_trip_mismatches: mismatches,
        seeds: json!({
            "frames": frames.len(),
            "payloads": payloads.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "stream_lines": STREAM_LINES.len(),
        }),
    }
}

fn keep(panics: &mut Vec<String>, target: &str, input: &str) {
    if panics.len() < 5 {
        let shown: String = input.chars().take(300).collect();
        panics.push(format!("{target}: {shown:?}"));
    } else if panics.len() == 5 {
        panics.push("(more)".into());
    }
}

/// The cargo-fuzz target's property: decodes or errs (a panic is caught by the caller); an
/// event or ack survives a re-encode/decode round trip (`false` if not).
fn codec_round_trip(text: &str) -> bool {
    let Ok(Frame::Message(packet)) = decode(text) else {
        return true;
    };
    let reencoded = match &packet {
        SioPacket::Event {
            namespace,
            id,
            name,
            args,
        } if args.len() == 1 => encode_event(namespace, *id, name, &args[0]).ok(),
        SioPacket::Ack {
            namespace,
            id,
            args,
        } => encode_ack(namespace, *id, args).ok(),
        _ => None,
    };
    reencoded.is_none_or(|frame| decode(&frame) == Ok(Frame::Message(packet)))
}

fn parse_frame(text: &str) {
    if let Ok(Frame::Message(SioPacket::Event { args, .. })) = decode(text) {
        if let Some(first) = args.first() {
            let _ = payload::parse(first);
        }
    }
}

fn new_mapper() -> StreamMapper {
    StreamMapper::new(Turn {
        task_id: 1,
        subtask_id: 2,
        message_id: Some(3),
        model: "m".into(),
        created_at: 0,
    })
}

fn frame_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    seeds.extend(
        [
            "2",
            "3probe",
            "0{\"sid\":\"x\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
            "40/local-executor,{\"sid\":\"abc\"}",
            "44/local-executor,{\"message\":\"Too many device connection attempts\"}",
            "42/local-executor,[\"task:cancel\",{\"task_id\":1,\"subtask_id\":2}]",
            "42/local-executor,7[\"device:execute_command\",{\"command\":\"pwd\",\"argv\":[\"pwd\"]}]",
            "43/local-executor,3[{\"success\":true}]",
            "41/local-executor,",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec()),
    );
    seeds
}

fn payload_seeds() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("tests/fixtures/task-execute.sample.json"),
        root.join("devserver/assets/task-execute.sample.json"),
    ];
    // The §16 payloads captured from the real backend.
    if let Ok(entries) = std::fs::read_dir(root.join("tests/fixtures/task-execute")) {
        files.extend(entries.filter_map(|e| Some(e.ok()?.path())));
    }
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            Some((p.display().to_string(), v))
        })
        .collect()
}

/// 1–4 byte-level edits, sometimes a splice with another seed.
fn mutate(seed: &[u8], all: &[Vec<u8>], rng: &mut SmallRng) -> Vec<u8> {
    let mut out = if rng.random_ratio(1, 20) {
        // Pure noise, now and then.
        (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
    } else {
        seed.to_vec()
    };
    for _ in 0..rng.random_range(1..=4) {
        edit(&mut out, all, rng);
    }
    out
}

/// One or two edits of a large input (it stays mostly valid, so the parser goes deep).
fn mutate_sparse(seed: &[u8], rng: &mut SmallRng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..rng.random_range(1..=2) {
        edit(&mut out, &[], rng);
    }
    out
}

fn edit(out: &mut Vec<u8>, all: &[Vec<u8>], rng: &mut SmallRng) {
    let len = out.len();
    let at = if len == 0 {
        0
    } else {
        rng.random_range(0..len)
    };
    match rng.random_range(0..8) {
        0 if len > 0 => out[at] ^= 1 << rng.random_range(0..8),
        1 => out.insert(at, rng.random()),
        2 if len > 0 => {
            let end = (at + rng.random_range(1..16)).min(len);
            out.drain(at..end);
        }
        3 => {
            let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
            out.splice(at..at, token.iter().copied());
        }
        4 => out.truncate(at),
        5 if len > 0 => {
            let end = (at + rng.random_range(1..32)).min(len);
            let chunk = out[at..end].to_vec();
            out.splice(at..at, chunk);
        }
        6 if !all.is_empty() => {
            let other = &all[rng.random_range(0..all.len())];
            let from = rng.random_range(0..=other.len());
            out.truncate(at);
            out.extend_from_slice(&other[from..]);
        }
        _ if len > 0 => out[at] = b"0123456789{}[]\",:-e.\\ntf"[rng.random_range(0..24)],
        _ => out.push(rng.random()),
    }
}

/// Where a mutation happened and what was there, to undo it without cloning the payload.
enum Undo {
    Replaced(Vec<String>, Value),
    Inserted(Vec<String>),
}

/// Replaces or adds 1–3 values at random paths (depth ≤ 3, through objects and arrays).
fn mutate_value(root: &mut Value, rng: &mut SmallRng) -> Vec<Undo> {
    let mut undo = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let mut path = Vec::new();
        let mut node = &*root;
        for _ in 0..rng.random_range(1..=3) {
            let next = match node {
                Value::Object(map) if !map.is_empty() => {
                    let key = map
                        .keys()
                        .nth(rng.random_range(0..map.len()))
                        .unwrap()
                        .clone();
                    let child = &map[&key];
                    path.push(key);
                    child
                }
                Value::Array(items) if !items.is_empty() => {
                    let i = rng.random_range(0..items.len());
                    path.push(i.to_string());
                    &items[i]
                }
                _ => break,
            };
            node = next;
        }
        if path.is_empty() {
            continue;
        }
        let new = random_value(rng, 2);
        if rng.random_ratio(1, 8) {
            // A new key next to the chosen one (e.g. an extra env entry).
            let key = format!("FUZZ_{}_KEY", rng.random::<u16>());
            let mut parent_path = path.clone();
            parent_path.pop();
            if let Some(Value::Object(map)) = pointer_mut(root, &parent_path) {
                if !map.contains_key(&key) {
                    map.insert(key.clone(), new);
                    parent_path.push(key);
                    undo.push(Undo::Inserted(parent_path));
                }
            }
        } else if let Some(slot) = pointer_mut(root, &path) {
            let old = std::mem::replace(slot, new);
            undo.push(Undo::Replaced(path, old));
        }
    }
    undo
}

fn restore(root: &mut Value, undo: Vec<Undo>) {
    for step in undo.into_iter().rev() {
        match step {
            Undo::Replaced(path, old) => {
                if let Some(slot) = pointer_mut(root, &path) {
                    *slot = old;
                }
            }
            Undo::Inserted(mut path) => {
                let key = path.pop().unwrap();
                if let Some(Value::Object(map)) = pointer_mut(root, &path) {
                    map.remove(&key);
                }
            }
        }
    }
}

fn pointer_mut<'a>(root: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut node = root;
    for seg in path {
        node = match node {
            Value::Object(map) => map.get_mut(seg)?,
            Value::Array(items) => items.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn random_value(rng: &mut SmallRng, depth: u32) -> Value {
    match rng.random_range(0..14) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(u64::MAX),
        4 => json!(-1),
        5 => json!(rng.random::<f64>() * 1e300),
        6 => json!(""),
        7 => json!("x".repeat(rng.random_range(0..20_000))),
        8 => json!("${{task_token}} \u{0} é 🌍 \\"),
        9 => json!(0),
        10 if depth > 0 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        11 if depth > 0 => Value::Object(
            (0..rng.random_range(0..4))
                .map(|i| (format!("K{i}_TOKEN"), random_value(rng, depth - 1)))
                .collect(),
        ),
        12 => json!("acceptEdits"),
        _ => json!(rng.random::<u32>().to_string()),
    }
}
