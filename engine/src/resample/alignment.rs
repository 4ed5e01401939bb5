//! Where rubato's outputs fall in time, and the lead-in and skip that put the first one at input
//! time 0 (see the module doc of `resample`).

pub(super) fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Lead-in zeros and skipped outputs that make the output start exactly at input time 0 with
/// `b` phases for the ratio `b/a`: output `k` is the (lead-in-shifted) input at
/// `(k+1)·a/b − 1 + 1/b − lead_in`; setting that to `(k − skip)·a/b` gives
/// `skip + 1 = (b·(lead_in + 1) − 1)/a`, an integer when `b·(lead_in+1) ≡ 1 (mod a)`.
pub(super) fn exact_alignment(a: u64, b: u64) -> (usize, usize) {
    let mut n = 1u64;
    loop {
        let num = b * n;
        if num % a == 1 % a && num > a {
            let skip_plus_one = (num - 1) / a;
            if skip_plus_one >= 1 {
                return ((n - 1) as usize, (skip_plus_one - 1) as usize);
            }
        }
        n += 1;
    }
}

/// Fallback for ratios with too many phases: the lead-in (searched over one period `a` of the
/// ratio, at most 65 536) whose first output falls closest to input time 0; the residual
/// misalignment is a tiny fraction of a sample.
pub(super) fn nearest_alignment(ratio: f64, phases: usize, a: u64) -> (usize, usize) {
    let start = (1.0 / ratio).ceil() as usize + 1; // at least one output before time 0
    let (mut best, mut best_err) = (start, f64::INFINITY);
    for lead_in in start..start + (a as usize).min(65_536) {
        let first = ratio * (1.0 + lead_in as f64 - 1.0 / phases as f64) - 1.0;
        let err = (first - first.round()).abs();
        if err < best_err {
            (best, best_err) = (lead_in, err);
        }
    }
    let first = ratio * (1.0 + best as f64 - 1.0 / phases as f64) - 1.0;
    (best, first.round() as usize)
}
