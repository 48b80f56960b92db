//! The y-websocket / y-protocols wire messages, byte-compatible with npm
//! `y-protocols` and the `y-websocket` provider.
//!
//! Every WebSocket binary frame carries exactly one message:
//!
//! | bytes                                   | message                  |
//! |-----------------------------------------|--------------------------|
//! | `0` `0` varUint8Array(state vector)     | [`Message::SyncStep1`]   |
//! | `0` `1` varUint8Array(update v1)        | [`Message::SyncStep2`]   |
//! | `0` `2` varUint8Array(update v1)        | [`Message::Update`]      |
//! | `1` varUint8Array(awareness update)     | [`Message::Awareness`]   |
//! | `2` `0` varString(reason)               | [`Message::PermissionDenied`] |
//! | `3`                                     | [`Message::QueryAwareness`] |
//!
//! Decoding borrows the payloads from the frame and checks only the framing;
//! the payloads are checked by [`crate::doc`] and [`crate::awareness`]. The
//! decoder is strict (unknown types and trailing bytes are errors) so a
//! confused or hostile client is noticed at once instead of half-understood.

use crate::encoding::{DecodeError, Reader, write_var_bytes, write_var_string, write_var_u64};

/// Top-level message type: document sync.
pub const MESSAGE_SYNC: u64 = 0;
/// Top-level message type: awareness update.
pub const MESSAGE_AWARENESS: u64 = 1;
/// Top-level message type: auth.
pub const MESSAGE_AUTH: u64 = 2;
/// Top-level message type: query awareness.
pub const MESSAGE_QUERY_AWARENESS: u64 = 3;
/// Sync sub-type: step 1 (state vector).
pub const SYNC_STEP1: u64 = 0;
/// Sync sub-type: step 2 (update answering a step 1).
pub const SYNC_STEP2: u64 = 1;
/// Sync sub-type: incremental update.
pub const SYNC_UPDATE: u64 = 2;
/// Auth sub-type: permission denied.
pub const AUTH_PERMISSION_DENIED: u64 = 0;

/// One y-websocket message, borrowing its payload from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// The sender's encoded state vector; the receiver answers with step 2.
    SyncStep1(&'a [u8]),
    /// An update v1 holding what the receiver of a step 1 lacked.
    SyncStep2(&'a [u8]),
    /// An update v1 made by the sender (or relayed by the server).
    Update(&'a [u8]),
    /// An encoded awareness update (see [`crate::awareness::AwarenessUpdate`]).
    Awareness(&'a [u8]),
    /// A request for every known awareness state.
    QueryAwareness,
    /// The server refuses access; the client logs the reason.
    PermissionDenied(&'a str),
}

/// Why a frame is not a valid y-websocket message.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProtocolError {
    /// A length, integer or string inside the frame is malformed.
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    /// The first varuint is not a known message type.
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    /// A sync message has an unknown sub-type.
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    /// An auth message has an unknown sub-type.
    #[error("unknown auth message type {0}")]
    UnknownAuthType(u64),
    /// The frame holds this many bytes after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

impl<'a> Message<'a> {
    /// Decodes one frame. The whole frame must be one message: trailing bytes,
    /// unknown message types and unknown sync or auth types are errors.
    pub fn decode(frame: &'a [u8]) -> Result<Message<'a>, ProtocolError> {
        let mut reader = Reader::new(frame);
        let message = match reader.read_var_u64()? {
            MESSAGE_SYNC => match reader.read_var_u64()? {
                SYNC_STEP1 => Message::SyncStep1(reader.read_var_bytes()?),
                SYNC_STEP2 => Message::SyncStep2(reader.read_var_bytes()?),
                SYNC_UPDATE => Message::Update(reader.read_var_bytes()?),
                other => return Err(ProtocolError::UnknownSyncType(other)),
            },
            MESSAGE_AWARENESS => Message::Awareness(reader.read_var_bytes()?),
            MESSAGE_AUTH => match reader.read_var_u64()? {
                AUTH_PERMISSION_DENIED => Message::PermissionDenied(reader.read_var_string()?),
                other => return Err(ProtocolError::UnknownAuthType(other)),
            },
            MESSAGE_QUERY_AWARENESS => Message::QueryAwareness,
            other => return Err(ProtocolError::UnknownMessageType(other)),
        };
        if !reader.is_empty() {
            return Err(ProtocolError::TrailingBytes(reader.remaining()));
        }
        Ok(message)
    }

    /// Encodes the message as one frame.
    pub fn encode(&self) -> Vec<u8> {
        let payload_len = match self {
            Message::SyncStep1(bytes)
            | Message::SyncStep2(bytes)
            | Message::Update(bytes)
            | Message::Awareness(bytes) => bytes.len(),
            Message::PermissionDenied(reason) => reason.len(),
            Message::QueryAwareness => 0,
        };
        // Two type bytes plus at most ten length bytes.
        let mut out = Vec::with_capacity(payload_len + 12);
        match self {
            Message::SyncStep1(state_vector) => {
                write_var_u64(&mut out, MESSAGE_SYNC);
                write_var_u64(&mut out, SYNC_STEP1);
                write_var_bytes(&mut out, state_vector);
            }
            Message::SyncStep2(update) => {
                write_var_u64(&mut out, MESSAGE_SYNC);
                write_var_u64(&mut out, SYNC_STEP2);
                write_var_bytes(&mut out, update);
            }
            Message::Update(update) => {
                write_var_u64(&mut out, MESSAGE_SYNC);
                write_var_u64(&mut out, SYNC_UPDATE);
                write_var_bytes(&mut out, update);
            }
            Message::Awareness(update) => {
                write_var_u64(&mut out, MESSAGE_AWARENESS);
                write_var_bytes(&mut out, update);
            }
            Message::QueryAwareness => write_var_u64(&mut out, MESSAGE_QUERY_AWARENESS),
            Message::PermissionDenied(reason) => {
                write_var_u64(&mut out, MESSAGE_AUTH);
                write_var_u64(&mut out, AUTH_PERMISSION_DENIED);
                write_var_string(&mut out, reason);
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all_variants() -> Vec<Message<'static>> {
        vec![
            Message::SyncStep1(&[0]),
            Message::SyncStep1(&[]),
            Message::SyncStep2(&[0, 0]),
            Message::Update(&[1, 1, 200, 1, 0, 4, 0, 1, 116, 1, 97, 0]),
            Message::Awareness(&[1, 42, 3, 2, b'{', b'}']),
            Message::QueryAwareness,
            Message::PermissionDenied("token expired"),
            Message::PermissionDenied(""),
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for message in all_variants() {
            let frame = message.encode();
            assert_eq!(Message::decode(&frame), Ok(message), "frame {frame:?}");
        }
    }

    #[test]
    fn known_y_protocols_bytes() {
        // y-protocols writeSyncStep1 of an empty Y.Doc: sv = [0].
        assert_eq!(Message::decode(&[0, 0, 1, 0]), Ok(Message::SyncStep1(&[0])));
        assert_eq!(Message::SyncStep1(&[0]).encode(), [0, 0, 1, 0]);
        // Sync step 2 with the empty update [0, 0].
        assert_eq!(
            Message::decode(&[0, 1, 2, 0, 0]),
            Ok(Message::SyncStep2(&[0, 0]))
        );
        // An update frame: [0, 2, len, ...update].
        let update = [1, 1, 200, 1, 0, 4, 0, 1, 116, 1, 97, 0];
        let mut frame = vec![0, 2, update.len() as u8];
        frame.extend_from_slice(&update);
        assert_eq!(Message::decode(&frame), Ok(Message::Update(&update)));
        assert_eq!(Message::QueryAwareness.encode(), [3]);
        let denied = Message::PermissionDenied("no").encode();
        assert_eq!(denied, [2, 0, 2, b'n', b'o']);
    }

    #[test]
    fn rejects_bad_frames() {
        assert_eq!(
            Message::decode(&[]),
            Err(ProtocolError::Decode(DecodeError::Truncated))
        );
        assert_eq!(
            Message::decode(&[9]),
            Err(ProtocolError::UnknownMessageType(9))
        );
        assert_eq!(
            Message::decode(&[0, 3, 0]),
            Err(ProtocolError::UnknownSyncType(3))
        );
        assert_eq!(
            Message::decode(&[2, 1, 0]),
            Err(ProtocolError::UnknownAuthType(1))
        );
        assert_eq!(
            Message::decode(&[3, 0]),
            Err(ProtocolError::TrailingBytes(1))
        );
        assert_eq!(
            Message::decode(&[0, 0, 1, 0, 7, 7]),
            Err(ProtocolError::TrailingBytes(2))
        );
        assert_eq!(
            Message::decode(&[0, 2, 5, 1, 2]),
            Err(ProtocolError::Decode(DecodeError::Truncated))
        );
        assert_eq!(
            Message::decode(&[2, 0, 1, 0xff]),
            Err(ProtocolError::Decode(DecodeError::InvalidUtf8))
        );
    }

    #[test]
    fn every_truncation_fails_without_panic() {
        for message in all_variants() {
            let frame = message.encode();
            for cut in 0..frame.len() {
                assert!(
                    Message::decode(&frame[..cut]).is_err(),
                    "{message:?} cut at {cut}"
                );
            }
        }
    }
}
