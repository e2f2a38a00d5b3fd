//! The interactive line editor: rustyline on a thread of its own (it
//! blocks), with history and tab completion of command names and znode
//! paths (the children of the path typed so far, read from the server).

use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use zoo_client::Client;

use super::parse::COMMANDS;

/// How long a completion may wait for the server before offering nothing.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(2);

/// The session completion reads children from, replaced on `connect`.
pub type SharedClient = Arc<Mutex<Option<Client>>>;

struct ZnodeCompleter {
    client: SharedClient,
    runtime: Handle,
}

impl ZnodeCompleter {
    /// Children of the typed path's parent that start with its last part.
    fn paths(&self, typed: &str) -> Vec<String> {
        let Some(client) = self.client.lock().ok().and_then(|c| c.clone()) else {
            return Vec::new();
        };
        let cut = typed.rfind('/').unwrap_or(0);
        let (parent, prefix) = (&typed[..cut.max(1)], &typed[cut + 1..]);
        let dir = if cut == 0 { "/" } else { parent };
        let listing = self.runtime.block_on(async {
            tokio::time::timeout(COMPLETION_TIMEOUT, client.get_children(dir)).await
        });
        let Ok(Ok(children)) = listing else {
            return Vec::new();
        };
        let base = if dir == "/" { "" } else { dir };
        children
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| format!("{base}/{c}"))
            .collect()
    }
}

impl Completer for ZnodeCompleter {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let candidates = if word.starts_with('/') {
            self.paths(word)
        } else if before[..start].trim().is_empty() {
            COMMANDS
                .iter()
                .filter(|c| c.name.starts_with(word))
                .map(|c| c.name.to_string())
                .collect()
        } else {
            Vec::new()
        };
        Ok((start, candidates))
    }
}

impl Hinter for ZnodeCompleter {
    type Hint = String;
}
impl Highlighter for ZnodeCompleter {}
impl Validator for ZnodeCompleter {}
impl Helper for ZnodeCompleter {}

/// Prints while the editor shows its prompt, without breaking the line
/// being typed.
pub type Printer = Box<dyn ExternalPrinter + Send>;

/// The editor thread's end of the conversation: the shell sends a prompt,
/// the thread answers with the line typed (`None` at end of input).
#[derive(Debug)]
pub struct LineEditor {
    prompts: std_mpsc::Sender<String>,
    lines: mpsc::Receiver<Option<String>>,
}

impl LineEditor {
    /// Starts the editor thread, with history kept in `history_file`.
    pub fn start(
        client: SharedClient,
        history_file: Option<std::path::PathBuf>,
    ) -> rustyline::Result<(LineEditor, Option<Printer>)> {
        let mut editor: Editor<ZnodeCompleter, DefaultHistory> = Editor::new()?;
        editor.set_helper(Some(ZnodeCompleter {
            client,
            runtime: Handle::current(),
        }));
        if let Some(file) = &history_file {
            let _ = editor.load_history(file);
        }
        let printer = editor
            .create_external_printer()
            .ok()
            .map(|p| Box::new(p) as Printer);
        let (prompts, prompt_rx) = std_mpsc::channel::<String>();
        let (line_tx, lines) = mpsc::channel(1);
        std::thread::spawn(move || {
            while let Ok(prompt) = prompt_rx.recv() {
                let line = match editor.readline(&prompt) {
                    Ok(line) => {
                        let _ = editor.add_history_entry(line.as_str());
                        Some(line)
                    }
                    // Ctrl-C drops the line being typed, as in a shell.
                    Err(ReadlineError::Interrupted) => Some(String::new()),
                    Err(_) => None,
                };
                if let Some(file) = &history_file {
                    let _ = editor.save_history(file);
                }
                if line_tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Ok((LineEditor { prompts, lines }, printer))
    }

    /// Shows `prompt`; the line typed comes from `answer`.
    pub fn ask(&self, prompt: String) {
        let _ = self.prompts.send(prompt);
    }

    /// The line typed after the last `ask`; `None` at end of input.
    /// Cancel-safe: a line is never lost to a select that gave up on it.
    pub async fn answer(&mut self) -> Option<String> {
        self.lines.recv().await.flatten()
    }
}
