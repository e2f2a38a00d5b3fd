//! The run's clock: sleeps through the warmup and the measured run,
//! switching `Shared::measuring` on and off, and, when asked (standard
//! error is a terminal and the output is not JSON), redraws one progress
//! line there: phase, elapsed/total seconds, and the current rate.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Shared;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(250);
/// The window the current rate is taken over: long enough to be steady,
/// short enough to show a stall within a second.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Characters in the bar.
const BAR_WIDTH: usize = 30;

/// Runs the warmup, then the measured run; returns the measured seconds.
pub async fn run(warmup: Duration, duration: Duration, shared: &Shared, show: bool) -> f64 {
    phase("warmup", warmup, shared, show).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    phase("measure", duration, shared, show).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    if show {
        // Clear the line, so that the report starts on a clean one.
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
    elapsed
}

async fn phase(name: &str, length: Duration, shared: &Shared, show: bool) {
    let start = tokio::time::Instant::now();
    let end = start + length;
    if !show {
        tokio::time::sleep_until(end).await;
        return;
    }
    // (when, completed) samples of the last RATE_WINDOW.
    let mut samples = std::collections::VecDeque::new();
    loop {
        let now = tokio::time::Instant::now();
        let completed = shared.completed.load(Ordering::Relaxed);
        samples.push_back((now, completed));
        while samples
            .front()
            .is_some_and(|&(t, _)| now.duration_since(t) > RATE_WINDOW)
        {
            samples.pop_front();
        }
        let rate = match samples.front() {
            Some(&(t, n)) if now.duration_since(t) >= TICK => {
                (completed - n) as f64 / now.duration_since(t).as_secs_f64()
            }
            _ => 0.0,
        };
        // Nothing is counted during the warmup: no rate to show.
        let rate = shared.measuring.load(Ordering::Relaxed).then_some(rate);
        draw(name, now.duration_since(start), length, rate);
        if now >= end {
            return;
        }
        tokio::time::sleep_until((now + TICK).min(end)).await;
    }
}

fn draw(name: &str, elapsed: Duration, total: Duration, rate: Option<f64>) {
    let fraction = if total.is_zero() {
        1.0
    } else {
        (elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0)
    };
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(BAR_WIDTH - filled));
    let rate = rate.map(|r| format!(" {r:10.0} ops/s")).unwrap_or_default();
    eprint!(
        "\r\x1b[2K{name:7} [{bar}] {:5.1}/{:.1} s{rate}",
        elapsed.as_secs_f64().min(total.as_secs_f64()),
        total.as_secs_f64(),
    );
    let _ = std::io::stderr().flush();
}
