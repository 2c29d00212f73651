//! Progress on the terminal: indicatif bars, or plain lines when output is
//! not a terminal or `FLOW_NO_PROGRESS=1`.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow_engine::report::{Event, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The reporter for this terminal.
pub fn reporter() -> Arc<dyn Reporter> {
    let plain = std::env::var("FLOW_NO_PROGRESS").is_ok_and(|v| v != "0")
        || !std::io::stderr().is_terminal();
    if plain {
        Arc::new(Lines)
    } else {
        Arc::new(Bars::default())
    }
}

/// One line per notable event.
struct Lines;

impl Reporter for Lines {
    fn start(&self, stages: &[String], items: usize) {
        eprintln!(
            "{items} items through {} stages: {}",
            stages.len(),
            stages.join(" → ")
        );
    }

    fn item_stage(&self, _: usize, _: bool, _: bool) {}

    fn event(&self, event: &Event) {
        if let Some(line) = describe(event) {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {}
}

fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::StageFinished { stage, done, cached, failed, blocked, millis } => format!(
            "stage {stage}: {done} done ({cached} reused), {failed} failed, {blocked} blocked in {:.1}s",
            *millis as f64 / 1000.0
        ),
        Event::ItemFailed { item, stage, reason, .. } => format!("failed: {item} in {stage}: {reason}"),
        Event::PlanNode { node, device } => format!("plan: {node} on {device}"),
        _ => return None,
    })
}

/// A bar per stage.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(ProgressBar, Counts)>>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    done: u64,
    cached: u64,
    failed: u64,
}

impl Reporter for Bars {
    fn start(&self, stages: &[String], items: usize) {
        self.multi
            .set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let style = ProgressStyle::with_template(
            "{prefix:>16.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let width = stages.iter().map(String::len).max().unwrap_or(8);
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for stage in stages {
            let bar = self.multi.add(ProgressBar::new(items as u64));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{stage:>width$}"));
            bar.enable_steady_tick(Duration::from_millis(250));
            bars.push((bar, Counts::default()));
        }
    }

    fn item_stage(&self, stage: usize, ok: bool, cached: bool) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((bar, counts)) = bars.get_mut(stage) {
            match (ok, cached) {
                (true, true) => counts.cached += 1,
                (true, false) => counts.done += 1,
                (false, _) => counts.failed += 1,
            }
            bar.set_message(format!(
                "✓{} ↺{} ✗{}",
                counts.done, counts.cached, counts.failed
            ));
            bar.inc(1);
        }
    }

    fn event(&self, event: &Event) {
        if let Event::ItemFailed { .. } | Event::PlanNode { .. } = event {
            if let Some(line) = describe(event) {
                let _ = self.multi.println(line);
            }
        }
    }

    fn finish(&self) {
        for (bar, _) in self.bars.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            bar.finish();
        }
    }
}
