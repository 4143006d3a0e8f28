//! Idle connections kept between exchanges, for a store that lives longer
//! than one request (inside the `StoreGateway` Durable Object, whose sockets
//! serve every later request to the object). A connection is taken for one
//! exchange at a time and given back only after a clean one, so two
//! exchanges never share a connection; a failed or timed-out exchange drops
//! its connection instead. In a plain worker request a socket cannot outlive
//! the request, so the store there uses [`Pool::disabled`], which keeps nothing.

use std::cell::RefCell;

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

    /// How many connections are idle now.
    pub fn idle(&self) -> usize {
        self.idle.borrow().len()
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

    #[test]
    fn a_disabled_pool_keeps_nothing() {
        let pool = Pool::disabled();
        pool.put("a", 0.0);
        assert_eq!(pool.take(0.0), None);
    }
}
