//! `osirisd` under the unit NixOS ships (issue 14, finding 7): the `serviceConfig` of
//! `nixos/osiris.nix`, rendered as NixOS renders it, run by a real systemd (a Debian container
//! booted with `systemd-nspawn`), and an auditor's stick mounted below `/media` after the daemon
//! started, as udev does on the appliance. The export must reach the stick through the sandbox
//! (`ProtectSystem=strict`, `ReadWritePaths=-/media -/run/media`, `PrivateTmp`, `PrivateDevices`),
//! also after the daemon restarted with the stick in (the case `ReadWritePaths` is for: a mount
//! that appears later reaches the running service writable anyway), the kit must verify against
//! the appliance key, and the data directory, `/etc`, `/media` itself, a planted link and a
//! pulled stick must be refused with nothing written.
//!
//! What this does not run (see vm-tests/usb-export.nix, which only a NixOS build runs): the udev
//! rule and `systemd-mount` (a container has no device units), and FAT itself (this kernel has no
//! `vfat`): the stick is a tmpfs mounted with the rule's ownership and `nosuid,nodev,noexec`.
//! Needs root (overlay, nspawn); without root it says so loudly and does nothing.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `osiris` binary beside `osirisd` (built by `cargo build -p cli`, as scripts/test does).
fn osiris_bin() -> PathBuf {
    let osiris = PathBuf::from(env!("CARGO_BIN_EXE_osirisd")).with_file_name("osiris");
    assert!(
        osiris.exists(),
        "{} is missing: build it first (`cargo build -p cli`)",
        osiris.display()
    );
    osiris
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ------------------------------------------------------------------ the unit, from the Nix module

/// The `[Service]` lines of osirisd's unit as NixOS renders `serviceConfig` from
/// `nixos/osiris.nix` with the module's defaults: a list becomes one line per item, a boolean
/// `true`/`false`, `[ "" ]` an empty assignment (a reset). `exec` replaces the package's
/// `osirisd` in `ExecStart`. A value this reader does not know fails the test, naming the line,
/// so the unit tested here cannot silently drift from the one shipped.
fn shipped_service_lines(exec: &str) -> Vec<String> {
    let module = std::fs::read_to_string(repo().join("nixos/osiris.nix")).unwrap();
    let start = module
        .find("systemd.services.osirisd = {")
        .expect("osirisd's unit in nixos/osiris.nix");
    let body = &module[start..];
    let open =
        body.find("serviceConfig = {").expect("its serviceConfig") + "serviceConfig = {".len();
    let block = &body[open..open + closing_brace(&body[open..])];
    let watchdog = option_default(&module, "watchdogSec");
    let mut lines = Vec::new();
    for (name, value) in assignments(block) {
        let value = value.trim();
        match name.as_str() {
            "ExecStart" => {
                let rest = value
                    .strip_prefix("\"${lib.getExe' cfg.package \"osirisd\"}")
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("ExecStart = {value}: unknown form"));
                lines.push(format!("ExecStart={exec}{rest}"));
            }
            "WatchdogSec" if value == "cfg.watchdogSec" => {
                lines.push(format!("WatchdogSec={watchdog}"));
            }
            // `lib.optional (cfg.credentialsKeyFile != null) …`: the option's default is null.
            "LoadCredential" if value.starts_with("lib.optional (") => {
                assert_eq!(option_default(&module, "credentialsKeyFile"), "null");
            }
            _ => {
                for item in literal(&name, value) {
                    lines.push(format!("{name}={item}"));
                }
            }
        }
    }
    lines
}

/// The position of the `}` that closes the block `text` starts inside of.
fn closing_brace(text: &str) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string && depth == 0 => return i,
            '}' if !in_string => depth -= 1,
            _ => {}
        }
    }
    panic!("unclosed block")
}

/// `name = value;` pairs at the top of an attribute-set body, comments dropped.
fn assignments(block: &str) -> Vec<(String, String)> {
    let text: String = block
        .lines()
        .map(|line| match line.trim_start().starts_with('#') {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(eq) = rest.find(" = ") {
        let name = rest[..eq].trim().to_owned();
        let value_start = eq + 3;
        let (mut depth, mut in_string, mut end) = (0i32, false, None);
        for (i, c) in rest[value_start..].char_indices() {
            match c {
                '"' => in_string = !in_string,
                '[' | '(' | '{' if !in_string => depth += 1,
                ']' | ')' | '}' if !in_string => depth -= 1,
                ';' if !in_string && depth == 0 => {
                    end = Some(value_start + i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("{name}: no closing `;`"));
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric()),
            "unexpected text in serviceConfig before ` = `: {name:?}"
        );
        out.push((name, rest[value_start..end].to_owned()));
        rest = &rest[end + 1..];
    }
    assert!(
        rest.trim().is_empty(),
        "unread serviceConfig text: {rest:?}"
    );
    out
}

/// A literal value's items: a string, a number, a boolean, or a list of strings.
fn literal(name: &str, value: &str) -> Vec<String> {
    if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return list
            .split_whitespace()
            .map(|item| string(name, item))
            .collect();
    }
    match value {
        "true" | "false" => vec![value.to_owned()],
        v if v.chars().all(|c| c.is_ascii_digit()) => vec![v.to_owned()],
        v => vec![string(name, v)],
    }
}

fn string(name: &str, item: &str) -> String {
    let inner = item
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{name} = {item}: not a literal this test can render"));
    assert!(
        !inner.contains("${") && !inner.contains('\\') && !inner.contains('"'),
        "{name} = {item}: not a plain string"
    );
    inner.to_owned()
}

/// The `default = …;` of `services.osiris.<option>`.
fn option_default(module: &str, option: &str) -> String {
    let at = module
        .find(&format!("    {option} = lib.mkOption {{"))
        .unwrap_or_else(|| panic!("option {option}"));
    let decl = &module[at..];
    let decl = &decl[..decl.find("\n    };").unwrap()];
    let default = decl.find("default = ").unwrap() + "default = ".len();
    decl[default..decl[default..].find(';').unwrap() + default].to_owned()
}

// ------------------------------------------------------------------ the container

/// A Debian container (the lab's cached systemd rootfs under an overlay) booted by
/// `systemd-nspawn`, with osirisd's unit installed and enabled.
struct Container {
    nspawn: Child,
    overlay: PathBuf,
    _work: tempfile::TempDir,
}

impl Container {
    fn boot(unit: &str, config: &str) -> Container {
        let rootfs = run(Command::new(repo().join("vm-tests/lab/nspawn-rootfs")).arg("path"));
        let work = tempfile::tempdir().unwrap();
        let (upper, scratch, overlay) = (
            work.path().join("upper"),
            work.path().join("work"),
            work.path().join("merged"),
        );
        for dir in [&upper, &scratch, &overlay] {
            std::fs::create_dir(dir).unwrap();
        }
        run(Command::new("mount").args([
            "-t",
            "overlay",
            "osiris-unit-test",
            "-o",
            &format!(
                "lowerdir={},upperdir={},workdir={}",
                rootfs.trim(),
                upper.display(),
                scratch.display()
            ),
            overlay.to_str().unwrap(),
        ]));
        let at = |path: &str| overlay.join(path.trim_start_matches('/'));
        run(Command::new("chroot").args([
            overlay.to_str().unwrap(),
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "osiris",
        ]));
        std::fs::create_dir_all(at("/etc/osiris")).unwrap();
        std::fs::create_dir_all(at("/media")).unwrap();
        std::fs::write(at("/etc/osiris/appliance.toml"), config).unwrap();
        std::fs::write(at("/etc/systemd/system/osirisd.service"), unit).unwrap();
        std::os::unix::fs::symlink(
            "/etc/systemd/system/osirisd.service",
            at("/etc/systemd/system/multi-user.target.wants/osirisd.service"),
        )
        .unwrap();
        // No SSH in this container (the rootfs serves the lab's SSH targets).
        std::os::unix::fs::symlink("/dev/null", at("/etc/systemd/system/ssh.service")).unwrap();
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_osirisd"));
        let nspawn = Command::new("systemd-nspawn")
            .args([
                "-q",
                "-D",
                overlay.to_str().unwrap(),
                "--boot",
                "--private-network",
            ])
            .args(["--register=no", "--keep-unit", "--console=passive"])
            .arg(format!("--bind-ro={}:/opt/osiris/osirisd", bin.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Container {
            nspawn,
            overlay,
            _work: work,
        }
    }

    /// The container's PID 1, as this (host) PID namespace numbers it.
    fn init(&self) -> u32 {
        let children = format!("/proc/{0}/task/{0}/children", self.nspawn.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(pid) = std::fs::read_to_string(&children)
                .ok()
                .and_then(|c| c.split_whitespace().next().map(|p| p.parse().unwrap()))
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "the container did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's number for the container's process `inner`.
    fn host_pid(&self, inner: u32) -> u32 {
        let namespace = std::fs::read_link(format!("/proc/{}/ns/pid", self.init())).unwrap();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                    .ok()
                    .as_ref()
                    == Some(&namespace)
                    && std::fs::read_to_string(format!("/proc/{pid}/status"))
                        .ok()
                        .and_then(|s| {
                            let line = s.lines().find(|l| l.starts_with("NSpid:"))?.to_owned();
                            line.split_whitespace().last()?.parse::<u32>().ok()
                        })
                        == Some(inner)
            })
            .unwrap_or_else(|| panic!("no host process for the container's PID {inner}"))
    }

    /// A path inside the container, seen from the host through its PID 1.
    fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.init()))
    }

    /// Runs `script` as root inside the container (its mount, UTS, IPC, network and PID
    /// namespaces).
    fn sh(&self, script: &str) -> String {
        run(Command::new("nsenter")
            .args(["--target", &self.init().to_string()])
            .args(["--mount", "--uts", "--ipc", "--net", "--pid"])
            .args(["sh", "-euc", script]))
    }

    fn journal(&self) -> String {
        self.sh("journalctl --no-pager -o cat -u osirisd.service")
    }

    /// Waits for osirisd's socket to answer, with the journal in the failure.
    fn wait_for_api(&self) -> api::Client {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let client = api::Client::new(self.path("/run/osiris/api.sock"))
                .with_timeout(Duration::from_secs(30));
            if client.status().is_ok() {
                return client;
            }
            if Instant::now() > deadline {
                panic!(
                    "osirisd did not answer within 90 s under its unit:\n{}",
                    self.journal()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM asks the container to power off; it is killed if it takes too long.
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.nspawn.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        let _ = Command::new("umount").arg(&self.overlay).status();
    }
}

// ------------------------------------------------------------------ the test

const STICK: &str = "/media/usb-sdb1";

/// The mount options the shipped udev rule gives `systemd-mount` for a stick.
fn shipped_stick_options() -> Vec<String> {
    let module = std::fs::read_to_string(repo().join("nixos/osiris.nix")).unwrap();
    let rule = module
        .lines()
        .find(|l| l.contains("systemd-mount"))
        .expect("the udev rule for sticks");
    let options = rule.split("--options=").nth(1).unwrap();
    let options = options.split_whitespace().next().unwrap();
    options.split(',').map(str::to_owned).collect()
}

/// The mount entry for `path` in the mount namespace of process `pid`: (options, superblock options).
fn mount_in(pid: u32, path: &str) -> Option<(String, String)> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields[4] == path).then(|| {
            let dash = fields.iter().position(|f| *f == "-").unwrap();
            (fields[5].to_owned(), fields[dash + 3].to_owned())
        })
    })
}

#[test]
fn a_usb_stick_takes_a_kit_through_the_shipped_sandbox_and_nothing_else_does() {
    if !test_support::require_root(
        "a_usb_stick_takes_a_kit_through_the_shipped_sandbox_and_nothing_else_does",
        &["systemd-nspawn", "debootstrap", "nsenter", "mount"],
    ) {
        return;
    }
    let service = shipped_service_lines("/opt/osiris/osirisd");
    for directive in [
        "ProtectSystem=strict",
        "ReadWritePaths=-/media",
        "PrivateDevices=true",
        "User=osiris",
        "Type=notify",
        "WatchdogSec=60",
    ] {
        assert!(
            service.iter().any(|l| l == directive),
            "{directive}: {service:#?}"
        );
    }
    let unit = format!(
        "[Unit]\nDescription=OsirisCare compliance daemon\n\n[Service]\n{}\n\n[Install]\nWantedBy=multi-user.target\n",
        service.join("\n")
    );
    let config = "site = \"sandboxed\"\ndata_dir = \"/var/lib/osiris\"\ntarget = []\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"/run/osiris/api.sock\"\n";
    let container = Container::boot(&unit, config);
    let client = container.wait_for_api();
    let export = |dest: &str| {
        container.wait_for_api().call(
            &api::endpoint::Export,
            &api::ExportRequest {
                dest_dir: dest.to_owned(),
            },
        )
    };
    let daemon_pid = || {
        container.host_pid(
            container
                .sh("systemctl show -P MainPID osirisd.service")
                .trim()
                .parse()
                .unwrap(),
        )
    };

    // Every directive was understood (a mistyped or unknown one only warns, when the unit is
    // loaded: loaded again here, with the journal running to record it).
    let journal = container.sh("systemctl daemon-reload && journalctl --no-pager -o cat -b");
    // systemd names the file and line of every directive it could not use.
    let complaints: Vec<&str> = journal
        .lines()
        .filter(|l| l.starts_with("/etc/systemd/system/osirisd.service:"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
    assert!(!journal.contains("osirisd.service: Failed"), "{journal}");
    let (root, _) = mount_in(daemon_pid(), "/").unwrap();
    assert!(root.split(',').any(|o| o == "ro"), "/ for osirisd: {root}");

    // Evidence to export: each pause and resume is a bundle.
    for i in 0..5 {
        let request = api::PauseRequest {
            reason: format!("maintenance {i}"),
            by: "test".into(),
        };
        client.call(&api::endpoint::PauseHealing, &request).unwrap();
        client
            .call(&api::endpoint::ResumeHealing, &request)
            .unwrap();
    }
    // The stick, plugged in while the daemon runs: mounted as the rule mounts it (tmpfs for vfat,
    // `mode=0700` for `umask=0077`; ownership and nosuid,nodev,noexec as shipped).
    let options = shipped_stick_options();
    for want in [
        "uid=osiris",
        "gid=osiris",
        "umask=0077",
        "nosuid",
        "nodev",
        "noexec",
    ] {
        assert!(options.iter().any(|o| o == want), "{want}: {options:?}");
    }
    let tmpfs_options: Vec<String> = options
        .iter()
        .map(|o| match o.as_str() {
            "uid=osiris" => "uid=$(id -u osiris)".to_owned(),
            "gid=osiris" => "gid=$(id -g osiris)".to_owned(),
            "umask=0077" => "mode=0700".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    container.sh(&format!(
        "mkdir -p {STICK} && mount -t tmpfs -o \"{},size=64m\" auditor {STICK}",
        tmpfs_options.join(",")
    ));
    // The mount reached the daemon's namespace, writable, with the stick's options.
    let (stick_mount, _) = mount_in(daemon_pid(), STICK).expect("the stick in osirisd's namespace");
    for want in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(
            stick_mount.split(',').any(|o| o == want),
            "{want}: {stick_mount}"
        );
    }

    let kit = export(STICK).unwrap();
    assert_eq!(kit.bundles, 10);
    assert!(
        kit.path
            .starts_with(&format!("{STICK}/osiris-evidence-sandboxed-")),
        "{}",
        kit.path
    );
    let listing = container.sh(&format!("stat -c '%U %a %n' {STICK}/*"));
    assert_eq!(
        listing.lines().count(),
        1,
        "only the finished kit: {listing}"
    );
    assert!(listing.starts_with("osiris 700 "), "{listing}");
    // A copy for the auditor's laptop, verified below once the daemon has stopped.
    let copy = tempfile::tempdir().unwrap();
    run(Command::new("cp")
        .arg("-a")
        .arg(container.path(&kit.path))
        .arg(copy.path()));
    let copied = copy.path().join(Path::new(&kit.path).file_name().unwrap());

    // osirisd restarted while the stick is in (an update, a crash): systemd builds its namespace
    // again, now with the stick already mounted, and the stick must stay writable for it.
    let before = daemon_pid();
    container.sh("systemctl restart osirisd.service");
    assert_ne!(daemon_pid(), before);
    let (stick_mount, _) = mount_in(daemon_pid(), STICK).expect("the stick after the restart");
    assert!(stick_mount.split(',').any(|o| o == "rw"), "{stick_mount}");
    let again = export(STICK).unwrap();
    assert_ne!(again.path, kit.path);
    assert_eq!(container.sh(&format!("ls {STICK} | wc -l")).trim(), "2");

    // The attacks: the data directory, /etc, /media itself (the system disk), a link planted
    // below /media towards the data directory. Each refused, nothing written anywhere.
    container.sh("ln -s /var/lib/osiris /media/usb-link");
    for dest in ["/var/lib/osiris", "/etc", "/media", "/media/usb-link"] {
        let err = export(dest).unwrap_err();
        assert!(err.to_string().contains(dest), "{dest}: {err}");
    }
    let stray = container.sh(
        "find /var/lib/osiris /etc /media -maxdepth 2 -name 'osiris-evidence-*' -not -path '/media/usb-sdb1/*' | tr '\\n' ' '",
    );
    assert!(
        stray.trim().is_empty(),
        "written despite the refusal: {stray}"
    );

    // Pulling the stick: the daemon no longer sees it, and the empty mount point is refused.
    container.sh(&format!("umount {STICK}"));
    assert!(
        mount_in(daemon_pid(), STICK).is_none(),
        "still mounted for osirisd"
    );
    let err = export(STICK).unwrap_err();
    assert!(err.to_string().contains("not a mounted USB stick"), "{err}");
    assert_eq!(container.sh(&format!("ls -A {STICK} | wc -l")).trim(), "0");

    // The kit verifies against the appliance key, pinned from its data directory (read once the
    // daemon, stopped by systemd as on shutdown, has let go of it).
    container.sh("systemctl stop osirisd.service");
    run(Command::new("cp")
        .arg("-a")
        .arg(container.path("/var/lib/osiris"))
        .arg(copy.path().join("data")));
    let data = copy.path().join("data");
    let show = run(Command::new(osiris_bin()).args([
        "evidence",
        "show",
        "--data-dir",
        data.to_str().unwrap(),
    ]));
    let key = show
        .lines()
        .find_map(|line| line.strip_prefix("key").map(|k| k.trim().to_owned()))
        .unwrap();
    let verified = run(Command::new(osiris_bin()).args([
        "evidence",
        "verify",
        copied.to_str().unwrap(),
        "--key",
        &key,
    ]));
    assert!(verified.contains("verifies"), "{verified}");
}
