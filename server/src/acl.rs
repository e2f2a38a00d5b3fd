//! Access control: the identities a connection holds, ACL validation at
//! create/setACL time, and the permission check (protocol section 7).

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};
use zoo_wire::{Acl, Id, Perms};

/// The identities of one connection: `ip:<address>` from the start, plus
/// whatever `addauth` added.
#[derive(Debug, Clone)]
pub struct Identities {
    ids: Vec<Id>,
}

/// Identities one connection may collect; `addauth` beyond it is refused,
/// so a client cannot grow this list without bound.
pub const MAX_IDS_PER_CONNECTION: usize = 64;

impl Identities {
    pub fn new(remote: IpAddr) -> Identities {
        Identities {
            ids: vec![Id::new("ip", remote.to_string())],
        }
    }

    /// The identities a follower forwarded with a request, at most the
    /// per-connection limit of them.
    pub fn from_ids(mut ids: Vec<Id>) -> Identities {
        ids.truncate(MAX_IDS_PER_CONNECTION);
        Identities { ids }
    }

    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// Adds an identity once; false when the connection has too many.
    pub fn add(&mut self, id: Id) -> bool {
        if self.ids.contains(&id) {
            return true;
        }
        if self.ids.len() >= MAX_IDS_PER_CONNECTION {
            return false;
        }
        self.ids.push(id);
        true
    }

    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|id| id.scheme() == "super")
    }

    /// Whether this connection has `perm` on a node with `acl` (checkACL).
    pub fn allows(&self, acl: &[Acl], perm: Perms) -> bool {
        if acl.is_empty() || self.is_super() {
            return true;
        }
        acl.iter()
            .filter(|entry| entry.perms.intersects(perm))
            .any(|entry| {
                let (scheme, id) = (entry.id.scheme(), entry.id.id());
                if scheme == "world" && id == "anyone" {
                    return true;
                }
                self.ids
                    .iter()
                    .filter(|mine| mine.scheme() == scheme)
                    .any(|mine| matches(scheme, mine.id(), id))
            })
    }

    /// The ACL to store for a create or setACL: `auth` entries become one
    /// entry per authenticated identity, duplicates go, and anything invalid
    /// makes the whole list invalid (`None`, answered INVALIDACL).
    pub fn fix_acl(&self, acl: Option<&[Acl]>) -> Option<Vec<Acl>> {
        let acl = acl.filter(|a| !a.is_empty())?;
        let mut fixed: Vec<Acl> = Vec::with_capacity(acl.len());
        let mut push = |entry: Acl| {
            if !fixed.contains(&entry) {
                fixed.push(entry);
            }
        };
        for entry in acl {
            let (scheme, id) = (entry.id.scheme(), entry.id.id());
            if scheme == "world" && id == "anyone" {
                push(entry.clone());
            } else if scheme == "auth" {
                let mut any = false;
                for mine in self
                    .ids
                    .iter()
                    .filter(|i| is_authenticated_scheme(i.scheme()))
                {
                    any = true;
                    push(Acl {
                        perms: entry.perms,
                        id: mine.clone(),
                    });
                }
                if !any {
                    return None;
                }
            } else if is_valid_id(scheme, id) {
                push(entry.clone());
            } else {
                return None;
            }
        }
        Some(fixed)
    }
}

/// `digest` (and SASL, x509) identities are "authenticated"; `ip` is not.
fn is_authenticated_scheme(scheme: &str) -> bool {
    scheme == "digest"
}

/// Whether an ACL id is valid for its scheme's provider.
fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        // Java's split(":") drops trailing empty parts: "u:" is one part.
        "digest" => {
            let parts: Vec<&str> = id.split(':').collect();
            parts.len() == 2 && !parts[1].is_empty()
        }
        "ip" => parse_ip_pattern(id).is_some(),
        _ => false,
    }
}

fn matches(scheme: &str, mine: &str, acl_id: &str) -> bool {
    match scheme {
        "digest" => mine == acl_id,
        "ip" => match (mine.parse::<IpAddr>(), parse_ip_pattern(acl_id)) {
            (Ok(addr), Some((net, bits))) => ip_in(addr, net, bits),
            _ => false,
        },
        _ => false,
    }
}

/// `addr` or `addr/bits`.
fn parse_ip_pattern(pattern: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (pattern, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn ip_in(addr: IpAddr, net: IpAddr, bits: u32) -> bool {
    let (a, n, width) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (n >> shift)
}

/// The digest identity for credentials `user:password`:
/// `user:BASE64(SHA1("user:password"))`.
pub fn digest_id(credential: &[u8]) -> String {
    let hash = Sha1::digest(credential);
    let text = String::from_utf8_lossy(credential);
    let user = text.split(':').next().unwrap_or_default();
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// For getACL without ADMIN: every digest id masked as `user:x`.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme() == "digest" {
                let user = entry.id.id().split(':').next().unwrap_or_default();
                Acl {
                    perms: entry.perms,
                    id: Id::new("digest", format!("{user}:x")),
                }
            } else {
                entry.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Identities {
        Identities::new("127.0.0.1".parse().unwrap())
    }

    #[test]
    fn the_documented_digest() {
        assert_eq!(
            digest_id(b"super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn checks() {
        let mut me = local();
        let digest = digest_id(b"bob:pw");
        let acl = vec![Acl {
            perms: Perms::READ | Perms::WRITE,
            id: Id::new("digest", digest.clone()),
        }];
        assert!(!me.allows(&acl, Perms::READ));
        me.add(Id::new("digest", digest));
        assert!(me.allows(&acl, Perms::READ));
        assert!(!me.allows(&acl, Perms::DELETE));
        assert!(me.allows(&[], Perms::ADMIN));
        let net = vec![Acl {
            perms: Perms::ALL,
            id: Id::new("ip", "127.0.0.0/8"),
        }];
        assert!(me.allows(&net, Perms::CREATE));
        let other = vec![Acl {
            perms: Perms::ALL,
            id: Id::new("ip", "10.0.0.0/8"),
        }];
        assert!(!me.allows(&other, Perms::CREATE));
    }

    #[test]
    fn fixing_acls() {
        let mut me = local();
        assert_eq!(me.fix_acl(None), None);
        assert_eq!(me.fix_acl(Some(&[])), None);
        assert_eq!(
            me.fix_acl(Some(&Acl::creator_all())),
            None,
            "auth without identities"
        );
        let bad = [Acl {
            perms: Perms::ALL,
            id: Id::new("world", "someone"),
        }];
        assert_eq!(me.fix_acl(Some(&bad)), None);
        let bad_digest = [Acl {
            perms: Perms::ALL,
            id: Id::new("digest", "nohash"),
        }];
        assert_eq!(me.fix_acl(Some(&bad_digest)), None);
        me.add(Id::new("digest", digest_id(b"bob:pw")));
        let fixed = me.fix_acl(Some(&Acl::creator_all())).unwrap();
        assert_eq!(fixed[0].id, Id::new("digest", digest_id(b"bob:pw")));
        let doubled = [Acl::open_unsafe(), Acl::open_unsafe()].concat();
        assert_eq!(me.fix_acl(Some(&doubled)).unwrap().len(), 1);
    }

    #[test]
    fn masking() {
        let acl = vec![Acl {
            perms: Perms::ALL,
            id: Id::new("digest", "bob:abc="),
        }];
        assert_eq!(mask_digests(&acl)[0].id.id(), "bob:x");
    }
}
