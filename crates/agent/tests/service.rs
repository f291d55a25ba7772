//! `osiris-agent install` / `uninstall` on Linux: the unit text (a snapshot, and systemd's own
//! `systemd-analyze verify` on it), and the refusals that need no running systemd. Installing
//! for real needs systemd as PID 1, which the test machine does not run; the lab's VM tests do.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;

use common::{AgentProcess, RunningGateway, TEST_CHECKS, ToyGateway, config};
use expect_test::expect;

#[test]
fn the_unit_is_hardened_and_says_why_for_each_relaxation() {
    let unit = agent::platform::systemd_unit(
        Path::new("/usr/local/bin/osiris-agent"),
        Path::new("/var/lib/osiris-agent"),
    )
    .unwrap();
    expect![[r#"
        # Written by `osiris-agent install`; `osiris-agent uninstall` removes it.
        [Unit]
        Description=OsirisCare endpoint agent
        Wants=network-online.target
        After=network-online.target

        [Service]
        Type=exec
        ExecStart=/usr/local/bin/osiris-agent run --state-dir /var/lib/osiris-agent
        Restart=always
        # Exit 75 after an update is installed: the new version starts.
        RestartSec=10s
        # 78 (EX_CONFIG): not enrolled or unreadable state, which a restart does not mend.
        RestartPreventExitStatus=78
        TimeoutStopSec=30s
        # A check still running at stop is ended with the agent.
        KillMode=control-group
        # A workstation's user comes first.
        Nice=10
        CPUWeight=20
        IOWeight=20

        # Root, because the checks read /etc/shadow, sshd's effective settings, netfilter and every
        # process's sockets, and remediations rewrite files under /etc and restart services.
        StateDirectory=osiris-agent
        StateDirectoryMode=0700
        UMask=0077
        NoNewPrivileges=yes
        ProtectSystem=strict
        # What the catalogue's remediations and rollbacks write (/etc, their backups under
        # /var/backups, the journal's directory, set-user-ID bits in the temporary directories);
        # /usr, /boot and the rest stay read-only, so a remediation that would change them fails
        # and says so.
        ReadWritePaths=-/etc -/var/backups -/var/log -/tmp -/var/tmp
        # The executable's directory: a verified update replaces the binary there (swap and rollback).
        ReadWritePaths=/usr/local/bin
        ProtectHome=read-only
        # Not PrivateTmp, PrivateDevices or ProtectProc: checks must see the real /tmp, /dev/shm
        # and every process, or a check would pass on a private empty copy.
        # Not ProtectKernelTunables: LIN-KERN-001's remediation sets sysctl values.
        ProtectKernelModules=yes
        ProtectKernelLogs=yes
        ProtectControlGroups=yes
        ProtectClock=yes
        ProtectHostname=yes
        LockPersonality=yes
        MemoryDenyWriteExecute=yes
        RestrictRealtime=yes
        RestrictNamespaces=yes
        # Netlink: `ss` and `nft` read and set sockets and the firewall through it.
        RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
        SystemCallArchitectures=native
        SystemCallFilter=@system-service
        SystemCallErrorNumber=EPERM
        CapabilityBoundingSet=~CAP_SYS_MODULE CAP_SYS_BOOT CAP_SYS_RAWIO CAP_MKNOD CAP_SYS_TIME CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_LINUX_IMMUTABLE CAP_MAC_ADMIN CAP_MAC_OVERRIDE CAP_SYSLOG CAP_BPF CAP_PERFMON CAP_SYS_PACCT CAP_LEASE CAP_SYS_TTY_CONFIG

        [Install]
        WantedBy=multi-user.target
    "#]].assert_eq(&unit);
}

#[test]
fn another_state_directory_is_named_writable_and_odd_paths_are_refused() {
    let unit = agent::platform::systemd_unit(
        Path::new("/opt/osiris/osiris-agent"),
        Path::new("/srv/osiris-agent"),
    )
    .unwrap();
    assert!(
        unit.contains("ExecStart=/opt/osiris/osiris-agent run --state-dir /srv/osiris-agent\n")
    );
    assert!(unit.contains("ReadWritePaths=/srv/osiris-agent\n"));
    assert!(!unit.contains("StateDirectory="));
    for (exe, state, problem) in [
        (
            "/opt/my agent/osiris-agent",
            "/var/lib/osiris-agent",
            "holds ' '",
        ),
        ("/usr/local/bin/osiris-agent", "/var/lib/100%", "holds '%'"),
        (
            "osiris-agent",
            "/var/lib/osiris-agent",
            "is not an absolute path",
        ),
    ] {
        let err = agent::platform::systemd_unit(Path::new(exe), Path::new(state)).unwrap_err();
        assert!(err.to_string().contains(problem), "{exe} {state}: {err}");
    }
}

#[test]
fn systemd_accepts_the_unit_without_a_warning() {
    if !test_support::require_root(
        "systemd_accepts_the_unit_without_a_warning",
        &["systemd-analyze"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osiris-agent.service");
    let unit = agent::platform::systemd_unit(
        Path::new(env!("CARGO_BIN_EXE_osiris-agent")),
        Path::new("/var/lib/osiris-agent"),
    )
    .unwrap();
    std::fs::write(&path, unit).unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    assert_eq!(stderr, "", "systemd-analyze warned");
}

#[tokio::test(flavor = "multi_thread")]
async fn install_needs_an_enrollment_and_systemd() {
    let agent = AgentProcess::new();
    let early = agent.command(&["install"], "").await;
    assert_eq!(early.status.code(), Some(1), "{early:?}");
    assert!(
        early.stderr.contains("this machine is not enrolled"),
        "{}",
        early.stderr
    );
    // Only where installing would not touch the machine running the tests.
    if Path::new("/run/systemd/system").exists()
        || Path::new("/etc/systemd/system/osiris-agent.service").exists()
    {
        eprintln!("systemd runs here: `install` and `uninstall` are not tried");
        return;
    }
    let gateway =
        RunningGateway::start(ToyGateway::new(&["tok-1"], config(1, &TEST_CHECKS)), 0).await;
    agent.enroll_ok(&gateway, "tok-1").await;
    let install = agent.command(&["install"], "").await;
    assert_eq!(install.status.code(), Some(1), "{install:?}");
    assert!(
        install
            .stderr
            .contains("systemd is not running on this machine"),
        "{}",
        install.stderr
    );
    let uninstall = agent.command(&["uninstall"], "").await;
    assert_eq!(uninstall.status.code(), Some(1), "{uninstall:?}");
    assert!(
        uninstall.stderr.contains("the service is not installed"),
        "{}",
        uninstall.stderr
    );
}
