//! `mongodb://[user:pass@]host[:port][,host[:port]…]/db[?replicaSet=rs0&authSource=…&tls=true]`.
//!
//! One host (a standalone server, a mongos or a load balancer), or a replica
//! set's seed list: the edge writes to the member whose `hello` says it is
//! the writable primary, learns the primary's address from the others, and
//! on a write refused as `NotWritablePrimary` or a member that does not
//! answer finds the primary again and sends the exchange once more.
//! `mongodb+srv://` is refused with a message: resolving SRV and TXT
//! records would need DNS over HTTPS from the worker, and every provider
//! also gives a standard `mongodb://host:port` string.

use super::percent_decode;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoUrl {
    pub tls: bool,
    /// The first (or only) host of the URL.
    pub host: String,
    pub port: u16,
    /// Every host the URL names, the first being `host:port`.
    pub hosts: Vec<(String, u16)>,
    /// `replicaSet`: the set's name, which every member's `hello` must say.
    pub replica_set: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Where the feature collections live.
    pub db: String,
    /// Where the user is defined: `authSource`, else the database.
    pub auth_source: String,
    /// Sent in `hello` so the server's logs name the client.
    pub app_name: Option<String>,
}

/// The one authentication mechanism the edge speaks.
pub const AUTH_MECHANISM: &str = "SCRAM-SHA-256";

/// What a `mongodb+srv://` URL gets told.
pub const SRV_REFUSED: &str = "mongodb+srv:// is not supported (the worker cannot resolve \
SRV records); use the provider's standard mongodb://host:port/db?tls=true&authSource=admin string";

fn database_name_ok(db: &str) -> bool {
    !db.is_empty()
        && db.len() < 64
        && !db
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
}

fn flag(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("the MongoDB option {name} must be true or false")),
    }
}

impl MongoUrl {
    /// Parses the URL; the error says what is wrong without repeating the
    /// URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("mongodb+srv://") {
            return Err(SRV_REFUSED.into());
        }
        let rest = url
            .strip_prefix("mongodb://")
            .ok_or_else(|| "a MongoDB URL starts with mongodb://".to_string())?;
        let parts = super::split(rest)?;
        if parts.user.as_deref() == Some("") {
            return Err("the MongoDB URL has a password but no user name".into());
        }
        let (username, password) = (parts.user, parts.password.map(Secret::from));
        let (path, query) = (parts.path, parts.query);
        if parts.host_port.is_empty() {
            return Err("the MongoDB URL has no host".into());
        }
        let hosts = super::host_list(parts.host_port, 27017, "MongoDB")?;
        let (host, port) = hosts[0].clone();
        let db = percent_decode(path).ok_or_else(|| "bad %-escape in the database".to_string())?;
        if !database_name_ok(&db) {
            return Err(
                "the MongoDB URL needs a database after the host (/db), without \
                        / \\ . space \" $"
                    .into(),
            );
        }
        let mut tls = false;
        let mut auth_source = None;
        let mut app_name = None;
        let mut replica_set = None;
        let mut direct = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)
                .ok_or_else(|| format!("bad %-escape in the MongoDB option {key}"))?;
            match key {
                "tls" | "ssl" => tls = flag(key, &value)?,
                "authSource" if database_name_ok(&value) => auth_source = Some(value),
                "authMechanism" if value == AUTH_MECHANISM => {}
                "authMechanism" => {
                    return Err("the only MongoDB authMechanism is SCRAM-SHA-256".into());
                }
                "appName" if !value.is_empty() && value.len() <= 128 => app_name = Some(value),
                "replicaSet" if !value.is_empty() && value.len() <= 128 => {
                    replica_set = Some(value);
                }
                "directConnection" => direct = flag(key, &value)?,
                _ => {
                    return Err(format!(
                        "the MongoDB option {key:?} is not supported or its value is wrong \
                         (known: authSource, tls, authMechanism=SCRAM-SHA-256, appName, \
                         replicaSet, directConnection)"
                    ));
                }
            }
        }
        if direct && (hosts.len() > 1 || replica_set.is_some()) {
            return Err(
                "directConnection=true names one server: not with several hosts or a replicaSet"
                    .into(),
            );
        }
        if hosts.len() > 1 && replica_set.is_none() {
            return Err("several MongoDB hosts are a replica set's: add replicaSet=<name>".into());
        }
        if password.is_some() && username.is_none() {
            return Err("the MongoDB URL has a password but no user name".into());
        }
        if username.is_some() && password.is_none() {
            return Err("the MongoDB URL has a user name but no password".into());
        }
        Ok(Self {
            tls,
            host,
            port,
            hosts,
            replica_set,
            username,
            password,
            auth_source: auth_source.unwrap_or_else(|| db.clone()),
            db,
            app_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_of_the_design() {
        let u = MongoUrl::parse("mongodb://127.0.0.1:27018/fs").expect("plain");
        assert_eq!(
            (u.host.as_str(), u.port, u.db.as_str(), u.tls),
            ("127.0.0.1", 27018, "fs", false)
        );
        assert_eq!((u.username, u.password), (None, None));
        assert_eq!(u.auth_source, "fs");

        let u = MongoUrl::parse(
            "mongodb://freshet:p%40ss%3Aw@db.example/shop?authSource=admin&tls=true&appName=edge",
        )
        .expect("full");
        assert!(u.tls);
        assert_eq!(u.username.as_deref(), Some("freshet"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss:w"));
        assert_eq!((u.port, u.db.as_str()), (27017, "shop"));
        assert_eq!(u.auth_source, "admin");
        assert_eq!(u.app_name.as_deref(), Some("edge"));

        let u = MongoUrl::parse("mongodb://[::1]:7000/d?ssl=false&directConnection=true")
            .expect("ipv6");
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 7000, false));
        let u = MongoUrl::parse("mongodb://u:p@h/d?authMechanism=SCRAM-SHA-256").expect("mech");
        assert_eq!(u.auth_source, "d");
    }

    #[test]
    fn a_replica_set_is_a_seed_list_and_its_name() {
        let u = MongoUrl::parse("mongodb://u:p@10.0.0.1,10.0.0.2:27018,[::1]/fs?replicaSet=rs0")
            .expect("set");
        assert_eq!(
            u.hosts,
            [
                ("10.0.0.1".to_owned(), 27017),
                ("10.0.0.2".to_owned(), 27018),
                ("::1".to_owned(), 27017)
            ]
        );
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.1", 27017));
        assert_eq!(u.replica_set.as_deref(), Some("rs0"));
        // One member named as the set's: found the primary through it.
        let u = MongoUrl::parse("mongodb://h/fs?replicaSet=rs0").expect("one seed");
        assert_eq!((u.hosts.len(), u.replica_set.as_deref()), (1, Some("rs0")));
        let e = MongoUrl::parse("mongodb://a,b/fs").expect_err("no name");
        assert!(e.contains("replicaSet"), "{e}");
    }

    #[test]
    fn srv_is_refused_with_a_way_out() {
        let e =
            MongoUrl::parse("mongodb+srv://u:hunter2@cluster0.example.net/fs").expect_err("srv");
        assert!(e.contains("mongodb+srv:// is not supported"), "{e}");
        assert!(e.contains("mongodb://host:port"), "{e}");
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn refuses_broken_urls_without_echoing_them() {
        for bad in [
            "redis://h:1/fs",
            "mongodb://",
            "mongodb://h",
            "mongodb://h/",
            "mongodb://h/a.b",
            "mongodb://:hunter2@h/fs",
            "mongodb://u@h/fs",
            "mongodb://h:0/fs",
            "mongodb://h:99999/fs",
            "mongodb://a:1,b:2/fs",
            "mongodb://a:1,b:2/fs?replicaSet=rs0&directConnection=true",
            "mongodb://a:1,,b:2/fs?replicaSet=rs0",
            "mongodb://[::1:1/fs",
            "mongodb://h/fs?tls=yes",
            "mongodb://h/fs?authMechanism=SCRAM-SHA-1",
            "mongodb://h/fs?replicaSet=",
            "mongodb://h/fs?authSource=",
        ] {
            let e = MongoUrl::parse(bad).expect_err(bad);
            assert!(!e.contains("hunter2"), "{e}");
        }
        let u = MongoUrl::parse("mongodb://u:hunter2@h/fs").expect("ok");
        assert!(!format!("{u:?}").contains("hunter2"));
    }
}
