//! Reading a command line as zkCli.sh does: words split by its
//! `ARGS_PATTERN` (quotes group words and are stripped), then each
//! command's flags read the way Apache commons-cli reads them, with the
//! same messages when they are wrong.

/// One command zoo-cli knows: its name, its flags and the usage text
/// zkCli.sh prints for it.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    /// Flag letters; a letter followed by `:` takes a value.
    flags: &'static str,
    pub usage: &'static str,
}

/// Every command, in the order `usage()` lists them (sorted by name).
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "addWatch",
        flags: "m:",
        usage: "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    },
    Spec { name: "addauth", flags: "", usage: "scheme auth" },
    Spec { name: "close", flags: "", usage: "" },
    Spec { name: "config", flags: "cws", usage: "[-c] [-w] [-s]" },
    Spec { name: "connect", flags: "", usage: "host:port" },
    Spec {
        name: "create",
        flags: "esct:",
        usage: "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
    },
    Spec { name: "delete", flags: "v:", usage: "[-v version] path" },
    Spec { name: "deleteall", flags: "b:", usage: "path [-b batch size]" },
    Spec { name: "get", flags: "sw", usage: "[-s] [-w] path" },
    Spec { name: "getAcl", flags: "s", usage: "[-s] path" },
    Spec { name: "getAllChildrenNumber", flags: "", usage: "path" },
    Spec { name: "getEphemerals", flags: "", usage: "path" },
    Spec { name: "history", flags: "", usage: "" },
    Spec { name: "ls", flags: "swR?", usage: "[-s] [-w] [-R] path" },
    Spec { name: "printwatches", flags: "", usage: "on|off" },
    Spec { name: "quit", flags: "", usage: "" },
    Spec { name: "redo", flags: "", usage: "cmdno" },
    Spec {
        name: "removewatches",
        flags: "cdal",
        usage: "path [-c|-d|-a] [-l]",
    },
    Spec { name: "set", flags: "sv:", usage: "[-s] [-v version] path data" },
    Spec {
        name: "setAcl",
        flags: "sv:R",
        usage: "[-s] [-v version] [-R] path acl",
    },
    Spec { name: "stat", flags: "w", usage: "[-w] path" },
    Spec { name: "sync", flags: "", usage: "path" },
    Spec { name: "version", flags: "", usage: "" },
    Spec { name: "whoami", flags: "", usage: "" },
];

/// The command named `name`, if zoo-cli has it.
pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

impl Spec {
    /// `getUsageStr()`: the name, a space, the option text.
    pub fn usage_line(&self) -> String {
        format!("{} {}", self.name, self.usage)
    }

    fn flag(&self, letter: char) -> Option<bool> {
        let mut chars = self.flags.chars().peekable();
        while let Some(c) = chars.next() {
            let takes_value = chars.peek() == Some(&':');
            if takes_value {
                chars.next();
            }
            if c == letter {
                return Some(takes_value);
            }
        }
        None
    }

    /// Splits `words` (the command name first) into flags and arguments.
    /// The error is commons-cli's exception as zkCli.sh prints it.
    pub fn parse(&self, words: &[String]) -> Result<Parsed, String> {
        let mut parsed = Parsed::default();
        let mut rest = words.iter();
        while let Some(word) = rest.next() {
            if word == "--" {
                parsed.args.extend(rest.by_ref().cloned());
                break;
            }
            let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
                parsed.args.push(word.clone());
                continue;
            };
            let unrecognized = || {
                format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {word}")
            };
            let first = letters.chars().next().unwrap_or('-');
            match self.flag(first) {
                // `-v 3`, or `-v3`.
                Some(true) => {
                    let attached = &letters[first.len_utf8()..];
                    let value = if !attached.is_empty() {
                        attached.to_string()
                    } else {
                        match rest.next() {
                            Some(v) => v.clone(),
                            None => {
                                return Err(format!(
                                    "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {first}"
                                ))
                            }
                        }
                    };
                    parsed.flags.push((first, Some(value)));
                }
                // `-s`, or several at once: `-se`.
                Some(false) => {
                    for letter in letters.chars() {
                        match self.flag(letter) {
                            Some(false) => parsed.flags.push((letter, None)),
                            _ => return Err(unrecognized()),
                        }
                    }
                }
                None => return Err(unrecognized()),
            }
        }
        if parsed.args.len() < self.min_args() {
            return Err(self.usage_line());
        }
        Ok(parsed)
    }

    /// Words (the name included) a command needs, checked as it is
    /// parsed, before anything is sent.
    fn min_args(&self) -> usize {
        match self.name {
            "set" | "setAcl" => 3,
            "create"
            | "delete"
            | "deleteall"
            | "get"
            | "getAcl"
            | "stat"
            | "sync"
            | "addauth"
            | "getAllChildrenNumber"
            | "removewatches" => 2,
            _ => 0,
        }
    }
}

/// A command's words after its flags were read.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The words that are not flags, the command name first (commons-cli's
    /// `getArgs()`).
    pub args: Vec<String>,
    flags: Vec<(char, Option<String>)>,
}

impl Parsed {
    pub fn has(&self, letter: char) -> bool {
        self.flags.iter().any(|(l, _)| *l == letter)
    }

    /// The value of the last `-letter value`.
    pub fn value(&self, letter: char) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(l, _)| *l == letter)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Argument `i` (0 is the command name).
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
}

/// Splits a line into words as `MyCommandOptions.parseCommand` does: runs
/// of non-blank characters, or a quoted string (its quotes stripped); a
/// quote that is never closed is skipped.
pub fn words(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let c = chars[i];
        if c == '"' || c == '\'' {
            match chars[i + 1..].iter().position(|&d| d == c) {
                Some(len) => {
                    words.push(chars[i + 1..i + 1 + len].iter().collect());
                    i += len + 2;
                }
                None => i += 1,
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        words.push(chars[start..i].iter().collect());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_split_like_zkcli() {
        assert_eq!(words("  ls   /q  "), ["ls", "/q"]);
        assert_eq!(
            words("create /q \"hello world\""),
            ["create", "/q", "hello world"]
        );
        assert_eq!(words("create /q 'a b' x"), ["create", "/q", "a b", "x"]);
        assert_eq!(words("create /q \"x"), ["create", "/q", "x"]);
        assert_eq!(words("set /p a\"b\""), ["set", "/p", "a\"b\""]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn flags_read_like_commons_cli() {
        let create = spec("create").unwrap();
        let p = create.parse(&owned(&["create", "-se", "/a", "d"])).unwrap();
        assert!(p.has('s') && p.has('e') && !p.has('c'));
        assert_eq!(p.args, ["create", "/a", "d"]);
        let p = create.parse(&owned(&["create", "-t", "10", "/a"])).unwrap();
        assert_eq!(p.value('t'), Some("10"));
        let p = create.parse(&owned(&["create", "-t10", "/a"])).unwrap();
        assert_eq!(p.value('t'), Some("10"));

        let set = spec("set").unwrap();
        assert_eq!(
            set.parse(&owned(&["set", "/q", "-1"])).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -1"
        );
        assert_eq!(
            set.parse(&owned(&["set", "-v"])).unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: v"
        );
        let p = set.parse(&owned(&["set", "--", "/q", "-1"])).unwrap();
        assert_eq!(p.args, ["set", "/q", "-1"]);
        let rw = spec("removewatches").unwrap();
        assert!(rw
            .parse(&owned(&["removewatches", "/w", "-d"]))
            .unwrap()
            .has('d'));
    }
}
