//! The tracker's state machine, free of the browser: what `track`, `identify`,
//! `flush`, an answer from the edge and the unload path do to the queue.
//! Time is passed in as Unix milliseconds and randomness comes through
//! [`Entropy`], so the tests drive it with a fake clock and a seeded source.

use freshet_core::wire::{is_valid_event_type, is_valid_id};

use crate::config::{Config, MAX_EVENT_BYTES};
use crate::encode::{fnv1a, push_field, rfc3339_ms, uuid_v7};
use crate::error::TrackerError;
use crate::queue::{BatchLimits, ENVELOPE_BYTES, Queue, Settle};
use crate::retry::{Attempt, Disposition, dispose};
use crate::session::Session;

/// Randomness for ids and jitter: `crypto.getRandomValues` in the browser.
pub trait Entropy {
    fn next_u32(&mut self) -> u32;

    fn bytes10(&mut self) -> [u8; 10] {
        let mut out = [0u8; 10];
        for chunk in out.chunks_mut(4) {
            let r = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        out
    }
}

/// After a beacon the batch waits this long before a confirming `fetch`
/// (a beacon has no answer); the edge dedupes the second copy by batch id.
pub const BEACON_CONFIRM_MS: u64 = 30_000;

/// What the tracker read from storage at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub client_id: Option<String>,
    pub session: Option<String>,
    pub opted_out: bool,
}

/// What happened to a `track` call that was valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    Queued {
        sealed: bool,
    },
    /// Opted out, or this client is outside `sampleRate`.
    Ignored,
}

/// A batch taken onto the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub batch_id: String,
    pub body: String,
}

#[derive(Debug)]
pub struct TrackerCore<R> {
    pub config: Config,
    rng: R,
    pub client_id: String,
    pub session: Session,
    user_id: Option<String>,
    identity: Option<String>,
    pub opted_out: bool,
    sampled_in: bool,
    pub queue: Queue,
    /// When this tab last sealed a batch (made it ready to send): with the
    /// leading edge, the next one is due an interval later.
    last_sealed_ms: Option<u64>,
}

impl<R: Entropy> TrackerCore<R> {
    pub fn new(config: Config, mut rng: R, now: u64, stored: Stored) -> Self {
        let client_id = stored
            .client_id
            .filter(|id| is_valid_id(id))
            .unwrap_or_else(|| uuid_v7(now, rng.bytes10()));
        let session = stored
            .session
            .as_deref()
            .and_then(Session::decode)
            .unwrap_or_else(|| Session {
                id: uuid_v7(now, rng.bytes10()),
                last_activity_ms: now,
            });
        let sampled_in = sampled(&client_id, config.sample_rate);
        Self {
            config,
            rng,
            client_id,
            session,
            user_id: None,
            identity: None,
            opted_out: stored.opted_out,
            sampled_in,
            queue: Queue::default(),
            last_sealed_ms: None,
        }
    }

    fn new_id(&mut self, now: u64) -> String {
        uuid_v7(now, self.rng.bytes10())
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_events: self.config.batch_size as usize,
            max_event_bytes: (self.config.max_batch_bytes as usize).saturating_sub(ENVELOPE_BYTES),
            max_queue: self.config.max_queue as usize,
        }
    }

    /// Largest event JSON accepted: the edge's limit, and what fits a batch.
    pub fn max_event_bytes(&self) -> usize {
        MAX_EVENT_BYTES.min(self.limits().max_event_bytes)
    }

    /// Takes another tab's view of the shared session if it saw activity
    /// later than we did (the session lives in storage for all tabs).
    pub fn merge_session(&mut self, stored: &str) {
        if let Some(other) = Session::decode(stored)
            && other.last_activity_ms > self.session.last_activity_ms
        {
            self.session = other;
        }
    }

    /// Queues one event. `payload_json` is the payload already serialized as
    /// a JSON object by the browser (`JSON.stringify`), embedded as is.
    pub fn track(
        &mut self,
        now: u64,
        event_type: &str,
        payload_json: Option<&str>,
    ) -> Result<Tracked, TrackerError> {
        if !is_valid_event_type(event_type) {
            let shown = event_type.get(..80).unwrap_or(event_type);
            return Err(TrackerError::BadEventType(shown.to_owned()));
        }
        if let Some(p) = payload_json
            && !p.starts_with('{')
        {
            return Err(TrackerError::BadPayload("must be a plain object"));
        }
        let id = self.new_id(now);
        let mut event = String::with_capacity(200 + payload_json.map_or(0, str::len));
        event.push('{');
        push_field(&mut event, "id", &id);
        push_field(&mut event, "type", event_type);
        push_field(&mut event, "timestamp", &rfc3339_ms(now));
        push_field(&mut event, "clientId", &self.client_id);
        let session_timeout = self.config.session_timeout_ms;
        let rng = &mut self.rng;
        self.session
            .touch(now, session_timeout, || uuid_v7(now, rng.bytes10()));
        push_field(&mut event, "sessionId", &self.session.id);
        if let Some(user) = &self.user_id {
            push_field(&mut event, "userId", user);
        }
        match payload_json {
            Some(p) => {
                event.push_str("\"payload\":");
                event.push_str(p);
            }
            None => {
                event.pop();
            }
        }
        event.push('}');
        let limit = self.max_event_bytes();
        if event.len() > limit {
            return Err(TrackerError::EventTooLarge {
                bytes: event.len(),
                limit,
            });
        }
        if self.opted_out || !self.sampled_in {
            return Ok(Tracked::Ignored);
        }
        let limits = self.limits();
        let rng = &mut self.rng;
        let mut sealed = self
            .queue
            .push(event, self.identity.as_deref(), now, limits, || {
                uuid_v7(now, rng.bytes10())
            });
        if sealed {
            self.last_sealed_ms = Some(now);
        }
        if self.leading(now) {
            sealed |= self.seal_open(now);
        }
        Ok(Tracked::Queued { sealed })
    }

    /// `track` in a tab of a site whose tabs share one session: when ours
    /// has expired, `shared_session` (as any tab saved it) is taken first if
    /// another tab was active since.
    pub fn track_in_tab(
        &mut self,
        now: u64,
        event_type: &str,
        payload_json: Option<&str>,
        shared_session: Option<&str>,
    ) -> Result<Tracked, TrackerError> {
        if let Some(shared) = shared_session
            && self.session.expired(now, self.config.session_timeout_ms)
        {
            self.merge_session(shared);
        }
        self.track(now, event_type, payload_json)
    }

    /// Events from now on carry `user_id`, and their batches the token.
    pub fn identify(&mut self, user_id: &str, identity_token: &str) -> Result<(), TrackerError> {
        if !is_valid_id(user_id) {
            return Err(TrackerError::BadUserId);
        }
        if identity_token.is_empty()
            || identity_token.len() > 512
            || identity_token.bytes().any(|b| b <= b' ' || b == 0x7f)
        {
            return Err(TrackerError::BadIdentityToken);
        }
        self.user_id = Some(user_id.to_owned());
        self.identity = Some(identity_token.to_owned());
        Ok(())
    }

    /// Logout: forget the user, start a new anonymous client and session.
    /// Queued events keep the identity they were tracked under.
    pub fn reset(&mut self, now: u64) {
        self.seal_open(now);
        self.user_id = None;
        self.identity = None;
        self.client_id = self.new_id(now);
        self.session = Session {
            id: self.new_id(now),
            last_activity_ms: now,
        };
        self.sampled_in = sampled(&self.client_id, self.config.sample_rate);
    }

    /// Seals the open batch so the next send takes it.
    pub fn flush(&mut self, now: u64) -> bool {
        self.seal_open(now)
    }

    fn seal_open(&mut self, now: u64) -> bool {
        let sealed = self.queue.seal_open();
        if sealed {
            self.last_sealed_ms = Some(now);
        }
        sealed
    }

    /// Opting out forgets what is queued: it must never be sent.
    pub fn opt_out(&mut self) {
        self.opted_out = true;
        self.queue.clear();
    }

    pub fn opt_in(&mut self) {
        self.opted_out = false;
    }

    /// Seals the open batch once it is `flushIntervalMs` old.
    pub fn seal_if_old(&mut self, now: u64) -> bool {
        match self.queue.open_since() {
            Some(t) if now >= t + u64::from(self.config.flush_interval_ms) => self.seal_open(now),
            _ => false,
        }
    }

    /// The leading edge: an event that has just opened a batch after a
    /// quiet spell (no batch sealed for `flushIntervalMs`) goes at once, in
    /// a batch of its own; the events after it batch by the interval as
    /// ever. So sustained activity (events closer than the interval) never
    /// leads, and costs no more requests than without the leading edge.
    fn leading(&self, now: u64) -> bool {
        let interval = u64::from(self.config.flush_interval_ms);
        self.config.leading_edge
            && self.queue.open_since() == Some(now)
            && self.last_sealed_ms.is_none_or(|t| now >= t + interval)
    }

    /// The next batch due at `now`, taken onto the wire.
    pub fn start_send(&mut self, now: u64) -> Option<Outgoing> {
        let write_key = &self.config.write_key;
        self.queue.start_next(now).map(|b| Outgoing {
            batch_id: b.id.clone(),
            body: b.body(now, write_key),
        })
    }

    /// Settles the batch on the wire with the edge's answer. A refused
    /// identity token comes off the batch, which goes again at once, and is
    /// forgotten unless `identify` has given a new one meanwhile; a batch
    /// already without one is dropped.
    pub fn settle(&mut self, batch_id: &str, attempt: Attempt, now: u64) -> Disposition {
        let attempts = self.queue.attempts(batch_id);
        let disposition = dispose(attempt, attempts, self.rng.next_u32());
        let settle = match disposition {
            Disposition::Delivered => Settle::Delivered,
            Disposition::WithoutIdentity => match self.queue.strip_identity(batch_id) {
                Some(token) => {
                    if self.identity.as_deref() == Some(token.as_str()) {
                        self.user_id = None;
                        self.identity = None;
                    }
                    return disposition;
                }
                None => {
                    self.queue.settle(batch_id, now, Settle::Dropped);
                    return Disposition::Drop;
                }
            },
            Disposition::Drop => Settle::Dropped,
            Disposition::RetryAfter(in_ms) => Settle::Retry { in_ms },
        };
        self.queue.settle(batch_id, now, settle);
        disposition
    }

    /// Bodies for `sendBeacon` when the page hides or goes away.
    pub fn unload(&mut self, now: u64) -> Vec<String> {
        let bodies = self
            .queue
            .unload_bodies(now, &self.config.write_key, BEACON_CONFIRM_MS);
        if !bodies.is_empty() {
            self.last_sealed_ms = Some(now);
        }
        bodies
    }

    /// When the browser layer should wake us next: the open batch's interval
    /// or the next retry, whichever is first.
    pub fn next_wake(&self) -> Option<u64> {
        let interval = self
            .queue
            .open_since()
            .map(|t| t + u64::from(self.config.flush_interval_ms));
        match (interval, self.queue.next_send_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether to write the queue to storage at all.
    pub fn persists(&self) -> bool {
        self.config.persist && !self.opted_out
    }
}

/// Whether a client is inside `rate`: by a hash of its id, so a sampled
/// user is kept whole rather than every n-th event of everyone.
fn sampled(client_id: &str, rate: f64) -> bool {
    rate >= 1.0 || f64::from(fnv1a(client_id)) < rate * 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::wire::{WireBatch, WireEvent};

    /// xorshift32: a seeded source for ids and jitter.
    #[derive(Debug)]
    struct Seeded(u32);

    impl Entropy for Seeded {
        fn next_u32(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
    }

    const T0: u64 = 1_795_341_599_000;

    /// A tracker batching by count and interval alone: the leading edge has
    /// its own tests (`leading`).
    fn tracker(batch_size: f64) -> TrackerCore<Seeded> {
        use crate::config::OptionValue::{Bool, Num, Str};
        let mut c = Config::default();
        c.set("endpoint", Str("/api/ingest".into()))
            .expect("endpoint");
        c.set("writeKey", Str("wk".into())).expect("key");
        c.set("batchSize", Num(batch_size)).expect("size");
        c.set("leadingEdge", Bool(false)).expect("leading edge");
        TrackerCore::new(
            c.finish().expect("config"),
            Seeded(7),
            T0,
            Stored::default(),
        )
    }

    type Wire = WireBatch<WireEvent<serde_json::Value>>;

    fn parse(body: &str) -> Wire {
        serde_json::from_str(body).expect("wire batch")
    }

    #[test]
    fn events_get_ids_times_and_the_client_and_session() {
        let mut t = tracker(2.0);
        assert_eq!(
            t.track(T0, "product_click", Some(r#"{"productId":"p1"}"#)),
            Ok(Tracked::Queued { sealed: false })
        );
        assert_eq!(
            t.track(T0 + 5, "page_view", None),
            Ok(Tracked::Queued { sealed: true })
        );
        let out = t.start_send(T0 + 10).expect("sealed batch");
        let wire = parse(&out.body);
        assert_eq!(wire.batch_id.as_deref(), Some(out.batch_id.as_str()));
        assert!(is_valid_id(&out.batch_id));
        let e = &wire.events[0];
        assert!(e.id.as_deref().is_some_and(is_valid_id));
        assert_ne!(e.id, wire.events[1].id);
        assert_eq!(e.timestamp, "2026-11-22T09:59:59.000Z");
        assert_eq!(wire.events[1].timestamp, "2026-11-22T09:59:59.005Z");
        assert_eq!(wire.sent_at.as_deref(), Some("2026-11-22T09:59:59.010Z"));
        assert_eq!(e.client_id, t.client_id);
        assert_eq!(e.session_id.as_deref(), Some(t.session.id.as_str()));
        assert_eq!(e.payload, Some(serde_json::json!({"productId": "p1"})));
        assert_eq!(wire.events[1].payload, None);
        assert_eq!(e.user_id, None);
    }

    #[test]
    fn bad_arguments_are_errors_with_clear_messages() {
        let mut t = tracker(20.0);
        let err = t.track(T0, "Product Click", None).expect_err("bad type");
        assert!(err.to_string().contains("'Product Click'"), "{err}");
        assert!(matches!(
            t.track(T0, "a", Some("[1]")),
            Err(TrackerError::BadPayload(_))
        ));
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_EVENT_BYTES));
        assert!(matches!(
            t.track(T0, "a", Some(&big)),
            Err(TrackerError::EventTooLarge { .. })
        ));
        assert_eq!(t.identify("a b", "tok"), Err(TrackerError::BadUserId));
        assert_eq!(t.identify("u1", ""), Err(TrackerError::BadIdentityToken));
        assert_eq!(t.queue.len(), 0);
    }

    #[test]
    fn retries_keep_the_batch_id_and_set_a_new_sent_at() {
        let mut t = tracker(1.0);
        t.track(T0, "a", None).expect("ok");
        let first = t.start_send(T0).expect("due");
        let d = t.settle(
            &first.batch_id,
            Attempt::Status {
                status: 503,
                retry_after_ms: None,
            },
            T0 + 50,
        );
        let Disposition::RetryAfter(wait) = d else {
            panic!("{d:?}")
        };
        assert!((500..=1_000).contains(&wait));
        assert!(t.start_send(T0 + 50 + wait - 1).is_none());
        let second = t.start_send(T0 + 50 + wait).expect("due again");
        assert_eq!(second.batch_id, first.batch_id);
        assert_ne!(parse(&second.body).sent_at, parse(&first.body).sent_at);
        assert_eq!(parse(&second.body).events, parse(&first.body).events);
        let d = t.settle(
            &second.batch_id,
            Attempt::Status {
                status: 503,
                retry_after_ms: None,
            },
            T0 + 2_000,
        );
        assert!(
            matches!(d, Disposition::RetryAfter(w) if (1_000..=2_000).contains(&w)),
            "{d:?}"
        );
    }

    #[test]
    fn retry_after_on_429_is_honoured_and_400_is_dropped_and_counted() {
        let mut t = tracker(1.0);
        t.track(T0, "a", None).expect("ok");
        t.track(T0, "b", None).expect("ok");
        let one = t.start_send(T0).expect("due");
        let d = t.settle(
            &one.batch_id,
            Attempt::Status {
                status: 429,
                retry_after_ms: Some(3_000),
            },
            T0,
        );
        assert_eq!(d, Disposition::RetryAfter(3_000));
        assert_eq!(t.next_wake(), Some(T0 + 3_000));
        assert!(t.start_send(T0 + 2_999).is_none());
        let two = t.start_send(T0 + 3_000).expect("due");
        assert_eq!(
            t.settle(
                &two.batch_id,
                Attempt::Status {
                    status: 400,
                    retry_after_ms: None
                },
                T0 + 3_000
            ),
            Disposition::Drop
        );
        assert_eq!(t.queue.dropped, 1);
        let three = t.start_send(T0 + 3_000).expect("the other one");
        assert_ne!(three.batch_id, two.batch_id);
        assert_eq!(
            t.settle(
                &three.batch_id,
                Attempt::Status {
                    status: 202,
                    retry_after_ms: None
                },
                T0 + 3_001
            ),
            Disposition::Delivered
        );
        assert!(t.queue.is_empty());
        assert_eq!(t.next_wake(), None);
    }

    #[test]
    fn the_interval_seals_an_open_batch() {
        let mut t = tracker(20.0);
        t.track(T0, "a", None).expect("ok");
        assert_eq!(t.next_wake(), Some(T0 + 5_000));
        assert!(!t.seal_if_old(T0 + 4_999));
        assert!(t.start_send(T0 + 4_999).is_none());
        assert!(t.seal_if_old(T0 + 5_000));
        assert!(t.start_send(T0 + 5_000).is_some());
    }

    #[test]
    fn sessions_rotate_after_the_idle_timeout() {
        let mut t = tracker(20.0);
        t.track(T0, "a", None).expect("ok");
        let s1 = t.session.id.clone();
        t.track(T0 + 29 * 60_000, "a", None).expect("ok");
        assert_eq!(t.session.id, s1);
        t.track(T0 + 59 * 60_000 + 1, "a", None).expect("ok");
        assert_ne!(t.session.id, s1);
        // Another tab's later activity keeps the shared session alive.
        let s2 = t.session.id.clone();
        t.merge_session(&format!("{s2}.{}", T0 + 80 * 60_000));
        t.track(T0 + 100 * 60_000, "a", None).expect("ok");
        assert_eq!(t.session.id, s2);
    }

    #[test]
    fn identity_travels_with_the_batch_and_reset_starts_a_new_client() {
        let mut t = tracker(20.0);
        t.track(T0, "anon", None).expect("ok");
        t.identify("user-1", "user-1.1795345199.c2ln").expect("ok");
        t.track(T0, "known", None).expect("ok");
        let cid = t.client_id.clone();
        t.reset(T0);
        assert_ne!(t.client_id, cid);
        t.track(T0, "after", None).expect("ok");
        t.flush(T0);
        let mut bodies = Vec::new();
        while let Some(out) = t.start_send(T0) {
            t.settle(
                &out.batch_id,
                Attempt::Status {
                    status: 202,
                    retry_after_ms: None,
                },
                T0,
            );
            bodies.push(parse(&out.body));
        }
        let seen: Vec<(Option<String>, String, Option<String>)> = bodies
            .iter()
            .map(|b| {
                (
                    b.identity.clone(),
                    b.events[0].event_type.clone(),
                    b.events[0].user_id.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (None, "anon".into(), None),
                (
                    Some("user-1.1795345199.c2ln".into()),
                    "known".into(),
                    Some("user-1".into())
                ),
                (None, "after".into(), None),
            ]
        );
    }

    fn answer(status: u16, code: &str) -> Attempt {
        Attempt::answer(status, None, code)
    }

    #[test]
    fn a_refused_identity_is_forgotten_and_its_batch_resent_once_without_it() {
        let mut t = tracker(20.0);
        t.identify("user-1", "user-1.1795345199.c2ln").expect("ok");
        t.track(T0, "a", None).expect("ok");
        t.track(T0, "b", None).expect("ok");
        t.flush(T0);
        let first = t.start_send(T0).expect("due");
        assert_eq!(
            parse(&first.body).identity.as_deref(),
            Some("user-1.1795345199.c2ln")
        );
        let d = t.settle(&first.batch_id, answer(401, "identity_expired"), T0 + 40);
        assert_eq!(d, Disposition::WithoutIdentity);
        assert_eq!(t.next_wake(), Some(0), "at once, no backoff");
        // The durable copy no longer carries the token: a reload resends without it.
        let saved = t.queue.encode(T0);
        assert!(!saved.contains("c2ln"), "{saved}");
        let mut next = tracker(20.0);
        next.queue.adopt(&saved, 1_000);
        let adopted = next.start_send(T0 + 41).expect("adopted");
        assert_eq!(parse(&adopted.body).identity, None);
        assert_eq!(adopted.batch_id, first.batch_id);

        let again = t.start_send(T0 + 40).expect("due at once");
        let (a, b) = (parse(&first.body), parse(&again.body));
        assert_eq!(again.batch_id, first.batch_id, "same batch id");
        assert_eq!(b.identity, None);
        assert_eq!(b.events, a.events, "same events, same ids");
        // Events tracked from now on carry neither the token nor the user.
        t.track(T0 + 50, "c", None).expect("ok");
        // A second refusal of the same batch drops it: no loop.
        let d = t.settle(&again.batch_id, answer(401, "identity_expired"), T0 + 60);
        assert_eq!(d, Disposition::Drop);
        assert_eq!((t.queue.dropped, t.queue.len()), (2, 1));
        t.flush(T0 + 60);
        let later = parse(&t.start_send(T0 + 60).expect("due").body);
        assert_eq!(
            (later.identity, later.events[0].user_id.clone()),
            (None, None)
        );
    }

    #[test]
    fn a_new_token_given_meanwhile_is_kept_and_a_refused_write_key_drops() {
        let mut t = tracker(1.0);
        t.identify("user-1", "user-1.1.old").expect("ok");
        t.track(T0, "a", None).expect("ok");
        let out = t.start_send(T0).expect("due");
        t.identify("user-1", "user-1.2.new").expect("ok");
        let d = t.settle(&out.batch_id, answer(401, "identity_bad_signature"), T0);
        assert_eq!(d, Disposition::WithoutIdentity);
        t.track(T0, "b", None).expect("ok");
        let kinds: Vec<Option<String>> = t.queue.batches().map(|b| b.identity.clone()).collect();
        assert_eq!(kinds, [None, Some("user-1.2.new".into())]);
        for code in ["unknown_write_key", "missing_write_key"] {
            let out = t.start_send(T0).expect("due");
            assert_eq!(
                t.settle(&out.batch_id, answer(401, code), T0),
                Disposition::Drop
            );
        }
        assert_eq!((t.queue.dropped, t.queue.len()), (2, 0));
    }

    #[test]
    fn opt_out_drops_the_queue_and_ignores_events() {
        let mut t = tracker(20.0);
        t.track(T0, "a", None).expect("ok");
        t.opt_out();
        assert_eq!(t.track(T0, "a", None), Ok(Tracked::Ignored));
        assert!(t.track(T0, "Bad", None).is_err(), "still validated");
        assert!(t.queue.is_empty() && !t.persists());
        t.opt_in();
        assert_eq!(
            t.track(T0, "a", None),
            Ok(Tracked::Queued { sealed: false })
        );
    }

    #[test]
    fn sampling_keeps_or_drops_a_client_whole() {
        assert!(sampled("anything", 1.0));
        assert!(!sampled("anything", 0.0));
        let kept = (0..1000)
            .filter(|i| sampled(&format!("client-{i}"), 0.25))
            .count();
        assert!((180..320).contains(&kept), "{kept}");
    }

    #[test]
    fn a_client_id_from_storage_is_kept() {
        let c = tracker(1.0).config;
        let t = TrackerCore::new(
            c.clone(),
            Seeded(1),
            T0,
            Stored {
                client_id: Some("cid-1".into()),
                ..Stored::default()
            },
        );
        assert_eq!(t.client_id, "cid-1");
        let t = TrackerCore::new(
            c,
            Seeded(1),
            T0,
            Stored {
                client_id: Some("bad id".into()),
                ..Stored::default()
            },
        );
        assert!(is_valid_id(&t.client_id) && t.client_id != "bad id");
    }

    #[test]
    fn a_reload_resends_the_same_batches_and_nothing_twice() {
        let mut t = tracker(2.0);
        for _ in 0..5 {
            t.track(T0, "a", None).expect("ok");
        }
        let on_wire = t.start_send(T0).expect("due");
        let beacons = t.unload(T0 + 1);
        assert_eq!(beacons.len(), 3);
        let saved = t.queue.encode(0);
        let mut next = tracker(2.0);
        next.queue.adopt(&saved, 1_000);
        let mut resent = Vec::new();
        while let Some(out) = next.start_send(T0 + 2) {
            next.settle(
                &out.batch_id,
                Attempt::Status {
                    status: 202,
                    retry_after_ms: None,
                },
                T0 + 2,
            );
            resent.push(parse(&out.body));
        }
        let beacon_ids: Vec<Option<String>> = beacons.iter().map(|b| parse(b).batch_id).collect();
        let resent_ids: Vec<Option<String>> = resent.iter().map(|b| b.batch_id.clone()).collect();
        assert_eq!(beacon_ids, resent_ids);
        assert_eq!(resent_ids[0].as_deref(), Some(on_wire.batch_id.as_str()));
        let events: usize = resent.iter().map(|b| b.events.len()).sum();
        assert_eq!(events, 5);
    }

    /// What the edge would hold: batches applied once each, by batch id.
    #[derive(Default)]
    struct Edge {
        applied: std::collections::HashSet<String>,
        events: std::collections::HashSet<String>,
        /// Every event id ever seen on the wire, with the batch id it came under.
        batch_of: std::collections::HashMap<String, String>,
    }

    impl Edge {
        /// Checks a body against the limits and the one-batch-per-event rule;
        /// applies it if `apply`.
        fn receive(&mut self, body: &str, apply: bool, config: &Config) {
            assert!(
                body.len() <= config.max_batch_bytes as usize,
                "{} bytes",
                body.len()
            );
            let wire = parse(body);
            let batch = wire.batch_id.clone().expect("batch id");
            assert!(!wire.events.is_empty() && wire.events.len() <= config.batch_size as usize);
            for e in &wire.events {
                let id = e.id.clone().expect("event id");
                let first = self.batch_of.entry(id).or_insert_with(|| batch.clone());
                assert_eq!(*first, batch, "an event under two batch ids");
            }
            if apply && self.applied.insert(batch) {
                for e in wire.events {
                    assert!(
                        self.events.insert(e.id.expect("id")),
                        "an event applied twice"
                    );
                }
            }
        }
    }

    /// A tracker with the leading edge (the default) and this interval,
    /// batching by the interval alone (batches of up to 500 events).
    fn leading(interval_ms: f64) -> TrackerCore<Seeded> {
        use crate::config::OptionValue::{Num, Str};
        let mut c = Config::default();
        c.set("endpoint", Str("/e".into())).expect("endpoint");
        c.set("writeKey", Str("wk".into())).expect("key");
        c.set("flushIntervalMs", Num(interval_ms))
            .expect("interval");
        c.set("batchSize", Num(500.0)).expect("size");
        TrackerCore::new(
            c.finish().expect("config"),
            Seeded(3),
            T0,
            Stored::default(),
        )
    }

    /// Drives `t` as the browser drivers do against an edge that takes every
    /// batch at once: a track at each of `clicks`, the timer at each wake.
    /// Returns when each batch went and how many events it held.
    fn send_times(t: &mut TrackerCore<Seeded>, clicks: &[u64]) -> Vec<(u64, usize)> {
        let mut sent = Vec::new();
        let mut pump = |t: &mut TrackerCore<Seeded>, now: u64| {
            t.seal_if_old(now);
            while let Some(out) = t.start_send(now) {
                sent.push((now, parse(&out.body).events.len()));
                t.settle(&out.batch_id, answer(202, ""), now);
            }
        };
        for &click in clicks {
            while let Some(wake) = t.next_wake().filter(|w| *w < click) {
                pump(t, wake);
            }
            if t.track(click, "product_click", None) == Ok(Tracked::Queued { sealed: true }) {
                pump(t, click);
            }
        }
        while let Some(wake) = t.next_wake() {
            pump(t, wake);
        }
        sent
    }

    #[test]
    fn leading_a_click_after_a_quiet_spell_goes_at_once_the_next_ones_batch_as_ever() {
        let mut t = leading(250.0);
        assert_eq!(
            t.track(T0, "product_click", None),
            Ok(Tracked::Queued { sealed: true }),
            "the first click of the page"
        );
        let out = t.start_send(T0).expect("due at once");
        assert_eq!(parse(&out.body).events.len(), 1);
        t.settle(&out.batch_id, answer(202, ""), T0);
        let sent = send_times(&mut t, &[T0 + 10, T0 + 20]);
        assert_eq!(sent, [(T0 + 260, 2)], "batched for the interval, as ever");
        let later = T0 + 260 + 250;
        assert_eq!(
            send_times(&mut t, &[later, later + 1]),
            [(later, 1), (later + 251, 1)]
        );
    }

    #[test]
    fn leading_ten_clicks_in_a_tenth_of_a_second_make_two_requests() {
        let clicks: Vec<u64> = (0..10).map(|i| T0 + i * 10).collect();
        let sent = send_times(&mut leading(250.0), &clicks);
        assert_eq!(sent, [(T0, 1), (T0 + 260, 9)]);
    }

    #[test]
    fn leading_sustained_clicks_send_no_more_than_one_batch_an_interval() {
        for gap in [1, 40, 99, 249] {
            let clicks: Vec<u64> = (0..400).map(|i| T0 + i * gap).collect();
            let sent = send_times(&mut leading(250.0), &clicks);
            for pair in sent.windows(2) {
                assert!(pair[1].0 >= pair[0].0 + 250, "gap {gap}: {pair:?}");
            }
            let mut off = tracker(500.0);
            off.config.flush_interval_ms = 250;
            let without = send_times(&mut off, &clicks);
            assert!(
                sent.len() <= without.len() + 1,
                "gap {gap}: {} > {} + 1",
                sent.len(),
                without.len()
            );
            let events: usize = sent.iter().map(|(_, n)| n).sum();
            assert_eq!(events, clicks.len());
        }
    }

    #[test]
    fn leading_a_quiet_spell_of_one_interval_resets_the_budget() {
        let mut t = leading(250.0);
        let burst: Vec<u64> = (0..20).map(|i| T0 + i * 30).collect();
        let sent = send_times(&mut t, &burst);
        let last = sent.last().expect("sent").0;
        assert_eq!(
            send_times(&mut t, &[last + 249]),
            [(last + 499, 1)],
            "not quiet yet"
        );
        let quiet = last + 499 + 250;
        assert_eq!(
            send_times(&mut t, &[quiet, quiet + 5]),
            [(quiet, 1), (quiet + 255, 1)]
        );
    }

    #[test]
    fn without_the_leading_edge_the_first_click_waits_the_interval() {
        let mut t = tracker(20.0);
        t.config.flush_interval_ms = 250;
        assert_eq!(send_times(&mut t, &[T0, T0 + 10]), [(T0 + 250, 2)]);
    }

    /// The ids of the events waiting in `t`'s queue.
    fn queued_ids(t: &TrackerCore<Seeded>) -> std::collections::HashSet<String> {
        t.queue
            .batches()
            .flat_map(|b| b.events.iter())
            .map(|e| {
                e.get(7..43)
                    .expect("an event starts with its id")
                    .to_owned()
            })
            .collect()
    }

    /// Random sequences of tracks, flushes, answers (202, 503, 429, 400, 401
    /// for the identity, network errors), beacons that may or may not arrive, reloads that
    /// adopt the saved queue and evictions: no event is ever sent under two
    /// batch ids, none is applied twice, and every event that leaves the queue
    /// was applied, refused (and counted dropped) or evicted (and counted).
    #[test]
    fn no_event_is_lost_or_counted_twice_whatever_happens() {
        use crate::config::OptionValue::{Num, Str};
        use std::collections::HashSet;
        for seed in 1..=50u32 {
            let mut dice = Seeded(seed.wrapping_mul(2_654_435_761) | 1);
            let mut roll = |n: u32| dice.next_u32() % n;
            let mut c = Config::default();
            c.set("endpoint", Str("/e".into())).expect("endpoint");
            c.set("writeKey", Str("wk".into())).expect("key");
            c.set("batchSize", Num(f64::from(1 + roll(6))))
                .expect("size");
            c.set("maxBatchBytes", Num(f64::from(2_048 + roll(4_000))))
                .expect("bytes");
            c.set("maxQueue", Num(f64::from(3 + roll(40))))
                .expect("queue");
            c.set("flushIntervalMs", Num(100.0)).expect("interval");
            c.set(
                "leadingEdge",
                crate::config::OptionValue::Bool(roll(2) == 0),
            )
            .expect("leading edge");
            let config = c.finish().expect("config");
            let mut t = TrackerCore::new(config.clone(), Seeded(seed), T0, Stored::default());
            let mut edge = Edge::default();
            let (mut now, mut evicted, mut dropped) = (T0, 0u64, 0u64);
            let (mut tracked, mut gone_evicted, mut gone_dropped) =
                (HashSet::new(), HashSet::new(), HashSet::new());
            // An event evicted by its own track() (every older one on the wire) is never seen queued.
            let mut evicted_at_once = 0u64;
            let mut on_wire: Option<Outgoing> = None;
            for _ in 0..400 {
                now += u64::from(roll(400));
                let before = queued_ids(&t);
                let mut settled = None;
                let mut queued = false;
                match roll(12) {
                    0..=4 => {
                        let payload = format!("{{\"x\":\"{}\"}}", "y".repeat(roll(700) as usize));
                        queued = matches!(
                            t.track(now, "e", Some(&payload)),
                            Ok(Tracked::Queued { .. })
                        );
                    }
                    5 => {
                        t.flush(now);
                    }
                    6 if on_wire.is_none() => {
                        t.seal_if_old(now);
                        on_wire = t.start_send(now);
                    }
                    6 | 7 => {
                        if let Some(out) = on_wire.take() {
                            let (attempt, apply) = match roll(7) {
                                0 | 1 => (
                                    Attempt::Status {
                                        status: 202,
                                        retry_after_ms: None,
                                    },
                                    true,
                                ),
                                2 => (
                                    Attempt::Status {
                                        status: 503,
                                        retry_after_ms: None,
                                    },
                                    false,
                                ),
                                3 => (
                                    Attempt::Status {
                                        status: 429,
                                        retry_after_ms: Some(u64::from(roll(3_000))),
                                    },
                                    false,
                                ),
                                4 => (
                                    Attempt::Status {
                                        status: 400,
                                        retry_after_ms: None,
                                    },
                                    false,
                                ),
                                5 => (answer(401, "identity_expired"), false),
                                // Applied, but the answer was lost on the way back.
                                _ => (Attempt::NetworkError, roll(2) == 0),
                            };
                            edge.receive(&out.body, apply, &config);
                            let d = t.settle(&out.batch_id, attempt, now);
                            settled = Some((out.body, d == Disposition::Drop));
                        }
                    }
                    8 => {
                        for body in t.unload(now) {
                            edge.receive(&body, roll(2) == 0, &config);
                        }
                    }
                    9 => {
                        // A reload: the request on the wire may have landed;
                        // the saved queue is adopted by the next page.
                        if let Some(out) = on_wire.take() {
                            edge.receive(&out.body, roll(2) == 0, &config);
                        }
                        let saved = t.queue.encode(0);
                        evicted += t.queue.evicted;
                        dropped += t.queue.dropped;
                        let stored = Stored {
                            client_id: Some(t.client_id.clone()),
                            ..Stored::default()
                        };
                        t = TrackerCore::new(
                            config.clone(),
                            Seeded(seed ^ now as u32),
                            now,
                            stored,
                        );
                        t.queue.adopt(&saved, config.max_queue as usize);
                    }
                    10 => {
                        let _ = t.identify("user-1", "user-1.9.sig");
                    }
                    _ => t.reset(now),
                }
                let after = queued_ids(&t);
                let fresh: Vec<String> = after.difference(&before).cloned().collect();
                if queued && fresh.is_empty() {
                    evicted_at_once += 1;
                }
                tracked.extend(fresh);
                for id in before.difference(&after) {
                    match &settled {
                        Some((body, refused)) if body.contains(id.as_str()) => {
                            if *refused {
                                gone_dropped.insert(id.clone());
                            }
                        }
                        _ => {
                            gone_evicted.insert(id.clone());
                        }
                    }
                }
                assert_eq!(
                    gone_evicted.len() as u64 + evicted_at_once,
                    evicted + t.queue.evicted,
                    "seed {seed}: events gone uncounted"
                );
            }
            // The edge comes back for good: everything still queued goes.
            if let Some(out) = on_wire.take() {
                edge.receive(&out.body, false, &config);
                t.settle(&out.batch_id, Attempt::NetworkError, now);
            }
            t.flush(now);
            for _ in 0..10_000 {
                now += 3_600_000;
                let Some(out) = t.start_send(now) else { break };
                edge.receive(&out.body, true, &config);
                t.settle(
                    &out.batch_id,
                    Attempt::Status {
                        status: 202,
                        retry_after_ms: None,
                    },
                    now,
                );
            }
            assert!(t.queue.is_empty(), "seed {seed}: {} left", t.queue.len());
            evicted += t.queue.evicted;
            dropped += t.queue.dropped;
            assert_eq!(
                gone_evicted.len() as u64 + evicted_at_once,
                evicted,
                "seed {seed}: events gone uncounted"
            );
            assert_eq!(gone_dropped.len() as u64, dropped, "seed {seed}");
            for id in &tracked {
                assert!(
                    edge.events.contains(id)
                        || gone_evicted.contains(id)
                        || gone_dropped.contains(id),
                    "seed {seed}: event {id} lost"
                );
            }
            assert!(edge.events.is_subset(&tracked), "seed {seed}");
        }
    }
}
