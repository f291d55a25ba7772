//! The API's socket and who may use it: the socket file's mode (0600, or 0660 with the
//! configured group) is the first gate; every connection's peer credentials (SO_PEERCRED) are
//! checked again before it is served. Group ids come from `/etc/group`, a peer's supplementary
//! groups from `/proc/PID/status`.

use tokio::net::{UnixListener, UnixStream};

/// The bound socket and who may use it.
pub(crate) struct Listener {
    inner: UnixListener,
    allowed_gid: Option<u32>,
    own_uid: u32,
}

/// Binds the socket: refuses if another daemon answers on it, replaces a stale file, sets the
/// mode and group before the first connection can be accepted.
pub(crate) fn bind(cfg: &config::DaemonConfig) -> anyhow::Result<Listener> {
    use std::os::unix::fs::PermissionsExt;
    let path = &cfg.socket;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| {
            anyhow::Error::new(err).context(format!(
                "cannot create the socket directory {}",
                dir.display()
            ))
        })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another osirisd is already answering on {}; stop it first",
                path.display()
            );
        }
        std::fs::remove_file(path).map_err(|err| {
            anyhow::Error::new(err).context(format!(
                "cannot replace the stale socket {}",
                path.display()
            ))
        })?;
    }
    let gid = match &cfg.socket_group {
        Some(group) => Some(group_id(group).ok_or_else(|| {
            ops::BadConfig(format!(
                "daemon.socket_group `{group}` does not exist on this system; create it or remove the setting"
            ))
        })?),
        None => None,
    };
    // Tighten the mode right after bind, before accepting (connections queue in the backlog but
    // are only served after the check below).
    let inner = UnixListener::bind(path).map_err(|err| {
        anyhow::Error::new(err).context(format!("cannot listen on {}", path.display()))
    })?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|err| {
        anyhow::Error::new(err).context(format!("cannot set the mode of {}", path.display()))
    })?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|err| {
            anyhow::Error::new(err)
                .context(format!("cannot give {} to group {gid}", path.display()))
        })?;
    }
    Ok(Listener {
        inner,
        allowed_gid: gid,
        own_uid: rustix::process::geteuid().as_raw(),
    })
}

impl Listener {
    /// The next permitted connection and its peer's credentials (refused peers are logged and
    /// dropped here).
    pub(crate) async fn accept(&mut self) -> (UnixStream, evidence_schema::PeerCredentials) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => match stream.peer_cred() {
                    Ok(cred) if self.permits(cred.uid(), cred.gid(), cred.pid()) => {
                        let peer = evidence_schema::PeerCredentials {
                            uid: cred.uid(),
                            gid: cred.gid(),
                            pid: cred.pid(),
                            user: user_name(cred.uid()),
                        };
                        return (stream, peer);
                    }
                    Ok(cred) => {
                        tracing::warn!(uid = cred.uid(), gid = cred.gid(), pid = ?cred.pid(), "Refused a local API connection from a user outside root and the osiris group.");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "Refused a local API connection without peer credentials.")
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, "Accepting a local API connection failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn permits(&self, uid: u32, gid: u32, pid: Option<i32>) -> bool {
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some(allowed) = self.allowed_gid else {
            return false;
        };
        // Reading /proc is a memory read of kernel state, not disk IO.
        gid == allowed || pid.is_some_and(|pid| supplementary_groups(pid).contains(&allowed))
    }
}

/// A user's name, from /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    user_name_in(&text, uid)
}

fn user_name_in(etc_passwd: &str, uid: u32) -> Option<String> {
    etc_passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

/// The numeric id of a group, from /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    group_id_in(&text, name)
}

fn group_id_in(etc_group: &str, name: &str) -> Option<u32> {
    etc_group.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// The supplementary groups of a process, from /proc/PID/status.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|text| groups_in(&text))
        .unwrap_or_default()
}

fn groups_in(proc_status: &str) -> Vec<u32> {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_the_daemon_user_and_the_group_are_let_in() {
        let listener = |gid| Listener {
            inner: {
                let dir = tempfile::tempdir().unwrap();
                let std = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
                std.set_nonblocking(true).unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let _guard = rt.enter();
                UnixListener::from_std(std).unwrap()
            },
            allowed_gid: gid,
            own_uid: 990,
        };
        let no_group = listener(None);
        assert!(no_group.permits(0, 0, None));
        assert!(no_group.permits(990, 5, None));
        assert!(!no_group.permits(1000, 1000, None));
        let group = listener(Some(777));
        assert!(group.permits(1000, 777, None));
        assert!(
            !group.permits(1000, 1000, None),
            "pid unknown: supplementary groups cannot be read"
        );
    }

    #[test]
    fn reads_group_ids_and_supplementary_groups() {
        let etc_group = "root:x:0:\nosiris:x:977:alice,bob\nosiris-admin:x:978:\n";
        assert_eq!(group_id_in(etc_group, "osiris"), Some(977));
        assert_eq!(group_id_in(etc_group, "osiri"), None);
        let status = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 977 \nNgid:\t0\n";
        assert_eq!(groups_in(status), vec![4, 24, 977]);
        assert!(groups_in("Name:\tbash\n").is_empty());
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name_in(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name_in(passwd, 1001), None);
    }
}
