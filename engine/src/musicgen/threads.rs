//! Sizing candle's CPU worker pool before its first use.
//!
//! candle runs its quantized matmuls (and large element-wise ops) on a process-wide "barrier
//! pool" whose threads spin between operations and whose caller spins until every worker is
//! done. It is sized once, from `CANDLE_NUM_THREADS` (else `RAYON_NUM_THREADS`, else every
//! physical core), the first time it is used. When the machine has other work (a DAW's audio
//! and UI threads, a compile), a descheduled worker makes every one of the ~150 matmuls of a
//! decoder step wait for it: measured on the project's 2-core VM under a load average of 5,
//! q8_0 ran at 2.3–4.3 steps/s with the default 2 threads and at 15–21 steps/s with 1
//! (scripts/bench.py, musicgen-small size). The quantized step is memory-bound, so extra
//! threads buy little even on an idle machine, while a spinning pool can starve the host.
//!
//! So, in the plugin, unless the user sized it (either variable set), the pool gets half the
//! cores, at least 1 and at most 4, before the worker loads its first model: a DAW's audio
//! threads must never wait for ours. The CLI and the benchmark own their machine and keep
//! candle's default (every physical core): on the idle 2-core VM q8_0 runs at about 33 steps/s
//! with 2 threads against 19 with 1. Our own decoder kernels (`kernels`, the f32 and q8_0
//! products of every step) run on the same pool, so the same setting covers them; candle's
//! many-row f32 products (prefill) use rayon (`RAYON_NUM_THREADS`, untouched here).

use std::sync::Once;

/// The variable candle reads to size its pool.
pub const POOL_ENV: &str = "CANDLE_NUM_THREADS";

/// Threads [`configure_cpu_pool`] gives candle's pool on a machine with `cores` cores.
pub fn default_pool_threads(cores: usize) -> usize {
    (cores / 2).clamp(1, 4)
}

/// Sets `CANDLE_NUM_THREADS` to [`default_pool_threads`] unless it or `RAYON_NUM_THREADS` is
/// already set. Runs once per process; the plugin's worker calls it before loading a model, so it
/// takes effect before the first tensor operation of any model.
///
/// Environment writes race with other threads reading the environment through libc; this one
/// happens once, early (on the first model load), and only adds a variable.
pub fn configure_cpu_pool() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(POOL_ENV).is_some() || std::env::var_os("RAYON_NUM_THREADS").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        std::env::set_var(POOL_ENV, default_pool_threads(cores).to_string());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_cores_between_one_and_four() {
        assert_eq!([1, 2, 3, 4, 8, 16, 64].map(default_pool_threads), [1, 1, 1, 2, 4, 4, 4]);
    }
}
