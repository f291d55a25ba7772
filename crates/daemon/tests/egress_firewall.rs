//! The appliance's egress firewall (nixos/hardening.nix, issue 14 finding 9: DNS and NTP to any
//! host), as NixOS renders it: `tests/data/osiris-egress.nft` is the rule set scripts/nix-check
//! evaluates from the module for a test site and keeps identical to the module. Here it is loaded
//! into a network namespace standing for the appliance, wired to a second one standing for the
//! LAN and the internet, and packets are sent through it as the daemon's user and as
//! systemd-timesyncd's: each must arrive, or not, as the rule set promises. The same packets are
//! first sent without the firewall and must all arrive, so every "dropped" below is its doing.
//! Needs root (namespaces, nftables); without root it says so loudly and does nothing.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::Command;

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two namespaces joined by a veth pair; deleted (with the pair) on drop.
struct Wire {
    app: String,
    world: String,
}

impl Wire {
    fn new() -> Wire {
        let id = std::process::id();
        let wire = Wire {
            app: format!("osiris-egress-app-{id}"),
            world: format!("osiris-egress-world-{id}"),
        };
        let (a, w) = (format!("oeg{id}a"), format!("oeg{id}w"));
        ip(&["netns", "add", &wire.app]);
        ip(&["netns", "add", &wire.world]);
        // No duplicate address detection: link-local addresses usable at once, so neighbour
        // discovery does not hold the first IPv6 packets back.
        for ns in [&wire.app, &wire.world] {
            run(Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw"])
                .args([
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ]));
        }
        ip(&[
            "link",
            "add",
            &a,
            "netns",
            &wire.app,
            "type",
            "veth",
            "peer",
            "name",
            &w,
            "netns",
            &wire.world,
        ]);
        // The appliance: on the site LAN, routed through a gateway to everything else.
        for args in [
            vec!["addr", "add", "10.77.0.2/24", "dev", &a],
            vec!["addr", "add", "fd77::2/64", "dev", &a, "nodad"],
            vec!["link", "set", "lo", "up"],
            vec!["link", "set", &a, "up"],
            vec!["route", "add", "default", "via", "10.77.0.1"],
            vec!["-6", "route", "add", "default", "via", "fd77::1"],
        ] {
            ip(&[&["-n", wire.app.as_str()], args.as_slice()].concat());
        }
        // The other side holds the gateway, LAN hosts and every outside address the cases use.
        let mut world: Vec<Vec<String>> = vec![
            ["addr", "add", "10.77.0.1/24", "dev", &w]
                .map(str::to_owned)
                .to_vec(),
            ["addr", "add", "fd77::1/64", "dev", &w, "nodad"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for host in OUTSIDE {
            let (prefix, dad) = match host.contains(':') {
                true => ("/128", "nodad"),
                false => ("/32", ""),
            };
            let mut args = ["addr", "add", &format!("{host}{prefix}"), "dev", &w]
                .map(str::to_owned)
                .to_vec();
            if !dad.is_empty() {
                args.push(dad.to_owned());
            }
            world.push(args);
        }
        world.push(["link", "set", &w, "up"].map(str::to_owned).to_vec());
        for args in world {
            run(Command::new("ip").args(["-n", &wire.world]).args(args));
        }
        // Every TCP or UDP packet reaching the far side is counted.
        wire.nft(
            &wire.world,
            "table inet seen {\n  counter arrived { }\n  chain pre {\n    type filter hook prerouting priority -300; policy accept;\n    meta l4proto { tcp, udp } counter name \"arrived\"\n  }\n}\n",
        );
        wire
    }

    fn nft(&self, ns: &str, rules: &str) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), rules).unwrap();
        run(Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f"])
            .arg(file.path()));
    }

    /// Sends one datagram or connection attempt from the appliance as `uid`; true when it
    /// reached the far side.
    fn arrives(&self, case: &Case, uid: u32) -> bool {
        let target = format!("/dev/{}/{}/{}", case.proto, case.to, case.port);
        let script = match case.proto {
            "udp" => format!("echo probe >{target}"),
            _ => format!("exec 3<>{target}"),
        };
        // The result is in the counter: a refused or dropped attempt fails either way. A SYN the
        // firewall drops would be retried for minutes; one second is plenty for one to pass.
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.app, "timeout", "1", "setpriv"])
            .args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".to_owned(),
            ])
            .args(["bash", "-c", &script])
            .output()
            .unwrap();
        // A packet may still wait for its neighbour entry: look for a while before saying no.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            if self.take_count() > 0 {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The far side's packet count since the last call.
    fn take_count(&self) -> u64 {
        let answer = run(Command::new("ip").args([
            "netns",
            "exec",
            &self.world,
            "nft",
            "reset",
            "counter",
            "inet",
            "seen",
            "arrived",
        ]));
        answer
            .split("packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no counter in {answer:?}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        for ns in [&self.app, &self.world] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Addresses off the site LAN (10.77.0.0/24, fd77::/64) that the cases send to.
const OUTSIDE: [&str; 8] = [
    "192.0.2.53",    // the configured resolver
    "198.51.100.53", // a name server of an attacker's choosing
    "192.0.2.123",   // the configured NTP server
    "203.0.113.123", // another NTP server (a pool address)
    "198.51.100.10", // Central, an allowed endpoint (443)
    "203.0.113.80",  // any other host
    "2001:db8::53",  // an IPv6 name server nobody configured
    "10.77.0.25",    // (on the LAN) the clinic's SMTP relay, an endpoint on 587
];

struct Case {
    who: Who,
    proto: &'static str,
    to: &'static str,
    port: u16,
    arrives: bool,
    why: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    /// Any process but timesyncd: osirisd and whatever might run as it.
    Daemon,
    Timesyncd,
}

const fn case(
    who: Who,
    proto: &'static str,
    to: &'static str,
    port: u16,
    arrives: bool,
    why: &'static str,
) -> Case {
    Case {
        who,
        proto,
        to,
        port,
        arrives,
        why,
    }
}

use Who::{Daemon, Timesyncd};

#[rustfmt::skip]
const CASES: [Case; 17] = [
    case(Daemon, "udp", "192.0.2.53", 53, true, "the configured resolver"),
    case(Daemon, "tcp", "192.0.2.53", 53, true, "the configured resolver over TCP"),
    case(Daemon, "udp", "10.77.0.1", 53, true, "DNS on the site LAN"),
    case(Daemon, "udp", "198.51.100.53", 53, false, "DNS to a server of the attacker's choosing (a tunnel out)"),
    case(Daemon, "tcp", "198.51.100.53", 53, false, "DNS over TCP to that server"),
    case(Daemon, "udp", "2001:db8::53", 53, false, "DNS over IPv6 to an unconfigured server"),
    case(Daemon, "udp", "192.0.2.123", 123, true, "the configured NTP server"),
    case(Daemon, "udp", "203.0.113.123", 123, false, "NTP to any other host, from anyone but timesyncd"),
    case(Timesyncd, "udp", "203.0.113.123", 123, true, "timesyncd to a pool address"),
    case(Timesyncd, "udp", "198.51.100.53", 53, false, "timesyncd's user may not speak DNS anywhere either"),
    case(Daemon, "tcp", "198.51.100.10", 443, true, "Central, a configured endpoint"),
    case(Daemon, "tcp", "198.51.100.10", 80, false, "Central on a port not configured"),
    case(Daemon, "tcp", "203.0.113.80", 443, false, "HTTPS to any other host"),
    case(Daemon, "tcp", "10.77.0.1", 5986, true, "WinRM on the site LAN"),
    case(Daemon, "tcp", "fd77::1", 22, true, "SSH on the site LAN over IPv6"),
    case(Daemon, "tcp", "10.77.0.1", 8080, false, "a LAN port the appliance does not scan"),
    case(Daemon, "tcp", "10.77.0.25", 587, true, "the clinic's SMTP relay, a configured endpoint"),
];

/// The uid an arbitrary process of the appliance runs as (osirisd's own is not fixed on NixOS).
const DAEMON_UID: u32 = 4242;

#[test]
fn the_egress_firewall_lets_out_only_what_it_promises() {
    if !test_support::require_root(
        "the_egress_firewall_lets_out_only_what_it_promises",
        &["ip", "nft", "setpriv", "timeout", "bash"],
    ) {
        return;
    }
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osiris-egress.nft");
    let text = std::fs::read_to_string(&rules).unwrap();
    // timesyncd's uid as the module put it into the rule set.
    let timesyncd: u32 = text
        .split("meta skuid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the timesyncd rule")
        .parse()
        .unwrap();
    assert_ne!(timesyncd, DAEMON_UID);
    let uid = |who: Who| match who {
        Daemon => DAEMON_UID,
        Timesyncd => timesyncd,
    };

    let wire = Wire::new();
    // Neighbour discovery on a fresh link takes a moment: send until the gateway and the LAN
    // hosts answer, so the first cases below do not race it.
    for to in [
        "192.0.2.53",
        "2001:db8::53",
        "10.77.0.1",
        "10.77.0.25",
        "fd77::1",
    ] {
        let probe = case(Daemon, "udp", to, 9, true, "neighbour discovery");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !wire.arrives(&probe, DAEMON_UID) {
            assert!(
                std::time::Instant::now() < deadline,
                "{to} unreachable on the test wire"
            );
        }
    }
    // Without the firewall everything arrives: the wiring is sound.
    for case in &CASES {
        assert!(
            wire.arrives(case, uid(case.who)),
            "without the firewall, {} {}:{} did not arrive",
            case.proto,
            case.to,
            case.port
        );
    }

    run(Command::new("ip")
        .args(["netns", "exec", &wire.app, "nft", "-f"])
        .arg(&rules));
    let wrong: Vec<String> = CASES
        .iter()
        .filter(|case| wire.arrives(case, uid(case.who)) != case.arrives)
        .map(|case| {
            format!(
                "{} {}:{} as uid {} {} ({})",
                case.proto,
                case.to,
                case.port,
                uid(case.who),
                if case.arrives {
                    "was dropped"
                } else {
                    "got out"
                },
                case.why
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
