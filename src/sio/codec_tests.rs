//! Unit tests of the pure codec, plus a stable-toolchain fuzz loop of the decoder.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::*;

const NS: &str = "/local-executor";

fn message(packet: &str) -> SioPacket {
    match decode(packet) {
        Ok(Frame::Message(p)) => p,
        other => panic!("expected a MESSAGE, got {other:?}"),
    }
}

#[test]
fn decodes_engine_io_open() {
    let frame = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    assert_eq!(
        decode(frame),
        Ok(Frame::Open(OpenInfo {
            sid: "abc".into(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: Some(1_000_000),
        }))
    );
    let no_max = r#"0{"sid":"s","pingInterval":300,"pingTimeout":200}"#;
    assert!(matches!(
        decode(no_max),
        Ok(Frame::Open(OpenInfo {
            max_payload: None,
            ..
        }))
    ));
}

#[test]
fn rejects_malformed_open_with_the_missing_field() {
    assert_eq!(decode("0"), Err(DecodeError::BadOpen("not a JSON object")));
    assert_eq!(
        decode("0[]"),
        Err(DecodeError::BadOpen("not a JSON object"))
    );
    assert_eq!(
        decode(r#"0{"sid":"s","pingTimeout":1}"#),
        Err(DecodeError::BadOpen("missing pingInterval"))
    );
    assert_eq!(
        decode(r#"0{"pingInterval":1,"pingTimeout":1}"#),
        Err(DecodeError::BadOpen("missing sid"))
    );
}

#[test]
fn decodes_engine_io_control_packets() {
    assert_eq!(decode("1"), Ok(Frame::Close));
    assert_eq!(decode("2"), Ok(Frame::Ping(String::new())));
    assert_eq!(decode("2probe"), Ok(Frame::Ping("probe".into())));
    assert_eq!(decode("3"), Ok(Frame::Pong(String::new())));
    assert_eq!(decode("5"), Ok(Frame::Upgrade));
    assert_eq!(decode("6"), Ok(Frame::Noop));
    assert_eq!(decode(""), Err(DecodeError::Empty));
    assert_eq!(decode("7"), Err(DecodeError::UnknownEngineType('7')));
    assert_eq!(decode("é"), Err(DecodeError::UnknownEngineType('é')));
    assert_eq!(decode("4"), Err(DecodeError::EmptyMessage));
}

#[test]
fn decodes_namespace_connect_and_connect_error() {
    assert_eq!(
        message(r#"40/local-executor,{"sid":"x"}"#),
        SioPacket::Connect {
            namespace: NS.into(),
            data: Some(json!({"sid": "x"})),
        }
    );
    assert_eq!(
        message("40"),
        SioPacket::Connect {
            namespace: "/".into(),
            data: None,
        }
    );
    assert_eq!(
        message(r#"44/local-executor,{"message":"Invalid or expired token"}"#),
        SioPacket::ConnectError {
            namespace: NS.into(),
            message: "Invalid or expired token".into(),
        }
    );
    // Socket.IO v4 servers sent the bare string.
    assert_eq!(
        message(r#"44/x,"Not authorized""#),
        SioPacket::ConnectError {
            namespace: "/x".into(),
            message: "Not authorized".into(),
        }
    );
    assert!(matches!(
        decode("44/x,{}"),
        Err(DecodeError::BadData {
            kind: "CONNECT_ERROR",
            ..
        })
    ));
}

#[test]
fn decodes_disconnect_with_and_without_trailing_comma() {
    for frame in ["41/local-executor,", "41/local-executor"] {
        assert_eq!(
            message(frame),
            SioPacket::Disconnect {
                namespace: NS.into()
            }
        );
    }
}

#[test]
fn decodes_events_with_and_without_ack_id() {
    assert_eq!(
        message(r#"42/local-executor,["task:execute",{"task_id":3}]"#),
        SioPacket::Event {
            namespace: NS.into(),
            id: None,
            name: "task:execute".into(),
            args: vec![json!({"task_id": 3})],
        }
    );
    assert_eq!(
        message(r#"42/local-executor,2["device:sync_capabilities",{"mode":"replace"},7]"#),
        SioPacket::Event {
            namespace: NS.into(),
            id: Some(2),
            name: "device:sync_capabilities".into(),
            args: vec![json!({"mode": "replace"}), json!(7)],
        }
    );
    assert_eq!(
        message(r#"42["hello"]"#),
        SioPacket::Event {
            namespace: "/".into(),
            id: None,
            name: "hello".into(),
            args: vec![],
        }
    );
}

#[test]
fn decodes_acks_as_argument_arrays() {
    assert_eq!(
        message(r#"43/local-executor,1[{"success":true,"device_id":"d"}]"#),
        SioPacket::Ack {
            namespace: NS.into(),
            id: 1,
            args: vec![json!({"success": true, "device_id": "d"})],
        }
    );
    assert_eq!(
        message("43/local-executor,12[]"),
        SioPacket::Ack {
            namespace: NS.into(),
            id: 12,
            args: vec![],
        }
    );
}

#[test]
fn rejects_invalid_event_and_ack_data() {
    let bad = |frame: &str| decode(frame).unwrap_err();
    assert_eq!(
        bad(r#"42/local-executor,[]"#),
        DecodeError::BadData {
            kind: "EVENT",
            reason: "no event name"
        }
    );
    assert_eq!(
        bad(r#"42/local-executor,[1,2]"#),
        DecodeError::BadData {
            kind: "EVENT",
            reason: "event name is not a string"
        }
    );
    assert_eq!(
        bad(r#"42/local-executor,{"a":1}"#),
        DecodeError::BadData {
            kind: "EVENT",
            reason: "data is not an array"
        }
    );
    assert_eq!(
        bad("42/local-executor,"),
        DecodeError::BadData {
            kind: "EVENT",
            reason: "no data"
        }
    );
    assert_eq!(
        bad("43/local-executor,[1]"),
        DecodeError::BadData {
            kind: "ACK",
            reason: "missing ack id"
        }
    );
    assert_eq!(
        bad("43/local-executor,99999999999999999999999[1]"),
        DecodeError::BadAckId("ACK")
    );
    assert_eq!(bad("49"), DecodeError::UnknownSocketType('9'));
}

#[test]
fn binary_packets_are_typed_errors() {
    assert_eq!(
        decode(r#"451-/local-executor,["up",{"_placeholder":true,"num":0}]"#),
        Err(DecodeError::BinaryUnsupported("BINARY_EVENT"))
    );
    assert_eq!(
        decode("461-/local-executor,3[{}]"),
        Err(DecodeError::BinaryUnsupported("BINARY_ACK"))
    );
}

#[test]
fn errors_never_quote_the_payload() {
    let secret = "sk-live-SECRET-value";
    let frames = [
        format!(r#"42/local-executor,["ev",{{"api_key":"{secret}"}}"#),
        format!(r#"42/local-executor,{{"api_key":"{secret}"}}"#),
        format!(r#"0{{"sid":"{secret}"}}"#),
        format!(r#"44/local-executor,{{"token":"{secret}"}}"#),
        format!(r#"42/local-executor,["ev",{secret}]"#),
    ];
    for frame in &frames {
        let err = decode(frame).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("SECRET"), "{text}");
    }
}

#[test]
fn encodes_packets_as_python_socketio_expects() {
    assert_eq!(
        encode_connect(NS, &json!({"token": "t"})),
        r#"40/local-executor,{"token":"t"}"#
    );
    assert_eq!(encode_connect("/", &Value::Null), "40");
    assert_eq!(encode_disconnect(NS), "41/local-executor,");
    assert_eq!(
        encode_event(NS, None, "device:heartbeat", &json!({"device_id": "d"})).unwrap(),
        r#"42/local-executor,["device:heartbeat",{"device_id":"d"}]"#
    );
    assert_eq!(
        encode_event(NS, Some(7), "device:register", &json!({})).unwrap(),
        r#"42/local-executor,7["device:register",{}]"#
    );
    assert_eq!(
        encode_ack(NS, 2, &[json!({"success": true})]).unwrap(),
        r#"43/local-executor,2[{"success":true}]"#
    );
    assert_eq!(
        encode_event("/", None, "x", &json!(null)).unwrap(),
        r#"42["x",null]"#
    );
    assert_eq!(encode_pong("probe"), "3probe");
}

#[test]
fn encoding_round_trips_through_the_decoder() {
    let data =
        json!({"text": "quote \" comma , slash / unicode ✓ newline \n", "n": [1, 2.5, null]});
    let frame = encode_event(NS, Some(42), "response.output_text.delta", &data).unwrap();
    assert_eq!(
        message(&frame),
        SioPacket::Event {
            namespace: NS.into(),
            id: Some(42),
            name: "response.output_text.delta".into(),
            args: vec![data.clone()],
        }
    );
    let frame = encode_ack(NS, 3, &[data.clone(), json!(1)]).unwrap();
    assert_eq!(
        message(&frame),
        SioPacket::Ack {
            namespace: NS.into(),
            id: 3,
            args: vec![data, json!(1)],
        }
    );
}

#[test]
fn decodes_the_real_task_execute_fixture() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/task-execute.sample.json"
    );
    let Ok(payload) = std::fs::read_to_string(path) else {
        // shared/ sits beside the repository in CI and on developer machines.
        panic!("fixture missing: {path}");
    };
    let payload: Value = serde_json::from_str(&payload).unwrap();
    let frame = encode_event(NS, None, "task:execute", &payload).unwrap();
    assert!(frame.len() > 50_000, "{}", frame.len());
    let SioPacket::Event { name, args, .. } = message(&frame) else {
        panic!("not an event");
    };
    assert_eq!(name, "task:execute");
    assert_eq!(args, vec![payload]);
}

/// Mutations of valid frames: the decoder must return (Ok or Err) for every input, never panic.
/// CI runs this on stable; `fuzz/` holds the libFuzzer target for deeper runs.
#[test]
fn decoder_survives_random_and_mutated_frames() {
    let seeds = [
        r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        r#"40/local-executor,{"sid":"x"}"#,
        r#"42/local-executor,2["device:sync_capabilities",{"mode":"replace","skills":[]}]"#,
        r#"43/local-executor,1[{"success":true}]"#,
        r#"44/local-executor,{"message":"Invalid or expired token"}"#,
        r#"451-/local-executor,["x",{"_placeholder":true,"num":0}]"#,
        "41/local-executor,",
        "2probe",
    ];
    let alphabet: Vec<char> = "0123456789/,[]{}\":-.eEtrufalsn \\é✓\u{0}"
        .chars()
        .collect();
    let mut rng = StdRng::seed_from_u64(0x5eed_c0dec);
    let mut decoded = 0usize;
    for round in 0..20_000 {
        let mut chars: Vec<char> = seeds[round % seeds.len()].chars().collect();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..=chars.len());
            match rng.random_range(0..4) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 if at < chars.len() => chars[at] = alphabet[rng.random_range(0..alphabet.len())],
                2 => chars.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                _ => chars.truncate(at),
            }
        }
        let frame: String = chars.into_iter().collect();
        if decode(&frame).is_ok() {
            decoded += 1;
        }
    }
    for _ in 0..5_000 {
        let len = rng.random_range(0..64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let _ = decode(&String::from_utf8_lossy(&bytes));
    }
    // Mutations keep some frames valid: the loop explores both paths.
    assert!(decoded > 100, "only {decoded} mutated frames decoded");
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let frame = format!("42/local-executor,[\"x\",{}]", "[".repeat(100_000));
    assert!(matches!(
        decode(&frame),
        Err(DecodeError::BadJson { kind: "EVENT", .. })
    ));
}
