//! Opening client WebSockets: optional source-address binding, small
//! buffers, and a short description of why a connection failed.
//!
//! One source address has one ephemeral port range (about 28,000 ports), so
//! past that a generator binds its sockets round-robin to several loopback
//! addresses (`--source-addrs 127.0.0.1,127.0.0.2`). tungstenite's default
//! buffers are 128 KiB each way per socket; with tens of thousands of idle
//! sockets that would make the generator, not the server, run out of memory,
//! so the buffers are sized for the small frames this protocol carries.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::config::Target;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// How long a TCP connect plus upgrade may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Per-socket read and write buffer: a few frames of this protocol.
const BUFFER_BYTES: usize = 8 * 1024;
/// Largest message accepted: a whole document's sync step 2 at the end of a
/// long run, with room to spare (the Crowdroom server caps documents at 16 MiB).
const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Opens WebSockets to one server from a rotating set of source addresses.
pub struct Connector {
    target: Target,
    sources: Vec<IpAddr>,
    next_source: AtomicUsize,
    config: WebSocketConfig,
}

impl Connector {
    /// `sources` empty: the kernel picks the source address.
    pub fn new(target: Target, sources: Vec<IpAddr>) -> Connector {
        let config = WebSocketConfig::default()
            .read_buffer_size(BUFFER_BYTES)
            .write_buffer_size(BUFFER_BYTES)
            .max_write_buffer_size(MAX_MESSAGE_BYTES)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        Connector {
            target,
            sources,
            next_source: AtomicUsize::new(0),
            config,
        }
    }

    /// The server this connector reaches.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Connects and upgrades `path_and_query` (starting with `/`). The error
    /// is a short cause for the error table ("connect: refused", "upgrade: http 401").
    pub async fn open(&self, path_and_query: &str) -> Result<Ws, String> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open_inner(path_and_query)).await {
            Ok(result) => result,
            Err(_elapsed) => Err("connect: timed out".to_owned()),
        }
    }

    async fn open_inner(&self, path_and_query: &str) -> Result<Ws, String> {
        let socket = TcpSocket::new_v4().map_err(|error| io_cause("socket", &error))?;
        if !self.sources.is_empty() {
            let index = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            // No SO_REUSEADDR: with it, port 0 may pick a port another of our
            // sockets holds, and the connect then fails.
            socket
                .bind((self.sources[index], 0).into())
                .map_err(|error| io_cause("bind", &error))?;
        }
        let stream = socket
            .connect(self.target.addr)
            .await
            .map_err(|error| io_cause("connect", &error))?;
        // Latency is what is measured: never let Nagle hold a small frame back.
        stream
            .set_nodelay(true)
            .map_err(|error| io_cause("connect", &error))?;
        let url = format!("ws://{}{path_and_query}", self.target.authority);
        match client_async_with_config(url, stream, Some(self.config)).await {
            Ok((ws, _response)) => Ok(ws),
            Err(WsError::Http(response)) => {
                Err(format!("upgrade: http {}", response.status().as_u16()))
            }
            Err(WsError::Io(error)) => Err(io_cause("upgrade", &error)),
            Err(error) => Err(format!("upgrade: {}", short(&error.to_string()))),
        }
    }
}

/// A cause that groups well: the error kind, not the full message.
fn io_cause(stage: &str, error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let kind = match error.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::ConnectionReset => "reset",
        ErrorKind::AddrInUse => "address in use",
        ErrorKind::AddrNotAvailable => "address not available (out of ports?)",
        ErrorKind::TimedOut => "timed out",
        ErrorKind::UnexpectedEof => "closed by server",
        _ if error.raw_os_error() == Some(24) => "too many open files",
        _ => return format!("{stage}: {}", short(&error.to_string())),
    };
    format!("{stage}: {kind}")
}

/// Error messages can embed addresses and ports; keep the table readable.
fn short(message: &str) -> String {
    message.chars().take(60).collect()
}

/// Cause for a WebSocket error after the connection was open.
pub fn read_cause(error: &WsError) -> String {
    match error {
        WsError::Io(error) => io_cause("read", error),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".to_owned(),
        WsError::Capacity(_) => "read: message too big".to_owned(),
        WsError::Protocol(protocol) => format!("read: protocol: {}", short(&protocol.to_string())),
        other => format!("read: {}", short(&other.to_string())),
    }
}
