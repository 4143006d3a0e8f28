//! A `worker::Socket` that closes itself when dropped. A socket held by the
//! `StoreGateway` Durable Object is not closed by the end of a request, so a
//! connection the pool drops (after an error, a timeout, or too long idle)
//! would otherwise stay open on the server until the object is evicted.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use worker::{SecureTransport, Socket, wasm_bindgen_futures::spawn_local};

#[derive(Debug)]
pub struct ClosingSocket(Option<Socket>);

impl ClosingSocket {
    /// Connects and waits until the socket is open, so a refused connection
    /// (or a failed TLS handshake) surfaces here rather than at the first write.
    pub async fn connect(host: &str, port: u16, tls: bool) -> io::Result<Self> {
        let io = |e: worker::Error| io::Error::other(e.to_string());
        let transport = if tls {
            SecureTransport::On
        } else {
            SecureTransport::Off
        };
        let socket = Socket::builder()
            .secure_transport(transport)
            .connect(host.to_owned(), port)
            .map_err(io)?;
        let socket = Self(Some(socket));
        socket.inner().opened().await.map_err(io)?;
        Ok(socket)
    }

    fn inner(&self) -> &Socket {
        self.0
            .as_ref()
            .expect("a ClosingSocket holds its socket until dropped")
    }

    fn pinned(self: Pin<&mut Self>) -> Pin<&mut Socket> {
        Pin::new(
            self.get_mut()
                .0
                .as_mut()
                .expect("a ClosingSocket holds its socket until dropped"),
        )
    }
}

impl Drop for ClosingSocket {
    fn drop(&mut self) {
        if let Some(mut socket) = self.0.take() {
            spawn_local(async move {
                // Closing an already failed socket errs; nothing to do then.
                let _ = socket.close().await;
            });
        }
    }
}

impl AsyncRead for ClosingSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.pinned().poll_read(cx, buf)
    }
}

impl AsyncWrite for ClosingSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pinned().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pinned().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pinned().poll_shutdown(cx)
    }
}
