//! The agent's state directory's access control on Windows: owned by Administrators, and only
//! SYSTEM and Administrators may open it or anything in it (a protected DACL, inherited by
//! every file and directory created inside). What `0700`/`0600` modes do on Unix.
//!
//! `%ProgramData%` lets every user read what is created in it and create folders there, so
//! without this the TLS key, the sealed device key and the queue would be readable by every
//! local user. The DACL is protected (nothing is inherited from `%ProgramData%`), and the owner
//! is set to Administrators, so a user who created the directory in advance keeps no owner's
//! right to change it back; where the process may not assign that owner
//! (`ERROR_INVALID_OWNER`), only the DACL is set.

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows_sys::Win32::Foundation::{ERROR_SUCCESS, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, SDDL_REVISION_1,
    SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetSecurityDescriptorOwner,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
};

/// The state directory's security descriptor in SDDL: owner Administrators (`BA`); a
/// protected DACL (`P`) allowing full access (`FA`) to SYSTEM (`SY`) and Administrators
/// (`BA`), inherited by files (`OI`) and directories (`CI`) inside.
pub const STATE_DIR_SDDL: &str = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// `ERROR_INVALID_OWNER`: this process may not make that SID the owner.
const ERROR_INVALID_OWNER: u32 = 1307;

/// A security call that failed, with the Win32 error code.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed (error {code})")]
pub struct AclError {
    /// The call and its object.
    pub what: String,
    /// The Win32 error code.
    pub code: u32,
}

/// Gives the directory `path` the owner and DACL of [`STATE_DIR_SDDL`] (the DACL alone where
/// this process may not assign the owner); existing entries inside inherit the new DACL.
pub fn restrict_state_dir(path: &Path) -> Result<(), AclError> {
    let descriptor = Descriptor::parse(STATE_DIR_SDDL)?;
    let name = wide(path.as_os_str());
    let mut owner: PSID = std::ptr::null_mut();
    let mut defaulted = 0;
    // SAFETY: `descriptor.0` is a valid self-relative descriptor; `owner` receives a pointer
    // into it, valid while `descriptor` lives.
    if unsafe { GetSecurityDescriptorOwner(descriptor.0, &mut owner, &mut defaulted) } == 0 {
        return Err(last_error("GetSecurityDescriptorOwner"));
    }
    let mut present = 0;
    let mut dacl: *mut ACL = std::ptr::null_mut();
    // SAFETY: as above; `dacl` points into `descriptor`.
    if unsafe { GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted) }
        == 0
        || present == 0
    {
        return Err(last_error("GetSecurityDescriptorDacl"));
    }
    let set = |information, owner: PSID| {
        // SAFETY: `name` is NUL-terminated UTF-16; `owner` is null or a SID and `dacl` an ACL
        // inside `descriptor`, which outlives the call; no group or SACL is passed.
        unsafe {
            SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                information,
                owner,
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            )
        }
    };
    let dacl_only = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
    let mut status = set(dacl_only | OWNER_SECURITY_INFORMATION, owner);
    if status == ERROR_INVALID_OWNER {
        status = set(dacl_only, std::ptr::null_mut());
    }
    if status != ERROR_SUCCESS {
        return Err(AclError {
            what: format!("setting the access control of {}", path.display()),
            code: status,
        });
    }
    Ok(())
}

/// The owner and DACL of the file or directory `path` in SDDL (for tests and diagnostics).
pub fn describe(path: &Path) -> Result<String, AclError> {
    let name = wide(path.as_os_str());
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated UTF-16; only the descriptor is requested, which the call
    // allocates with LocalAlloc and `Descriptor` frees.
    let status = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(AclError {
            what: format!("reading the access control of {}", path.display()),
            code: status,
        });
    }
    let descriptor = Descriptor(descriptor);
    let mut text: *mut u16 = std::ptr::null_mut();
    let mut length = 0u32;
    // SAFETY: `descriptor.0` is valid; the string is allocated with LocalAlloc, copied below
    // and freed.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor.0,
            SDDL_REVISION_1,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut text,
            &mut length,
        )
    };
    if ok == 0 || text.is_null() {
        return Err(last_error(
            "ConvertSecurityDescriptorToStringSecurityDescriptorW",
        ));
    }
    // SAFETY: the call wrote a NUL-terminated string of `length` characters (NUL included).
    let units = unsafe { std::slice::from_raw_parts(text, length as usize) };
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let sddl = String::from_utf16_lossy(&units[..end]);
    // SAFETY: allocated by the call with LocalAlloc, freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(sddl)
}

/// A security descriptor allocated by the system (LocalAlloc), freed when dropped.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Descriptor {
    fn parse(sddl: &str) -> Result<Descriptor, AclError> {
        let text = wide(OsStr::new(sddl));
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `text` is NUL-terminated UTF-16; the descriptor is allocated by the call
        // with LocalAlloc and owned by the returned value.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || descriptor.is_null() {
            return Err(last_error(
                "ConvertStringSecurityDescriptorToSecurityDescriptorW",
            ));
        }
        Ok(Descriptor(descriptor))
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated with LocalAlloc by the call that filled it, freed once.
            unsafe { LocalFree(self.0) };
        }
    }
}

fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain([0]).collect()
}

fn last_error(what: &str) -> AclError {
    AclError {
        what: what.to_owned(),
        code: std::io::Error::last_os_error()
            .raw_os_error()
            .and_then(|code| u32::try_from(code).ok())
            .unwrap_or(0),
    }
}
