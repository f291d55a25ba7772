//! The appliance box itself: disk, memory, uptime and network interfaces, read from the kernel
//! (`statvfs`, `/proc`) and `ip -json` (iproute2).

use std::path::Path;

/// Disk, memory and uptime; fields that cannot be read are 0. `addresses` are the appliance's
/// own (the caller caches them: listing interfaces runs a program).
pub(crate) fn health(data_dir: &Path, addresses: Vec<String>) -> api::ApplianceHealth {
    let (disk_free_bytes, disk_total_bytes) = rustix::fs::statvfs(data_dir)
        .map(|s| (s.f_bavail * s.f_frsize, s.f_blocks * s.f_frsize))
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let uptime_secs = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|text| text.split('.').next()?.parse().ok())
        .unwrap_or_default();
    api::ApplianceHealth {
        uptime_secs,
        disk_free_bytes,
        disk_total_bytes,
        mem_total_bytes: meminfo_kib(&meminfo, "MemTotal") * 1024,
        mem_available_bytes: meminfo_kib(&meminfo, "MemAvailable") * 1024,
        addresses,
        support_code: String::new(),
        update: api::UpdateState::default(),
    }
}

/// The appliance's own LAN addresses (not loopback).
pub(crate) fn addresses() -> Vec<String> {
    interfaces()
        .into_iter()
        .filter(|i| i.name != "lo")
        .flat_map(|i| i.addresses)
        .collect()
}

/// The network interfaces and their addresses (empty when `ip` is not available).
pub(crate) fn interfaces() -> Vec<api::Interface> {
    let output = std::process::Command::new("ip")
        .args(["-json", "address", "show"])
        .output();
    match output {
        Ok(out) if out.status.success() => parse_ip_json(&out.stdout),
        _ => Vec::new(),
    }
}

fn meminfo_kib(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_default()
}

/// Reads `ip -json address show` output.
fn parse_ip_json(bytes: &[u8]) -> Vec<api::Interface> {
    #[derive(serde::Deserialize)]
    struct Link {
        ifname: String,
        #[serde(default)]
        address: Option<String>,
        #[serde(default)]
        operstate: Option<String>,
        #[serde(default)]
        flags: Vec<String>,
        #[serde(default)]
        addr_info: Vec<Addr>,
    }
    #[derive(serde::Deserialize)]
    struct Addr {
        local: String,
        prefixlen: u8,
        #[serde(default)]
        scope: Option<String>,
    }
    let links: Vec<Link> = serde_json::from_slice(bytes).unwrap_or_default();
    links
        .into_iter()
        .map(|link| api::Interface {
            up: link.operstate.as_deref() == Some("UP")
                || link.flags.iter().any(|f| f == "LOWER_UP"),
            mac: link.address.filter(|m| m != "00:00:00:00:00:00"),
            addresses: link
                .addr_info
                .into_iter()
                .filter(|a| a.scope.as_deref() != Some("link"))
                .map(|a| format!("{}/{}", a.local, a.prefixlen))
                .collect(),
            name: link.ifname,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iproute2_json() {
        let json = br#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
          {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","UP","LOWER_UP"],"operstate":"UP","address":"52:54:00:12:34:56","addr_info":[{"family":"inet","local":"10.77.0.1","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;
        let interfaces = parse_ip_json(json);
        assert_eq!(interfaces.len(), 2);
        assert_eq!(interfaces[0].mac, None);
        assert_eq!(interfaces[1].name, "eth0");
        assert!(interfaces[1].up);
        assert_eq!(interfaces[1].addresses, vec!["10.77.0.1/24".to_owned()]);
    }

    #[test]
    fn reads_meminfo() {
        let text = "MemTotal:        8049332 kB\nMemFree:  100 kB\nMemAvailable:    5000000 kB\n";
        assert_eq!(meminfo_kib(text, "MemTotal"), 8_049_332);
        assert_eq!(meminfo_kib(text, "MemAvailable"), 5_000_000);
        assert_eq!(meminfo_kib(text, "Missing"), 0);
    }

    #[test]
    fn health_of_this_machine_is_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let health = health(dir.path(), Vec::new());
        assert!(health.disk_total_bytes >= health.disk_free_bytes);
        assert!(health.disk_total_bytes > 0);
        assert!(health.mem_total_bytes >= health.mem_available_bytes);
        assert!(health.mem_total_bytes > 0);
    }
}
