//! Signed atomic appliance updates: verify a vendor-signed manifest, fetch and verify the NixOS
//! system closure from a binary cache, stage it as the next boot entry with boot counting (with Secure Boot: the release's signed UKI as a
//! type #2 entry), gate
//! it on health after the reboot, and mark it good or roll back. Every step comes back as an
//! [`UpdateRecord`] for the caller to append to the evidence log; this crate writes no evidence.
//! It also owns what `osiris update` and `osirisd` share: the settings file ([`UpdateConfig`]),
//! the health gate over the daemon's API ([`DaemonGate`]), the queue of records waiting for the
//! daemon to seal them ([`enqueue`], [`take_pending`]) and the persisted phase ([`read_phase`]).

mod boot;
mod closure;
mod gate;
mod queue;
mod settings;
mod state;

pub use boot::{
    BootEntry, BootError, BootLoader, Counter, ENTRY_PREFIX, EntrySpec, LOADER_GUID, SystemdBoot,
    UKI_PREFIX, UkiSource,
};
pub use closure::{
    Cache, ClosureError, ImportError, MAX_CLOSURE_PATHS, MAX_NARINFO_BYTES, VerifiedClosure,
    VerifiedPath, fetch_and_verify, fetch_manifest,
};
pub use gate::DaemonGate;
pub use queue::{
    OFFERED_MANIFEST, PENDING_FILE, Pending, QueueError, enqueue, offered_manifest_url, spool_dir,
    take_pending,
};
pub use settings::{UpdateConfig, UpdateConfigError};
pub use state::{
    GateDecision, HealthGate, Importer, KIND_UPDATE, Phase, Policy, Probe, STATE_FILE, Step,
    UpdateError, UpdateRecord, Updater, read_phase,
};
pub use update_manifest::{
    KeyParseError, MANIFEST_SCHEMA_V1, MANIFEST_SIGNING_CONTEXT, Manifest, ManifestError,
    SignedManifest, Uki, VendorKey, Version, VersionParseError, check_secure_boot,
};
