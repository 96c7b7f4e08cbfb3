//! Progress as lines on the consoles (a dumb serial console cannot redraw a bar): percent,
//! bytes and rate, at most every two seconds.

use crate::console::say;
use lifeboat_core::progress::human_bytes;
use lifeboat_core::progress::Progress;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct State {
    total: Option<u64>,
    done: u64,
    start: Instant,
    last: Instant,
}

pub struct LineProgress {
    what: String,
    st: Mutex<State>,
}

impl LineProgress {
    pub fn new(what: &str) -> Self {
        let now = Instant::now();
        Self {
            what: what.to_string(),
            st: Mutex::new(State {
                total: None,
                done: 0,
                start: now,
                last: now,
            }),
        }
    }

    fn line(&self, st: &State) -> String {
        let secs = st.start.elapsed().as_secs_f64().max(0.001);
        let rate = human_bytes((st.done as f64 / secs) as u64);
        match st.total {
            Some(t) if t > 0 => format!(
                "  {}: {:>3}%  {} of {}  {}/s",
                self.what,
                (st.done.min(t) * 100 / t),
                human_bytes(st.done),
                human_bytes(t),
                rate
            ),
            _ => format!("  {}: {}  {}/s", self.what, human_bytes(st.done), rate),
        }
    }
}

impl Progress for LineProgress {
    fn set_total(&self, total: Option<u64>) {
        if let Ok(mut st) = self.st.lock() {
            st.total = total;
        }
    }
    fn advance(&self, n: u64) {
        crate::power::handle_ctrl_alt_del();
        if let Ok(mut st) = self.st.lock() {
            st.done += n;
            if st.last.elapsed() >= Duration::from_secs(2) {
                st.last = Instant::now();
                say(&self.line(&st));
            }
        }
    }
    fn finish(&self) {
        if let Ok(st) = self.st.lock() {
            let mut l = self.line(&st);
            l.push_str(&format!(
                "  done in {:.1} s",
                st.start.elapsed().as_secs_f64()
            ));
            say(&l);
        }
    }
}
