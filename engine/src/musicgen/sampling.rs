//! Turning one row of logits into one token: greedy, or temperature → top-k → top-p sampling.
//!
//! The order of the filters follows transformers' logits warpers (temperature, then top-k, then
//! top-p), which is also what audiocraft does for its defaults (top-p off). Torch's RNG cannot be
//! reproduced, so reproducibility here means: the same seed and the same logits give the same
//! tokens, on every platform, for every release of this crate. That is why the generator is an
//! explicitly named ChaCha stream rather than `StdRng` (whose algorithm may change).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// How to pick tokens. `top_k == 0` and `top_p` outside `(0, 1)` switch those filters off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingConfig {
    /// Keep the `k` most likely tokens (ties at the boundary kept); 0 = off.
    pub top_k: usize,
    /// Nucleus mass: keep the most likely tokens whose probability reaches it; 0 or ≥ 1 = off.
    pub top_p: f32,
    /// Softmax temperature (divides the logits); must be positive and finite.
    pub temperature: f32,
    /// Take the arg-max and ignore the other fields (what the parity tests use).
    pub greedy: bool,
}

/// A seeded token picker. One instance per generation; rows are drawn in a fixed order (batch,
/// then codebook), so the stream of tokens is a pure function of seed and logits.
pub struct Sampler {
    config: SamplingConfig,
    rng: ChaCha20Rng,
    /// Scratch buffers reused across rows so a step does not allocate per codebook.
    probs: Vec<f64>,
    order: Vec<u32>,
}

impl Sampler {
    /// A picker for one generation, its ChaCha20 stream seeded with `seed`.
    pub fn new(config: SamplingConfig, seed: u64) -> Self {
        Self { config, rng: ChaCha20Rng::seed_from_u64(seed), probs: Vec::new(), order: Vec::new() }
    }

    /// The settings it samples with.
    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// Picks one token id from `logits` (one entry per vocabulary item).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        assert!(!logits.is_empty(), "empty logits row");
        if self.config.greedy {
            return argmax(logits);
        }
        let temperature = self.config.temperature as f64;
        let n = logits.len();

        // Temperature, then top-k: keep every logit ≥ the k-th largest (ties at the boundary are
        // kept, as with transformers' TopKLogitsWarper).
        let threshold = if self.config.top_k > 0 && self.config.top_k < n {
            kth_largest(logits, self.config.top_k)
        } else {
            f32::NEG_INFINITY
        };
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        self.probs.clear();
        self.probs.extend(logits.iter().map(|&l| {
            if l >= threshold && l.is_finite() {
                ((l as f64 - max) / temperature).exp()
            } else {
                0.0
            }
        }));
        let total: f64 = self.probs.iter().sum();
        if total.is_nan() || total <= 0.0 || !total.is_finite() {
            // Degenerate row (all -inf or NaN): fall back to the arg-max rather than panic.
            return argmax(logits);
        }
        self.probs.iter_mut().for_each(|p| *p /= total);

        // Top-p: keep the smallest set of most likely tokens whose mass reaches p (the token that
        // crosses p is kept; at least one token always survives).
        let top_p = self.config.top_p as f64;
        if top_p > 0.0 && top_p < 1.0 {
            self.order.clear();
            self.order.extend((0..n as u32).filter(|&i| self.probs[i as usize] > 0.0));
            let probs = &self.probs;
            self.order.sort_by(|&a, &b| {
                probs[b as usize].total_cmp(&probs[a as usize]).then(a.cmp(&b))
            });
            let mut cumulative = 0.0;
            let mut keep = 0;
            for &i in &self.order {
                keep += 1;
                cumulative += self.probs[i as usize];
                if cumulative >= top_p {
                    break;
                }
            }
            for &i in &self.order[keep..] {
                self.probs[i as usize] = 0.0;
            }
            let kept: f64 = self.order[..keep].iter().map(|&i| self.probs[i as usize]).sum();
            self.probs.iter_mut().for_each(|p| *p /= kept);
        }

        // Inverse-CDF draw. The final fallback covers rounding when u is within an ulp of 1.
        let u: f64 = self.rng.random::<f64>();
        let mut cumulative = 0.0;
        let mut last_nonzero = 0;
        for (i, &p) in self.probs.iter().enumerate() {
            if p > 0.0 {
                cumulative += p;
                last_nonzero = i;
                if u < cumulative {
                    return i as u32;
                }
            }
        }
        last_nonzero as u32
    }
}

/// Index of the largest value; the first one wins ties (as `torch.argmax` does).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || (values[best].is_nan() && !v.is_nan()) {
            best = i;
        }
    }
    best as u32
}

/// The k-th largest value (1-based k), NaNs ordered lowest.
fn kth_largest(values: &[f32], k: usize) -> f32 {
    let mut sorted: Vec<f32> = values.iter().map(|v| if v.is_nan() { f32::NEG_INFINITY } else { *v }).collect();
    let idx = k - 1;
    sorted.select_nth_unstable_by(idx, |a, b| b.total_cmp(a));
    sorted[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(top_k: usize, top_p: f32, temperature: f32) -> SamplingConfig {
        SamplingConfig { top_k, top_p, temperature, greedy: false }
    }

    /// Deterministic pseudo-random logits (a simple LCG, independent of the sampler's RNG).
    fn logits(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f64 / (1u64 << 31) as f64 * 8.0 - 4.0) as f32
            })
            .collect()
    }

    fn softmax(l: &[f32], t: f64) -> Vec<f64> {
        let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = l.iter().map(|&x| ((x as f64 - m) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect()
    }

    #[test]
    fn greedy_is_argmax_and_first_index_wins_ties() {
        let mut s = Sampler::new(SamplingConfig { greedy: true, ..config(250, 0.0, 1.0) }, 0);
        assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0]), 1);
        let l = logits(2048, 7);
        assert_eq!(s.sample(&l), argmax(&l));
        let best = l.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(argmax(&l) as usize, best);
    }

    #[test]
    fn top_k_never_leaves_the_top_k() {
        for &k in &[1usize, 2, 5, 50, 250] {
            let l = logits(2048, k as u64);
            let mut sorted = l.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let kth = sorted[k - 1];
            let mut s = Sampler::new(config(k, 0.0, 1.0), 42);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..3000 {
                let t = s.sample(&l) as usize;
                assert!(l[t] >= kth, "k={k}: token {t} logit {} below k-th {kth}", l[t]);
                seen.insert(t);
            }
            // With k > 1 the draw must actually vary (it is sampling, not arg-max).
            if k > 1 {
                assert!(seen.len() > 1, "k={k} only ever produced {seen:?}");
            }
        }
        let mut s = Sampler::new(config(1, 0.0, 1.0), 3);
        let l = logits(2048, 99);
        for _ in 0..100 {
            assert_eq!(s.sample(&l), argmax(&l));
        }
    }

    #[test]
    fn frequencies_follow_softmax() {
        // A small vocabulary so every probability is estimated well: chi-square-like bound.
        let l = vec![1.0f32, 0.0, -1.0, 2.0, 0.5, -3.0];
        let p = softmax(&l, 1.0);
        let mut s = Sampler::new(config(0, 0.0, 1.0), 1234);
        let n = 50_000;
        let mut counts = vec![0usize; l.len()];
        for _ in 0..n {
            counts[s.sample(&l) as usize] += 1;
        }
        for i in 0..l.len() {
            let f = counts[i] as f64 / n as f64;
            let sd = (p[i] * (1.0 - p[i]) / n as f64).sqrt();
            assert!((f - p[i]).abs() < 5.0 * sd + 1e-4, "token {i}: freq {f} vs p {}", p[i]);
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_the_mass() {
        let l = logits(2048, 5);
        let t = 0.7;
        let p = softmax(&l, t);
        let mut order: Vec<usize> = (0..l.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        for &top_p in &[0.1f32, 0.5, 0.9] {
            // Expected nucleus: most likely tokens until the mass reaches top_p.
            let mut mass = 0.0;
            let mut nucleus = std::collections::HashSet::new();
            for &i in &order {
                nucleus.insert(i);
                mass += p[i];
                if mass >= top_p as f64 {
                    break;
                }
            }
            let mut s = Sampler::new(config(0, top_p, t as f32), 9);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..1500 {
                let tok = s.sample(&l) as usize;
                assert!(nucleus.contains(&tok), "top_p={top_p}: token {tok} outside the nucleus");
                seen.insert(tok);
            }
            // The nucleus is sampled, not collapsed: most of it shows up.
            assert!(seen.len() * 2 >= nucleus.len().min(50), "top_p={top_p}: saw {} of {}", seen.len(), nucleus.len());
            // Nucleus mass is at least p and removing its least likely token drops below p.
            let least = *nucleus.iter().min_by(|&&a, &&b| p[a].total_cmp(&p[b])).unwrap();
            assert!(mass >= top_p as f64 && mass - p[least] < top_p as f64);
        }
    }

    #[test]
    fn low_temperature_tends_to_greedy() {
        let mut l = logits(2048, 11);
        // Give the arg-max a clear margin (0.1 ≫ T) so the limit is what is tested.
        let best = argmax(&l) as usize;
        l[best] += 0.1;
        let mut s = Sampler::new(config(250, 0.0, 1e-3), 5);
        for _ in 0..200 {
            assert_eq!(s.sample(&l), argmax(&l));
        }
        // And a high temperature spreads the draws out.
        let mut s = Sampler::new(config(0, 0.0, 100.0), 5);
        let distinct: std::collections::HashSet<u32> = (0..500).map(|_| s.sample(&l)).collect();
        assert!(distinct.len() > 300, "only {} distinct tokens at T=100", distinct.len());
    }

    #[test]
    fn same_seed_same_tokens_different_seed_different_tokens() {
        let rows: Vec<Vec<f32>> = (0..64).map(|i| logits(2048, i)).collect();
        let draw = |seed| {
            let mut s = Sampler::new(config(250, 0.0, 1.0), seed);
            rows.iter().map(|r| s.sample(r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(17), draw(17));
        assert_ne!(draw(17), draw(18));
    }

    #[test]
    fn degenerate_rows_do_not_panic() {
        let mut s = Sampler::new(config(250, 0.9, 1.0), 0);
        let l = vec![f32::NEG_INFINITY; 16];
        assert!(s.sample(&l) < 16);
        let mut l = vec![f32::NEG_INFINITY; 16];
        l[7] = 0.0;
        assert_eq!(s.sample(&l), 7);
    }
}
