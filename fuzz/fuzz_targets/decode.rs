//! Fuzz the Engine.IO / Socket.IO frame decoder: any input must decode to Ok or Err, never panic,
//! and whatever decodes as an event or ack must survive a re-encode/decode round trip.
//!
//! Run from `fuzz/` (nightly, or stable with `RUSTC_BOOTSTRAP=1`), seeded with real frames:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run decode corpus/decode seeds/decode -- -max_total_time=30`
#![no_main]

// The codec is pure (serde_json + thiserror only), so it is compiled in directly rather than
// through the `wegent-executor` crate: a sanitizer build of the whole core (TLS, keyring, HTTP)
// would cost minutes and add nothing to this target.
#[path = "../../src/sio/codec.rs"]
#[allow(dead_code)]
mod codec;

use codec::{decode, encode_ack, encode_event, Frame, SioPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(Frame::Message(packet)) = decode(&text) else {
        return;
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
    if let Some(frame) = reencoded {
        assert_eq!(
            decode(&frame),
            Ok(Frame::Message(packet)),
            "round trip changed the packet"
        );
    }
});
