//! Reads a unary request's body: gRPC frames it as messages, each behind a
//! 5-byte prefix (a compression flag and a big-endian length). The prefix
//! is read as soon as it arrives, so that a message declaring more than
//! `--max-message-bytes` is refused before its body is; the bytes that do
//! arrive are reserved from the request budget before they are kept (not the
//! declared length: a prefix alone must not hold 64 KiB of budget).

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::time::Instant;
use tonic::{body::Body, Status};

use super::budget::Reservation;
use crate::error::ErrorKind;

/// The gRPC message prefix: one flag byte and a 4-byte length.
pub const PREFIX_BYTES: usize = 5;

/// Why a body was not read to its end.
#[derive(Debug)]
pub enum Unread {
    /// Refused: too large, or over the budget.
    Refused(ErrorKind),
    /// The body failed (the peer reset the stream, the connection closed):
    /// what arrived, and the error, for tonic to answer as it would.
    Failed(Bytes, Status),
}

/// Reads `body` to its end into one buffer of at most `max_message` bytes
/// plus a prefix (a unary RPC's body), holding what it buffers in
/// `reservation`.
pub async fn read(
    body: &mut Body,
    max_message: u32,
    reservation: &mut Reservation,
) -> Result<Bytes, Unread> {
    let mut message = Message::new(max_message);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(status) => return Err(Unread::Failed(message.into_bytes(), status)),
        };
        // Trailers end a request body; gRPC requests carry none.
        if let Ok(data) = frame.into_data() {
            message
                .push(&data, |more| reservation.grow(more, Instant::now()))
                .map_err(Unread::Refused)?;
        }
    }
    Ok(message.into_bytes())
}

/// A request body being assembled.
#[derive(Debug)]
struct Message {
    buffer: Vec<u8>,
    /// Most bytes the body may have: one largest message and its prefix.
    limit: usize,
    /// Where the next prefix starts (the end of the last declared message).
    next_prefix: usize,
    /// Bytes reserved so far.
    reserved: usize,
    max_message: u32,
}

impl Message {
    fn new(max_message: u32) -> Self {
        Self {
            buffer: Vec::new(),
            limit: max_message as usize + PREFIX_BYTES,
            next_prefix: 0,
            reserved: 0,
            max_message,
        }
    }

    fn too_large(&self) -> ErrorKind {
        ErrorKind::MessageTooLarge {
            max_bytes: self.max_message,
        }
    }

    /// Appends `chunk` once the prefixes it completes have been checked and
    /// its bytes reserved with `reserve`.
    fn push(
        &mut self,
        chunk: &[u8],
        mut reserve: impl FnMut(u64) -> Result<(), ErrorKind>,
    ) -> Result<(), ErrorKind> {
        let have = self.buffer.len() + chunk.len();
        if have > self.limit {
            return Err(self.too_large());
        }
        while have >= self.next_prefix + PREFIX_BYTES {
            let at = self.next_prefix;
            let length: [u8; 4] =
                std::array::from_fn(|i| self.byte_at(chunk, at + 1 + i).unwrap_or(0));
            let declared = u32::from_be_bytes(length) as usize;
            let end = at + PREFIX_BYTES + declared;
            if end > self.limit {
                return Err(self.too_large());
            }
            self.next_prefix = end;
        }
        if have > self.reserved {
            reserve((have - self.reserved) as u64)?;
            self.reserved = have;
        }
        self.buffer.extend_from_slice(chunk);
        Ok(())
    }

    /// The byte at `index` of the body so far, `chunk` following the buffer.
    fn byte_at(&self, chunk: &[u8], index: usize) -> Option<u8> {
        match index.checked_sub(self.buffer.len()) {
            None => self.buffer.get(index).copied(),
            Some(in_chunk) => chunk.get(in_chunk).copied(),
        }
    }

    fn into_bytes(self) -> Bytes {
        Bytes::from(self.buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(len: u32) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&len.to_be_bytes());
        v
    }

    /// Pushes `chunks` into a message of at most `max`; the reservations
    /// asked for, and the outcome.
    fn feed(max: u32, chunks: &[&[u8]]) -> (Vec<u64>, Result<Bytes, ErrorKind>) {
        let mut asked = Vec::new();
        let mut message = Message::new(max);
        for chunk in chunks {
            let pushed = message.push(chunk, |n| {
                asked.push(n);
                Ok(())
            });
            if let Err(kind) = pushed {
                return (asked, Err(kind));
            }
        }
        (asked, Ok(message.into_bytes()))
    }

    #[test]
    fn bytes_are_reserved_as_they_arrive() {
        let mut first = prefixed(100);
        first.extend_from_slice(&[7; 10]);
        let (asked, body) = feed(1_000, &[&first, &[7; 90]]);
        assert_eq!(asked, [15, 90], "what arrived, not what was declared");
        assert_eq!(body.unwrap().len(), 105);
    }

    #[test]
    fn a_prefix_split_across_frames_is_read() {
        let p = prefixed(3);
        let (asked, body) = feed(10, &[&p[..2], &p[2..], b"abc"]);
        assert_eq!(asked.iter().sum::<u64>(), 8);
        assert_eq!(&body.unwrap()[5..], b"abc");
    }

    #[test]
    fn a_declared_length_over_the_bound_is_refused_before_its_body() {
        let (asked, body) = feed(1_000, &[&prefixed(1_001)]);
        assert!(matches!(
            body,
            Err(ErrorKind::MessageTooLarge { max_bytes: 1_000 })
        ));
        assert!(asked.is_empty(), "nothing reserved for a refused message");
        let (_, body) = feed(1_000, &[&prefixed(u32::MAX)]);
        assert!(body.is_err());
    }

    #[test]
    fn several_messages_or_trailing_bytes_share_the_bound() {
        let mut two = prefixed(500);
        two.extend_from_slice(&[1; 500]);
        two.extend_from_slice(&prefixed(496));
        let (_, body) = feed(1_000, &[&two]);
        assert!(body.is_err(), "505 + 501 bytes > 1,005");
        let mut trailing = prefixed(1_000);
        trailing.extend_from_slice(&[1; 1_000]);
        let (_, body) = feed(1_000, &[&trailing, b"x"]);
        assert!(body.is_err());
        let (_, body) = feed(1_000, &[&trailing]);
        assert_eq!(body.unwrap().len(), 1_005);
    }

    #[test]
    fn a_refused_reservation_refuses_the_message() {
        let mut message = Message::new(1_000);
        let refused = message.push(&prefixed(10), |_| {
            Err(ErrorKind::RequestBufferFull { budget_bytes: 1 })
        });
        assert!(matches!(refused, Err(ErrorKind::RequestBufferFull { .. })));
    }

    #[test]
    fn an_empty_body_is_an_empty_message() {
        let (asked, body) = feed(10, &[]);
        assert!(asked.is_empty() && body.unwrap().is_empty());
    }
}
