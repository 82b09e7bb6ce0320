//! RecordIO, the framing of the Mesos scheduler API's event stream: each record is its length
//! in decimal, a newline, then that many bytes (`128\n{"type":"SUBSCRIBED",…}`). HTTP chunks
//! do not line up with records, so the decoder keeps what it has not yet framed.

/// A record longer than this is a broken stream, not an event (the largest real events, offers
/// from a big cluster, are a few MiB).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    #[error("the event stream is not RecordIO: a record length may hold only digits, got {0:?}")]
    BadLength(String),
    #[error("the event stream announced a record of {0} bytes (at most {MAX_RECORD_BYTES} are taken)")]
    TooLong(usize),
}

/// Incremental decoder: feed it bytes as they arrive, take the whole records out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes` and returns every record now complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RecordIoError> {
        self.buf.extend_from_slice(bytes);
        let mut records = Vec::new();
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                // A length still arriving: it can only be digits, and not endless.
                if rest.len() > 20 || !rest.iter().all(u8::is_ascii_digit) {
                    return Err(RecordIoError::BadLength(
                        String::from_utf8_lossy(&rest[..rest.len().min(20)]).into_owned(),
                    ));
                }
                break;
            };
            let digits = &rest[..nl];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(RecordIoError::BadLength(
                    String::from_utf8_lossy(&digits[..digits.len().min(20)]).into_owned(),
                ));
            }
            let len: usize = std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).unwrap_or(usize::MAX);
            if len > MAX_RECORD_BYTES {
                return Err(RecordIoError::TooLong(len));
            }
            if rest.len() < nl + 1 + len {
                break;
            }
            records.push(rest[nl + 1..nl + 1 + len].to_vec());
            at += nl + 1 + len;
        }
        self.buf.drain(..at);
        Ok(records)
    }

    /// Bytes received that are not yet a whole record (a stream that ends with some is cut).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// One record framed for the stream (what the test servers send).
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", record.len()).into_bytes();
    out.extend_from_slice(record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_out_whatever_the_chunking() {
        let stream: Vec<u8> =
            [b"{\"a\":1}".as_slice(), b"", b"{\"type\":\"HEARTBEAT\"}"].iter().flat_map(|r| encode(r)).collect();
        for chunk in 1..stream.len() {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                got.extend(d.push(piece).unwrap());
            }
            assert_eq!(
                got,
                vec![b"{\"a\":1}".to_vec(), Vec::new(), b"{\"type\":\"HEARTBEAT\"}".to_vec()],
                "chunks of {chunk}"
            );
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn a_partial_record_waits_for_the_rest() {
        let mut d = Decoder::new();
        assert!(d.push(b"10\n12345").unwrap().is_empty());
        assert_eq!(d.pending(), 8);
        assert_eq!(d.push(b"67890").unwrap(), vec![b"1234567890".to_vec()]);
    }

    #[test]
    fn what_is_not_recordio_is_refused() {
        assert!(matches!(Decoder::new().push(b"{\"type\":\"SUBSCRIBED\"}\n"), Err(RecordIoError::BadLength(_))));
        assert!(matches!(Decoder::new().push(b"HTTP/1.1"), Err(RecordIoError::BadLength(_))));
        assert!(matches!(Decoder::new().push(b"\n"), Err(RecordIoError::BadLength(_))));
        assert!(matches!(Decoder::new().push(b"999999999999\n"), Err(RecordIoError::TooLong(_))));
        assert!(matches!(Decoder::new().push(b"123456789012345678901234"), Err(RecordIoError::BadLength(_))));
    }
}
