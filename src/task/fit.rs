//! Every answer fits the server's packet limit.
//!
//! The server refuses packets of 1,000,000 bytes or more ([`crate::sio::SERVER_MAX_PAYLOAD`]);
//! a packet it refuses is never sent, so a command's REST caller would wait for a timeout and a
//! task would never settle. Large strings (command output, an answer's text, an error) are cut
//! instead, so the *JSON-encoded* value fits: escapes count (a `"` takes 2 bytes, a control
//! character 6), which is why cutting by characters or raw bytes is not enough.

use serde_json::Value;

/// Room left for the Socket.IO framing around a payload: `42/local-executor,<ack id>["name",…]`
/// is under 100 bytes; the rest is margin.
const FRAMING_RESERVE: usize = 4 * 1024;

/// The largest encoded payload (one event's object, or one ack's object) the device sends.
pub const PACKET_BUDGET: usize = crate::sio::SERVER_MAX_PAYLOAD - FRAMING_RESERVE;

/// Appended to a cut text in a task event, so the reader sees it is not the whole.
pub const CUT_NOTE: &str =
    "\n\n[… cut here: the full text was larger than the server accepts in one message]";

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn char_json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Bytes `s` takes inside a JSON string (without the quotes).
pub fn json_len(s: &str) -> usize {
    s.chars().map(char_json_len).sum()
}

/// The longest prefix of `s` (cut at a character boundary) whose JSON-encoded length is at most
/// `max` bytes.
pub fn prefix_within(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += char_json_len(c);
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The encoded size of `value`, without building the text.
pub fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value into an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Cut the largest strings of `value` until it encodes to at most `budget` bytes, appending
/// `note` to each cut string. Returns the JSON pointers of the strings cut, empty if `value`
/// already fit.
///
/// The cut is fair: every string is capped at one common length (as large as the budget
/// allows), so 5 MiB of stdout and 5 MiB of stderr keep about half the room each, and a short
/// string next to a huge one is not touched. If even empty strings with notes do not fit, the
/// notes are left out.
pub fn fit(value: &mut Value, budget: usize, note: &str) -> Vec<String> {
    let size = encoded_len(value);
    if size <= budget {
        return Vec::new();
    }
    let mut strings = Vec::new();
    collect_strings(value, String::new(), &mut strings);
    let (cap, note) = match largest_cap(size, budget, &strings, json_len(note)) {
        Some(cap) => (cap, note),
        None => (largest_cap(size, budget, &strings, 0).unwrap_or(0), ""),
    };
    let note_len = json_len(note);
    let mut cut = Vec::new();
    for (pointer, len) in strings {
        if len <= cap + note_len {
            continue;
        }
        if let Some(Value::String(s)) = value.pointer_mut(&pointer) {
            *s = format!("{}{note}", prefix_within(s, cap));
            cut.push(pointer);
        }
    }
    cut
}

/// The largest length `cap` such that cutting every string longer than `cap + note_len` to
/// `cap` bytes plus the note brings `size` within `budget`; `None` if not even `cap = 0` does.
fn largest_cap(
    size: usize,
    budget: usize,
    strings: &[(String, usize)],
    note_len: usize,
) -> Option<usize> {
    let size_with = |cap: usize| {
        strings
            .iter()
            .filter(|(_, len)| *len > cap + note_len)
            .fold(size, |acc, (_, len)| acc - (len - cap - note_len))
    };
    if size_with(0) > budget {
        return None;
    }
    // size_with grows with cap: the largest cap that fits, by bisection.
    let (mut fits, mut over) = (0, strings.iter().map(|(_, l)| *l).max().unwrap_or(0) + 1);
    while over - fits > 1 {
        let mid = fits + (over - fits) / 2;
        if size_with(mid) <= budget {
            fits = mid;
        } else {
            over = mid;
        }
    }
    Some(fits)
}

/// Every string of `value` with its JSON pointer and encoded length.
fn collect_strings(value: &Value, at: String, out: &mut Vec<(String, usize)>) {
    match value {
        Value::String(s) => out.push((at, json_len(s))),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_strings(v, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                collect_strings(v, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_len_counts_escapes() {
        for s in [
            "plain",
            "quote \" and \\ back",
            "nl\n tab\t",
            "ctl \u{1}",
            "é 漢 🎉",
        ] {
            let encoded = serde_json::to_string(s).unwrap();
            assert_eq!(json_len(s), encoded.len() - 2, "{s:?}");
        }
        assert_eq!(prefix_within("a\"b", 2), "a");
        assert_eq!(prefix_within("a\"b", 3), "a\"");
        assert_eq!(prefix_within("漢字", 4), "漢");
    }

    #[test]
    fn a_value_that_fits_is_untouched() {
        let mut v = json!({"stdout": "hi", "n": 1});
        assert!(fit(&mut v, 100, "").is_empty());
        assert_eq!(v, json!({"stdout": "hi", "n": 1}));
    }

    #[test]
    fn escapes_are_counted_when_cutting() {
        // 600 KB of quotes encode to 1.2 MB: a cut by raw bytes would still be over.
        let mut v =
            json!({"stdout": "\"".repeat(600_000), "stderr": "x".repeat(300_000), "ok": true});
        let cut = fit(&mut v, PACKET_BUDGET, "");
        assert_eq!(cut, ["/stdout"]);
        let size = encoded_len(&v);
        assert!(size <= PACKET_BUDGET, "{size}");
        assert!(size > PACKET_BUDGET - 16, "cut no more than needed: {size}");
        assert_eq!(v["stderr"].as_str().unwrap().len(), 300_000);
        assert_eq!(encoded_len(&v), serde_json::to_string(&v).unwrap().len());
    }

    #[test]
    fn several_large_strings_are_all_cut_and_noted() {
        let mut v = json!({"data": {"response": {"output": [{"content": [{"text": "t".repeat(2_000_000)}]}],
            "error": {"message": "m".repeat(1_500_000)}}}});
        let mut cut = fit(&mut v, PACKET_BUDGET, CUT_NOTE);
        cut.sort();
        assert_eq!(
            cut,
            [
                "/data/response/error/message",
                "/data/response/output/0/content/0/text",
            ]
        );
        assert!(encoded_len(&v) <= PACKET_BUDGET);
        let text = v["data"]["response"]["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap();
        let message = v["data"]["response"]["error"]["message"].as_str().unwrap();
        assert!(text.ends_with(CUT_NOTE) && text.starts_with("ttt"));
        assert!(message.ends_with(CUT_NOTE) && message.starts_with("mmm"));
        // Fair: both kept about the same room.
        assert_eq!(text.len(), message.len());
    }
}
