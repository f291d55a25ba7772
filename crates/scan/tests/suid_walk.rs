//! The Linux catalogue's SUID/SGID walk (`suid_unexpected` in `lib/prelude.sh`) run by the real
//! `sh` on a real tree, step by step: after the first (full) walk, each walk is incremental, and
//! at every step it finds exactly what a plain `find` over the whole tree finds — programs
//! dropped into an existing directory deep in the tree, into a new directory tree, a directory
//! renamed, the bits removed, files deleted — while reading only the directories that changed.
//! Two walks at once take turns and agree; a stamp from the future forces a full walk.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const STATE: &str = "/var/cache/osiris-scan";

fn prelude() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog/runbooks/linux/lib/prelude.sh"),
    )
    .unwrap()
}

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    prefix: String,
}

impl Tree {
    fn new() -> Self {
        // Under /var/tmp: a search path may hold only [A-Za-z0-9/._+@,-].
        let dir = tempfile::Builder::new()
            .prefix("osiris-suid-walk.")
            .tempdir_in("/var/tmp")
            .unwrap();
        let root = dir.path().to_path_buf();
        let prefix = format!(
            "{STATE}/walk-%{}",
            root.display().to_string().replace('/', "=")
        );
        Tree {
            _dir: dir,
            root,
            prefix,
        }
    }

    fn program(&self, rel: &str, mode: u32) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy("/bin/true", &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// What the walk reports: SUID/SGID files not in the baseline, one per line.
    fn walk(&self) -> BTreeSet<String> {
        walk(&self.root)
    }

    /// What a plain `find` over the whole tree finds, less the baseline.
    fn truth(&self) -> BTreeSet<String> {
        let out = Command::new("find")
            .arg(&self.root)
            .args([
                "-type", "f", "(", "-perm", "-4000", "-o", "-perm", "-2000", ")", "-print",
            ])
            .output()
            .unwrap();
        let known = self.root.join("base/known").display().to_string();
        lines(&out.stdout)
            .into_iter()
            .filter(|p| *p != known)
            .collect()
    }

    fn state(&self, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{}.{suffix}", self.prefix))
    }

    fn modified(&self, suffix: &str) -> std::time::SystemTime {
        std::fs::metadata(self.state(suffix))
            .unwrap()
            .modified()
            .unwrap()
    }

    /// The directories the last incremental walk read (changed since the walk before it).
    fn read_last(&self) -> BTreeSet<String> {
        let bytes = std::fs::read(self.state("changed")).unwrap();
        bytes
            .split(|b| *b == 0)
            .filter(|d| !d.is_empty())
            .map(|d| String::from_utf8(d.to_vec()).unwrap())
            .collect()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let name = Path::new(&self.prefix)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if let Ok(entries) = std::fs::read_dir(STATE) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&format!("{name}.")))
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// The walk of `root` (baseline: `root/base/known`).
fn walk(root: &Path) -> BTreeSet<String> {
    // The walk re-reads a directory changed in the same clock tick as the last walk's stamp
    // (never misses it); a pause keeps "what changed" to what the test changed.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{}\nsuid_unexpected", prelude()))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("OSIRIS_PARAM_SEARCH_PATHS", root)
        .env(
            "OSIRIS_PARAM_BASELINE",
            root.join("base/known").display().to_string(),
        )
        .env("OSIRIS_PARAM_FULL_WALK_HOURS", "24")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

fn lines(bytes: &[u8]) -> BTreeSet<String> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn set(tree: &Tree, rels: &[&str]) -> BTreeSet<String> {
    rels.iter()
        .map(|r| tree.root.join(r).display().to_string())
        .collect()
}

#[test]
fn the_incremental_walk_finds_what_a_full_find_finds_reading_only_what_changed() {
    if !test_support::require_root(
        "the_incremental_walk_finds_what_a_full_find_finds_reading_only_what_changed",
        &["flock", "find", "stat"],
    ) {
        return;
    }
    let tree = Tree::new();
    tree.program("base/known", 0o4755);
    tree.program("usr/bin/old", 0o4755);
    tree.program("usr/share/doc/pkg/plain", 0o755);
    for i in 0..50 {
        std::fs::create_dir_all(tree.root.join(format!("usr/share/many/d{i}/e"))).unwrap();
    }

    // 1. The first walk is full.
    assert_eq!(tree.walk(), set(&tree, &["usr/bin/old"]));
    assert_eq!(tree.walk(), tree.truth());
    let full = tree.modified("full");
    assert!(
        tree.read_last().is_empty(),
        "nothing changed since the full walk"
    );

    // 2. Dropped deep into an existing directory, and into a new tree.
    tree.program("usr/share/many/d7/e/setuid", 0o4755);
    tree.program("usr/share/new/deeper/setgid", 0o2755);
    assert_eq!(
        tree.walk(),
        set(
            &tree,
            &[
                "usr/bin/old",
                "usr/share/many/d7/e/setuid",
                "usr/share/new/deeper/setgid"
            ]
        )
    );
    assert_eq!(tree.walk(), tree.truth());
    assert_eq!(tree.modified("full"), full, "no full walk since the first");

    // 3. The walk after one that changed nothing reads nothing, and still reports everything.
    assert!(tree.read_last().is_empty(), "{:?}", tree.read_last());
    // Only the directories whose entries changed are read.
    tree.program("usr/share/many/d9/e/another", 0o4755);
    assert_eq!(tree.walk(), tree.truth());
    assert_eq!(tree.read_last(), set(&tree, &["usr/share/many/d9/e"]));

    // 4. Bits removed, a directory renamed, a file deleted.
    std::fs::set_permissions(
        tree.root.join("usr/bin/old"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::rename(
        tree.root.join("usr/share/new"),
        tree.root.join("usr/share/moved"),
    )
    .unwrap();
    std::fs::remove_file(tree.root.join("usr/share/many/d7/e/setuid")).unwrap();
    assert_eq!(
        tree.walk(),
        set(
            &tree,
            &[
                "usr/share/many/d9/e/another",
                "usr/share/moved/deeper/setgid"
            ]
        )
    );
    assert_eq!(tree.walk(), tree.truth());
    assert_eq!(tree.modified("full"), full, "still no full walk");

    // 5. Two walks at once, after a change: both see it.
    tree.program("usr/share/doc/pkg/both", 0o6755);
    let walks: Vec<_> = (0..2)
        .map(|_| {
            let root = tree.root.clone();
            std::thread::spawn(move || walk(&root))
        })
        .collect();
    for walk in walks {
        assert_eq!(walk.join().unwrap(), tree.truth());
    }
    assert_eq!(tree.walk(), tree.truth());

    // 6. A stamp from the future (the clock was set back) is not trusted: a full walk.
    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
    std::fs::File::options()
        .write(true)
        .open(tree.state("stamp"))
        .unwrap()
        .set_modified(future)
        .unwrap();
    tree.program("usr/share/many/d3/e/while-back", 0o4755);
    assert_eq!(tree.walk(), tree.truth());
    assert_ne!(tree.modified("full"), full, "a full walk ran");
    assert!(
        tree.walk().contains(
            &tree
                .root
                .join("usr/share/many/d3/e/while-back")
                .display()
                .to_string()
        )
    );
}
