//! What each native check reads, as data: WMI queries and method calls, registry values and
//! environment variables, each under the name its snapshot entry gets. The Windows side
//! (`collect`) only executes these; `observe` interprets what they returned.

/// One place a check reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `SELECT <properties> FROM <class>` in a WMI namespace; one instance per row, with exactly
    /// the listed properties (a property the class lacks is left out).
    Query {
        namespace: &'static str,
        class: &'static str,
        properties: &'static [&'static str],
    },
    /// A method without input parameters, called on every instance of a class; one instance per
    /// call holding the listed out-parameters plus the instance's `key` property.
    Method {
        namespace: &'static str,
        class: &'static str,
        method: &'static str,
        key: &'static str,
        out: &'static [&'static str],
    },
    /// One value under `HKEY_LOCAL_MACHINE\<key>`: one instance holding it under the source's name when it exists,
    /// none when the key or the value is absent.
    Registry {
        key: &'static str,
        value: &'static str,
    },
    /// An environment variable of the agent's own process: one instance `{name: …}`, or none.
    Environment { name: &'static str },
}

/// A source with the name its reading has in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedSource {
    pub name: &'static str,
    pub source: Source,
}

/// BitLocker's namespace (needs an administrator or SYSTEM, and packet privacy).
pub const BITLOCKER_NAMESPACE: &str = r"root\cimv2\Security\MicrosoftVolumeEncryption";
/// Defender's namespace.
pub const DEFENDER_NAMESPACE: &str = r"root\Microsoft\Windows\Defender";
/// The namespace of the network stack's classes, the firewall's among them.
pub const STANDARD_CIMV2_NAMESPACE: &str = r"root\StandardCimv2";
/// The default namespace.
pub const CIMV2_NAMESPACE: &str = r"root\cimv2";
/// Where the machine inactivity limit lives (under `HKEY_LOCAL_MACHINE`).
pub const SYSTEM_POLICIES_KEY: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System";

/// The sources of one catalogue check, or `None` for a check without a native implementation.
pub fn sources(check_id: &str) -> Option<&'static [NamedSource]> {
    Some(match check_id {
        crate::BITLOCKER => &[
            NamedSource {
                name: "SystemDrive",
                source: Source::Environment {
                    name: "SystemDrive",
                },
            },
            NamedSource {
                name: "Win32_EncryptableVolume",
                source: Source::Query {
                    namespace: BITLOCKER_NAMESPACE,
                    class: "Win32_EncryptableVolume",
                    properties: &["DriveLetter", "ProtectionStatus", "EncryptionMethod"],
                },
            },
            NamedSource {
                name: "Win32_EncryptableVolume.GetConversionStatus",
                source: Source::Method {
                    namespace: BITLOCKER_NAMESPACE,
                    class: "Win32_EncryptableVolume",
                    method: "GetConversionStatus",
                    key: "DriveLetter",
                    out: &["ReturnValue", "ConversionStatus", "EncryptionPercentage"],
                },
            },
        ],
        crate::DEFENDER => &[
            NamedSource {
                name: "MSFT_MpComputerStatus",
                source: Source::Query {
                    namespace: DEFENDER_NAMESPACE,
                    class: "MSFT_MpComputerStatus",
                    properties: &[
                        "AMServiceEnabled",
                        "AntivirusEnabled",
                        "RealTimeProtectionEnabled",
                        "AMRunningMode",
                        "AMEngineVersion",
                        "AntivirusSignatureVersion",
                        "AntivirusSignatureAge",
                        "AntivirusSignatureLastUpdated",
                    ],
                },
            },
            NamedSource {
                name: "MSFT_MpPreference",
                source: Source::Query {
                    namespace: DEFENDER_NAMESPACE,
                    class: "MSFT_MpPreference",
                    properties: &[
                        "DisableRealtimeMonitoring",
                        "MAPSReporting",
                        "SubmitSamplesConsent",
                    ],
                },
            },
        ],
        crate::FIREWALL => &[NamedSource {
            name: "MSFT_NetFirewallProfile",
            source: Source::Query {
                namespace: STANDARD_CIMV2_NAMESPACE,
                class: "MSFT_NetFirewallProfile",
                properties: &["Name", "Enabled", "DefaultInboundAction"],
            },
        }],
        crate::SCREEN_LOCK => &[NamedSource {
            name: "InactivityTimeoutSecs",
            source: Source::Registry {
                key: SYSTEM_POLICIES_KEY,
                value: "InactivityTimeoutSecs",
            },
        }],
        crate::PATCHES => &[NamedSource {
            name: "Win32_QuickFixEngineering",
            source: Source::Query {
                namespace: CIMV2_NAMESPACE,
                class: "Win32_QuickFixEngineering",
                properties: &["HotFixID", "InstalledOn"],
            },
        }],
        _ => return None,
    })
}

impl Source {
    /// Where the source is, in words, for reasons and facts.
    pub fn describe(&self) -> String {
        match self {
            Source::Query {
                namespace, class, ..
            } => format!(r"WMI {namespace}\{class}"),
            Source::Method {
                namespace,
                class,
                method,
                ..
            } => format!(r"WMI {namespace}\{class}.{method}()"),
            Source::Registry { key, value } => format!(r"registry HKLM\{key}\{value}"),
            Source::Environment { name } => format!("environment variable {name}"),
        }
    }
}
