//! The worker's side of [`Connector`]: a `worker::Socket` (TLS for
//! `rediss://`), the worker's timer and clock.

use std::time::Duration;

use worker::{Delay, js_sys};

use super::{Connector, RedisUrl};
use crate::store::socket::ClosingSocket;

#[derive(Debug)]
pub struct SocketConnector;

impl Connector for SocketConnector {
    type Conn = ClosingSocket;

    async fn connect(&self, url: &RedisUrl) -> std::io::Result<ClosingSocket> {
        ClosingSocket::connect(&url.host, url.port, url.tls).await
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        Delay::from(Duration::from_millis(ms))
    }

    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}
