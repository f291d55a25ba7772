//! Release versions (`MAJOR.MINOR.PATCH`, totally ordered) and the agent's platforms.

use std::fmt;
use std::str::FromStr;

/// A release version `MAJOR.MINOR.PATCH`, compared numerically.
///
/// Pre-release and build suffixes are refused: with three numbers only, versions are totally
/// ordered, so "newer" is unambiguous and no separate counter is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible changes.
    pub major: u32,
    /// Features.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

/// A platform an agent build runs on, named as in manifests and matching
/// `agent_proto::v1::Platform` by wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// `linux-x86_64` (`PLATFORM_LINUX_X86_64`, 1): a static Linux build.
    LinuxX86_64,
    /// `windows-x86_64` (`PLATFORM_WINDOWS_X86_64`, 2).
    WindowsX86_64,
}

/// A version string that is not `MAJOR.MINOR.PATCH`.
#[derive(Debug, thiserror::Error)]
#[error("version `{0}` is invalid: use MAJOR.MINOR.PATCH with decimal numbers, e.g. 1.4.2")]
pub struct VersionParseError(String);

/// A platform name that is not one of [`Platform::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("platform `{0}` is unknown: expected linux-x86_64 or windows-x86_64")]
pub struct PlatformParseError(String);

impl Version {
    /// Builds a version from its three numbers.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for Version {
    type Err = VersionParseError;

    fn from_str(text: &str) -> Result<Version, VersionParseError> {
        let fail = || VersionParseError(text.chars().take(64).collect());
        let mut parts = text.split('.');
        let mut next = || -> Result<u32, VersionParseError> {
            let part = parts.next().ok_or_else(fail)?;
            // No sign, no leading zero (so each version has one spelling), at most 9 digits.
            if part.is_empty()
                || part.len() > 9
                || !part.bytes().all(|b| b.is_ascii_digit())
                || (part.len() > 1 && part.starts_with('0'))
            {
                return Err(fail());
            }
            part.parse().map_err(|_| fail())
        };
        let version = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(fail());
        }
        Ok(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Platform {
    /// Every platform.
    pub const ALL: [Platform; 2] = [Platform::LinuxX86_64, Platform::WindowsX86_64];

    /// The manifest name: `linux-x86_64` or `windows-x86_64`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxX86_64 => "linux-x86_64",
            Platform::WindowsX86_64 => "windows-x86_64",
        }
    }

    /// The wire number of `agent_proto::v1::Platform`.
    pub const fn proto_number(self) -> i32 {
        match self {
            Platform::LinuxX86_64 => 1,
            Platform::WindowsX86_64 => 2,
        }
    }

    /// The platform of an `agent_proto::v1::Platform` wire number (`None` for unspecified or unknown).
    pub const fn from_proto_number(number: i32) -> Option<Platform> {
        match number {
            1 => Some(Platform::LinuxX86_64),
            2 => Some(Platform::WindowsX86_64),
            _ => None,
        }
    }

    /// The platform this program was built for, if agents exist for it.
    pub const fn current() -> Option<Platform> {
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            Some(Platform::LinuxX86_64)
        } else if cfg!(all(windows, target_arch = "x86_64")) {
            Some(Platform::WindowsX86_64)
        } else {
            None
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(text: &str) -> Result<Platform, PlatformParseError> {
        Platform::ALL
            .into_iter()
            .find(|platform| platform.as_str() == text)
            .ok_or_else(|| PlatformParseError(text.chars().take(64).collect()))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly_and_compare_numerically() {
        let v = |text: &str| text.parse::<Version>().unwrap();
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("2.0.0") > v("1.99.99"));
        assert_eq!(v("0.1.2").to_string(), "0.1.2");
        for bad in [
            "1.2",
            "1.2.3.4",
            "1.-2.3",
            "v1.2.3",
            "",
            "1..3",
            "1.2.x",
            "01.2.3",
            "1.2.3-rc1",
            "1.2.3+b",
            " 1.2.3",
            "1234567890.0.0",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms_round_trip_names_and_wire_numbers() {
        for platform in Platform::ALL {
            assert_eq!(platform.as_str().parse::<Platform>().unwrap(), platform);
            assert_eq!(
                Platform::from_proto_number(platform.proto_number()),
                Some(platform)
            );
        }
        assert_eq!(Platform::from_proto_number(0), None);
        assert!("linux".parse::<Platform>().is_err());
    }
}
