//! A TCP listener whose connections can be cut from the server side, so the fault "drop a
//! device's socket" is a real transport loss (the client sees its connection close), not a
//! polite Socket.IO namespace disconnect.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The peer address of a connection (the `ConnectInfo` of the devserver's router).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, KillableListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

#[derive(Default)]
struct KillSwitch {
    killed: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

/// Live connections by peer address.
#[derive(Default)]
pub struct Connections {
    by_peer: Mutex<HashMap<SocketAddr, Weak<KillSwitch>>>,
}

impl Connections {
    fn track(&self, peer: SocketAddr) -> Arc<KillSwitch> {
        let switch = Arc::new(KillSwitch::default());
        let mut map = self.by_peer.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(peer, Arc::downgrade(&switch));
        switch
    }

    /// Cuts the connection from `peer`: its pending and later reads and writes fail, and the server
    /// drops the TCP stream. `false` if there is no such live connection.
    pub fn kill(&self, peer: SocketAddr) -> bool {
        let switch = self
            .by_peer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer)
            .and_then(|w| w.upgrade());
        let Some(switch) = switch else { return false };
        switch.killed.store(true, Ordering::SeqCst);
        if let Some(w) = switch
            .reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            w.wake();
        }
        true
    }
}

pub struct KillableListener {
    pub inner: TcpListener,
    pub connections: Arc<Connections>,
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.inner).await;
        let switch = self.connections.track(addr);
        (KillableStream { inner: io, switch }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

pub struct KillableStream {
    inner: TcpStream,
    switch: Arc<KillSwitch>,
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by a devserver fault",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(cut()));
        }
        *self.switch.reader.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
