use super::*;

fn line(seq: u64) -> Vec<u8> {
    format!("{{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"level\":\"INFO\",\"message\":\"m\",\"seq\":{seq},\"service\":\"app\",\"host\":\"h\"}}\n").into_bytes()
}

#[test]
fn finds_the_last_complete_line() {
    assert_eq!(last_complete_line(b"a\nb\n", true), Some(&b"b"[..]));
    assert_eq!(last_complete_line(b"a\nb\npartial", true), Some(&b"b"[..]));
    assert_eq!(last_complete_line(b"only\n", true), Some(&b"only"[..]));
    assert_eq!(last_complete_line(b"only\n", false), None, "may be cut");
    assert_eq!(last_complete_line(b"x\r\n", true), Some(&b"x"[..]));
    assert_eq!(last_complete_line(b"no newline", true), None);
    assert_eq!(last_complete_line(b"", true), None);
}

#[test]
fn parses_seq_of_generator_lines_only() {
    assert_eq!(parse_seq(line(17).trim_ascii_end()), Some(17));
    assert_eq!(parse_seq(br#"{"type":"INFO","message":"classic"}"#), None);
    assert_eq!(parse_seq(b"plain text"), None);
}

#[test]
fn creates_directory_and_starts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/app.log");
    let (_log, next) = LogFile::open(&path, 0, 5).unwrap();
    assert_eq!(next, 0);
    assert!(path.exists());
}

#[test]
fn resumes_after_the_last_line_and_closes_a_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut content = line(3);
    content.extend(line(4));
    content.extend(b"{\"timestamp\":\"cut"); // a crash mid-line
    fs::write(&path, &content).unwrap();
    let (mut log, next) = LogFile::open(&path, 0, 5).unwrap();
    assert_eq!(next, 5);
    let appended = log.append(&line(5)).unwrap();
    assert_eq!(appended.bytes, line(5).len() as u64 + 1);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with(&format!("cut\n{}", String::from_utf8(line(5)).unwrap())));
}

#[test]
fn a_foreign_last_line_starts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(&path, b"hello\n").unwrap();
    assert_eq!(LogFile::open(&path, 0, 5).unwrap().1, 0);
}

#[test]
fn resumes_from_the_rotated_file_when_the_current_one_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(rotated_path(&path, 1), [line(8), line(9)].concat()).unwrap();
    fs::write(&path, b"").unwrap();
    assert_eq!(LogFile::open(&path, 0, 5).unwrap().1, 10);
    fs::remove_file(&path).unwrap();
    assert_eq!(LogFile::open(&path, 0, 5).unwrap().1, 10);
}

#[test]
fn a_line_longer_than_the_window_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut content = line(1);
    content.extend(vec![b'x'; TAIL_WINDOW as usize + 10]);
    content.push(b'\n');
    fs::write(&path, &content).unwrap();
    assert_eq!(LogFile::open(&path, 0, 5).unwrap().1, 0);
}

#[test]
fn rotation_shifts_files_and_keeps_only_keep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let one = line(0).len() as u64;
    // Room for exactly two lines per file.
    let (mut log, _) = LogFile::open(&path, 2 * one + 1, 2).unwrap();
    let mut rotations = 0;
    for seq in 0..9 {
        if log.append(&line(seq)).unwrap().rotated {
            rotations += 1;
        }
    }
    assert_eq!(rotations, 4);
    let read = |p: &Path| fs::read_to_string(p).unwrap();
    assert_eq!(read(&path), String::from_utf8(line(8)).unwrap());
    assert_eq!(
        read(&rotated_path(&path, 1)),
        String::from_utf8([line(6), line(7)].concat()).unwrap()
    );
    assert_eq!(
        read(&rotated_path(&path, 2)),
        String::from_utf8([line(4), line(5)].concat()).unwrap()
    );
    assert!(!rotated_path(&path, 3).exists());
}

#[test]
fn a_line_larger_than_the_limit_goes_into_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (mut log, _) = LogFile::open(&path, 10, 1).unwrap();
    assert!(!log.append(&line(0)).unwrap().rotated);
    assert!(log.append(&line(1)).unwrap().rotated);
    assert_eq!(fs::read(&path).unwrap(), line(1));
    assert_eq!(fs::read(rotated_path(&path, 1)).unwrap(), line(0));
}

#[test]
fn an_external_truncation_is_noticed_before_rotating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let one = line(0).len() as u64;
    let (mut log, _) = LogFile::open(&path, 2 * one, 3).unwrap();
    log.append(&line(0)).unwrap();
    log.append(&line(1)).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(!log.append(&line(2)).unwrap().rotated);
    assert_eq!(fs::read(&path).unwrap(), line(2));
}
