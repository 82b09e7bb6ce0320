//! Token-checked websocket connections that carry whole [`Message`]s.
//!
//! Split of concerns: the handshake (token, protocol version) is here; what each tier does with
//! messages is in the tiers. A malformed frame surfaces as [`RecvError::Malformed`] so the tier
//! can close that one connection with a reason and count it — never panic, never stall others.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Message, TOKEN_HEADER};

/// The cap on one message before the scenario says more: a hello, an assignment (a group's
/// whole definition) or a ready fit well inside it. Each tier passes its own, computed from
/// what the scenario can legitimately send (payload sizes, report size), to [`accept`] and
/// [`connect`]; this is the default for tools and tests.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

fn ws_config(max_message_bytes: usize) -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.max_message_size = Some(max_message_bytes);
    c.max_frame_size = Some(max_message_bytes);
    c
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("connection from {peer} refused: missing or wrong run token")]
    BadToken { peer: String },
    #[error("websocket handshake with {peer} failed: {reason}")]
    Handshake { peer: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} refused the connection: the run token was not accepted")]
    Refused { url: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error("connection closed")]
    Closed,
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message or frame over the connection's size cap.
    #[error("message too large: {0}")]
    TooLarge(String),
    #[error("transport error: {0}")]
    Transport(String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot send {kind} message: {reason}")]
pub struct SendError {
    pub kind: &'static str,
    pub reason: String,
}

/// Accept a websocket on `stream` (from `peer`, for messages), refusing it (HTTP 401) unless it
/// carries `token`; messages larger than `max_message_bytes` end the connection.
///
/// Generic over the stream so the handshake can be driven from memory (fuzzing, tests).
pub async fn accept<S>(stream: S, peer: &str, token: &str, max_message_bytes: usize) -> Result<Conn<S>, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = peer.to_owned();
    let mut token_ok = false;
    // The error type is tungstenite's HTTP response; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let presented = req.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
        // Constant-time comparison is overkill for a per-run random token on a test bench,
        // but it costs nothing and keeps the check honest.
        if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
            token_ok = true;
            Ok(resp)
        } else {
            let mut r = ErrorResponse::new(Some("missing or wrong run token".into()));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            Err(r)
        }
    };
    match tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config(max_message_bytes))).await {
        Ok(ws) => Ok(Conn { ws }),
        Err(_) if !token_ok => Err(AcceptError::BadToken { peer }),
        Err(e) => Err(AcceptError::Handshake { peer, reason: e.to_string() }),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The stream under a connection made with [`connect`].
pub type ClientStream = MaybeTlsStream<TcpStream>;
pub type ClientConn = Conn<ClientStream>;

/// Connect to a parent at `url` (`ws://host:port/`), presenting the run token; messages from
/// the parent larger than `max_message_bytes` end the connection.
pub async fn connect(url: &str, token: &str, max_message_bytes: usize) -> Result<ClientConn, ConnectError> {
    let mut req = url
        .into_client_request()
        .map_err(|e| ConnectError::Connect { url: url.to_owned(), reason: e.to_string() })?;
    let value = HeaderValue::from_str(token)
        .map_err(|_| ConnectError::Connect { url: url.to_owned(), reason: "run token is not a valid header value".into() })?;
    req.headers_mut().insert(TOKEN_HEADER, value);
    match tokio_tungstenite::connect_async_with_config(req, Some(ws_config(max_message_bytes)), true).await {
        Ok((ws, _)) => Ok(Conn { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == StatusCode::UNAUTHORIZED => {
            Err(ConnectError::Refused { url: url.to_owned() })
        }
        Err(e) => Err(ConnectError::Connect { url: url.to_owned(), reason: e.to_string() }),
    }
}

/// One websocket carrying [`Message`]s.
pub struct Conn<S> {
    ws: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub async fn send(&mut self, m: &Message) -> Result<(), SendError> {
        send_on(&mut self.ws, m).await
    }

    pub async fn recv(&mut self) -> Result<Message, RecvError> {
        recv_on(&mut self.ws).await
    }

    /// Close with a reason the peer can log (policy violation for protocol errors).
    pub async fn close(mut self, reason: &str) {
        let frame = CloseFrame { code: CloseCode::Policy, reason: reason.to_owned().into() };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// Split into independently owned halves, so one task can read while another writes.
    pub fn split(self) -> (Sender<S>, Receiver<S>) {
        let (sink, stream) = self.ws.split();
        (Sender { sink }, Receiver { stream })
    }
}

pub struct Sender<S> {
    sink: SplitSink<WebSocketStream<S>, WsMessage>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sender<S> {
    pub async fn send(&mut self, m: &Message) -> Result<(), SendError> {
        send_on(&mut self.sink, m).await
    }
    pub async fn close(&mut self, reason: &str) {
        let frame = CloseFrame { code: CloseCode::Policy, reason: reason.to_owned().into() };
        let _ = self.sink.send(WsMessage::Close(Some(frame))).await;
    }
    /// Close normally: the work is done.
    pub async fn finish(&mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "done".into() };
        let _ = self.sink.send(WsMessage::Close(Some(frame))).await;
    }
}

pub struct Receiver<S> {
    stream: SplitStream<WebSocketStream<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Receiver<S> {
    pub async fn recv(&mut self) -> Result<Message, RecvError> {
        recv_on(&mut self.stream).await
    }
}

/// One message from its JSON text; anything else is [`RecvError::Malformed`], never a panic.
pub fn decode(text: &str) -> Result<Message, RecvError> {
    serde_json::from_str(text).map_err(|e| RecvError::Malformed(e.to_string()))
}

async fn send_on<K>(sink: &mut K, m: &Message) -> Result<(), SendError>
where
    K: futures_util::Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let text = serde_json::to_string(m).map_err(|e| SendError { kind: m.kind(), reason: e.to_string() })?;
    sink.send(WsMessage::text(text)).await.map_err(|e| SendError { kind: m.kind(), reason: e.to_string() })
}

async fn recv_on<K>(stream: &mut K) -> Result<Message, RecvError>
where
    K: futures_util::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            None => return Err(RecvError::Closed),
            Some(Err(e)) => {
                return Err(match e {
                    tokio_tungstenite::tungstenite::Error::ConnectionClosed
                    | tokio_tungstenite::tungstenite::Error::AlreadyClosed
                    // A peer that exits (or is killed) without a closing handshake is gone,
                    // not malformed: the tier decides whether that was expected.
                    | tokio_tungstenite::tungstenite::Error::Protocol(
                        tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ) => RecvError::Closed,
                    // A frame that breaks the websocket protocol itself is the peer's fault.
                    tokio_tungstenite::tungstenite::Error::Protocol(p) => RecvError::Malformed(p.to_string()),
                    tokio_tungstenite::tungstenite::Error::Utf8(e) => RecvError::Malformed(e),
                    tokio_tungstenite::tungstenite::Error::Capacity(c) => RecvError::TooLarge(c.to_string()),
                    other => RecvError::Transport(other.to_string()),
                })
            }
            Some(Ok(WsMessage::Text(t))) => return decode(t.as_str()),
            Some(Ok(WsMessage::Binary(_))) => return Err(RecvError::Malformed("binary frame; messages are JSON text".into())),
            Some(Ok(WsMessage::Close(_))) => return Err(RecvError::Closed),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
        }
    }
}
