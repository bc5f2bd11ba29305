//! Unit and property tests of `resp.rs`, on reply bytes captured from redis-server.

use super::*;
use crate::consumer::reply::decode_read;
use crate::consumer::stream::is_nogroup;
use proptest::prelude::*;

// Replies captured from redis-server 7.0 (`XREADGROUP … COUNT 10 STREAMS s <id>` over a
// raw socket; RESP3 after `HELLO 3`). Entry 1-1 has a binary line holding CR LF; 1-2 was
// read, then `XDEL`eted, so the pending re-read returns it without a body.
const R2_NEW: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$4\r\nline\r\n$4\r\ngone\r\n";
const R2_PENDING_DELETED: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n*-1\r\n";
const R2_NIL: &[u8] = b"*-1\r\n";
const R2_EMPTY_PENDING: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*0\r\n";
const R3_NEW: &[u8] = b"%1\r\n$2\r\ns3\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$4\r\nline\r\n$4\r\ngone\r\n";
const R3_PENDING_DELETED: &[u8] = b"%1\r\n$2\r\ns3\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n_\r\n";
const R3_NIL: &[u8] = b"_\r\n";
const R3_EMPTY_PENDING: &[u8] = b"%1\r\n$2\r\ns3\r\n*0\r\n";
const NOGROUP: &[u8] =
    b"-NOGROUP No such key 's2' or consumer group 'nog' in XREADGROUP with GROUP option\r\n";

const ALL: &[&[u8]] = &[
    R2_NEW,
    R2_PENDING_DELETED,
    R2_NIL,
    R2_EMPTY_PENDING,
    R3_NEW,
    R3_PENDING_DELETED,
    R3_NIL,
    R3_EMPTY_PENDING,
    NOGROUP,
];

/// Frame length first, as the connection does, then the decode.
fn decode(bytes: &[u8]) -> Result<Decoded, BusError> {
    assert_eq!(frame_len(bytes).expect("framed"), Some(bytes.len()));
    decode_read_frame(bytes)
}

#[test]
fn decodes_new_entries_in_resp2_and_resp3() {
    for reply in [R2_NEW, R3_NEW] {
        let d = decode(reply).expect("decode");
        assert!(d.vanished.is_empty());
        assert_eq!(d.entries.len(), 2);
        let e = &d.entries[0];
        assert_eq!(e.id, "1-1");
        assert_eq!(e.id_ms, 1);
        assert_eq!(e.line.as_deref(), Some(&b"\xff{\"a\":1}\x00\r\n"[..]));
        assert_eq!(e.src.as_deref(), Some("pod-a"));
        assert_eq!(e.off, Some(42));
        assert_eq!(e.collected_us, Some(7));
        assert_eq!(d.entries[1].line.as_deref(), Some(&b"gone"[..]));
    }
}

#[test]
fn deleted_bodies_are_vanished_ids() {
    for reply in [R2_PENDING_DELETED, R3_PENDING_DELETED] {
        let d = decode(reply).expect("decode");
        assert_eq!(d.entries.len(), 1);
        assert_eq!(d.vanished, vec!["1-2".to_string()]);
    }
}

#[test]
fn nil_and_empty_streams_decode_to_nothing() {
    for reply in [R2_NIL, R3_NIL, R2_EMPTY_PENDING, R3_EMPTY_PENDING] {
        let d = decode(reply).expect("decode");
        assert!(d.entries.is_empty() && d.vanished.is_empty());
    }
}

#[test]
fn server_errors_keep_their_code() {
    let err = decode(NOGROUP).expect_err("an error reply");
    assert!(is_nogroup(&err), "{err:?}");
    assert!(!err.breaks_connection());
}

#[test]
fn subscribed_frames_decode() {
    let message = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$6\r\na\r\nb\x00\xff\r\n";
    assert_eq!(frame_len(message).expect("ok"), Some(message.len()));
    assert_eq!(
        decode_push(message).expect("ok"),
        Push::Message(b"a\r\nb\x00\xff")
    );
    let pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    assert_eq!(decode_push(pong).expect("ok"), Push::Pong);
    let confirmed = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    assert_eq!(decode_push(confirmed).expect("ok"), Push::Other);
    assert!(decode_push(b"-NOPERM no permissions to access the 'ch' channel\r\n").is_err());
    assert!(decode_push(b":1\r\n").is_err());
    assert!(decode_push(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n").is_err());
}

#[test]
fn same_result_as_the_redis_rs_path() {
    for reply in ALL {
        let ours = decode(reply);
        let theirs = redis::parse_redis_value(reply)
            .and_then(Value::extract_error)
            .map_err(BusError::from)
            .and_then(decode_read);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.entries, b.entries);
                assert_eq!(a.vanished, b.vanished);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("differ: {a:?} vs {b:?}"),
        }
    }
}

/// A reply that declares more than any entry can hold, or a header line that never
/// ends, is refused at once instead of growing the receive buffer (a hostile or broken
/// peer streamed 1.8 GiB into it before the response timeout).
#[test]
fn oversized_declarations_are_refused_before_buffering() {
    assert!(frame_len(b"*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*2\r\n$9999999999999\r\n").is_err());
    let mut endless = b"*1\r\n:".to_vec();
    endless.resize(endless.len() + MAX_HEADER_LINE + 1, b'7');
    assert!(frame_len(&endless).is_err());
    // Just below the header limit it is only incomplete.
    endless.truncate(4 + MAX_HEADER_LINE);
    assert!(matches!(frame_len(&endless), Ok(None)));
    // A declared count far above the frame's size decodes to an error, quickly.
    let many = b"*1\r\n*2\r\n$2\r\ns2\r\n*99999999\r\n*2\r\n$3\r\n1-1\r\n*0\r\n";
    assert!(decode_read_frame(many).is_err());
}

#[test]
fn every_prefix_is_incomplete() {
    for reply in ALL {
        for cut in 0..reply.len() {
            assert_eq!(frame_len(&reply[..cut]).expect("prefix"), None, "cut {cut}");
        }
    }
}

#[test]
fn huge_binary_fields_survive() {
    let line: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 256) as u8).collect();
    let mut reply = b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n9-0\r\n*4\r\n".to_vec();
    reply.extend_from_slice(format!("$4\r\nline\r\n${}\r\n", line.len()).as_bytes());
    reply.extend_from_slice(&line);
    reply.extend_from_slice(b"\r\n$5\r\nfield\r\n$3\r\n\x00\r\n\r\n");
    for cut in [1, 60, reply.len() / 2, reply.len() - 1] {
        assert_eq!(frame_len(&reply[..cut]).expect("prefix"), None);
    }
    let d = decode(&reply).expect("decode");
    assert_eq!(d.entries[0].line.as_deref(), Some(&line[..]));
    assert_eq!(
        d.entries[0].extra,
        vec![("field".into(), b"\x00\r\n".to_vec())]
    );
}

#[test]
fn malformed_replies_are_protocol_errors() {
    for bad in [
        &b"*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*3\r\n$1\r\na\r\n*0\r\n*0\r\n"[..],
        b"?\r\n",
        b"*x\r\n",
        b"$3\r\nabcd\r\n",
        b"*1\r\n:1\r\n",
        b"*99999999999999999999\r\n",
    ] {
        let framed = frame_len(bad);
        let decoded = decode_read_frame(bad);
        assert!(
            framed.is_err() || decoded.is_err(),
            "{:?} accepted",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn header_numbers_parse_as_str_parse_does() {
    for text in [
        "0",
        "7",
        "-1",
        "512",
        "-0",
        "000012",
        "123456789012345678",
        "1234567890123456789",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "",
        "-",
        "+5",
        "1a",
        " 1",
        "1 ",
        "--1",
        "١",
    ] {
        let want = text.parse::<i64>().ok();
        assert_eq!(super::number(text.as_bytes()).ok(), want, "{text:?}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = frame_len(&bytes);
        let _ = decode_read_frame(&bytes);
    }

    #[test]
    fn corrupted_replies_never_panic(
        which in 0..ALL.len(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut reply = ALL[which].to_vec();
        let i = at.index(reply.len());
        reply[i] = byte;
        reply.truncate(cut.index(reply.len() + 1));
        if let Ok(Some(len)) = frame_len(&reply) {
            prop_assert!(len <= reply.len());
            let _ = decode_read_frame(&reply[..len]);
        }
        let _ = decode_read_frame(&reply);
    }
}
