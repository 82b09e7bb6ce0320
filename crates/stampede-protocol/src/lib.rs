//! The wire protocol between tiers: one websocket per child to its parent.
//!
//! - [`message`]: the versioned, tagged [`Message`] enum and its payloads.
//! - [`conn`]: the token-checked handshake ([`accept`], [`connect`]) and a [`Conn`] that sends and
//!   receives whole messages, turning malformed frames into errors instead of panics.
//!
//! The handshake is where the run token is checked: a connection that does not present it in
//! the [`TOKEN_HEADER`] is refused with HTTP 401 before a single message is read.

pub mod conn;
pub mod message;

pub use conn::{accept, connect, decode, AcceptError, Conn, ConnectError, RecvError, DEFAULT_MAX_MESSAGE_BYTES};
pub use message::*;

/// Bumped on any incompatible change to [`Message`]; the first message of every connection
/// states it and a mismatch closes the connection.
pub const PROTOCOL_VERSION: u32 = 2;

/// HTTP header that carries the run token in the websocket handshake.
pub const TOKEN_HEADER: &str = "x-stampede-token";
