//! `osiris-agent` on Windows: the five workstation checks read natively (WMI through COM and the
//! registry; no PowerShell process), the Windows service (install with recovery actions,
//! uninstall, run under the service control manager), DPAPI for the device key at rest, the
//! state directory's ACL (`acl`), the device's name and version from the registry (`device`),
//! and PowerShell as a local transport for the catalogue's remediation scripts (`powershell`).
//!
//! Layout: what is read is data (`source`), reading it is Windows-only (`collect` over `wmi` and
//! `registry`), and everything that decides is pure and tested on Linux with snapshots in the
//! form a real host produces (`value` → `observe` → `judge`). A native check observes exactly the
//! fields the catalogue's PowerShell detect script prints, and the catalogue's expectations judge
//! them (`model::evaluate`), so a check means the same whether WinRM or the agent ran it.
//! Anything the agent cannot read with certainty is `error`, never `pass`: under Wine, whose
//! WMI has neither the BitLocker, Defender nor firewall classes, those checks say so.
//!
//! ## Dependencies: measured, then chosen (`x86_64-pc-windows-gnu`, 2 cores, Rust 1.98)
//! Cold build of each crate alone in a scratch program (`--release`, the agent profile's
//! settings; the base program with `serde_json` built in 8.6 s to 266,240 bytes):
//!
//! | crate (features) | cold build | binary growth | used for |
//! |---|---|---|---|
//! | `windows` 0.62 (`Win32_System_Wmi`, `_Com`, `_Ole`, `_Variant`, `_Rpc`, `Win32_Security`) | +9.3 s (the `windows` crate itself 10.3 s of CPU) | +12 KiB | WMI over COM |
//! | `wmi` 0.18 (no default features) | +26.5 s (pulls `windows`, `futures`, `serde` derive, `thiserror`) | +82 KiB | not used |
//! | `windows-service` 0.8 | ≈ 0 s beyond `windows-sys` | +12 KiB | the service |
//! | `windows-sys` 0.61 (`Cryptography`, `Registry`) | ≈ 0 s (already built for `windows-service`) | +3.5 KiB | DPAPI, registry |
//!
//! `wmi` would only save the COM plumbing in `wmi.rs` (about 200 lines) at twice the build time
//! and seven times the size, so the `windows` crate is called directly; `windows-sys` (no COM
//! interfaces) serves everything that is a plain function. In the agent itself the whole of this
//! crate adds the figures in docs/AGENT-WINDOWS.md (exe size and cross-build time).
//!
//! **Architecture Invariant:** knows nothing of the appliance, gRPC, enrollment, the offline
//! queue, the evidence format or `scan`; never starts PowerShell or any other process to check
//! (only `powershell` starts one, for the scripts the agent's remediation hands it); decides
//! nothing itself that the catalogue's expectations decide.

pub mod device;
mod judge;
pub mod observe;
pub mod source;
mod value;

#[cfg(windows)]
#[allow(
    unsafe_code,
    reason = "security descriptors are a C API; every call is commented"
)]
pub mod acl;
#[cfg(windows)]
mod collect;
#[cfg(windows)]
#[allow(unsafe_code, reason = "DPAPI is a C API; every call is commented")]
pub mod dpapi;
#[cfg(windows)]
#[allow(
    unsafe_code,
    reason = "job objects are a C API; every call is commented"
)]
pub mod powershell;
#[cfg(windows)]
#[allow(
    unsafe_code,
    reason = "the registry is a C API; every call is commented"
)]
mod registry;
#[cfg(windows)]
pub mod service;
#[cfg(windows)]
#[allow(unsafe_code, reason = "WMI is COM; every call is commented")]
mod wmi;

pub use judge::{MAX_FACT_BYTES, MAX_FACTS, NativeResult, Status, error_result, facts, judge};
pub use value::{
    Instance, Snapshot, SnapshotError, SourceError, Value, code_name, snapshot_from_json,
    snapshot_to_json,
};

/// BitLocker on the system drive.
pub const BITLOCKER: &str = "WIN-WSBL-001";
/// Defender running with real-time protection and recent signatures.
pub const DEFENDER: &str = "WIN-WSDEF-001";
/// Every firewall profile on, blocking inbound by default.
pub const FIREWALL: &str = "WIN-WSFW-001";
/// The session locks after inactivity.
pub const SCREEN_LOCK: &str = "WIN-WSLOCK-001";
/// Recent updates.
pub const PATCHES: &str = "WIN-WSPATCH-001";
/// The catalogue checks this crate implements natively, in catalogue order.
pub const CHECK_IDS: [&str; 5] = [BITLOCKER, DEFENDER, FIREWALL, SCREEN_LOCK, PATCHES];

#[cfg(windows)]
pub use collect::{check, read_snapshot};
