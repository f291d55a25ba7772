//! DPAPI (`CryptProtectData`/`CryptUnprotectData`) for the agent's device key at rest.
//!
//! Two scopes ([`Scope`]): the account that protects (only that account opens the blob), or the
//! machine (`CRYPTPROTECT_LOCAL_MACHINE`: any account on this machine that can read the blob
//! opens it, no other machine does). The agent uses the machine scope, because the account
//! that enrolls (an administrator in an elevated prompt, or a deployment tool) is not the
//! account that runs the service (LocalSystem), and LocalSystem's own scope cannot be
//! protected for from another account; what keeps other accounts from reading the blob is the
//! state directory's ACL (`acl`: SYSTEM and Administrators only), and an administrator can act
//! as LocalSystem anyway. Against a copied disk both scopes come down to the machine's DPAPI
//! secret in its registry hives, which BitLocker protects.
//!
//! A fixed entropy value ties blobs to this use, so another DPAPI blob cannot be passed off as
//! a device key and a device-key blob is useless to other programs' DPAPI calls. The blob is
//! integrity-protected: a changed byte fails to unprotect.

use windows_sys::Win32::Foundation::{GetLastError, LocalFree};
use windows_sys::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_LOCAL_MACHINE, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData,
    CryptUnprotectData,
};
use zeroize::{Zeroize, Zeroizing};

/// Why DPAPI refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpapiError {
    /// `CryptProtectData` failed (the Win32 error code).
    #[error("CryptProtectData failed (error {0})")]
    Protect(u32),
    /// `CryptUnprotectData` failed: another account's or machine's blob, or a damaged one.
    #[error("CryptUnprotectData failed (error {0}): not this account's device key, or damaged")]
    Unprotect(u32),
    /// The data is larger than DPAPI takes (4 GiB).
    #[error("{0} bytes is too large for DPAPI")]
    TooLarge(usize),
}

/// Who can open a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the account that protected it.
    Account,
    /// Any account on this machine (that can read the blob).
    Machine,
}

/// Entropy mixed into every device-key blob (not a secret; a purpose label).
const ENTROPY: &[u8] = b"OsirisCare osiris-agent device key v1";
/// The description DPAPI stores in the blob (readable without the key).
const DESCRIPTION: &str = "OsirisCare agent device key";

/// Encrypts `secret` for `scope`; the blob may be stored anywhere.
pub fn protect(secret: &[u8], scope: Scope) -> Result<Vec<u8>, DpapiError> {
    let input = blob(secret)?;
    let entropy = blob(ENTROPY)?;
    let description: Vec<u16> = DESCRIPTION.encode_utf16().chain([0]).collect();
    let flags = match scope {
        Scope::Account => 0,
        Scope::Machine => CRYPTPROTECT_LOCAL_MACHINE,
    };
    let mut output = empty_blob();
    // SAFETY: `input` and `entropy` point at live slices of their stated length (DPAPI only
    // reads them); `description` is NUL-terminated; no reserved or prompt structure; on
    // success `output` holds a LocalAlloc'd buffer that `take` copies and frees.
    let ok = unsafe {
        CryptProtectData(
            &input,
            description.as_ptr(),
            &entropy,
            std::ptr::null(),
            std::ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN | flags,
            &mut output,
        )
    };
    if ok == 0 {
        // SAFETY: reads this thread's last error, set by the failed call.
        return Err(DpapiError::Protect(unsafe { GetLastError() }));
    }
    // SAFETY: `output` was filled by a successful CryptProtectData.
    Ok(unsafe { take(&mut output) })
}

/// Decrypts a blob made by [`protect`] (for this account or this machine); the secret is wiped
/// when dropped.
pub fn unprotect(protected: &[u8]) -> Result<Zeroizing<Vec<u8>>, DpapiError> {
    let input = blob(protected)?;
    let entropy = blob(ENTROPY)?;
    let mut output = empty_blob();
    // SAFETY: as in `protect`; the description out-pointer is not requested (null).
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            std::ptr::null_mut(),
            &entropy,
            std::ptr::null(),
            std::ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut output,
        )
    };
    if ok == 0 {
        // SAFETY: reads this thread's last error, set by the failed call.
        return Err(DpapiError::Unprotect(unsafe { GetLastError() }));
    }
    // SAFETY: `output` was filled by a successful CryptUnprotectData.
    Ok(Zeroizing::new(unsafe { take(&mut output) }))
}

fn blob(data: &[u8]) -> Result<CRYPT_INTEGER_BLOB, DpapiError> {
    Ok(CRYPT_INTEGER_BLOB {
        cbData: u32::try_from(data.len()).map_err(|_| DpapiError::TooLarge(data.len()))?,
        // DPAPI declares the input mutable but only reads it.
        pbData: data.as_ptr().cast_mut(),
    })
}

fn empty_blob() -> CRYPT_INTEGER_BLOB {
    CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: std::ptr::null_mut(),
    }
}

/// Copies DPAPI's output, wipes DPAPI's buffer and frees it.
///
/// # Safety
/// `output` must come from a successful `CryptProtectData`/`CryptUnprotectData`.
unsafe fn take(output: &mut CRYPT_INTEGER_BLOB) -> Vec<u8> {
    if output.pbData.is_null() {
        return Vec::new();
    }
    // SAFETY: DPAPI returned `cbData` initialised bytes at `pbData`, owned by us until freed.
    let bytes = unsafe { std::slice::from_raw_parts_mut(output.pbData, output.cbData as usize) };
    let copy = bytes.to_vec();
    bytes.zeroize();
    // SAFETY: the buffer was allocated by DPAPI with LocalAlloc and is freed exactly once.
    unsafe { LocalFree(output.pbData.cast()) };
    output.pbData = std::ptr::null_mut();
    output.cbData = 0;
    copy
}
