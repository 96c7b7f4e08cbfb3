//! How progress is shown: a bar with bytes, rate and time left on a terminal; nothing when
//! quiet, in `--json` mode or when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeboat_core::progress::Progress;
use std::io::IsTerminal;

pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar on stderr when it is a terminal and `quiet` is false; hidden otherwise.
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        } else {
            ProgressBar::new_spinner()
        };
        Self { bar }
    }

    /// A bar that lives as long as the process, with its total set (the decompression
    /// thread needs a `'static` reader to report through).
    pub fn leaked(quiet: bool, total: Option<u64>) -> &'static Bar {
        let bar: &'static Bar = Box::leak(Box::new(Bar::new(quiet)));
        bar.set_total(total);
        bar
    }
}

fn style(total_known: bool) -> ProgressStyle {
    let template = if total_known {
        "{spinner} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}"
    } else {
        "{spinner} {bytes} {bytes_per_sec} {elapsed} {wide_msg}"
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress for Bar {
    fn set_total(&self, total: Option<u64>) {
        if let Some(t) = total {
            self.bar.set_length(t);
        }
        self.bar.set_style(style(total.is_some()));
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn set_message(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
