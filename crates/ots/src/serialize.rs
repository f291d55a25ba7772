//! Byte-level reader and writer for the OpenTimestamps encoding (LEB128 varuints, varbytes).

use crate::error::OtsError;

/// Reads the OpenTimestamps primitive encodings from a byte slice.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], OtsError> {
        let remaining = self.bytes.len() - self.pos;
        if n > remaining {
            return Err(OtsError::Truncated {
                offset: self.pos,
                needed: n - remaining,
            });
        }
        let res = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(res)
    }

    pub(crate) fn read_u8(&mut self) -> Result<u8, OtsError> {
        Ok(self.read_bytes(1)?[0])
    }

    /// Reads an unsigned LEB128 integer; rejects values above `u64::MAX` and non-minimal forms.
    pub(crate) fn read_varuint(&mut self) -> Result<u64, OtsError> {
        let offset = self.pos;
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.read_u8()?;
            let low = u64::from(byte & 0x7f);
            if shift >= 64 || (shift == 63 && low > 1) {
                return Err(OtsError::BadVaruint {
                    offset,
                    reason: "value exceeds 64 bits",
                });
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(OtsError::BadVaruint {
                        offset,
                        reason: "not minimally encoded",
                    });
                }
                return Ok(value);
            }
            shift += 7;
        }
    }

    pub(crate) fn read_varbytes(
        &mut self,
        what: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], OtsError> {
        let len = self.read_varuint()?;
        if len < min as u64 || len > max as u64 {
            return Err(OtsError::BadLength {
                what,
                len,
                min: min as u64,
                max: max as u64,
            });
        }
        // The bound check above keeps `len` below `max`, which fits in usize.
        self.read_bytes(len as usize)
    }

    pub(crate) fn finish(&self) -> Result<(), OtsError> {
        let n_extra = self.bytes.len() - self.pos;
        if n_extra == 0 {
            Ok(())
        } else {
            Err(OtsError::TrailingBytes {
                offset: self.pos,
                n_extra,
            })
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

pub(crate) fn write_varuint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

pub(crate) fn write_varbytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varuint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use crate::error::OtsError;
    use crate::serialize::{Reader, write_varuint};

    #[test]
    fn varuints_round_trip_and_reject_non_minimal_and_overflowing_forms() {
        for value in [0, 1, 127, 128, 300, 358_391, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_varuint(&mut out, value);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.read_varuint().unwrap(), value);
            assert_eq!(reader.remaining(), 0);
        }
        let non_minimal = Reader::new(&[0x81, 0x00]).read_varuint();
        assert!(matches!(non_minimal, Err(OtsError::BadVaruint { .. })));
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(matches!(
            Reader::new(&too_big).read_varuint(),
            Err(OtsError::BadVaruint { .. })
        ));
    }
}
