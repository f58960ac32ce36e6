//! The binary form of a log record: little-endian integers, and strings and byte strings
//! with their length in front. A node's record types write themselves with [`put`]'s
//! functions and read themselves back with a [`Reader`], which refuses anything cut short
//! or left over.

/// Writing a record.
pub mod put {
    /// One byte.
    pub fn u8(out: &mut Vec<u8>, value: u8) {
        out.push(value);
    }

    /// An unsigned number.
    pub fn u64(out: &mut Vec<u8>, value: u64) {
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// A signed number.
    pub fn i64(out: &mut Vec<u8>, value: i64) {
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// Bytes, with their length.
    pub fn bytes(out: &mut Vec<u8>, value: &[u8]) {
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }

    /// A string, with its length.
    pub fn str(out: &mut Vec<u8>, value: &str) {
        bytes(out, value.as_bytes());
    }

    /// An optional string (a flag byte, then the string).
    pub fn opt_str(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            Some(value) => {
                u8(out, 1);
                str(out, value);
            }
            None => u8(out, 0),
        }
    }

    /// An optional signed number.
    pub fn opt_i64(out: &mut Vec<u8>, value: Option<i64>) {
        match value {
            Some(value) => {
                u8(out, 1);
                i64(out, value);
            }
            None => u8(out, 0),
        }
    }
}

/// Reading a record back.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `record`.
    pub fn new(record: &'a [u8]) -> Self {
        Self { rest: record }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err("a record cut short".to_owned());
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned number.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A signed number.
    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// Bytes with their length.
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let length = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        self.take(length)
    }

    /// A string with its length.
    pub fn str(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "a string that is not UTF-8".to_owned())
    }

    /// An optional string.
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            flag => Err(format!("an option flag {flag}")),
        }
    }

    /// An optional signed number.
    pub fn opt_i64(&mut self) -> Result<Option<i64>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.i64().map(Some),
            flag => Err(format!("an option flag {flag}")),
        }
    }

    /// Refuses bytes left over: a record is read whole or not at all.
    pub fn end(self) -> Result<(), String> {
        if self.rest.is_empty() { Ok(()) } else { Err(format!("{} bytes left over", self.rest.len())) }
    }
}

/// A record type of a node's log.
pub trait LogRecord: Sized {
    /// Writes the record.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads a record written by [`LogRecord::encode`].
    fn decode(record: &[u8]) -> Result<Self, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is written reads back equal; anything cut short, left over or with a bad
    /// flag is refused, never read as something else.
    #[test]
    fn fields_read_back_and_damage_is_refused() {
        let mut out = Vec::new();
        put::u8(&mut out, 7);
        put::u64(&mut out, u64::MAX);
        put::i64(&mut out, -5);
        put::str(&mut out, "CRDRZZ00XXX");
        put::opt_str(&mut out, None);
        put::opt_i64(&mut out, Some(42));
        let mut reader = Reader::new(&out);
        assert_eq!(reader.u8(), Ok(7));
        assert_eq!(reader.u64(), Ok(u64::MAX));
        assert_eq!(reader.i64(), Ok(-5));
        assert_eq!(reader.str(), Ok("CRDRZZ00XXX"));
        assert_eq!(reader.opt_str(), Ok(None));
        assert_eq!(reader.opt_i64(), Ok(Some(42)));
        reader.end().unwrap();
        for cut in 0..out.len() {
            let mut reader = Reader::new(&out[..cut]);
            let read = (|| {
                reader.u8()?;
                reader.u64()?;
                reader.i64()?;
                reader.str()?;
                reader.opt_str()?;
                reader.opt_i64()
            })();
            assert!(read.is_err(), "cut at {cut} read");
        }
        assert!(Reader::new(&[1, 2]).end().is_err());
        assert!(Reader::new(&[2]).opt_str().is_err());
        assert!(Reader::new(&[1, 0, 0, 0, 0xff]).str().is_err());
    }
}
