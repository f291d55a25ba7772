//! Durable writes against a real filesystem: contents, modes (Unix), no leftovers, refusal to
//! follow planted links. The same tests run on Windows under Wine (`scripts/test` runs them
//! with `--target x86_64-pc-windows-gnu`), where a file held open by another handle is replaced
//! too.

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

#[test]
fn replaces_contents_with_the_requested_mode_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    fs::write(&path, b"old").expect("seed");
    durable::write(&path, b"new", 0o600).expect("write");
    assert_eq!(fs::read(&path).expect("read"), b"new");
    #[cfg(unix)]
    {
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);

    durable::write(&path, b"public", 0o644).expect("write 0644");
    assert_eq!(fs::read(&path).expect("read"), b"public");
    #[cfg(unix)]
    {
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the caller's mode wins over the umask");
    }
}

#[test]
fn replaces_a_file_another_handle_holds_for_a_moment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    fs::write(&path, b"old").expect("seed");
    // A reader (a virus scanner, `osiris-agent status`) holds the file while it is replaced.
    // Windows 10's NTFS replaces it anyway (POSIX rename semantics); older Windows and Wine
    // refuse while it is open, and the write waits for it to be closed.
    let reader = fs::File::open(&path).expect("open");
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(reader);
    });
    durable::write(&path, b"new", 0o600).expect("write over a file held open");
    holder.join().expect("holder");
    assert_eq!(fs::read(&path).expect("read"), b"new");
    assert_eq!(fs::read_dir(dir.path()).expect("read_dir").count(), 1);
}

#[test]
fn a_failing_writer_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vault");
    fs::write(&path, b"precious").expect("seed");
    let err = durable::write_with(&path, 0o600, |_| {
        Err(std::io::Error::other("encoder broke half-way"))
    })
    .expect_err("must fail");
    assert!(err.to_string().starts_with("writing "), "{err}");
    assert_eq!(err.io_error().to_string(), "encoder broke half-way");
    assert_eq!(fs::read(&path).expect("read"), b"precious");
    assert_eq!(fs::read_dir(dir.path()).expect("read_dir").count(), 1);
}

#[test]
fn the_error_names_the_step_once_and_keeps_the_cause_as_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing-dir").join("file");
    let err = durable::write(&path, b"x", 0o600).expect_err("parent missing");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let display = err.to_string();
    assert!(display.starts_with("creating "), "{display}");
    let source = std::error::Error::source(&err).expect("source");
    assert_eq!(source.to_string(), err.io_error().to_string());
    assert!(
        !display.contains(&source.to_string()),
        "the cause belongs to source(), not the message: {display}"
    );
}

#[test]
fn distinct_temporary_names_for_concurrent_writers() {
    let path = &std::path::Path::new("/var/lib/osiris").join("daemon-state.json");
    let first = durable::temp_sibling(path).expect("name");
    let second = durable::temp_sibling(path).expect("name");
    assert_ne!(first, second);
    assert_eq!(first.parent(), path.parent());
    let name = first
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with(".daemon-state.json.tmp-"), "{name}");
}

#[test]
fn publish_dir_moves_a_whole_directory_into_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("kit");
    let temp = durable::temp_sibling(&dest).expect("name");
    fs::create_dir(&temp).expect("mkdir");
    fs::write(temp.join("MANIFEST"), b"m").expect("write");
    durable::publish_dir(&temp, &dest).expect("publish");
    assert_eq!(fs::read(dest.join("MANIFEST")).expect("read"), b"m");
    assert!(!temp.exists());
}
