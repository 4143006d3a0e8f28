//! Where a value is read from an event: a field path, and the derived
//! fields read from the event time.

use std::fmt;

use serde_json::Value;

use crate::validate::Event;

/// Where a value is read from an event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldPath {
    Id,
    Type,
    Timestamp,
    ClientId,
    SessionId,
    UserId,
    Payload(Vec<String>),
    /// The event time's hour, 0-23 (derived; in the feature's `tz`).
    HourOfDay,
    /// The event time's day of the week, 0 = Sunday … 6 = Saturday, as SQL's
    /// `EXTRACT(DOW …)` (derived; in the feature's `tz`).
    DayOfWeek,
}

impl FieldPath {
    pub fn parse(path: &str) -> Result<Self, String> {
        Ok(match path {
            "id" => Self::Id,
            "type" => Self::Type,
            "timestamp" => Self::Timestamp,
            "clientId" => Self::ClientId,
            "sessionId" => Self::SessionId,
            "userId" => Self::UserId,
            "hour_of_day" => Self::HourOfDay,
            "day_of_week" => Self::DayOfWeek,
            _ => {
                let rest = path.strip_prefix("payload.").ok_or_else(|| {
                    format!(
                        "field path `{path}` must be payload.<name>[.<name>…] or one of \
                         id, type, timestamp, clientId, sessionId, userId, hour_of_day, \
                         day_of_week"
                    )
                })?;
                let segments: Vec<String> = rest.split('.').map(str::to_owned).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(format!("field path `{path}` has an empty segment"));
                }
                Self::Payload(segments)
            }
        })
    }

    /// The value at this path in `event`; the event time reads as milliseconds,
    /// derived fields in UTC. `user_id` is the userId to honour (verified),
    /// not the one sent.
    pub fn get(&self, event: &Event, user_id: Option<&str>) -> Option<Value> {
        self.get_in(event, user_id, None)
    }

    /// Like [`FieldPath::get`], with derived fields in the time zone `tz`.
    pub fn get_in(
        &self,
        event: &Event,
        user_id: Option<&str>,
        tz: Option<&jiff::tz::TimeZone>,
    ) -> Option<Value> {
        let local = || {
            let at = jiff::Timestamp::from_millisecond(event.time).ok()?;
            Some(tz.unwrap_or(&jiff::tz::TimeZone::UTC).to_datetime(at))
        };
        match self {
            Self::HourOfDay => Some(Value::from(local()?.hour())),
            Self::DayOfWeek => Some(Value::from(local()?.weekday().to_sunday_zero_offset())),
            Self::Id => Some(Value::from(event.id.as_str())),
            Self::Type => Some(Value::from(event.event_type.as_str())),
            Self::Timestamp => Some(Value::from(event.time)),
            Self::ClientId => Some(Value::from(event.client_id.as_str())),
            Self::SessionId => event.session_id.as_deref().map(Value::from),
            Self::UserId => user_id.map(Value::from),
            Self::Payload(segments) => {
                let (first, rest) = segments.split_first()?;
                let mut value = event.payload.get(first)?;
                for segment in rest {
                    value = value.as_object()?.get(segment)?;
                }
                (!value.is_null()).then(|| value.clone())
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id => f.write_str("id"),
            Self::Type => f.write_str("type"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::ClientId => f.write_str("clientId"),
            Self::SessionId => f.write_str("sessionId"),
            Self::UserId => f.write_str("userId"),
            Self::HourOfDay => f.write_str("hour_of_day"),
            Self::DayOfWeek => f.write_str("day_of_week"),
            Self::Payload(segments) => write!(f, "payload.{}", segments.join(".")),
        }
    }
}
