//! Unit tests of `stream.rs` (no Redis needed).

use super::*;
use crate::consumer::StreamEntry;

fn cfg() -> StreamConsumerConfig {
    StreamConsumerConfig {
        stream: "s".into(),
        group: "g".into(),
        consumer: "c".into(),
        count: 10,
        block: Duration::from_secs(1),
        claim_idle: Duration::from_secs(30),
        claim_interval: Duration::from_secs(15),
    }
}

#[test]
fn ids_compare_numerically() {
    assert_eq!(cmp_ids("10-0", "9-5"), std::cmp::Ordering::Greater);
    assert_eq!(cmp_ids("9-10", "9-9"), std::cmp::Ordering::Greater);
    assert_eq!(cmp_ids("9-1", "9-1"), std::cmp::Ordering::Equal);
}

#[test]
fn block_must_fit_in_the_response_timeout() {
    let mut target = RedisTarget::new("redis://127.0.0.1:1");
    target.response_timeout = Duration::from_millis(500);
    assert!(matches!(
        StreamConsumer::new(target.clone(), cfg()),
        Err(BusError::Config(_))
    ));
    target.response_timeout = Duration::from_secs(5);
    assert!(StreamConsumer::new(target.clone(), cfg()).is_ok());
    let mut zero = cfg();
    zero.count = 0;
    assert!(StreamConsumer::new(target, zero).is_err());
}

#[test]
fn batch_ack_ids_include_vanished_entries() {
    let decoded = Decoded {
        entries: vec![StreamEntry {
            id: "1-0".into(),
            ..StreamEntry::default()
        }],
        vanished: vec!["2-0".into()],
    };
    let b = batch("s", BatchOrigin::OwnPending, decoded, true);
    assert!(b.entries[0].redelivered);
    assert_eq!(b.ack_ids(), vec!["1-0".to_string(), "2-0".to_string()]);
    assert!(!b.is_empty());
}
