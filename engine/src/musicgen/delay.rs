//! MusicGen's "delay" codebook interleaving.
//!
//! MusicGen predicts all codebooks of a frame in one decoder step, but codebook `k` is shifted
//! right by a delay `d_k` so that, when it is predicted, the coarser codebooks of the same audio
//! frame are already in the context. This type owns that bookkeeping: which cells of the
//! `(K, L)` token grid are free to predict, which are forced to the pad token, and how to undo the
//! shift afterwards. It is pure index arithmetic and tested exhaustively, because an off-by-one
//! here silently shifts codebooks against each other and produces noise rather than an error.

/// Token id used for BOS and for every cell outside the delay pattern. The LM heads output only
/// `0..2048`, so this id can never be sampled.
pub const PAD_TOKEN: u32 = 2048;

/// The delay pattern for `num_codebooks` rows and a sequence of `len` columns (one BOS column
/// plus `max_new_tokens`).
///
/// Mono models delay codebook `k` by `k`. Stereo models interleave the rows as L0, R0, L1, R1, …
/// and delay row `k` by `⌊k/2⌋`, so both channels' codebook `q` share the delay `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayPattern {
    num_codebooks: usize,
    channels: usize,
    len: usize,
}

impl DelayPattern {
    /// Returns `None` when the layout is impossible or the sequence is too short to hold one full
    /// frame of every codebook (`len < 2·Kc − 1`, where `Kc` is the codebooks per channel).
    /// transformers silently switches the pattern off in that case; we refuse instead, since the
    /// result would not be MusicGen's output.
    pub fn new(num_codebooks: usize, channels: usize, len: usize) -> Option<Self> {
        if channels == 0 || num_codebooks == 0 || !num_codebooks.is_multiple_of(channels) {
            return None;
        }
        let per_channel = num_codebooks / channels;
        if len < 2 * per_channel - 1 {
            return None;
        }
        Some(Self { num_codebooks, channels, len })
    }

    /// The pattern for a generation of `max_new_tokens` steps (one extra BOS column).
    pub fn for_new_tokens(num_codebooks: usize, channels: usize, max_new_tokens: usize) -> Option<Self> {
        Self::new(num_codebooks, channels, max_new_tokens.checked_add(1)?)
    }

    /// The smallest `max_new_tokens` that yields at least one frame for this layout.
    pub fn min_new_tokens(num_codebooks: usize, channels: usize) -> usize {
        2 * (num_codebooks / channels.max(1)).max(1) - 2
    }

    /// Token rows `K` across all channels (4 mono, 8 stereo).
    pub fn num_codebooks(&self) -> usize {
        self.num_codebooks
    }

    /// Audio channels (1 mono, 2 stereo).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Codebooks per audio channel (`Kc`).
    pub fn codebooks_per_channel(&self) -> usize {
        self.num_codebooks / self.channels
    }

    /// Number of columns `L`, including the BOS column.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a pattern has at least `2·Kc − 1` columns.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of complete audio frames once the delays are undone: `L − Kc`.
    pub fn frames(&self) -> usize {
        self.len - self.codebooks_per_channel()
    }

    /// The delay of row `k`.
    pub fn delay(&self, k: usize) -> usize {
        debug_assert!(k < self.num_codebooks);
        k / self.channels
    }

    /// Whether cell `(k, j)` holds a real token (`d_k < j < d_k + L − Kc + 1`); every other cell is
    /// the pad token.
    pub fn is_valid(&self, k: usize, j: usize) -> bool {
        let d = self.delay(k);
        d < j && j < d + self.frames() + 1
    }

    /// The value cell `(k, j)` takes when the model proposes `token`: the token where the
    /// pattern allows one, the pad token elsewhere.
    pub fn masked(&self, k: usize, j: usize, token: u32) -> u32 {
        if self.is_valid(k, j) {
            token
        } else {
            PAD_TOKEN
        }
    }

    /// A fresh `(K, L)` grid: every cell the pad token (column 0 is the BOS column).
    pub fn empty_grid(&self) -> Vec<Vec<u32>> {
        vec![vec![PAD_TOKEN; self.len]; self.num_codebooks]
    }

    /// Undoes the delays: `frames[k][f] = grid[k][d_k + 1 + f]` for `f < L − Kc`.
    ///
    /// Panics if `grid` is not `(K, L)`; callers build it from [`Self::empty_grid`].
    pub fn undelay(&self, grid: &[Vec<u32>]) -> Vec<Vec<u32>> {
        assert_eq!(grid.len(), self.num_codebooks, "grid rows");
        grid.iter()
            .enumerate()
            .map(|(k, row)| {
                assert_eq!(row.len(), self.len, "grid columns");
                let start = self.delay(k) + 1;
                row[start..start + self.frames()].to_vec()
            })
            .collect()
    }

    /// The inverse of [`Self::undelay`]: places `(K, F)` frames into a `(K, L)` grid with pad
    /// tokens around them. Used by tests and by audio-prompt continuation.
    pub fn delay_frames(&self, frames: &[Vec<u32>]) -> Vec<Vec<u32>> {
        let mut grid = self.empty_grid();
        for (k, row) in frames.iter().enumerate().take(self.num_codebooks) {
            let start = self.delay(k) + 1;
            for (f, &tok) in row.iter().enumerate().take(self.frames()) {
                grid[k][start + f] = tok;
            }
        }
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// transformers' construction, written independently of ours: pad where j ≤ d (BOS triangle,
    /// `tril`) or j − d ≥ L − Kc + 1 (EOS triangle, `triu` with that diagonal), rows duplicated
    /// per channel for stereo.
    fn reference_valid(k: usize, j: usize, kk: usize, channels: usize, len: usize) -> bool {
        let kc = kk / channels;
        let row = k / channels; // stereo: repeat_interleave(2) of the per-channel pattern
        let bos = j <= row;
        let eos = j as isize - row as isize >= (len - kc + 1) as isize;
        !(bos || eos)
    }

    fn layouts() -> Vec<(usize, usize)> {
        vec![(1, 1), (2, 1), (3, 1), (4, 1), (8, 1), (2, 2), (4, 2), (8, 2), (16, 2)]
    }

    #[test]
    fn valid_cells_match_reference_construction() {
        for (kk, ch) in layouts() {
            let kc = kk / ch;
            for len in (2 * kc - 1)..(2 * kc + 40) {
                let p = DelayPattern::new(kk, ch, len).unwrap();
                for k in 0..kk {
                    for j in 0..len {
                        assert_eq!(
                            p.is_valid(k, j),
                            reference_valid(k, j, kk, ch, len),
                            "K={kk} ch={ch} L={len} cell ({k},{j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_row_has_exactly_frames_valid_cells_and_bos_is_pad() {
        for (kk, ch) in layouts() {
            let kc = kk / ch;
            for len in (2 * kc - 1)..(2 * kc + 40) {
                let p = DelayPattern::new(kk, ch, len).unwrap();
                assert_eq!(p.frames(), len - kc);
                for k in 0..kk {
                    assert!(!p.is_valid(k, 0));
                    let n = (0..len).filter(|&j| p.is_valid(k, j)).count();
                    assert_eq!(n, p.frames(), "K={kk} ch={ch} L={len} row {k}");
                }
            }
        }
    }

    #[test]
    fn stereo_delays_are_pairwise_and_mono_delays_are_row_index() {
        let mono = DelayPattern::new(4, 1, 30).unwrap();
        assert_eq!((0..4).map(|k| mono.delay(k)).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        let stereo = DelayPattern::new(8, 2, 30).unwrap();
        assert_eq!(
            (0..8).map(|k| stereo.delay(k)).collect::<Vec<_>>(),
            vec![0, 0, 1, 1, 2, 2, 3, 3]
        );
        assert_eq!(stereo.frames(), 26);
    }

    #[test]
    fn edge_length_two_kc_minus_one() {
        // L = 2·Kc − 1 is the shortest allowed (Kc − 1 frames); one column fewer is refused.
        for (kk, ch) in layouts() {
            let kc = kk / ch;
            let p = DelayPattern::new(kk, ch, 2 * kc - 1).unwrap();
            assert_eq!(p.frames(), kc - 1);
            assert!(DelayPattern::new(kk, ch, 2 * kc - 2).is_none());
            // The last row's valid cells end exactly at the last column.
            if p.frames() > 0 {
                let last = kk - 1;
                assert!(p.is_valid(last, p.len() - 1));
            }
        }
        // Mono 4 codebooks, L = 7: the 4 × 7 picture transformers documents.
        let p = DelayPattern::new(4, 1, 7).unwrap();
        let picture: Vec<String> = (0..4)
            .map(|k| (0..7).map(|j| if p.is_valid(k, j) { '-' } else { 'P' }).collect())
            .collect();
        assert_eq!(picture, vec!["P---PPP", "PP---PP", "PPP---P", "PPPP---"]);
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // (k, j) are grid coordinates, clearer than iterators
    fn undelay_inverts_delay_frames_for_many_shapes() {
        for (kk, ch) in layouts() {
            let kc = kk / ch;
            for len in (2 * kc - 1)..(2 * kc + 25) {
                let p = DelayPattern::new(kk, ch, len).unwrap();
                let frames: Vec<Vec<u32>> = (0..kk)
                    .map(|k| (0..p.frames()).map(|f| (k * 1000 + f) as u32 % 2048).collect())
                    .collect();
                let grid = p.delay_frames(&frames);
                // Only valid cells carry tokens; all others are the pad.
                for k in 0..kk {
                    for j in 0..len {
                        assert_eq!(grid[k][j] != PAD_TOKEN, p.is_valid(k, j), "K={kk} L={len} ({k},{j})");
                    }
                }
                assert_eq!(p.undelay(&grid), frames);
            }
        }
    }

    #[test]
    fn masked_forces_pad_outside_the_pattern() {
        let p = DelayPattern::new(4, 1, 10).unwrap();
        assert_eq!(p.masked(0, 0, 5), PAD_TOKEN);
        assert_eq!(p.masked(0, 1, 5), 5);
        assert_eq!(p.masked(3, 3, 5), PAD_TOKEN);
        assert_eq!(p.masked(3, 4, 5), 5);
        assert_eq!(p.masked(0, 7, 5), PAD_TOKEN); // past the last frame of codebook 0
        assert_eq!(p.masked(3, 9, 5), 5);
    }

    #[test]
    fn impossible_layouts_are_refused() {
        assert!(DelayPattern::new(0, 1, 10).is_none());
        assert!(DelayPattern::new(3, 2, 10).is_none());
        assert!(DelayPattern::new(4, 1, 6).is_none());
        assert!(DelayPattern::for_new_tokens(4, 1, 5).is_none());
        assert!(DelayPattern::for_new_tokens(4, 1, 6).is_some());
        assert_eq!(DelayPattern::min_new_tokens(4, 1), 6);
        assert_eq!(DelayPattern::min_new_tokens(8, 2), 6);
        // 50·N + 3 new tokens give exactly 50·N frames (audiocraft's duration rule).
        for n in 1..=30 {
            let p = DelayPattern::for_new_tokens(4, 1, 50 * n + 3).unwrap();
            assert_eq!(p.frames(), 50 * n);
            let p = DelayPattern::for_new_tokens(8, 2, 50 * n + 3).unwrap();
            assert_eq!(p.frames(), 50 * n);
        }
    }
}
