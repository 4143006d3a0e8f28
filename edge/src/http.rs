//! The worker's view of HTTP, free of any runtime: the router takes a
//! [`Request`] and gives a [`Response`], so it is tested natively and the
//! wasm glue only converts to and from `worker` types.

/// `%XX` decoding: core's, the one the store URLs are read with.
pub use freshet_core::store_url::percent_decode;

/// The methods the routes tell apart; anything else is [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    Other,
}

impl Method {
    pub fn parse(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

/// A request body, read by the glue with a cap so an oversized body is
/// never held whole in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Bytes(Vec<u8>),
    /// The body went over the cap while it was read (or its
    /// `Content-Length` said it would); reading stopped there.
    TooLarge,
}

/// Collects a body chunk by chunk and stops at the cap, so an oversized
/// body is refused while it is read, never held whole.
#[derive(Debug)]
pub struct CappedBody {
    limit: usize,
    bytes: Vec<u8>,
    over: bool,
}

impl CappedBody {
    /// `declared` is the `Content-Length`, if any: a body that says it is too
    /// large is refused before a byte is read.
    pub fn new(limit: usize, declared: Option<usize>) -> Self {
        let over = declared.is_some_and(|n| n > limit);
        let capacity = if over { 0 } else { declared.unwrap_or(0) };
        Self {
            limit,
            bytes: Vec::with_capacity(capacity),
            over,
        }
    }

    /// Adds a chunk; `false` once the body is over the cap (stop reading).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.over || self.bytes.len() + chunk.len() > self.limit {
            self.over = true;
            self.bytes = Vec::new();
            return false;
        }
        self.bytes.extend_from_slice(chunk);
        true
    }

    pub fn is_over(&self) -> bool {
        self.over
    }

    pub fn finish(self) -> Body {
        if self.over {
            Body::TooLarge
        } else {
            Body::Bytes(self.bytes)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    /// A request without headers or body, for tests and the glue.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path_and_query.to_owned(), None),
        };
        Self {
            method,
            path,
            query,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// The first value of a header, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k).as_deref() == Some(name)).then(|| percent_decode(v))?
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, for tests and logs.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let req = Request::new(Method::Get, "/v1/features/user/a?names=a%2Cb,c&x");
        assert_eq!(req.path, "/v1/features/user/a");
        assert_eq!(req.query_param("names").as_deref(), Some("a,b,c"));
        assert_eq!(req.query_param("x").as_deref(), Some(""));
        assert_eq!(req.query_param("y"), None);
    }

    #[test]
    fn the_body_cap_holds_at_the_limit_and_refuses_one_over() {
        let mut at = CappedBody::new(10, None);
        assert!(at.push(b"12345") && at.push(b"67890"));
        assert_eq!(at.finish(), Body::Bytes(b"1234567890".to_vec()));

        let mut over = CappedBody::new(10, None);
        assert!(over.push(b"12345"));
        assert!(!over.push(b"678901"));
        assert!(over.is_over());
        assert!(!over.push(b"x"), "stays over");
        assert_eq!(over.finish(), Body::TooLarge);

        assert_eq!(CappedBody::new(10, Some(11)).finish(), Body::TooLarge);
        assert!(!CappedBody::new(10, Some(10)).is_over());
        assert_eq!(
            CappedBody::new(10, Some(0)).finish(),
            Body::Bytes(Vec::new())
        );
    }

    #[test]
    fn percent_decoding_refuses_broken_escapes() {
        assert_eq!(percent_decode("cid%2D1").as_deref(), Some("cid-1"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
