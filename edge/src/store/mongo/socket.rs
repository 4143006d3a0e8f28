//! The worker's side of [`Connector`]: a fresh `worker::Socket` per request
//! (a socket cannot serve a later request), TLS through the socket's secure
//! transport when the URL says `tls=true`, and the worker's timer.

use std::time::Duration;

use worker::{Delay, SecureTransport, Socket};

use super::Connector;

#[derive(Debug)]
pub struct WorkerSocket;

impl Connector for WorkerSocket {
    type Conn = Socket;

    async fn connect(&self, host: &str, port: u16, tls: bool) -> std::io::Result<Socket> {
        let io = |e: worker::Error| std::io::Error::other(e.to_string());
        let transport = if tls {
            SecureTransport::On
        } else {
            SecureTransport::Off
        };
        let socket = Socket::builder()
            .secure_transport(transport)
            .connect(host.to_owned(), port)
            .map_err(io)?;
        // Surfaces a refused connection (or a failed TLS handshake) here
        // rather than at the first write.
        socket.opened().await.map_err(io)?;
        Ok(socket)
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        Delay::from(Duration::from_millis(ms))
    }
}
