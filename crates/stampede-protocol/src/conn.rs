//! Token-checked websocket connections that carry whole [`Message`]s.
//!
//! Split of concerns: the handshake (token, protocol version) is here; what each tier does with
//! messages is in the tiers. A malformed frame surfaces as [`RecvError::Malformed`] so the tier
//! can close that one connection with a reason and count it — never panic, never stall others.

use futures_util::stream::{SplitSink, SplitStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
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

/// How much one socket read may take in. tungstenite zero-fills this much of its input buffer
/// before every read (128 KiB by default): that memset was the largest single cost of a small
/// request's round trip, and it made every connection's whole buffer resident — 128 KiB per
/// action, 32 MiB in a scenario holding 250. Messages are small; a large payload just takes
/// more reads.
const READ_BUFFER_BYTES: usize = 16 * 1024;

fn ws_config(max_message_bytes: usize) -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = READ_BUFFER_BYTES;
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
    /// Nothing (not even a ping) arrived for this long: the peer is stopped, frozen or cut off.
    #[error("peer stalled: nothing received for {0:?}")]
    Stalled(Duration),
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
    // Three outcomes: no HTTP request at all (a handshake failure), a request without the
    // token (refused), or a token and then a broken upgrade (a handshake failure).
    let mut token_checked = false;
    let mut token_ok = false;
    // The error type is tungstenite's HTTP response; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        token_checked = true;
        // Exactly one token header: with two, a proxy and this check might read different ones.
        let mut all = req.headers().get_all(TOKEN_HEADER).iter();
        let presented = match (all.next(), all.next()) {
            (Some(v), None) => v.to_str().ok(),
            _ => None,
        };
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
        Err(_) if token_checked && !token_ok => Err(AcceptError::BadToken { peer }),
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
    ///
    /// From here on the link is watched for liveness: the sender pings the peer every
    /// [`PING_INTERVAL`] (both ends do), every send has [`SEND_TIMEOUT`], and the receiver fails
    /// with [`RecvError::Stalled`] when nothing at all arrived for [`LIVENESS`] — so a stopped
    /// or frozen peer is found within that deadline whatever the tier was doing.
    pub fn split(self) -> (Sender<S>, Receiver<S>)
    where
        S: Send + 'static,
    {
        let (sink, stream) = self.ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let broken = Arc::new(AtomicBool::new(false));
        spawn_pinger(Arc::downgrade(&sink), broken.clone());
        let quiet = Liveness::default();
        let now = tokio::time::Instant::now();
        let alarm = Box::pin(tokio::time::sleep_until(now + LIVENESS));
        (Sender { sink, broken }, Receiver { stream, quiet, last_frame: now, alarm, in_grace: false })
    }
}

/// How often each end of a split link pings the other.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A link on which nothing (message, ping or pong) arrived for this long has a stalled peer.
/// Four missed pings: a loaded host delays them, a stopped process sends none.
pub const LIVENESS: Duration = Duration::from_secs(20);
/// A send that cannot hand its message to the socket within this long has a stalled peer
/// (its receive buffer is full because it stopped reading).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// After [`LIVENESS`] expired, how long the receiver still looks for a frame already on its way:
/// a process thawed after a freeze sees its timers fire before it read what had arrived.
const LIVENESS_GRACE: Duration = Duration::from_secs(1);

type Sink<S> = SplitSink<WebSocketStream<S>, WsMessage>;

fn spawn_pinger<S>(sink: std::sync::Weak<tokio::sync::Mutex<Sink<S>>>, broken: Arc<AtomicBool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // The link's owner dropped the sender: the link is over, and so is the pinging.
            let Some(sink) = sink.upgrade() else { return };
            let sent = tokio::time::timeout(SEND_TIMEOUT, async { sink.lock().await.send(WsMessage::Ping(Vec::new().into())).await }).await;
            if !matches!(sent, Ok(Ok(()))) {
                broken.store(true, Ordering::Relaxed);
                return;
            }
        }
    });
}

/// The sending half of a split link. Sends take `&self` (the socket is behind a lock, so they
/// are serialised); cloning shares the one socket.
pub struct Sender<S> {
    sink: Arc<tokio::sync::Mutex<Sink<S>>>,
    /// Set once a send (or ping) timed out or failed: the stream is no longer usable.
    broken: Arc<AtomicBool>,
}

impl<S> Clone for Sender<S> {
    fn clone(&self) -> Self {
        Self { sink: self.sink.clone(), broken: self.broken.clone() }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sender<S> {
    /// Send within [`SEND_TIMEOUT`]; a timeout marks the link broken (the peer stopped reading).
    pub async fn send(&self, m: &Message) -> Result<(), SendError> {
        self.send_within(m, SEND_TIMEOUT).await
    }

    /// Send within `limit` (a request's own deadline, say). A failure, or a timeout of at least
    /// [`SEND_TIMEOUT`], marks the link broken; a shorter timeout only fails this message (a
    /// cancelled send leaves whole frames behind: the next send finishes flushing them).
    pub async fn send_within(&self, m: &Message, limit: Duration) -> Result<(), SendError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(SendError { kind: m.kind(), reason: "the link is broken (an earlier send failed or timed out)".into() });
        }
        match tokio::time::timeout(limit, async { send_on(&mut *self.sink.lock().await, m).await }).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.broken.store(true, Ordering::Relaxed);
                Err(e)
            }
            Err(_) => {
                if limit >= SEND_TIMEOUT {
                    self.broken.store(true, Ordering::Relaxed);
                }
                Err(SendError { kind: m.kind(), reason: format!("not taken by the peer within {limit:?} (stalled?)") })
            }
        }
    }

    /// Whether a send on this link failed or timed out (the peer is gone or stalled).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    pub async fn close(&self, reason: &str) {
        let frame = CloseFrame { code: CloseCode::Policy, reason: reason.to_owned().into() };
        let _ = tokio::time::timeout(SEND_TIMEOUT, async { self.sink.lock().await.send(WsMessage::Close(Some(frame))).await }).await;
    }
    /// Close normally: the work is done.
    pub async fn finish(&self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "done".into() };
        let _ = tokio::time::timeout(SEND_TIMEOUT, async { self.sink.lock().await.send(WsMessage::Close(Some(frame))).await }).await;
    }
}

/// Holds the receiver's liveness deadline off while the owner knows the peer is silent on
/// purpose (it paused the peer). Counted: nested holds are fine.
#[derive(Clone, Default)]
pub struct Liveness(Arc<AtomicU32>);

/// While alive, the link's silence is expected; dropping it restarts the liveness deadline.
pub struct QuietGuard(Arc<AtomicU32>);

impl Liveness {
    pub fn hold(&self) -> QuietGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        QuietGuard(self.0.clone())
    }
    fn held(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

impl Drop for QuietGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Receiver<S> {
    stream: SplitStream<WebSocketStream<S>>,
    quiet: Liveness,
    /// When the last frame of any kind arrived.
    last_frame: tokio::time::Instant,
    /// One timer for the link's life, moved only when it fires: a timer armed and dropped
    /// around every read cost each message two trips through the runtime's timer wheel.
    alarm: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// The alarm is in the [`LIVENESS_GRACE`] after a silence of [`LIVENESS`].
    in_grace: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Receiver<S> {
    /// The next message; [`RecvError::Stalled`] when nothing arrived for [`LIVENESS`] (and no
    /// [`Liveness::hold`] was in force).
    pub async fn recv(&mut self) -> Result<Message, RecvError> {
        loop {
            let frame = tokio::select! {
                biased;
                frame = self.stream.next() => frame,
                () = &mut self.alarm => {
                    let now = tokio::time::Instant::now();
                    let silent = now.saturating_duration_since(self.last_frame);
                    if silent < LIVENESS {
                        // Frames came since the alarm was set: it goes off LIVENESS after the last.
                        self.in_grace = false;
                        self.alarm.as_mut().reset(self.last_frame + LIVENESS);
                    } else if !self.in_grace {
                        // A process thawed after a freeze sees its timers fire before it reads
                        // what had arrived: look a little longer.
                        self.in_grace = true;
                        self.alarm.as_mut().reset(now + LIVENESS_GRACE);
                    } else if self.quiet.held() {
                        // Silent on purpose (paused by its owner): watch again from now.
                        self.in_grace = false;
                        self.last_frame = now;
                        self.alarm.as_mut().reset(now + LIVENESS);
                    } else {
                        return Err(RecvError::Stalled(LIVENESS));
                    }
                    continue;
                }
            };
            self.last_frame = tokio::time::Instant::now();
            if let Some(m) = decode_frame(frame)? {
                return Ok(m);
            }
        }
    }

    /// The handle that holds this receiver's liveness deadline off (see [`Liveness`]).
    pub fn liveness(&self) -> Liveness {
        self.quiet.clone()
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

/// The next message on `stream` (no liveness watch: before the link is split).
async fn recv_on<K>(stream: &mut K) -> Result<Message, RecvError>
where
    K: futures_util::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        if let Some(m) = decode_frame(stream.next().await)? {
            return Ok(m);
        }
    }
}

/// What one frame from the stream means: a message, nothing (control frames), or the end.
fn decode_frame(frame: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>) -> Result<Option<Message>, RecvError> {
    match frame {
        None => Err(RecvError::Closed),
        Some(Err(e)) => Err(match e {
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
        }),
        Some(Ok(WsMessage::Text(t))) => decode(t.as_str()).map(Some),
        Some(Ok(WsMessage::Binary(_))) => Err(RecvError::Malformed("binary frame; messages are JSON text".into())),
        Some(Ok(WsMessage::Close(_))) => Err(RecvError::Closed),
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => Ok(None),
    }
}
