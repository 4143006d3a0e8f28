//! The store URLs of `FRESHET_STORE` (`redis://`, `rediss://`,
//! `mongodb://`), parsed by one rule for the edge and the Python reader, so
//! a URL one of them refuses the other refuses too. What every store URL
//! shares after its scheme is `[user[:pass]@]host[:port][/path][?query]`;
//! each store checks its own rules (defaults, what may be empty, the path
//! and the options) on the parts. Errors never repeat the URL: it may hold
//! a password.

pub mod mongo;
pub mod redis;

pub use mongo::{MongoUrl, SRV_REFUSED};
pub use redis::RedisUrl;

/// The parts of a URL after `scheme://`; user and password %-decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// As given, so a store decides what an empty one means.
    pub user: Option<String>,
    pub password: Option<String>,
    /// `host[:port]` as written, before it is split (MongoDB refuses lists).
    pub host_port: &'a str,
    /// Without the brackets of an IPv6 address.
    pub host: &'a str,
    pub port: Option<&'a str>,
    /// After the first `/`, before `?`; not decoded.
    pub path: &'a str,
    pub query: &'a str,
}

/// Decodes `%XX` escapes (and `+` as a space in query strings is not
/// used by our clients, so it stays `+`). `None` if the result is not UTF-8
/// or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Splits what follows `scheme://`.
pub fn split(rest: &str) -> Result<UrlParts<'_>, String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = tail.strip_prefix('/').unwrap_or(tail);
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let decode =
        |s: &str| percent_decode(s).ok_or_else(|| "bad %-escape in the user info".to_string());
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            (Some(decode(user)?), pass.map(decode).transpose()?)
        }
    };
    let (host, port) = split_host(host_port)?;
    Ok(UrlParts {
        user,
        password,
        host_port,
        host,
        port,
        path,
        query,
    })
}

/// The port, `default` when none is written; `store` names the store in the error.
pub fn port(port: Option<&str>, default: u16, store: &str) -> Result<u16, String> {
    match port {
        None | Some("") => Ok(default),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("the {store} port must be a number from 1 to 65535")),
    }
}

/// `host[:port]` into its host (without an IPv6 address's brackets) and port.
fn split_host(host_port: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the host".to_string())?;
        return Ok((host, after.strip_prefix(':')));
    }
    Ok(match host_port.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    })
}

/// `host[:port],host[:port],…` (a cluster's or a replica set's seed list),
/// each with `default` when it names no port; IPv6 hosts in brackets.
pub fn host_list(host_port: &str, default: u16, store: &str) -> Result<Vec<(String, u16)>, String> {
    host_port
        .split(',')
        .map(|one| {
            let (host, port) = split_host(one)?;
            if host.is_empty() {
                return Err(format!("a {store} host in the list is empty"));
            }
            Ok((host.to_owned(), self::port(port, default, store)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_part() {
        let p = split("us%40er:p%3Ass@[::1]:7000/3?prefix=x&a=b").expect("ok");
        assert_eq!(p.user.as_deref(), Some("us@er"));
        assert_eq!(p.password.as_deref(), Some("p:ss"));
        assert_eq!(
            (p.host_port, p.host, p.port),
            ("[::1]:7000", "::1", Some("7000"))
        );
        assert_eq!((p.path, p.query), ("3", "prefix=x&a=b"));
    }

    #[test]
    fn a_password_may_hold_at_signs_and_the_rest_may_be_absent() {
        let p = split("u:a@b@host").expect("ok");
        assert_eq!(
            (p.user.as_deref(), p.password.as_deref()),
            (Some("u"), Some("a@b"))
        );
        assert_eq!((p.host, p.port, p.path, p.query), ("host", None, "", ""));
        let p = split("host?x=1").expect("ok");
        assert_eq!((p.user, p.host, p.path, p.query), (None, "host", "", "x=1"));
    }

    #[test]
    fn bad_escapes_and_brackets_are_errors() {
        assert!(split("u:%zz@host").is_err());
        assert!(split("[::1:6379").is_err());
    }

    #[test]
    fn host_lists_split_on_commas() {
        assert_eq!(
            host_list("a:7000,[::1]:7001,b", 6379, "Redis"),
            Ok(vec![
                ("a".to_owned(), 7000),
                ("::1".to_owned(), 7001),
                ("b".to_owned(), 6379)
            ])
        );
        assert!(host_list("a:1,,b", 6379, "Redis").is_err());
        assert!(host_list("a:x", 6379, "Redis").is_err());
    }

    #[test]
    fn ports_default_and_are_checked() {
        assert_eq!(port(None, 6379, "Redis"), Ok(6379));
        assert_eq!(port(Some(""), 27017, "MongoDB"), Ok(27017));
        assert_eq!(port(Some("7"), 1, "Redis"), Ok(7));
        for bad in ["0", "65536", "x"] {
            let err = port(Some(bad), 1, "Redis").expect_err(bad);
            assert!(err.contains("Redis port"), "{err}");
        }
    }
}
