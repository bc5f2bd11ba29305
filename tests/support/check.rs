//! Checking what arrived: every seq exactly once, in order.

use std::collections::BTreeMap;

/// The `seq` of a generator line, if it is one.
pub fn seq_of(line: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("seq")?.as_u64()
}

/// Counts per seq of the given lines.
pub fn seq_counts<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for line in lines {
        if let Some(seq) = seq_of(line) {
            *counts.entry(seq).or_insert(0) += 1;
        }
    }
    counts
}

/// (missing seqs in 0..expected, duplicated seqs), each capped for the message.
pub fn loss_and_dups(counts: &BTreeMap<u64, u32>, expected: u64) -> (Vec<u64>, Vec<u64>) {
    let missing: Vec<u64> = (0..expected).filter(|s| !counts.contains_key(s)).collect();
    let dups: Vec<u64> = counts
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&s, _)| s)
        .collect();
    (missing, dups)
}

/// Assert seq 0..expected each appear exactly once.
pub fn assert_exactly_once(counts: &BTreeMap<u64, u32>, expected: u64, what: &str) {
    let (missing, dups) = loss_and_dups(counts, expected);
    assert!(
        missing.is_empty() && dups.is_empty(),
        "{what}: {} missing (first {:?}), {} duplicated (first {:?}), {} distinct seen, expected {expected}",
        missing.len(),
        &missing[..missing.len().min(10)],
        dups.len(),
        &dups[..dups.len().min(10)],
        counts.len()
    );
}

/// Assert every seq 0..expected appears at least once.
pub fn assert_none_missing(counts: &BTreeMap<u64, u32>, expected: u64, what: &str) {
    let (missing, _) = loss_and_dups(counts, expected);
    assert!(
        missing.is_empty(),
        "{what}: {} missing (first {:?}) of {expected}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

/// Lines of a text output (a raw subscriber file), without the final newline.
pub fn output_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// Assert the seqs appear in increasing order (per file order is total order
/// for a single generator).
pub fn assert_in_order(lines: &[&[u8]], what: &str) {
    let seqs: Vec<u64> = lines.iter().filter_map(|l| seq_of(l)).collect();
    let bad = seqs.windows(2).position(|w| w[1] <= w[0]);
    assert!(
        bad.is_none(),
        "{what}: out of order at index {:?}: {:?}",
        bad,
        bad.map(|i| &seqs[i..(i + 2).min(seqs.len())])
    );
}
