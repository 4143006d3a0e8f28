//! Idle connections kept between exchanges, for a store that lives longer
//! than one request (inside the `StoreGateway` Durable Object, whose sockets
//! serve every later request to the object). A connection is taken for one
//! exchange at a time and given back only after a clean one, so two
//! exchanges never share a connection; a failed or timed-out exchange drops
//! its connection instead. In a plain worker request a socket cannot outlive
//! the request, so the store there uses [`Pool::disabled`], which keeps nothing.

use std::cell::RefCell;

use super::StoreError;

/// A connection a pool can keep.
pub trait Reusable {
    /// Whether the last exchange left it ready for the next: set up and with
    /// no bytes beyond the replies read (a reply nobody asked for would be
    /// taken for the next exchange's).
    fn reusable(&self) -> bool;
}

/// How many connections to keep and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Idle connections kept; more in flight at once are opened and closed.
    pub max_idle: usize,
    /// An idle connection older than this is closed rather than reused:
    /// servers and middleboxes drop quiet connections (Redis's `timeout`,
    /// MongoDB's `maxIdleTimeMS`, NAT tables), and a reused dead one costs a
    /// failed write before the reconnect.
    pub max_idle_ms: u64,
}

impl PoolLimits {
    /// Nothing kept: one connection per exchange.
    pub const NONE: Self = Self {
        max_idle: 0,
        max_idle_ms: 0,
    };
}

#[derive(Debug)]
struct Idle<T> {
    conn: T,
    since_ms: f64,
}

/// Idle connections, newest last. Never borrowed across an await: `take` and
/// `put` are plain calls, so concurrent exchanges of one object interleave safely.
#[derive(Debug)]
pub struct Pool<T> {
    idle: RefCell<Vec<Idle<T>>>,
    limits: PoolLimits,
}

impl<T> Pool<T> {
    pub fn new(limits: PoolLimits) -> Self {
        Self {
            idle: RefCell::new(Vec::new()),
            limits,
        }
    }

    /// A pool that keeps nothing.
    pub fn disabled() -> Self {
        Self::new(PoolLimits::NONE)
    }

    pub fn limits(&self) -> PoolLimits {
        self.limits
    }

    /// The most recently used idle connection that is young enough; older
    /// ones are dropped on the way. The caller owns it until it gives it back.
    pub fn take(&self, now_ms: f64) -> Option<T> {
        let mut idle = self.idle.borrow_mut();
        let oldest_ok = now_ms - self.limits.max_idle_ms as f64;
        // Entries are in the order they were given back, so the stale ones
        // are a prefix.
        let fresh_from = idle
            .iter()
            .position(|i| i.since_ms >= oldest_ok)
            .unwrap_or(idle.len());
        idle.drain(..fresh_from);
        idle.pop().map(|i| i.conn)
    }

    /// Gives back a connection after a clean exchange; dropped when the pool
    /// is full.
    pub fn put(&self, conn: T, now_ms: f64) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < self.limits.max_idle {
            idle.push(Idle {
                conn,
                since_ms: now_ms,
            });
        }
    }

    /// Closes every idle connection (their server is no longer the one to use).
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }

    /// How many connections are idle now.
    pub fn idle(&self) -> usize {
        self.idle.borrow().len()
    }
}

impl<T: Reusable> Pool<T> {
    /// Runs `work` on an idle connection, or on a new one from `connect`,
    /// and keeps the connection after a clean exchange; an error drops it.
    /// An I/O error on an idle connection (the server restarted or closed it
    /// while it waited) runs `work` again, once, on a new connection: `work`
    /// must be safe to repeat, as the stores' writes are by their batch
    /// markers. The caller bounds the whole in time; a connection in use
    /// when that bound cuts the future off is dropped with it.
    pub async fn run<R>(
        &self,
        now_ms: impl Fn() -> f64,
        connect: impl AsyncFnOnce() -> Result<T, StoreError>,
        work: impl AsyncFn(&mut T) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if let Some(mut conn) = self.take(now_ms()) {
            match work(&mut conn).await {
                Ok(out) => {
                    self.give_back(conn, now_ms());
                    return Ok(out);
                }
                Err(StoreError::Io(_)) => drop(conn),
                Err(e) => return Err(e),
            }
        }
        let mut conn = connect().await?;
        let out = work(&mut conn).await?;
        self.give_back(conn, now_ms());
        Ok(out)
    }

    fn give_back(&self, conn: T, now_ms: f64) {
        if conn.reusable() {
            self.put(conn, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PoolLimits = PoolLimits {
        max_idle: 2,
        max_idle_ms: 1_000,
    };

    #[test]
    fn reuses_the_most_recent_idle_connection() {
        let pool = Pool::new(LIMITS);
        assert_eq!(pool.take(0.0), None);
        pool.put("a", 10.0);
        pool.put("b", 20.0);
        assert_eq!(pool.take(30.0), Some("b"));
        assert_eq!(pool.take(30.0), Some("a"));
        assert_eq!(pool.take(30.0), None);
    }

    #[test]
    fn keeps_at_most_max_idle() {
        let pool = Pool::new(LIMITS);
        for (i, c) in ["a", "b", "c"].into_iter().enumerate() {
            pool.put(c, i as f64);
        }
        assert_eq!(pool.idle(), 2);
        assert_eq!(pool.take(5.0), Some("b"));
    }

    #[test]
    fn drops_connections_idle_too_long() {
        let pool = Pool::new(LIMITS);
        pool.put("old", 0.0);
        pool.put("young", 900.0);
        assert_eq!(pool.take(1_500.0), Some("young"));
        // `old` went past max_idle_ms and was dropped, not handed out.
        assert_eq!(pool.idle(), 0);
        assert_eq!(pool.take(1_500.0), None);
    }

    /// A fake connection: its id, and whether its next exchange fails.
    #[derive(Debug, PartialEq)]
    struct Fake {
        id: u32,
        fail: Option<StoreError>,
        clean: bool,
    }

    impl Reusable for Fake {
        fn reusable(&self) -> bool {
            self.clean
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("no real I/O in these tests")
    }

    /// Runs one exchange that answers the id of the connection it ran on.
    fn exchange(pool: &Pool<Fake>, opened: &std::cell::Cell<u32>) -> Result<u32, StoreError> {
        block_on(pool.run(
            || 0.0,
            async || {
                opened.set(opened.get() + 1);
                Ok(Fake {
                    id: opened.get(),
                    fail: None,
                    clean: true,
                })
            },
            async |conn: &mut Fake| match conn.fail.take() {
                Some(e) => Err(e),
                None => Ok(conn.id),
            },
        ))
    }

    #[test]
    fn run_reuses_a_clean_connection() {
        let pool = Pool::new(LIMITS);
        let opened = std::cell::Cell::new(0);
        assert_eq!(exchange(&pool, &opened), Ok(1));
        assert_eq!(exchange(&pool, &opened), Ok(1));
        assert_eq!(opened.get(), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn run_replaces_an_idle_connection_that_fails_with_io() {
        let pool = Pool::new(LIMITS);
        let opened = std::cell::Cell::new(0);
        pool.put(
            Fake {
                id: 100,
                fail: Some(StoreError::Io("reset".into())),
                clean: true,
            },
            0.0,
        );
        // Run again on a new connection, which is kept.
        assert_eq!(exchange(&pool, &opened), Ok(1));
        assert_eq!(opened.get(), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn run_drops_a_connection_after_any_other_error_without_retrying() {
        let pool = Pool::new(LIMITS);
        let opened = std::cell::Cell::new(0);
        let refused = StoreError::Server("ERR script".into());
        pool.put(
            Fake {
                id: 100,
                fail: Some(refused.clone()),
                clean: true,
            },
            0.0,
        );
        assert_eq!(exchange(&pool, &opened), Err(refused));
        assert_eq!(opened.get(), 0);
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn run_keeps_no_connection_that_is_not_clean() {
        let pool = Pool::new(LIMITS);
        let out = block_on(pool.run(
            || 0.0,
            async || {
                Ok(Fake {
                    id: 1,
                    fail: None,
                    clean: false,
                })
            },
            async |conn: &mut Fake| Ok(conn.id),
        ));
        assert_eq!(out, Ok(1));
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn a_disabled_pool_keeps_nothing() {
        let pool = Pool::disabled();
        pool.put("a", 0.0);
        assert_eq!(pool.take(0.0), None);
    }
}
