//! The durable queue: events grouped into batches, each with its batch id
//! from the moment it opens, so every copy of an event (in memory, in this
//! tab's storage, adopted by another tab, in a beacon) travels under one id
//! and the edge's batch idempotency makes every resend harmless.

use crate::encode::{parse_u64, push_field, push_u64, rfc3339_ms, split_ascii};

/// Room kept in a batch's byte budget for the envelope: ids, sentAt, the
/// write key and an identity token.
pub const ENVELOPE_BYTES: usize = 1_024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Given when the batch opens, kept through every retry and every tab.
    pub id: String,
    /// The identity token in force when the batch opened.
    pub identity: Option<String>,
    /// Each event already serialized as its JSON object.
    pub events: Vec<String>,
    /// Bytes of the events joined with commas.
    pub bytes: usize,
    /// A sealed batch takes no more events; only the last batch may be open.
    pub sealed: bool,
    pub opened_ms: u64,
    pub attempts: u32,
    /// Not sent before this time (backoff, or a beacon awaiting confirmation).
    pub next_attempt_ms: u64,
    pub in_flight: bool,
}

impl Batch {
    /// The wire body of this batch for an attempt at `now`.
    pub fn body(&self, now: u64, write_key: &str) -> String {
        let mut out = String::with_capacity(self.bytes + 160 + write_key.len());
        out.push('{');
        push_field(&mut out, "batchId", &self.id);
        push_field(&mut out, "sentAt", &rfc3339_ms(now));
        push_field(&mut out, "writeKey", write_key);
        if let Some(token) = &self.identity {
            push_field(&mut out, "identity", token);
        }
        out.push_str("\"events\":[");
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(event);
        }
        out.push_str("]}");
        out
    }
}

/// Limits a batch is formed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_events: usize,
    /// Bytes of events a batch may hold: `maxBatchBytes` less the envelope.
    pub max_event_bytes: usize,
    pub max_queue: usize,
}

#[derive(Debug, Default)]
pub struct Queue {
    /// Oldest first. A `Vec`, not a `VecDeque`: it holds a few batches and
    /// `VecDeque`'s ring-buffer code is a kilobyte of wasm.
    batches: Vec<Batch>,
    /// Events waiting in all batches.
    len: usize,
    /// Oldest events thrown away because more than `maxQueue` were waiting.
    pub evicted: u64,
    /// Events of batches the edge refused for good (400, 401, 413).
    pub dropped: u64,
    /// No batch is sent before this time (the edge asked us to wait).
    pub paused_until_ms: u64,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter()
    }

    /// Adds an event, opening a batch with `new_id` when needed. Returns
    /// whether a batch was sealed (and is ready to send).
    pub fn push(
        &mut self,
        event: String,
        identity: Option<&str>,
        now: u64,
        limits: BatchLimits,
        new_id: impl FnOnce() -> String,
    ) -> bool {
        let mut sealed = false;
        let fits = self.batches.last().is_some_and(|b| {
            !b.sealed
                && b.identity.as_deref() == identity
                && b.events.len() < limits.max_events
                && b.bytes + 1 + event.len() <= limits.max_event_bytes
        });
        if !fits {
            sealed |= self.seal_open();
            self.batches.push(Batch {
                id: new_id(),
                identity: identity.map(str::to_owned),
                events: Vec::new(),
                bytes: 0,
                sealed: false,
                opened_ms: now,
                attempts: 0,
                next_attempt_ms: 0,
                in_flight: false,
            });
        }
        if let Some(open) = self.batches.last_mut() {
            open.bytes += event.len() + usize::from(!open.events.is_empty());
            open.events.push(event);
            self.len += 1;
            if open.events.len() >= limits.max_events {
                open.sealed = true;
                sealed = true;
            }
        }
        self.evict(limits.max_queue);
        sealed
    }

    /// Drops the oldest events until at most `max_queue` wait. The batch on
    /// the wire is left alone; its events go when it is answered.
    fn evict(&mut self, max_queue: usize) {
        while self.len > max_queue {
            let Some(index) = self.batches.iter().position(|b| !b.in_flight) else {
                return;
            };
            let batch = &mut self.batches[index];
            let removed = batch.events.remove(0);
            batch.bytes = batch
                .bytes
                .saturating_sub(removed.len() + usize::from(!batch.events.is_empty()));
            if batch.events.is_empty() {
                self.batches.remove(index);
            }
            self.len -= 1;
            self.evicted += 1;
        }
    }

    /// Seals the open batch, if there is one with events. Returns whether it did.
    pub fn seal_open(&mut self) -> bool {
        match self.batches.last_mut() {
            Some(b) if !b.sealed && !b.events.is_empty() => {
                b.sealed = true;
                true
            }
            _ => false,
        }
    }

    /// When the open batch was opened, if it holds events.
    pub fn open_since(&self) -> Option<u64> {
        self.batches
            .last()
            .filter(|b| !b.sealed && !b.events.is_empty())
            .map(|b| b.opened_ms)
    }

    pub fn in_flight(&self) -> bool {
        self.batches.iter().any(|b| b.in_flight)
    }

    /// The next time a sealed batch may be sent, if one waits and none is on
    /// the wire (one request at a time keeps order and spares a struggling edge).
    pub fn next_send_ms(&self) -> Option<u64> {
        if self.in_flight() {
            return None;
        }
        self.batches
            .iter()
            .filter(|b| b.sealed)
            .map(|b| b.next_attempt_ms)
            .min()
            .map(|t| t.max(self.paused_until_ms))
    }

    /// Takes the next batch due at `now` onto the wire.
    pub fn start_next(&mut self, now: u64) -> Option<&Batch> {
        if self.in_flight() || now < self.paused_until_ms {
            return None;
        }
        let batch = self
            .batches
            .iter_mut()
            .find(|b| b.sealed && b.next_attempt_ms <= now)?;
        batch.in_flight = true;
        batch.attempts = batch.attempts.saturating_add(1);
        Some(batch)
    }

    pub fn attempts(&self, id: &str) -> u32 {
        self.batches
            .iter()
            .find(|b| b.id == id)
            .map_or(0, |b| b.attempts)
    }

    /// Settles the batch on the wire: removes it (`delivered` or dropped) or
    /// schedules it again after `retry_in_ms`, pausing all sends till then.
    pub fn settle(&mut self, id: &str, now: u64, outcome: Settle) {
        let Some(index) = self.batches.iter().position(|b| b.id == id) else {
            return;
        };
        match outcome {
            Settle::Delivered | Settle::Dropped => {
                let batch = self.batches.remove(index);
                self.len -= batch.events.len();
                if outcome == Settle::Dropped {
                    self.dropped += batch.events.len() as u64;
                }
            }
            Settle::Retry { in_ms } => {
                let batch = &mut self.batches[index];
                batch.in_flight = false;
                batch.next_attempt_ms = now + in_ms;
                self.paused_until_ms = now + in_ms;
            }
        }
    }

    /// The edge refused the identity token of the batch on the wire and
    /// applied nothing of it: takes the token off and makes the batch due at
    /// once, same id and events. Returns the token, or `None` if the batch
    /// had none (it was refused without one already: no second resend).
    pub fn strip_identity(&mut self, id: &str) -> Option<String> {
        let batch = self.batches.iter_mut().find(|b| b.id == id)?;
        let token = batch.identity.take()?;
        batch.in_flight = false;
        batch.next_attempt_ms = 0;
        Some(token)
    }

    /// For the unload path: seals everything and returns every batch's body.
    /// The batches stay queued (and persisted) until an answer confirms them,
    /// at the earliest `confirm_after_ms` from now: a beacon has no answer.
    pub fn unload_bodies(
        &mut self,
        now: u64,
        write_key: &str,
        confirm_after_ms: u64,
    ) -> Vec<String> {
        self.seal_open();
        self.batches
            .iter_mut()
            .map(|b| {
                b.next_attempt_ms = b.next_attempt_ms.max(now + confirm_after_ms);
                b.body(now, write_key)
            })
            .collect()
    }

    pub fn clear(&mut self) {
        self.batches.clear();
        self.len = 0;
    }

    /// The storage form: a heartbeat line (0 when the tab has closed), then
    /// per batch `B <id> <attempts> <s|o> <identity|->` and one `E<json>` per
    /// event. JSON text never holds a raw newline, so lines split cleanly.
    pub fn encode(&self, heartbeat_ms: u64) -> String {
        let mut out = String::with_capacity(
            32 + self
                .batches
                .iter()
                .map(|b| b.bytes + 96 + b.events.len() * 2)
                .sum::<usize>(),
        );
        push_u64(&mut out, heartbeat_ms);
        for b in &self.batches {
            out.push_str("\nB ");
            out.push_str(&b.id);
            out.push(' ');
            push_u64(&mut out, u64::from(b.attempts));
            out.push_str(if b.sealed { " s " } else { " o " });
            out.push_str(b.identity.as_deref().unwrap_or("-"));
            for e in &b.events {
                out.push_str("\nE");
                out.push_str(e);
            }
        }
        out
    }

    /// Reads another page's (or this page's earlier) storage form and takes
    /// its batches in front of ours, sealed: they are older. A batch already
    /// held is skipped, so reading the same slot twice adds nothing.
    /// Returns the heartbeat, or `None` when the text is not ours.
    pub fn adopt(&mut self, text: &str, max_queue: usize) -> Option<u64> {
        let mut lines = split_ascii(text, b'\n');
        let heartbeat = parse_u64(lines.next()?)?;
        let mut adopted: Vec<Batch> = Vec::new();
        for line in lines {
            if let Some(event) = line.strip_prefix('E') {
                if let Some(b) = adopted.last_mut() {
                    b.bytes += event.len() + usize::from(!b.events.is_empty());
                    b.events.push(event.to_owned());
                }
            } else if let Some(head) = line.strip_prefix("B ") {
                let mut parts = split_ascii(head, b' ');
                let (Some(id), Some(attempts), Some(_), Some(identity)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                adopted.push(Batch {
                    id: id.to_owned(),
                    identity: (identity != "-").then(|| identity.to_owned()),
                    events: Vec::new(),
                    bytes: 0,
                    sealed: true,
                    opened_ms: 0,
                    attempts: parse_u64(attempts).unwrap_or(0).min(u64::from(u32::MAX)) as u32,
                    next_attempt_ms: 0,
                    in_flight: false,
                });
            }
        }
        adopted
            .retain(|b| !b.events.is_empty() && !self.batches.iter().any(|held| held.id == b.id));
        self.len += adopted.iter().map(|b| b.events.len()).sum::<usize>();
        adopted.append(&mut self.batches);
        self.batches = adopted;
        self.evict(max_queue);
        Some(heartbeat)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    Dropped,
    Retry { in_ms: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_events: 3,
        max_event_bytes: 100,
        max_queue: 10,
    };

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("b{n}")
        }
    }

    fn push(q: &mut Queue, e: &str, next: &mut impl FnMut() -> String) -> bool {
        q.push(e.to_owned(), None, 0, LIMITS, next)
    }

    #[test]
    fn a_batch_seals_at_batch_size() {
        let (mut q, mut next) = (Queue::default(), ids());
        assert!(!push(&mut q, "{}", &mut next));
        assert!(!push(&mut q, "{}", &mut next));
        assert!(push(&mut q, "{}", &mut next));
        assert!(!push(&mut q, "{}", &mut next));
        let shape: Vec<(String, usize, bool)> = q
            .batches()
            .map(|b| (b.id.clone(), b.events.len(), b.sealed))
            .collect();
        assert_eq!(shape, [("b1".into(), 3, true), ("b2".into(), 1, false)]);
        assert_eq!(q.len(), 4);
    }

    #[test]
    fn a_batch_seals_before_its_bytes_would_exceed_the_budget() {
        let (mut q, mut next) = (Queue::default(), ids());
        let e = "x".repeat(49);
        assert!(!push(&mut q, &e, &mut next));
        assert!(!push(&mut q, &e, &mut next)); // 49 + 1 + 49 = 99 <= 100
        assert!(push(&mut q, "y", &mut next)); // 101 > 100: b1 sealed, b2 opened
        let sizes: Vec<usize> = q.batches().map(|b| b.bytes).collect();
        assert_eq!(sizes, [99, 1]);
    }

    #[test]
    fn an_identity_change_starts_a_new_batch() {
        let (mut q, mut next) = (Queue::default(), ids());
        q.push("{}".into(), None, 0, LIMITS, &mut next);
        assert!(q.push("{}".into(), Some("u.1.sig"), 0, LIMITS, &mut next));
        let idents: Vec<Option<String>> = q.batches().map(|b| b.identity.clone()).collect();
        assert_eq!(idents, [None, Some("u.1.sig".into())]);
    }

    #[test]
    fn over_max_queue_the_oldest_events_go_and_are_counted() {
        let (mut q, mut next) = (Queue::default(), ids());
        let limits = BatchLimits {
            max_queue: 4,
            ..LIMITS
        };
        for i in 0..6 {
            q.push(format!("{{\"n\":{i}}}"), None, 0, limits, &mut next);
        }
        assert_eq!((q.len(), q.evicted), (4, 2));
        let events: Vec<&str> = q
            .batches()
            .flat_map(|b| b.events.iter().map(String::as_str))
            .collect();
        assert_eq!(
            events,
            [r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#, r#"{"n":5}"#]
        );
    }

    #[test]
    fn eviction_spares_the_batch_on_the_wire() {
        let (mut q, mut next) = (Queue::default(), ids());
        let limits = BatchLimits {
            max_queue: 4,
            ..LIMITS
        };
        for _ in 0..3 {
            q.push("{\"old\":1}".into(), None, 0, limits, &mut next);
        }
        assert_eq!(q.start_next(0).map(|b| b.id.clone()), Some("b1".into()));
        for _ in 0..3 {
            q.push("{}".into(), None, 0, limits, &mut next);
        }
        assert_eq!((q.len(), q.evicted), (4, 2));
        assert_eq!(q.batches().next().map(|b| b.events.len()), Some(3));
    }

    #[test]
    fn one_batch_on_the_wire_at_a_time_and_retries_keep_the_id() {
        let (mut q, mut next) = (Queue::default(), ids());
        for _ in 0..6 {
            push(&mut q, "{}", &mut next);
        }
        let first = q.start_next(0).map(|b| b.id.clone());
        assert_eq!(first.as_deref(), Some("b1"));
        assert!(q.start_next(0).is_none());
        q.settle("b1", 100, Settle::Retry { in_ms: 1_000 });
        assert!(q.start_next(1_099).is_none(), "paused for every batch");
        assert_eq!(q.next_send_ms(), Some(1_100));
        // In order: the retried batch goes first, under its own id.
        let again = q.start_next(1_100).map(|b| (b.id.clone(), b.attempts));
        assert_eq!(again, Some(("b1".into(), 2)));
        q.settle("b1", 1_100, Settle::Dropped);
        let third = q.start_next(1_100).map(|b| (b.id.clone(), b.attempts));
        assert_eq!(third, Some(("b2".into(), 1)));
        q.settle("b2", 1_100, Settle::Delivered);
        assert_eq!((q.len(), q.dropped), (0, 3));
        assert!(q.start_next(5_000).is_none());
    }

    #[test]
    fn a_refused_identity_comes_off_its_batch_once_and_it_goes_again_at_once() {
        let (mut q, mut next) = (Queue::default(), ids());
        for identity in [Some("u.1.sig"), Some("u.1.sig"), Some("u.1.sig"), None] {
            q.push("{}".into(), identity, 0, LIMITS, &mut next);
        }
        assert_eq!(q.start_next(50).map(|b| b.id.clone()), Some("b1".into()));
        assert_eq!(q.strip_identity("b1"), Some("u.1.sig".into()));
        assert_eq!(q.next_send_ms(), Some(0), "due at once, no backoff");
        let again = q
            .start_next(50)
            .map(|b| (b.id.clone(), b.attempts, b.body(50, "wk")));
        let (id, attempts, body) = again.expect("due");
        assert_eq!((id.as_str(), attempts), ("b1", 2));
        assert!(!body.contains("identity"), "{body}");
        assert_eq!(q.strip_identity("b1"), None, "at most once per batch");
        // The storage form no longer carries the token either.
        assert!(
            q.encode(1).starts_with("1\nB b1 2 s -\n"),
            "{}",
            q.encode(1)
        );
        assert_eq!(q.strip_identity("nope"), None);
    }

    #[test]
    fn the_body_is_a_wire_batch() {
        let (mut q, mut next) = (Queue::default(), ids());
        let limits = BatchLimits {
            max_event_bytes: 1_000,
            ..LIMITS
        };
        q.push(
            r#"{"type":"a","timestamp":"t","clientId":"c"}"#.into(),
            Some("u.9.s"),
            0,
            limits,
            &mut next,
        );
        q.push(
            r#"{"type":"b","timestamp":"t","clientId":"c","payload":{"k":[1,2.5]}}"#.into(),
            Some("u.9.s"),
            0,
            limits,
            &mut next,
        );
        q.seal_open();
        let body = q
            .start_next(0)
            .map(|b| b.body(1_795_341_599_123, "wk\"1"))
            .expect("due");
        let wire: freshet_core::wire::WireBatch<freshet_core::wire::WireEvent<serde_json::Value>> =
            serde_json::from_str(&body).expect("a wire batch");
        assert_eq!(wire.batch_id.as_deref(), Some("b1"));
        assert_eq!(wire.sent_at.as_deref(), Some("2026-11-22T09:59:59.123Z"));
        assert_eq!(wire.write_key.as_deref(), Some("wk\"1"));
        assert_eq!(wire.identity.as_deref(), Some("u.9.s"));
        assert_eq!(wire.events.len(), 2);
        assert_eq!(
            wire.events[1].payload,
            Some(serde_json::json!({"k": [1, 2.5]}))
        );
    }

    #[test]
    fn storage_form_round_trips_sealing_the_open_batch() {
        let (mut q, mut next) = (Queue::default(), ids());
        for i in 0..4 {
            q.push(
                format!("{{\"n\":{i}}}"),
                if i < 3 { None } else { Some("tok") },
                0,
                LIMITS,
                &mut next,
            );
        }
        q.start_next(0);
        let text = q.encode(77);
        let mut back = Queue::default();
        assert_eq!(back.adopt(&text, 100), Some(77));
        let shape: Vec<(String, usize, bool, bool, u32, Option<String>)> = back
            .batches()
            .map(|b| {
                (
                    b.id.clone(),
                    b.events.len(),
                    b.sealed,
                    b.in_flight,
                    b.attempts,
                    b.identity.clone(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("b1".into(), 3, true, false, 1, None),
                ("b2".into(), 1, true, false, 0, Some("tok".into()))
            ]
        );
        assert_eq!(back.len(), 4);
        // Reading the same slot again (two tabs, or a bfcache return) adds nothing.
        back.adopt(&text, 100);
        assert_eq!(back.len(), 4);
        assert_eq!(back.encode(77), text.replace(" o tok", " s tok"));
    }

    #[test]
    fn adopted_batches_go_in_front_and_respect_max_queue() {
        let (mut q, mut next) = (Queue::default(), ids());
        push(&mut q, "{\"mine\":1}", &mut next);
        let other = "5\nB x1 0 s -\nE{\"a\":1}\nE{\"a\":2}";
        q.adopt(other, 2);
        let events: Vec<&str> = q
            .batches()
            .flat_map(|b| b.events.iter().map(String::as_str))
            .collect();
        assert_eq!(events, ["{\"a\":2}", "{\"mine\":1}"]);
        assert_eq!(q.evicted, 1);
        assert_eq!(Queue::default().adopt("garbage", 10), None);
    }

    #[test]
    fn unload_seals_everything_and_defers_the_confirmation() {
        let (mut q, mut next) = (Queue::default(), ids());
        push(&mut q, "{}", &mut next);
        let bodies = q.unload_bodies(1_000, "wk", 30_000);
        assert_eq!(bodies.len(), 1);
        assert!(bodies[0].contains("\"batchId\":\"b1\""));
        assert_eq!(q.len(), 1, "kept until confirmed");
        assert!(q.start_next(30_999).is_none());
        assert!(q.start_next(31_000).is_some());
    }
}
