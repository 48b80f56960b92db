//! lib0 v1 primitives, the byte layer under every y-protocols message.
//!
//! The y-websocket wire format nests length-prefixed byte arrays inside
//! variable-length integers, and every byte of it comes from a client. This
//! module is the one place that reads those bytes, so it never panics and it
//! never allocates on a length the client claims: it only slices the buffer it
//! was given. It follows npm `lib0` (`encoding.js` / `decoding.js`):
//!
//! - varuint: 7-bit groups, least significant first, high bit set on every
//!   byte but the last;
//! - varUint8Array: varuint length, then that many bytes;
//! - varString: a varUint8Array holding UTF-8.

/// Most bytes a varuint of a `u64` can take (10 × 7 bits ≥ 64 bits).
const MAX_VAR_U64_BYTES: usize = 10;

/// Why some bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DecodeError {
    /// The input ended in the middle of a value, or a length prefix claims
    /// more bytes than remain.
    #[error("input ended before the value did")]
    Truncated,
    /// A varuint is longer than 10 bytes or does not fit in a `u64`.
    #[error("variable-length integer does not fit in 64 bits")]
    VarIntOverflow,
    /// A varString is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
}

/// A cursor over borrowed bytes; every read advances it or fails without
/// panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The whole input; reads borrow from it so decoded payloads need no copy.
    buf: &'a [u8],
    /// Offset of the next unread byte; never greater than `buf.len()`.
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Reads one raw byte.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Reads a varuint. Fails with [`DecodeError::Truncated`] if the input
    /// ends first and [`DecodeError::VarIntOverflow`] if the value needs more
    /// than 64 bits or more than 10 bytes. Non-minimal encodings (for example
    /// `[0x80, 0x00]` for zero) are accepted, as lib0 accepts them.
    pub fn read_var_u64(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for index in 0..MAX_VAR_U64_BYTES {
            let byte = self.read_u8()?;
            let bits = u64::from(byte & 0x7f);
            let shift = 7 * index as u32;
            // The tenth byte carries bit 63 only; anything more overflows.
            if index == MAX_VAR_U64_BYTES - 1 && bits > 1 {
                return Err(DecodeError::VarIntOverflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarIntOverflow)
    }

    /// Reads a varUint8Array and returns the bytes, borrowed from the input.
    pub fn read_var_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.read_var_u64()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        self.read_exact(len)
    }

    /// Reads a varString, borrowed from the input.
    pub fn read_var_string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.read_var_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads exactly `len` raw bytes.
    pub fn read_exact(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let end = self.pos + len;
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// How many bytes are left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

/// Appends `value` as a varuint (1 to 10 bytes).
pub fn write_var_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `bytes` as a varUint8Array.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends `s` as a varString.
pub fn write_var_string(out: &mut Vec<u8>, s: &str) {
    write_var_bytes(out, s.as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn encoded(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_var_u64(&mut out, value);
        out
    }

    #[test]
    fn var_u64_round_trips_at_every_width() {
        let mut values = vec![
            0,
            1,
            127,
            128,
            255,
            300,
            16_383,
            16_384,
            u64::MAX,
            u64::MAX - 1,
        ];
        values.extend((0..64).map(|bit| 1u64 << bit));
        values.extend((1..64).map(|bit| (1u64 << bit) - 1));
        for value in values {
            let bytes = encoded(value);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.read_var_u64(), Ok(value), "value {value}");
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn var_u64_matches_lib0_bytes() {
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(127), [127]);
        assert_eq!(encoded(128), [0x80, 0x01]);
        assert_eq!(encoded(300), [0xac, 0x02]);
        assert_eq!(encoded(u64::MAX).len(), 10);
        assert_eq!(encoded(u64::MAX).last(), Some(&1));
    }

    #[test]
    fn var_u64_errors() {
        assert_eq!(Reader::new(&[]).read_var_u64(), Err(DecodeError::Truncated));
        assert_eq!(
            Reader::new(&[0x80]).read_var_u64(),
            Err(DecodeError::Truncated)
        );
        let max = encoded(u64::MAX);
        for cut in 0..max.len() {
            assert_eq!(
                Reader::new(&max[..cut]).read_var_u64(),
                Err(DecodeError::Truncated)
            );
        }
        // Bit 64 set on the tenth byte.
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(
            Reader::new(&too_big).read_var_u64(),
            Err(DecodeError::VarIntOverflow)
        );
        // Eleven bytes, even if the value is small.
        let mut too_long = vec![0x80; 10];
        too_long.push(0x00);
        assert_eq!(
            Reader::new(&too_long).read_var_u64(),
            Err(DecodeError::VarIntOverflow)
        );
        // Non-minimal but in range is fine, as in lib0.
        assert_eq!(Reader::new(&[0x80, 0x00]).read_var_u64(), Ok(0));
    }

    #[test]
    fn var_bytes_and_strings() {
        let mut out = Vec::new();
        write_var_bytes(&mut out, &[1, 2, 3]);
        write_var_string(&mut out, "héllo");
        write_var_bytes(&mut out, &[]);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.read_var_bytes(), Ok(&[1u8, 2, 3][..]));
        assert_eq!(reader.read_var_string(), Ok("héllo"));
        assert_eq!(reader.read_var_bytes(), Ok(&[][..]));
        assert!(reader.is_empty());

        assert_eq!(
            Reader::new(&[3, 1, 2]).read_var_bytes(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Reader::new(&[2, 0xc3, 0x28]).read_var_string(),
            Err(DecodeError::InvalidUtf8)
        );
        // A length near u64::MAX must fail cleanly, not overflow `pos + len`.
        let mut huge = encoded(u64::MAX);
        huge.push(0);
        assert_eq!(
            Reader::new(&huge).read_var_bytes(),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn remaining_counts_down() {
        let mut reader = Reader::new(&[5, 0, 1]);
        assert_eq!(reader.remaining(), 3);
        reader.read_u8().unwrap();
        assert_eq!(reader.remaining(), 2);
        reader.read_exact(2).unwrap();
        assert!(reader.is_empty());
        assert_eq!(reader.read_u8(), Err(DecodeError::Truncated));
    }
}
