//! The commands that act on the session, one function each, printing what
//! zkCli.sh 3.8's command classes print.

use zoo_client::{Client, CreateOptions, Error, Op};
use zoo_wire::{Acl, CreateMode, WatcherType};

use super::format;
use super::parse::{Parsed, Spec};
use super::{Failure, Output, Watches};

/// The largest TTL a node may have (`EphemeralType.TTL`'s 40 bits).
const MAX_TTL_MS: i64 = (1 << 40) - 1;
/// `deleteall`'s default number of deletes per multi.
const DELETEALL_BATCH: i64 = 1000;
/// The node `config` reads.
const CONFIG_NODE: &str = "/zookeeper/config";

type Outcome = Result<(), Failure>;

/// What zkCli.sh says when `error` ends an operation on `path`.
fn failed(error: Error, path: &str) -> Failure {
    Failure::new(format::failure(&error, Some(path)))
}

fn usage(spec: &Spec) -> Failure {
    Failure::new(spec.usage_line())
}

/// Runs `spec` with `parsed`'s flags and arguments.
pub async fn run(
    spec: &Spec,
    parsed: &Parsed,
    client: &Client,
    watches: &mut Watches,
    out: &mut Output,
) -> Outcome {
    let mut cmd = Command {
        spec,
        p: parsed,
        client,
        watches,
        out,
    };
    match spec.name {
        "create" => cmd.create().await,
        "delete" => cmd.delete().await,
        "deleteall" => cmd.deleteall().await,
        "set" => cmd.set().await,
        "get" => cmd.get().await,
        "ls" => cmd.ls().await,
        "stat" => cmd.stat().await,
        "getAcl" => cmd.get_acl().await,
        "setAcl" => cmd.set_acl().await,
        "addauth" => cmd.addauth().await,
        "sync" => cmd.sync().await,
        "addWatch" => cmd.add_watch().await,
        "removewatches" => cmd.remove_watches().await,
        "whoami" => cmd.whoami().await,
        "getEphemerals" => cmd.get_ephemerals().await,
        "getAllChildrenNumber" => cmd.get_all_children_number().await,
        "config" => cmd.config().await,
        "version" => {
            cmd.out
                .out(format!("zoo-cli version: {}", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        _ => Ok(()),
    }
}

struct Command<'a> {
    spec: &'a Spec,
    p: &'a Parsed,
    client: &'a Client,
    watches: &'a mut Watches,
    out: &'a mut Output,
}

impl<'a> Command<'a> {
    /// Argument `i`, or the command's usage as the failure.
    fn arg(&self, i: usize) -> Result<&'a str, Failure> {
        let spec = self.spec;
        self.p.arg(i).ok_or_else(|| usage(spec))
    }

    /// `-v version`, -1 (any) when absent.
    fn version(&self) -> Result<Option<i32>, Failure> {
        match self.p.value('v') {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| Failure::new(format!("-v argument must be an int value: {text}"))),
        }
    }

    /// `get path watch` and friends: the old form, still accepted.
    fn old_watch_form(&mut self, new_form: &str) -> bool {
        if self.p.args.len() > 2 {
            self.out.err(format!(
                "'{name} path [watch]' has been deprecated. Please use '{new_form}' instead.",
                name = self.spec.name
            ));
            return true;
        }
        false
    }

    fn acl(&mut self, text: &str) -> Vec<Acl> {
        let mut complaints = Vec::new();
        let acl = format::parse_acl(text, &mut complaints);
        for complaint in complaints {
            self.out.err(complaint);
        }
        acl
    }

    async fn create(&mut self) -> Outcome {
        let (e, s, c, t) = (
            self.p.has('e'),
            self.p.has('s'),
            self.p.has('c'),
            self.p.has('t'),
        );
        if c && (e || s) {
            return Err(Failure::new(
                "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
            ));
        }
        let ttl = match self.p.value('t') {
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| Failure::new("-t argument must be a long value"))?,
            None => 0,
        };
        if t && e {
            return Err(Failure::new("TTLs cannot be used with Ephemeral znodes"));
        }
        if t && c {
            return Err(Failure::new("TTLs cannot be used with Container znodes"));
        }
        let mode = match (e, s, c, t) {
            (true, true, _, _) => CreateMode::EphemeralSequential,
            (true, false, _, _) => CreateMode::Ephemeral,
            (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
            (false, true, _, false) => CreateMode::PersistentSequential,
            (false, false, true, _) => CreateMode::Container,
            (false, false, false, true) => CreateMode::PersistentWithTtl,
            (false, false, false, false) => CreateMode::Persistent,
        };
        if t && !(1..=MAX_TTL_MS).contains(&ttl) {
            return Err(Failure::new(format!(
                "ttl must be positive and cannot be larger than: {MAX_TTL_MS}"
            )));
        }
        let path = self.arg(1)?.to_string();
        let acl = match self.p.arg(3) {
            Some(text) => self.acl(text),
            None => Acl::open_unsafe(),
        };
        let acl_given = !acl.is_empty();
        let mut options = CreateOptions::new(mode).acl(acl);
        if t {
            options = options.ttl(ttl);
        }
        let created = match self.p.arg(2) {
            Some(data) => self.client.create(&path, data.as_bytes(), options).await,
            None => self.client.create_null(&path, options).await,
        };
        match created {
            Ok((created, _)) => {
                self.out.err(format!("Created {created}"));
                Ok(())
            }
            Err(Error::InvalidAcl) => {
                // An empty ACL is refused before it is sent, without a path.
                let at = acl_given.then_some(path.as_str());
                self.out.err(format::keeper_exception(
                    zoo_wire::ErrorCode::InvalidAcl,
                    at,
                ));
                Err(Failure::new(format::failure(&Error::InvalidAcl, at)))
            }
            Err(e) => Err(failed(e, &path)),
        }
    }

    async fn delete(&mut self) -> Outcome {
        let path = self.arg(1)?;
        let version = self.version()?;
        self.client
            .delete(path, version)
            .await
            .map_err(|e| failed(e, path))
    }

    /// `ZKUtil.deleteRecursive`: the subtree breadth first, then deletes
    /// from the last node listed back to the root, in multis of
    /// `-b` deletes.
    async fn deleteall(&mut self) -> Outcome {
        let root = self.arg(1)?;
        let batch = match self.p.value('b') {
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| Failure::new("-b argument must be an int value"))?,
            None => DELETEALL_BATCH,
        };
        let mut tree = vec![root.to_string()];
        let mut next = 0;
        while next < tree.len() {
            let node = tree[next].clone();
            next += 1;
            let children = self
                .client
                .get_children(&node)
                .await
                .map_err(|e| failed(e, &node))?;
            tree.extend(children.iter().map(|c| child_path(&node, c)));
        }
        let batch = usize::try_from(batch)
            .ok()
            .filter(|b| *b > 0)
            .unwrap_or(usize::MAX);
        let mut all_deleted = true;
        let ops: Vec<Op> = tree
            .iter()
            .rev()
            .map(|path| Op::Delete {
                path: path.clone(),
                version: None,
            })
            .collect();
        for chunk in ops.chunks(batch.min(ops.len().max(1))) {
            if self.client.multi(chunk.to_vec()).await.is_err() {
                all_deleted = false;
                break;
            }
        }
        if !all_deleted {
            self.out
                .err("Failed to delete some node(s) in the subtree!");
        }
        Ok(())
    }

    async fn set(&mut self) -> Outcome {
        let path = self.arg(1)?;
        let data = self.arg(2)?;
        let version = self.version()?;
        let stat = self
            .client
            .set_data(path, data.as_bytes(), version)
            .await
            .map_err(|e| failed(e, path))?;
        if self.p.has('s') {
            self.out.out_all(format::stat(&stat));
        }
        Ok(())
    }

    async fn get(&mut self) -> Outcome {
        let old_form = self.old_watch_form("get [-s] [-w] path");
        let path = self.arg(1)?;
        let (data, stat) = if self.p.has('w') || old_form {
            let (data, stat, watcher) = self
                .client
                .get_data_nullable_and_watch(path)
                .await
                .map_err(|e| failed(e, path))?;
            self.watches.oneshot(watcher);
            (data, stat)
        } else {
            self.client
                .get_data_nullable(path)
                .await
                .map_err(|e| failed(e, path))?
        };
        self.out.out(shown_data(data.as_deref()));
        if self.p.has('s') {
            self.out.out_all(format::stat(&stat));
        }
        Ok(())
    }

    async fn ls(&mut self) -> Outcome {
        let old_form = self.old_watch_form("ls [-w] path");
        let path = self.arg(1)?;
        let watch = self.p.has('w') || old_form;
        if self.p.has('R') {
            return self.ls_recursive(path, watch).await;
        }
        let children = self
            .children(path, watch)
            .await
            .map_err(|e| failed(e, path))?;
        self.out.out(format!("[{}]", children.join(", ")));
        if self.p.has('s') {
            let (_, stat) = self
                .client
                .get_children2(path)
                .await
                .map_err(|e| failed(e, path))?;
            self.out.out_all(format::stat(&stat));
        }
        Ok(())
    }

    async fn children(&mut self, path: &str, watch: bool) -> zoo_client::Result<Vec<String>> {
        if watch {
            let (children, watcher) = self.client.get_children_and_watch(path).await?;
            self.watches.oneshot(watcher);
            Ok(children)
        } else {
            self.client.get_children(path).await
        }
    }

    /// `ZKUtil.visitSubTreeDFS`: a node's children are printed before any
    /// of their own children.
    async fn ls_recursive(&mut self, root: &str, watch: bool) -> Outcome {
        let top = self
            .children(root, watch)
            .await
            .map_err(|e| failed(e, root))?;
        self.out.out(root);
        let mut stack = vec![(root.to_string(), top)];
        while let Some((node, children)) = stack.pop() {
            let paths: Vec<String> = children.iter().map(|c| child_path(&node, c)).collect();
            for path in &paths {
                self.out.out(path.clone());
            }
            for path in paths.into_iter().rev() {
                // A child deleted meanwhile just has nothing below it.
                let below = self.children(&path, watch).await.unwrap_or_default();
                stack.push((path, below));
            }
        }
        Ok(())
    }

    async fn stat(&mut self) -> Outcome {
        let old_form = self.old_watch_form("stat [-w] path");
        let path = self.arg(1)?;
        let stat = if self.p.has('w') || old_form {
            let (stat, watcher) = self
                .client
                .exists_and_watch(path)
                .await
                .map_err(|e| failed(e, path))?;
            self.watches.oneshot(watcher);
            stat
        } else {
            self.client
                .exists(path)
                .await
                .map_err(|e| failed(e, path))?
        };
        let stat = stat.ok_or_else(|| failed(Error::NoNode, path))?;
        self.out.out_all(format::stat(&stat));
        Ok(())
    }

    async fn get_acl(&mut self) -> Outcome {
        let path = self.arg(1)?;
        let (acl, stat) = self
            .client
            .get_acl(path)
            .await
            .map_err(|e| failed(e, path))?;
        for entry in &acl {
            self.out.out(format::acl_entry(entry));
        }
        if self.p.has('s') {
            self.out.out_all(format::stat(&stat));
        }
        Ok(())
    }

    async fn set_acl(&mut self) -> Outcome {
        let path = self.arg(1)?.to_string();
        let text = self.arg(2)?.to_string();
        let acl = self.acl(&text);
        let version = self.version()?;
        if acl.is_empty() {
            // Refused before it is sent, without a path.
            return Err(Failure::new(format::failure(&Error::InvalidAcl, None)));
        }
        if self.p.has('R') {
            let mut stack = vec![path.clone()];
            self.client
                .get_children(&path)
                .await
                .map_err(|e| failed(e, &path))?;
            while let Some(node) = stack.pop() {
                if let Err(e) = self.client.set_acl(&node, acl.clone(), version).await {
                    self.out.out(format::keeper_exception(
                        format::error_code(&e),
                        Some(&node),
                    ));
                }
                let children = self.client.get_children(&node).await.unwrap_or_default();
                stack.extend(children.iter().rev().map(|c| child_path(&node, c)));
            }
            return Ok(());
        }
        let stat = self
            .client
            .set_acl(&path, acl, version)
            .await
            .map_err(|e| failed(e, &path))?;
        if self.p.has('s') {
            self.out.out_all(format::stat(&stat));
        }
        Ok(())
    }

    async fn addauth(&mut self) -> Outcome {
        let scheme = self.arg(1)?;
        let auth = self.p.arg(2).unwrap_or("");
        match self.client.add_auth(scheme, auth.as_bytes()).await {
            // zkCli.sh hears of a refused credential as a session event.
            Err(Error::AuthFailed) => {
                self.out.out_all(format::event_lines(
                    "AuthFailed",
                    zoo_wire::EventType::None,
                    None,
                ));
                Ok(())
            }
            Err(e) => Err(Failure::new(format::keeper_exception(
                format::error_code(&e),
                None,
            ))),
            Ok(()) => Ok(()),
        }
    }

    async fn sync(&mut self) -> Outcome {
        let path = self.arg(1)?;
        match self.client.sync(path).await {
            Ok(()) => self.out.out("Sync is OK"),
            Err(Error::InvalidPath(message)) => return Err(Failure::new(message)),
            Err(e) => self.out.out(format!(
                "Sync has failed. rc={}",
                format::error_code(&e).as_i32()
            )),
        }
        Ok(())
    }

    async fn add_watch(&mut self) -> Outcome {
        if self.p.args.len() != 2 {
            return Err(usage(self.spec));
        }
        let recursive = match self.p.value('m').map(str::to_uppercase).as_deref() {
            None | Some("PERSISTENT_RECURSIVE") => true,
            Some("PERSISTENT") => false,
            Some(_) => return Err(usage(self.spec)),
        };
        let path = self.arg(1)?;
        let watcher = self
            .client
            .watch(path, recursive)
            .await
            .map_err(|e| failed(e, path))?;
        self.watches.persistent(watcher);
        Ok(())
    }

    async fn remove_watches(&mut self) -> Outcome {
        let path = self.arg(1)?;
        let watcher_type = if self.p.has('c') {
            WatcherType::Children
        } else if self.p.has('d') {
            WatcherType::Data
        } else {
            WatcherType::Any
        };
        self.client
            .remove_watches(path, watcher_type)
            .await
            .map_err(|e| failed(e, path))
    }

    async fn whoami(&mut self) -> Outcome {
        let identities =
            self.client.whoami().await.map_err(|e| {
                Failure::new(format::keeper_exception(format::error_code(&e), None))
            })?;
        self.out.out("Auth scheme: User");
        for identity in identities {
            self.out
                .out(format!("{}: {}", identity.auth_scheme, identity.user));
        }
        Ok(())
    }

    async fn get_ephemerals(&mut self) -> Outcome {
        let prefix = self.p.arg(1).unwrap_or("/");
        let ephemerals = self
            .client
            .get_ephemerals(prefix)
            .await
            .map_err(|e| failed(e, prefix))?;
        self.out.out(format!("[{}]", ephemerals.join(", ")));
        Ok(())
    }

    async fn get_all_children_number(&mut self) -> Outcome {
        let path = self.arg(1)?;
        let number = self
            .client
            .get_all_children_number(path)
            .await
            .map_err(|e| failed(e, path))?;
        self.out.out(number.to_string());
        Ok(())
    }

    /// The ensemble's configuration, as the server keeps it in
    /// `/zookeeper/config`.
    async fn config(&mut self) -> Outcome {
        let (data, stat) = if self.p.has('w') {
            let (data, stat, watcher) = self
                .client
                .get_data_nullable_and_watch(CONFIG_NODE)
                .await
                .map_err(|e| failed(e, CONFIG_NODE))?;
            self.watches.oneshot(watcher);
            (data, stat)
        } else {
            self.client
                .get_data_nullable(CONFIG_NODE)
                .await
                .map_err(|e| failed(e, CONFIG_NODE))?
        };
        let text = shown_data(data.as_deref());
        if self.p.has('c') {
            self.out.out(client_config(&text));
        } else {
            self.out.out(text);
        }
        if self.p.has('s') {
            self.out.out_all(format::stat(&stat));
        }
        Ok(())
    }
}

/// Data as zkCli.sh shows it: UTF-8 text, `null` for a null buffer.
fn shown_data(data: Option<&[u8]>) -> String {
    match data {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => "null".to_string(),
    }
}

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `ConfigUtils.getClientConfigStr`: the config's version and the
/// client addresses of its servers (`server.N=...;host:port`).
fn client_config(config: &str) -> String {
    let mut version = String::new();
    let mut clients = Vec::new();
    for line in config.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key == "version" {
            version = value.to_string();
        } else if key.starts_with("server.") {
            if let Some((_, client)) = value.split_once(';') {
                let client = client
                    .strip_prefix("0.0.0.0:")
                    .map_or(client.to_string(), |port| {
                        let host = value.split(':').next().unwrap_or("");
                        format!("{host}:{port}")
                    });
                clients.push(client);
            }
        }
    }
    format!("{version} {}", clients.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_lists_client_addresses() {
        let config = "server.1=a:2888:3888:participant;0.0.0.0:2181\n\
                      server.2=b:2888:3888:participant;b:2182\nversion=100000000";
        assert_eq!(client_config(config), "100000000 a:2181,b:2182");
        assert_eq!(shown_data(None), "null");
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}
