//! The worker's side of [`Connector`]: a `worker::Socket` (closed when
//! dropped), TLS through the socket's secure transport when the URL says
//! `tls=true`, and the worker's timer and clock.

use std::time::Duration;

use worker::{Delay, js_sys};

use super::Connector;
use crate::store::socket::ClosingSocket;

#[derive(Debug)]
pub struct WorkerSocket;

impl Connector for WorkerSocket {
    type Conn = ClosingSocket;

    async fn connect(&self, host: &str, port: u16, tls: bool) -> std::io::Result<ClosingSocket> {
        ClosingSocket::connect(host, port, tls).await
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        Delay::from(Duration::from_millis(ms))
    }

    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}
