//! `redis://[user:pass@]host:port[/db]` (and `rediss://` for TLS), and a
//! Redis Cluster's seed list: `redis+cluster://[user:pass@]h1:p1,h2:p2`
//! (`rediss+cluster://` for TLS). A cluster has database 0 only; any node
//! of the list answers `CLUSTER SHARDS`, so one is enough and more survive
//! one being down.

use crate::encode::redis::DEFAULT_PREFIX;

use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub tls: bool,
    /// A Redis Cluster: commands go to the node that serves their slot.
    pub cluster: bool,
    /// The first (or only) node of the URL.
    pub host: String,
    pub port: u16,
    /// Every node the URL names, the first being `host:port`: a cluster's
    /// seeds (the slot map comes from `CLUSTER SHARDS`).
    pub nodes: Vec<(String, u16)>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: u32,
    /// Key prefix, `fs` unless the URL says `?prefix=…` (tests use a random one).
    pub prefix: String,
}

impl RedisUrl {
    /// Parses the URL; the error says what is wrong without repeating the
    /// URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, cluster, rest) = if let Some(rest) = url.strip_prefix("redis://") {
            (false, false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss://") {
            (true, false, rest)
        } else if let Some(rest) = url.strip_prefix("redis+cluster://") {
            (false, true, rest)
        } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
            (true, true, rest)
        } else {
            return Err(
                "a Redis URL starts with redis://, rediss://, redis+cluster:// or \
                 rediss+cluster://"
                    .into(),
            );
        };
        let parts = super::split(rest)?;
        // An empty user or password is none (`redis://:pass@host` is AUTH pass).
        let username = parts.user.filter(|u| !u.is_empty());
        let password = parts.password.filter(|p| !p.is_empty()).map(Secret::from);
        let (path, query) = (parts.path, parts.query);
        if parts.host_port.is_empty() {
            return Err("the Redis URL has no host".into());
        }
        let nodes = if cluster {
            super::host_list(parts.host_port, 6379, "Redis")?
        } else if parts.host_port.contains(',') {
            return Err("a list of Redis hosts is a cluster's: redis+cluster://".into());
        } else if parts.host.is_empty() {
            return Err("the Redis URL has no host".into());
        } else {
            vec![(
                parts.host.to_owned(),
                super::port(parts.port, 6379, "Redis")?,
            )]
        };
        let (host, port) = nodes[0].clone();
        let mut prefix = DEFAULT_PREFIX.to_owned();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", v))
                    if !v.is_empty()
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    prefix = v.to_owned();
                }
                _ => {
                    return Err("the only Redis URL option is prefix=<letters, digits, _ ->".into());
                }
            }
        }
        let db = if path.is_empty() {
            0
        } else {
            path.parse::<u32>()
                .map_err(|_| "the Redis database (after /) must be a number".to_string())?
        };
        if cluster && db != 0 {
            return Err("a Redis Cluster has database 0 only".into());
        }
        Ok(Self {
            tls,
            cluster,
            host,
            port,
            nodes,
            username,
            password,
            db,
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_of_the_design() {
        let u = RedisUrl::parse("redis://127.0.0.1:6390").expect("plain");
        assert_eq!(
            (u.host.as_str(), u.port, u.db, u.tls),
            ("127.0.0.1", 6390, 0, false)
        );
        assert_eq!((u.username, u.password), (None, None));

        let u = RedisUrl::parse("rediss://default:s3cr%3At@cache.example:6380/3").expect("full");
        assert!(u.tls);
        assert_eq!(u.username.as_deref(), Some("default"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("s3cr:t"));
        assert_eq!((u.port, u.db), (6380, 3));

        let u = RedisUrl::parse("redis://:onlypass@h").expect("password only");
        assert_eq!(
            (u.username, u.password.as_ref().map(Secret::expose), u.port),
            (None, Some("onlypass"), 6379)
        );

        let u = RedisUrl::parse("redis://h/0?prefix=t_1").expect("prefix");
        assert_eq!((u.prefix.as_str(), u.db), ("t_1", 0));
        assert_eq!(RedisUrl::parse("redis://h").expect("default").prefix, "fs");

        let u = RedisUrl::parse("redis://[::1]:7000/1").expect("ipv6");
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 7000, 1));
        assert!(!u.cluster);
        assert_eq!(u.nodes, [("::1".to_owned(), 7000)]);
    }

    #[test]
    fn a_cluster_url_lists_its_seeds() {
        let u = RedisUrl::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2?prefix=t").expect("ok");
        assert!(u.cluster && !u.tls);
        assert_eq!(
            u.nodes,
            [("10.0.0.1".to_owned(), 7000), ("10.0.0.2".to_owned(), 6379)]
        );
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.1", 7000));
        assert_eq!((u.prefix.as_str(), u.db), ("t", 0));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("pw"));
        let u = RedisUrl::parse("rediss+cluster://h:7000").expect("tls");
        assert!(u.cluster && u.tls);
        for (bad, says) in [
            ("redis+cluster://h:7000/1", "database 0"),
            ("redis://a:1,b:2", "redis+cluster://"),
            ("redis+cluster://a:1,,b:2", "empty"),
        ] {
            let e = RedisUrl::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn refuses_broken_urls_without_echoing_them() {
        for bad in [
            "http://h:1",
            "redis://",
            "redis://:pw@:1",
            "redis://h:0",
            "redis://h:99999",
            "redis://h:1/x",
            "redis://[::1:1",
            "redis://h/0?prefix=a:b",
            "redis://h/0?x=1",
        ] {
            let e = RedisUrl::parse(bad).expect_err(bad);
            assert!(!e.contains("pw"), "{e}");
        }
        let u = RedisUrl::parse("redis://u:hunter2@h").expect("ok");
        assert!(!format!("{u:?}").contains("hunter2"));
    }
}
