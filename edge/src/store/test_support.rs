//! What the store adapters' integration tests share: ports, and a server
//! that accepts and never answers (for timeouts).

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;

use tokio::task::JoinHandle;

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server on a free port that accepts connections and never answers; it
/// holds them until the returned task is dropped with the test's runtime.
pub async fn silent_server() -> (u16, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (port, hold)
}
