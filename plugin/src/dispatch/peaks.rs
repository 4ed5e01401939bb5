//! The waveform of a clip reduced to min/max peaks, so the editor can draw any width from a
//! small table instead of scanning the audio every frame.
//!
//! Computed once per clip off the GUI thread (by the dispatcher, when it makes a clip current)
//! and only read by the editor.

/// How many min/max pairs a clip is reduced to: finer than any editor width, small enough
/// (8 KiB) to compute in a few milliseconds for a 30 s clip and to draw from every frame.
pub const PEAK_BUCKETS: usize = 1024;

/// Min/max of all channels over consecutive, equal slices of the clip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Peaks {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

impl Peaks {
    /// Reduces `channels` (equal lengths) to at most `buckets` min/max pairs; a clip shorter
    /// than that keeps one pair per frame. Allocates: never on the audio or GUI thread.
    pub fn compute(channels: &[Vec<f32>], buckets: usize) -> Peaks {
        let frames = channels.iter().map(Vec::len).min().unwrap_or(0);
        let buckets = buckets.min(frames);
        let mut peaks = Peaks {
            min: vec![0.0; buckets],
            max: vec![0.0; buckets],
        };
        for b in 0..buckets {
            let (start, end) = (b * frames / buckets, (b + 1) * frames / buckets);
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for ch in channels {
                for &v in &ch[start..end] {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            peaks.min[b] = lo;
            peaks.max[b] = hi;
        }
        peaks
    }

    pub fn len(&self) -> usize {
        self.min.len()
    }

    /// Beside `len` (clippy's `len_without_is_empty`); only the tests ask it today.
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.min.is_empty()
    }

    /// Min and max under pixel column `x` of a picture `width` columns wide: the union of the
    /// buckets that column covers (at least one), so no peak is lost when drawing narrower
    /// than the table. `None` for an empty clip.
    pub fn column(&self, x: usize, width: usize) -> Option<(f32, f32)> {
        let n = self.len();
        if n == 0 || width == 0 {
            return None;
        }
        let start = (x * n / width).min(n - 1);
        let end = ((x + 1) * n / width).clamp(start + 1, n);
        let lo = self.min[start..end].iter().copied().fold(f32::INFINITY, f32::min);
        let hi = self.max[start..end].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        Some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_hold_the_extremes_of_every_slice_and_channel() {
        // Left: a ramp 0..1000; right: its negative. Each of 10 buckets covers 100 frames.
        let left: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let right: Vec<f32> = left.iter().map(|v| -v).collect();
        let p = Peaks::compute(&[left, right], 10);
        assert_eq!(p.len(), 10);
        for b in 0..10 {
            let last = (b * 100 + 99) as f32;
            assert_eq!((p.min[b], p.max[b]), (-last, last), "bucket {b}");
        }
        // Drawn 5 columns wide, a column covers two buckets; 20 wide, half a bucket (its own).
        assert_eq!(p.column(0, 5), Some((-199.0, 199.0)));
        assert_eq!(p.column(4, 5), Some((-999.0, 999.0)));
        assert_eq!(p.column(19, 20), Some((-999.0, 999.0)));
        assert_eq!(p.column(0, 20), Some((-99.0, 99.0)));
    }

    #[test]
    fn a_single_spike_survives_any_reduction() {
        let mut x = vec![0.0f32; 48_000];
        x[12_345] = 0.9;
        let p = Peaks::compute(&[x.clone(), x], PEAK_BUCKETS);
        assert_eq!(p.len(), PEAK_BUCKETS);
        for width in [37, 300, 1024, 2000] {
            let hits = (0..width).filter(|&c| p.column(c, width).unwrap().1 == 0.9).count();
            assert!(hits >= 1, "spike lost at width {width}");
            let expected = 12_345.0 / 48_000.0 * width as f64;
            let at = (0..width).find(|&c| p.column(c, width).unwrap().1 == 0.9).unwrap();
            assert!((at as f64 - expected).abs() <= 1.0, "spike drawn at {at}, expected {expected}");
        }
    }

    #[test]
    fn short_and_empty_clips() {
        let p = Peaks::compute(&[vec![0.5, -0.25]], PEAK_BUCKETS);
        assert_eq!((p.min.clone(), p.max.clone()), (vec![0.5, -0.25], vec![0.5, -0.25]));
        assert!(Peaks::compute(&[], 10).is_empty());
        assert_eq!(Peaks::compute(&[vec![]], 10).column(0, 10), None);
    }
}
