//! `host:port,host:port/chroot`, as every ZooKeeper client takes it.

use crate::error::{Error, Result};

/// The servers to try, and the chroot every path is relative to.
///
/// ```
/// use zoo_client::ConnectString;
///
/// let parsed = ConnectString::parse("zk1:2181,zk2/app").unwrap();
/// assert_eq!(parsed.hosts, ["zk1:2181", "zk2:2181"]);
/// assert_eq!(parsed.server_path("/config"), "/app/config");
/// assert_eq!(parsed.client_path("/app/config"), "/config");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` of each server, in the order given.
    pub hosts: Vec<String>,
    /// `None`, or a valid path other than `/`.
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses `h1:2181,h2:2181/app`. A host without a port gets 2181.
    /// Fails with `Error::BadArguments` when there is no host, and
    /// `Error::InvalidPath` for a bad chroot.
    pub fn parse(text: &str) -> Result<ConnectString> {
        let (hosts_part, chroot) = match text.find('/') {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                zoo_wire::validate_path(c)?;
                Some(c.to_string())
            }
        };
        let hosts: Vec<String> = hosts_part
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.contains(':') {
                    h.to_string()
                } else {
                    format!("{h}:2181")
                }
            })
            .collect();
        if hosts.is_empty() {
            return Err(Error::BadArguments);
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The server-side path for a client path.
    pub fn server_path(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// The client path for a server path (inverse of `server_path`).
    pub fn client_path(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(root) => match path.strip_prefix(root.as_str()) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => path.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let c = ConnectString::parse("a:1,b/app/x").unwrap();
        assert_eq!(c.hosts, vec!["a:1", "b:2181"]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(c.server_path("/"), "/app/x");
        assert_eq!(c.server_path("/n"), "/app/x/n");
        assert_eq!(c.client_path("/app/x/n"), "/n");
        assert_eq!(c.client_path("/app/x"), "/");
        assert!(ConnectString::parse("a:1/bad/").is_err());
        assert!(ConnectString::parse("").is_err());
        assert_eq!(ConnectString::parse("h:1/").unwrap().chroot, None);
    }
}
