//! Znode path validation with ZooKeeper's exact rules
//! (`PathUtils.validatePath`, protocol section 12).
//!
//! The rules are stated on Java's UTF-16 code units, so positions in the
//! messages count UTF-16 units, and every character outside the Basic
//! Multilingual Plane is invalid (Java sees a surrogate).

use std::fmt;

/// Why a path is invalid; `Display` gives ZooKeeper's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    message: String,
}

impl PathError {
    fn new(message: impl Into<String>) -> PathError {
        PathError {
            message: message.into(),
        }
    }

    fn at(path: &str, reason: String) -> PathError {
        PathError::new(format!("Invalid path string \"{path}\" caused by {reason}"))
    }

    /// ZooKeeper's message, as `IllegalArgumentException` carries it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PathError {}

/// Checks a path as `PathUtils.validatePath(String)` does.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::new("Path length must be > 0"));
    }
    if !path.starts_with('/') {
        return Err(PathError::new("Path must start with / character"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(PathError::new("Path must not end with / character"));
    }
    let units: Vec<u16> = path.encode_utf16().collect();
    let mut last = u16::from(b'/');
    for i in 1..units.len() {
        let c = units[i];
        let ends_segment = i + 1 == units.len() || units[i + 1] == u16::from(b'/');
        let reason = if c == 0 {
            Some("null character not allowed")
        } else if c == u16::from(b'/') && last == u16::from(b'/') {
            Some("empty node name specified")
        } else if c == u16::from(b'.') && last == u16::from(b'.') {
            // `i >= 2` holds: `last` is a '.' at i-1 >= 1, after the leading '/'.
            (units[i - 2] == u16::from(b'/') && ends_segment)
                .then_some("relative paths not allowed")
        } else if c == u16::from(b'.') {
            (last == u16::from(b'/') && ends_segment).then_some("relative paths not allowed")
        } else if is_forbidden(c) {
            Some("invalid character")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(PathError::at(path, format!("{reason} @{i}")));
        }
        last = c;
    }
    Ok(())
}

/// Checks the path of a sequential create, which the server extends with a
/// number: validated with a digit appended, so `/queue/` is legal.
pub fn validate_sequential_path(path: &str) -> Result<(), PathError> {
    validate_path(&format!("{path}1"))
}

fn is_forbidden(c: u16) -> bool {
    matches!(c, 0x0001..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}

/// The parent of a valid path other than `/` (`/a` → `/`, `/a/b` → `/a`).
pub fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        None => None,
        Some(0) if path.len() == 1 => None,
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
    }
}

/// The last segment of a path (`/a/b` → `b`; `/` → ``).
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_rules() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/...",
            "/.a",
            "/a.",
            "/a/..b",
            "/zookeeper",
            "/ü",
            "/a b",
        ] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "Path length must be > 0"),
            ("a", "Path must start with / character"),
            ("/a/", "Path must not end with / character"),
            (
                "//a",
                "Invalid path string \"//a\" caused by empty node name specified @1",
            ),
            (
                "/a//b",
                "Invalid path string \"/a//b\" caused by empty node name specified @3",
            ),
            (
                "/.",
                "Invalid path string \"/.\" caused by relative paths not allowed @1",
            ),
            (
                "/..",
                "Invalid path string \"/..\" caused by relative paths not allowed @2",
            ),
            (
                "/a/./b",
                "Invalid path string \"/a/./b\" caused by relative paths not allowed @3",
            ),
            (
                "/a/../b",
                "Invalid path string \"/a/../b\" caused by relative paths not allowed @4",
            ),
            (
                "/a\u{0}",
                "Invalid path string \"/a\u{0}\" caused by null character not allowed @2",
            ),
            (
                "/\u{1}",
                "Invalid path string \"/\u{1}\" caused by invalid character @1",
            ),
            (
                "/\u{7f}",
                "Invalid path string \"/\u{7f}\" caused by invalid character @1",
            ),
            (
                "/\u{e000}",
                "Invalid path string \"/\u{e000}\" caused by invalid character @1",
            ),
            (
                "/\u{fff0}",
                "Invalid path string \"/\u{fff0}\" caused by invalid character @1",
            ),
            // An emoji is two UTF-16 units; the first is a surrogate.
            (
                "/x\u{1f600}",
                "Invalid path string \"/x\u{1f600}\" caused by invalid character @2",
            ),
        ];
        for (path, message) in cases {
            assert_eq!(
                validate_path(path).unwrap_err().message(),
                message,
                "{path:?}"
            );
        }
    }

    #[test]
    fn sequential_paths_may_end_in_slash() {
        assert_eq!(validate_sequential_path("/queue/"), Ok(()));
        assert!(validate_sequential_path("/queue//").is_err());
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(basename("/"), "");
    }
}
