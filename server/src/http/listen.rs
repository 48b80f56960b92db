//! The accept loop: each TCP connection is counted against its address,
//! served by hyper with a deadline on reading a request's headers, and shut
//! down gracefully with the server.
//!
//! `axum::serve` has neither a header-read timeout nor a cap per address,
//! so connections are served here, one tracked task each, the way it does
//! (HTTP/1.1 with upgrades, for the WebSockets).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::HttpLimits;

/// How long the loop waits after an accept error that is not the peer's
/// (out of file descriptors, say): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown`; then stops accepting and
/// lets each open connection finish its request (each is a task on
/// `tracker`, which `run` waits for under its deadline). A connection
/// upgraded to a WebSocket leaves hyper and lives in its socket's task.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) {
    let addresses = Arc::new(Addresses::new(limits.max_connections_per_ip));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The deadline runs from the connection's start, or from the end of its
    // previous response, to the end of the next request's headers: a client
    // sending them a byte at a time, or nothing, is cut off at it.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_peer_error(&error) {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        let Some(place) = addresses.admit(peer.ip()) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
            drop(stream);
            continue;
        };
        // Nagle's algorithm adds up to 40 ms to small frames: turn it off.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(Counted {
            stream,
            _place: place,
        });
        let connection = builder
            .serve_connection(io, TowerToHyperService::new(app.clone()))
            .with_upgrades();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

/// Errors of one connection that arrived and went before it was accepted:
/// nothing is wrong with the listener.
fn is_peer_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Open connections per client address.
struct Addresses {
    /// Most connections one address may hold open at once (0: no cap).
    max: usize,
    /// Addresses with at least one connection open, and how many.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Addresses {
    fn new(max: usize) -> Self {
        Addresses {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection from `ip`, or None when it has `max`.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Place> {
        if self.max == 0 {
            return Some(Place(None));
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Place(Some((self.clone(), ip))))
    }
}

/// One connection's place among its address's; freed when the connection
/// closes (an upgraded WebSocket holds it until the socket closes).
struct Place(Option<(Arc<Addresses>, IpAddr)>);

impl Drop for Place {
    fn drop(&mut self) {
        let Some((addresses, ip)) = self.0.take() else {
            return;
        };
        let mut open = addresses
            .open
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// A TCP stream that holds its address's place while it lives: hyper hands
/// it to the WebSocket on an upgrade, so sockets count too.
struct Counted {
    stream: TcpStream,
    _place: Place,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(context, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(context, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap_and_places_free_on_drop() {
        let addresses = Arc::new(Addresses::new(2));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let first = addresses.admit(ip);
        let second = addresses.admit(ip);
        assert!(first.is_some() && second.is_some());
        assert!(addresses.admit(ip).is_none());
        assert!(addresses.admit(other).is_some());
        drop(first);
        assert!(addresses.admit(ip).is_some());
        drop(second);
        let open = addresses.open.lock().map(|open| open.len()).unwrap_or(99);
        assert_eq!(open, 0, "addresses with nothing open are forgotten");
    }

    #[test]
    fn no_cap_admits_everything() {
        let addresses = Arc::new(Addresses::new(0));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let places: Vec<_> = (0..1000).filter_map(|_| addresses.admit(ip)).collect();
        assert_eq!(places.len(), 1000);
    }
}
