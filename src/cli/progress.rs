//! Progress for the steps that can take seconds (collecting a big host, reading a big snapshot,
//! probing, the lab), on standard error when it is a terminal and nowhere otherwise: a pipe or a
//! log file gets the report alone.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loopwarden_core::report::shown::line;
use std::io::IsTerminal;
use std::time::Duration;

/// One line of progress, rewritten as the run advances, and cleared when it ends.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A spinner on standard error when it is a terminal, else nothing at all.
    pub fn new() -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    /// Says which step runs now.
    pub fn step(&self, what: &str) {
        self.bar.set_message(line(what).into_owned());
    }

    /// Says how far a counted step is: `probing 12/40`.
    pub fn count(&self, what: &str, done: usize, total: usize) {
        self.bar.set_message(format!("{} {done}/{total}", line(what)));
    }

    /// A callback for a step that reports its own progress as `(done, total, what)` (the lab's),
    /// writing to this line.
    pub fn reporter(&self, step: &'static str) -> impl Fn(usize, usize, &str) + 'static {
        let bar = self.bar.clone();
        // What the lab is at may name an interface or a service of the snapshot: escaped too.
        move |done, total, what| bar.set_message(format!("{step}: {} {done}/{total}", line(what)))
    }

    /// Removes the line, before the report is written.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
