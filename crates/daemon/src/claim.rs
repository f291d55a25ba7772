//! The claim code the console shows for the partner to claim this site: a random secret made once, kept in a 0600
//! file in the data directory, never derived from anything public (the appliance key id is printed in every kit).

use std::path::Path;

use anyhow::Context;

/// The file that holds the claim code.
pub(crate) const FILE: &str = "claim-code";

/// Crockford's base-32 digits: no I, L, O or U, so nothing is mistaken when read out on the phone.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The site's claim code, created on first use: three groups of four characters (60 random bits).
pub(crate) fn load_or_create(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let code = text.trim().to_owned();
            anyhow::ensure!(
                is_code(&code),
                "{} does not hold a claim code; delete it and restart osirisd to make a new one",
                path.display()
            );
            Ok(code)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let code = format_code(rand::random());
            durable::write(&path, format!("{code}\n").as_bytes(), 0o600)
                .with_context(|| format!("saving the claim code in {}", path.display()))?;
            Ok(code)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Twelve characters of [`ALPHABET`] from 60 of `bits`, as `XXXX-XXXX-XXXX`.
fn format_code(bits: u64) -> String {
    let chars: Vec<char> = (0..12)
        .map(|idx| char::from(ALPHABET[((bits >> (idx * 5)) & 31) as usize]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn is_code(text: &str) -> bool {
    text.len() == 14
        && text.split('-').count() == 3
        && text
            .split('-')
            .all(|group| group.len() == 4 && group.bytes().all(|b| ALPHABET.contains(&b)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn codes_are_read_out_friendly_and_use_all_sixty_bits() {
        assert_eq!(format_code(0), "0000-0000-0000");
        assert_eq!(format_code(u64::MAX), "ZZZZ-ZZZZ-ZZZZ");
        assert_ne!(format_code(1 << 59), format_code(0));
        assert!(is_code(&format_code(0x0123_4567_89ab_cdef)));
        assert!(
            !is_code("ABCD-EFGH-IJKL"),
            "I and L are not in the alphabet"
        );
        assert!(!is_code("ABCD-EFGH"));
    }

    #[test]
    fn made_once_kept_private_and_different_per_appliance() {
        let first = tempfile::tempdir().expect("tempdir");
        let second = tempfile::tempdir().expect("tempdir");
        let code = load_or_create(first.path()).expect("create");
        assert!(is_code(&code), "{code}");
        assert_eq!(load_or_create(first.path()).expect("load"), code);
        let mode = std::fs::metadata(first.path().join(FILE))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(load_or_create(second.path()).expect("create"), code);
    }

    #[test]
    fn a_damaged_file_is_named_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), "not a code\n").expect("write");
        let err = load_or_create(dir.path()).expect_err("damaged");
        assert!(
            format!("{err:#}").contains("does not hold a claim code"),
            "{err:#}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).expect("read"),
            "not a code\n"
        );
    }
}
