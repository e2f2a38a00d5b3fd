//! The shell: one session (or none, after `close`), the watches it set,
//! zkCli.sh's history and `redo`, and the loop that reads lines from the
//! line editor or from standard input.
//!
//! Output goes through `Output` buffers: a command's lines are printed
//! after it finishes, preceded by any watch event that arrived while it
//! ran. The library delivers an event before the reply that reflects the
//! change, so an event caused by a command is printed before that
//! command's own output, as zkCli.sh prints it.

mod commands;
mod editor;
mod format;
mod parse;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::sync::watch;
use zoo_client::{Client, SessionState, WatchedEvent};
use zoo_wire::EventType;

use editor::{LineEditor, Printer, SharedClient};

/// zkCli.sh's default `-server`.
pub const DEFAULT_SERVER: &str = "localhost:2181";
/// zkCli.sh's default `-timeout`, in ms.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 30_000;

/// Exit status of a failed command (`CliException`'s default).
const EXIT_FAILED: i32 = 1;
/// Exit status of an unknown command (`CommandNotFoundException`).
const EXIT_NO_SUCH_COMMAND: i32 = 127;
/// Lines `history` shows before the current one.
const HISTORY_SHOWN: usize = 10;

/// The command line: `-server host:port[,...] -timeout ms -r [cmd args]`.
#[derive(Debug, Clone)]
pub struct Options {
    pub server: String,
    pub session_timeout_ms: u64,
    pub read_only: bool,
    /// One command to run instead of a shell.
    pub command: Vec<String>,
}

impl Options {
    /// Reads arguments as `ZooKeeperMain.parseOptions` does: flags until
    /// the first word without a dash, which starts the command.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            server: DEFAULT_SERVER.to_string(),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            read_only: false,
            command: Vec::new(),
        };
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value = || {
                rest.next()
                    .cloned()
                    .ok_or(format!("Error: no argument found for option {arg}"))
            };
            match arg.as_str() {
                "-server" => options.server = value()?,
                "-timeout" => {
                    let text = value()?;
                    options.session_timeout_ms = text
                        .parse()
                        .map_err(|_| format!("Error: -timeout takes milliseconds, not {text}"))?;
                }
                "-r" => options.read_only = true,
                flag if flag.starts_with('-') => {}
                _ => {
                    options.command.push(arg.clone());
                    options.command.extend(rest.by_ref().cloned());
                }
            }
        }
        Ok(options)
    }
}

/// Which stream a line goes to: zkCli.sh prints results on stdout and
/// most messages (`Created /p`, errors, usage) on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// The lines a command printed, in order.
#[derive(Debug, Default)]
pub struct Output {
    lines: Vec<(Stream, String)>,
}

impl Output {
    pub fn out(&mut self, line: impl Into<String>) {
        self.lines.push((Stream::Out, line.into()));
    }

    pub fn err(&mut self, line: impl Into<String>) {
        self.lines.push((Stream::Err, line.into()));
    }

    fn out_all(&mut self, lines: Vec<String>) {
        for line in lines {
            self.out(line);
        }
    }
}

/// Why a command failed: the message zkCli.sh prints and its exit status.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: i32,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit_code: EXIT_FAILED,
        }
    }
}

/// The watches of the current session whose events are still to come,
/// each with an id of its own.
///
/// zkCli.sh sets every watch with one Watcher object, and Java's client
/// calls a Watcher once per notification however many of its watches the
/// notification matches. The library instead tells each watcher. So the
/// events delivered together are folded: an event is printed as many
/// times as the one watcher that got it most often got it.
#[derive(Default)]
pub struct Watches {
    next_id: u64,
    oneshot: FuturesUnordered<BoxFuture<'static, (u64, Option<WatchedEvent>)>>,
    persistent: SelectAll<BoxStream<'static, (u64, WatchedEvent)>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches")
            .field("oneshot", &self.oneshot.len())
            .field("persistent", &self.persistent.len())
            .finish()
    }
}

impl Watches {
    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn oneshot(&mut self, watcher: zoo_client::OneshotWatcher) {
        let id = self.take_id();
        self.oneshot
            .push(async move { (id, watcher.changed().await.ok()) }.boxed());
    }

    pub fn persistent(&mut self, watcher: zoo_client::PersistentWatcher) {
        let id = self.take_id();
        let events = futures::stream::unfold(watcher, move |mut w| async move {
            w.next().await.map(|event| ((id, event), w))
        });
        self.persistent.push(events.boxed());
    }

    /// An event already delivered, without waiting.
    fn ready_one(&mut self) -> Option<(u64, WatchedEvent)> {
        loop {
            match self.oneshot.next().now_or_never() {
                Some(Some((id, Some(event)))) => return Some((id, event)),
                // A watcher whose session ended: look again.
                Some(Some((_, None))) => continue,
                _ => break,
            }
        }
        self.persistent.next().now_or_never().flatten()
    }

    /// Every event already delivered, folded (see above).
    fn ready(&mut self) -> Vec<WatchedEvent> {
        let mut batch = Vec::new();
        while let Some(tagged) = self.ready_one() {
            batch.push(tagged);
        }
        fold(batch)
    }

    /// The next events, waiting as long as it takes for the first.
    async fn next(&mut self) -> Vec<WatchedEvent> {
        let first = loop {
            tokio::select! {
                Some((id, event)) = self.oneshot.next(), if !self.oneshot.is_empty() => {
                    if let Some(event) = event {
                        break (id, event);
                    }
                }
                Some(tagged) = self.persistent.next(), if !self.persistent.is_empty() => break tagged,
                else => futures::future::pending::<()>().await,
            }
        };
        let mut batch = vec![first];
        while let Some(tagged) = self.ready_one() {
            batch.push(tagged);
        }
        fold(batch)
    }
}

/// Events delivered together, each kept as often as the watcher that got
/// it most often got it, in the order they first came.
fn fold(batch: Vec<(u64, WatchedEvent)>) -> Vec<WatchedEvent> {
    let mut printed: Vec<(WatchedEvent, usize)> = Vec::new();
    let mut seen: Vec<(u64, WatchedEvent, usize)> = Vec::new();
    let mut out = Vec::new();
    for (id, event) in batch {
        let count = match seen.iter_mut().find(|(i, e, _)| *i == id && *e == event) {
            Some(entry) => {
                entry.2 += 1;
                entry.2
            }
            None => {
                seen.push((id, event.clone(), 1));
                1
            }
        };
        match printed.iter_mut().find(|(e, _)| *e == event) {
            Some(entry) if entry.1 >= count => {}
            Some(entry) => {
                entry.1 = count;
                out.push(event);
            }
            None => {
                printed.push((event.clone(), 1));
                out.push(event);
            }
        }
    }
    out
}

/// The connected session and the states it goes through.
#[derive(Debug)]
struct Session {
    client: Client,
    states: watch::Receiver<SessionState>,
}

impl Session {
    fn is_alive(&self) -> bool {
        !self.client.state().is_final()
    }
}

/// What the loop does after a line.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// The shell's state between lines.
#[derive(Debug)]
pub struct Shell {
    host: String,
    session_timeout: Duration,
    read_only: bool,
    session: Option<Session>,
    watches: Watches,
    print_watches: bool,
    history: BTreeMap<usize, String>,
    command_count: usize,
    exit_code: i32,
    /// The session the line editor completes paths from.
    completion_client: SharedClient,
}

impl Shell {
    fn new(options: &Options) -> Shell {
        Shell {
            host: options.server.clone(),
            session_timeout: Duration::from_millis(options.session_timeout_ms),
            read_only: options.read_only,
            session: None,
            watches: Watches::default(),
            print_watches: true,
            history: BTreeMap::new(),
            command_count: 0,
            exit_code: 0,
            completion_client: Arc::new(Mutex::new(None)),
        }
    }

    fn is_alive(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_alive)
    }

    fn prompt(&self) -> String {
        let state = self.session.as_ref().map(|s| s.client.state());
        format!(
            "[zk: {}({}) {}] ",
            self.host,
            format::prompt_state(state),
            self.command_count
        )
    }

    fn event(&self, out: &mut Output, lines: Vec<String>) {
        if self.print_watches {
            out.out_all(lines);
        }
    }

    /// Ends the session, printing the Closed event zkCli.sh prints.
    async fn close(&mut self, out: &mut Output) {
        if let Some(session) = self.session.take() {
            if session.is_alive() {
                session.client.close().await;
                self.event(out, format::event_lines("Closed", EventType::None, None));
            }
        }
        self.watches = Watches::default();
        if let Ok(mut shared) = self.completion_client.lock() {
            *shared = None;
        }
    }

    /// Connects to `host` (closing the session there was), printing the
    /// SyncConnected event once the session is established.
    async fn connect(&mut self, host: &str, out: &mut Output) {
        self.close(out).await;
        self.host = host.to_string();
        let mut builder = Client::builder(host).session_timeout(self.session_timeout);
        if self.read_only {
            builder = builder.read_only(true);
        }
        match builder.connect().await {
            Ok(client) => {
                let mut states = client.state_changes();
                let state = *states.borrow_and_update();
                if let Some(name) = format::keeper_state(state) {
                    self.event(out, format::event_lines(name, EventType::None, None));
                }
                if let Ok(mut shared) = self.completion_client.lock() {
                    *shared = Some(client.clone());
                }
                self.session = Some(Session { client, states });
            }
            Err(e) => out.err(format!("Unable to connect to {host}: {e}")),
        }
    }

    /// Watch events and session changes that have already happened.
    fn ready_events(&mut self, out: &mut Output) {
        for event in self.watches.ready() {
            self.event(out, format::watched_event(&event));
        }
        let changed = self.session.as_mut().and_then(|s| {
            s.states
                .has_changed()
                .ok()
                .filter(|c| *c)
                .map(|_| *s.states.borrow_and_update())
        });
        if let Some(state) = changed {
            self.state_event(out, state);
        }
    }

    fn state_event(&self, out: &mut Output, state: SessionState) {
        // `close` prints its own Closed event.
        if state == SessionState::Closed {
            return;
        }
        if let Some(name) = format::keeper_state(state) {
            self.event(out, format::event_lines(name, EventType::None, None));
        }
    }

    /// The next event while the shell waits for a line; never returns
    /// when there is nothing left to wait for.
    async fn next_event(&mut self, out: &mut Output) {
        let states = self.session.as_mut().map(|s| &mut s.states);
        let state_change = async {
            match states {
                Some(states) => match states.changed().await {
                    Ok(()) => *states.borrow_and_update(),
                    Err(_) => futures::future::pending().await,
                },
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            events = self.watches.next() => {
                for event in events {
                    self.event(out, format::watched_event(&event));
                }
            }
            state = state_change => self.state_event(out, state),
        }
    }

    /// Runs one line typed or read: `executeLine`.
    async fn execute_line(&mut self, line: &str, out: &mut Output) -> Flow {
        let words = parse::words(line);
        if words.is_empty() {
            return Flow::Continue;
        }
        self.history.insert(self.command_count, line.to_string());
        let flow = self.process(words, out).await;
        self.command_count += 1;
        flow
    }

    /// `processCmd`: runs a command and records its exit status.
    async fn process(&mut self, words: Vec<String>, out: &mut Output) -> Flow {
        let mut own = Output::default();
        let (flow, result) = match words[0].as_str() {
            "redo" if words.len() >= 2 => match self.redo(&words[1]) {
                Ok(target) => self.process_one(target, &mut own).await,
                Err(failure) => (Flow::Continue, Err(failure)),
            },
            _ => self.process_one(words, &mut own).await,
        };
        // Events the command caused came before its reply: print them first.
        self.ready_events(out);
        out.lines.append(&mut own.lines);
        // zkCli.sh's quit exits with the status of the command before it.
        if flow == Flow::Quit {
            return flow;
        }
        match result {
            Ok(()) => self.exit_code = 0,
            Err(failure) => {
                out.err(failure.message);
                self.exit_code = failure.exit_code;
            }
        }
        flow
    }

    /// `redo n`: the words of history line `n`, which replaces the redo
    /// in the history.
    fn redo(&mut self, number: &str) -> Result<Vec<String>, Failure> {
        let index = java_decode(number)
            .filter(|i| *i >= 0 && (*i as usize) < self.command_count)
            .ok_or_else(|| Failure::new("Command index out of range"))?;
        let line = self
            .history
            .get(&(index as usize))
            .cloned()
            .unwrap_or_default();
        let words = parse::words(&line);
        if words.first().is_none_or(|w| w == "redo") {
            return Err(Failure::new("No redoing redos"));
        }
        self.history.insert(self.command_count, line);
        Ok(words)
    }

    async fn process_one(
        &mut self,
        words: Vec<String>,
        out: &mut Output,
    ) -> (Flow, Result<(), Failure>) {
        let name = words[0].as_str();
        let Some(spec) = parse::spec(name) else {
            self.usage(out);
            return (
                Flow::Continue,
                Err(Failure {
                    message: format!("Command not found: Command not found {name}"),
                    exit_code: EXIT_NO_SUCH_COMMAND,
                }),
            );
        };
        // The shell's own commands, then (like zkCli.sh) a word on a dead
        // session even after them.
        match name {
            "quit" => {
                self.close(out).await;
                return (Flow::Quit, Ok(()));
            }
            "history" => {
                let first = self.command_count.saturating_sub(HISTORY_SHOWN);
                for i in first..=self.command_count {
                    if let Some(line) = self.history.get(&i) {
                        out.out(format!("{i} - {line}"));
                    }
                }
            }
            "printwatches" => match words.get(1) {
                None => out.out(format!(
                    "printwatches is {}",
                    if self.print_watches { "on" } else { "off" }
                )),
                Some(setting) => self.print_watches = setting == "on",
            },
            "connect" => {
                let host = words.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect(&host, out).await;
            }
            _ => {}
        }
        if !self.is_alive() {
            out.out("Not connected");
            return (Flow::Continue, Ok(()));
        }
        if matches!(name, "history" | "printwatches" | "connect" | "redo") {
            return (Flow::Continue, Ok(()));
        }
        let parsed = match spec.parse(&words) {
            Ok(parsed) => parsed,
            Err(message) => return (Flow::Continue, Err(Failure::new(message))),
        };
        let result = match name {
            "close" => {
                self.close(out).await;
                Ok(())
            }
            _ => {
                let client = match &self.session {
                    Some(session) => session.client.clone(),
                    None => return (Flow::Continue, Ok(())),
                };
                commands::run(spec, &parsed, &client, &mut self.watches, out).await
            }
        };
        (Flow::Continue, result)
    }

    /// zkCli.sh's `usage()`, on stderr.
    fn usage(&self, out: &mut Output) {
        out.err("zoo-cli -server host:port cmd args");
        for spec in parse::COMMANDS {
            out.err(format!("\t{}", spec.usage_line()));
        }
    }
}

/// Java's `Integer.decode`: decimal, `0x`/`#` hexadecimal, `0` octal.
fn java_decode(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .or_else(|| digits.strip_prefix('#'))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// Where lines go: straight to stdout and stderr, or, while the line
/// editor shows its prompt, through its printer so the prompt survives.
struct Terminal {
    printer: Option<Printer>,
}

impl Terminal {
    fn print(&mut self, output: Output) {
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        for (stream, line) in output.lines {
            // A closed pipe is the reader's business; there is no one to tell.
            let _ = match stream {
                Stream::Out => {
                    writeln!(stdout.lock(), "{line}").and_then(|_| stdout.lock().flush())
                }
                Stream::Err => writeln!(stderr.lock(), "{line}"),
            };
        }
    }

    /// Prints while the prompt is showing.
    fn print_idle(&mut self, output: Output) {
        match self.printer.as_mut() {
            Some(printer) => {
                let text: Vec<String> = output.lines.into_iter().map(|(_, l)| l).collect();
                if !text.is_empty() && printer.print(text.join("\n")).is_err() {
                    self.printer = None;
                }
            }
            None => self.print(output),
        }
    }
}

/// Where lines come from.
enum Input {
    Editor(LineEditor),
    Stdin(Lines<BufReader<Stdin>>),
}

impl Input {
    fn ask(&self, prompt: String) {
        if let Input::Editor(editor) = self {
            editor.ask(prompt);
        }
    }

    async fn answer(&mut self) -> Option<String> {
        match self {
            Input::Editor(editor) => editor.answer().await,
            Input::Stdin(lines) => lines.next_line().await.ok().flatten(),
        }
    }
}

/// Runs the shell, or the one command of `options`; the exit status.
pub async fn run(options: Options) -> i32 {
    let mut shell = Shell::new(&options);
    let mut terminal = Terminal { printer: None };
    let mut out = Output::default();
    out.out(format!("Connecting to {}", options.server));
    terminal.print(std::mem::take(&mut out));

    if !options.command.is_empty() {
        return run_one(&mut shell, &mut terminal, options.command).await;
    }

    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut input = if interactive {
        let history_file = std::env::var_os("HOME")
            .map(|home| std::path::Path::new(&home).join(".zoo-cli_history"));
        match LineEditor::start(shell.completion_client.clone(), history_file) {
            Ok((editor, printer)) => {
                terminal.printer = printer;
                Input::Editor(editor)
            }
            Err(_) => Input::Stdin(BufReader::new(tokio::io::stdin()).lines()),
        }
    } else {
        Input::Stdin(BufReader::new(tokio::io::stdin()).lines())
    };
    out.out("Welcome to zoo-cli!");
    let server = options.server.clone();
    shell.connect(&server, &mut out).await;
    terminal.print(std::mem::take(&mut out));

    loop {
        input.ask(shell.prompt());
        let line = loop {
            tokio::select! {
                line = input.answer() => break line,
                () = shell.next_event(&mut out) => {
                    terminal.print_idle(std::mem::take(&mut out));
                }
            }
        };
        let Some(line) = line else { break };
        let flow = shell.execute_line(&line, &mut out).await;
        terminal.print(std::mem::take(&mut out));
        if flow == Flow::Quit {
            break;
        }
    }
    shell.exit_code
}

/// `zoo-cli -server h:p cmd args`: bad flags are reported before
/// connecting, as zkCli.sh's asynchronous connect lets it do.
async fn run_one(shell: &mut Shell, terminal: &mut Terminal, words: Vec<String>) -> i32 {
    let mut out = Output::default();
    let known = parse::spec(&words[0]);
    if let Some(spec) = known {
        if let Err(message) = spec.parse(&words) {
            out.err(message);
            terminal.print(out);
            return EXIT_FAILED;
        }
    }
    if known.is_some() {
        let server = shell.host.clone();
        shell.connect(&server, &mut out).await;
    }
    shell.process(words, &mut out).await;
    terminal.print(out);
    shell.exit_code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: EventType, path: &str) -> WatchedEvent {
        WatchedEvent {
            event_type,
            path: path.to_string(),
        }
    }

    #[test]
    fn one_notification_prints_once_however_many_watches_it_matched() {
        let changed = event(EventType::NodeDataChanged, "/a");
        let created = event(EventType::NodeCreated, "/a/b");
        // A data watch and a recursive watch on /a both hear one change.
        assert_eq!(
            fold(vec![(1, changed.clone()), (2, changed.clone())]),
            std::slice::from_ref(&changed)
        );
        // Two changes that one persistent watcher heard are two events,
        // even when another watcher heard them too.
        let batch = vec![
            (2, changed.clone()),
            (3, changed.clone()),
            (2, changed.clone()),
            (3, created.clone()),
            (3, changed.clone()),
        ];
        assert_eq!(fold(batch), [changed.clone(), changed, created]);
    }

    #[test]
    fn integers_decode_as_java_does() {
        assert_eq!(java_decode("12"), Some(12));
        assert_eq!(java_decode("0x1f"), Some(31));
        assert_eq!(java_decode("010"), Some(8));
        assert_eq!(java_decode("-3"), Some(-3));
        assert_eq!(java_decode("x"), None);
    }
}
