//! Bias-free linear layers whose weight is f32 or quantized at load time, and the record of
//! what each layer became.
//!
//! On the CPU a decoder step's products (a row or two of activations against each matrix) go
//! through our bandwidth-bound kernels (`kernels`): f32 matrices as loaded, q8_0 and q4k
//! matrices in our own layouts. Many-row products (prompt prefill) use candle's GEMM, through a
//! transient f32 copy for a quantized matrix. Off the CPU only f32 (or f16/bf16) layers exist,
//! always multiplied by candle: quantized layers are CPU-only, and `MusicGen::load_with`
//! refuses a quantized format on another device.
//!
//! Quantization happens while loading: each f32 matrix is read from the weight files (their
//! mapped pages are released as the f32 path does), quantized, and dropped, so at most one f32
//! matrix exists at a time and the loaded model holds only the quantized copies.
//!
//! A block format needs the inner (input) dimension to be a whole number of blocks (q4k: 256,
//! q8_0: 32). A matrix that does not fit falls back down the chain q4k → q8_0 → f32, and the
//! [`QuantReport`] says which ones did, so callers can show it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{CpuStorage, DType, Device, Module, Result, Storage, Tensor};
use candle_nn::{linear_no_bias, Linear, VarBuilder};

use super::kernels::{self, Q4KMatrix, Q8Matrix, QuantMatrix};
use super::quant::Quant;

/// A linear layer `y = x·Wᵀ` (no bias), `W` `(out, in)`.
#[derive(Debug, Clone)]
pub struct QLinear {
    weight: Weight,
    format: Quant,
}

#[derive(Debug, Clone)]
enum Weight {
    F32(Linear),
    /// q8_0 or q4k (CPU only), in our kernels' layouts (no copy kept by candle).
    Own(Arc<dyn QuantMatrix>),
}

impl QLinear {
    /// The format this layer's weight is stored in (after any fallback).
    pub fn format(&self) -> Quant {
        self.format
    }

    /// `forward` for a layer used once per generation (the cross-attention keys and values of
    /// the text): a quantized weight is expanded to a temporary f32 copy for this call.
    ///
    /// Why: the product has one row per text token, a GEMM's case rather than our kernels'.
    /// Expanding costs about a millisecond.
    pub fn forward_once(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::F32(l) => l.forward(x),
            Weight::Own(q) => expanded(q.as_ref(), x),
        }
    }
}

impl Module for QLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::F32(l) => match few_rows(x)? {
                Some(rows) => with_weight_slice(l.weight(), |w| {
                    let (n, k) = l.weight().dims2()?;
                    finish(x, kernels::matmul_t_f32(&rows.data, rows.m, w, n, k), n)
                })
                .unwrap_or_else(|| l.forward(x)),
                None => l.forward(x),
            },
            Weight::Own(q) => match few_rows(x)? {
                Some(rows) => finish(x, q.matmul_t(&rows.data, rows.m), q.dims().0),
                // A prefill: one temporary f32 copy of the matrix and candle's GEMM, instead of
                // re-reading the blocks per group of rows.
                None => expanded(q.as_ref(), x),
            },
        }
    }
}

/// The activations of a product small enough for our kernels: f32 on the CPU, at most
/// [`kernels::MAX_ROWS`] rows of the inner size.
struct Rows {
    data: Vec<f32>,
    m: usize,
}

fn few_rows(x: &Tensor) -> Result<Option<Rows>> {
    let k = x.dim(x.rank() - 1)?;
    let m = x.elem_count() / k.max(1);
    if !x.device().is_cpu() || x.dtype() != DType::F32 || m == 0 || m > kernels::MAX_ROWS {
        return Ok(None);
    }
    Ok(Some(Rows { data: x.flatten_all()?.to_vec1::<f32>()?, m }))
}

/// Runs `f` on the weight's f32 values when they are one contiguous CPU slice; `None` when not
/// (then the caller takes candle's path).
fn with_weight_slice(w: &Tensor, f: impl FnOnce(&[f32]) -> Result<Tensor>) -> Option<Result<Tensor>> {
    let (storage, layout) = w.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) => Some(f(&v[start..end])),
        _ => None,
    }
}

/// `y` `(m, n)` shaped like `x` with its last dimension `n`.
fn finish(x: &Tensor, y: Vec<f32>, n: usize) -> Result<Tensor> {
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("x has a last dimension") = n;
    Tensor::from_vec(y, dims, x.device())
}

/// `x·Wᵀ` through a transient f32 copy of `q` and candle's product (for one-off or many-row
/// products).
fn expanded(q: &dyn QuantMatrix, x: &Tensor) -> Result<Tensor> {
    Linear::new(Tensor::from_vec(q.dequantize(), q.dims(), x.device())?, None).forward(x)
}

/// A linear layer that fell back to another format than the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// Full tensor name, e.g. `decoder.lm_heads.0.weight`.
    pub name: String,
    /// `(out, in)`.
    pub shape: (usize, usize),
    /// The format asked for.
    pub wanted: Quant,
    /// The format used instead (the first down the chain whose block size divides the inner size).
    pub got: Quant,
}

/// What the decoder's linear layers became: the format asked for, how many layers ended in
/// each format, their bytes, and every fallback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuantReport {
    /// The format asked for at load.
    pub requested: Quant,
    /// Layers stored in f32, q8_0, q4k.
    pub f32_layers: usize,
    /// Layers stored as q8_0 (8-bit blocks of 32).
    pub q8_0_layers: usize,
    /// Layers stored as q4k (4-bit super-blocks of 256).
    pub q4k_layers: usize,
    /// Bytes of the linear layers' weights as stored (quantized blocks or f32).
    pub weight_bytes: usize,
    /// Bytes the same layers take in f32.
    pub f32_bytes: usize,
    /// The layers stored in another format than the one asked for.
    pub fallbacks: Vec<Fallback>,
}

impl QuantReport {
    /// Linear layers of the decoder (attention projections, feed-forward, LM heads), all formats
    /// together.
    pub fn layers(&self) -> usize {
        self.f32_layers + self.q8_0_layers + self.q4k_layers
    }

    fn count(&mut self, q: Quant) {
        match q {
            Quant::F32 => self.f32_layers += 1,
            Quant::Q8_0 => self.q8_0_layers += 1,
            Quant::Q4K => self.q4k_layers += 1,
        }
    }
}

impl fmt::Display for QuantReport {
    /// One line for a log or a status bar, e.g. `decoder weights q8_0: 194 layers q8_0, 0 f32
    /// (412 MB, 3.8x smaller than f32); 0 fallbacks`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decoder weights {:#}: ", self.requested)?;
        let mut parts = vec![];
        for (n, q) in [(self.q4k_layers, Quant::Q4K), (self.q8_0_layers, Quant::Q8_0), (self.f32_layers, Quant::F32)] {
            if n > 0 {
                parts.push(format!("{n} layers {q:#}"));
            }
        }
        write!(f, "{}", parts.join(", "))?;
        let ratio = self.f32_bytes as f64 / self.weight_bytes.max(1) as f64;
        write!(f, " ({:.0} MB, {ratio:.1}x smaller than f32)", self.weight_bytes as f64 / 1e6)?;
        if self.fallbacks.is_empty() {
            write!(f, "; no fallbacks")
        } else {
            let first = &self.fallbacks[0];
            write!(
                f,
                "; {} fell back (inner size not a multiple of the block), e.g. {} {:?} {:#} -> {:#}",
                self.fallbacks.len(),
                first.name,
                first.shape,
                first.wanted,
                first.got
            )
        }
    }
}

/// Quantizes `w` `(out, in)` on the CPU with its rows split across threads.
///
/// Why: candle quantizes a tensor on one thread, and q4k's search for each block's scales is
/// slow (about 16 s for musicgen-small's decoder on one core). Blocks run along rows, so the
/// rows can be quantized apart and their bytes joined: the result is byte for byte what one
/// call gives (checked by a test).
fn quantize_rows(w: &Tensor, ggml: GgmlDType) -> Result<QTensor> {
    let (out, _) = w.dims2()?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if threads <= 1 || out < 2 * threads || !w.device().is_cpu() {
        return QTensor::quantize(w, ggml);
    }
    let chunk = out.div_ceil(threads);
    let parts: Vec<Result<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..out)
            .step_by(chunk)
            .map(|start| {
                // Rows in a storage of their own: candle's quantize reads the whole storage
                // behind a view (and `copy` clones all of it).
                let n = chunk.min(out - start);
                let rows = w
                    .narrow(0, start, n)
                    .and_then(|r| r.flatten_all()?.to_vec1::<f32>())
                    .and_then(|v| Tensor::from_vec(v, (n, w.dim(1)?), &Device::Cpu));
                scope.spawn(move || Ok(QTensor::quantize(&rows?, ggml)?.data()?.into_owned()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(candle_core::Error::Msg("a quantization thread panicked".into()))))
            .collect()
    });
    let mut bytes = Vec::with_capacity(out * w.dim(1)? / ggml.block_size() * ggml.type_size());
    for part in parts {
        bytes.extend_from_slice(&part?);
    }
    QTensor::new(QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, ggml)?, w.shape())
}

/// Builds the decoder's linear layers in the requested format and records the outcome.
#[derive(Debug)]
pub struct Quantizer {
    report: QuantReport,
}

impl Quantizer {
    /// A quantizer storing every layer as `quant` (or its fallback) with an empty report.
    pub fn new(quant: Quant) -> Self {
        Self { report: QuantReport { requested: quant, ..Default::default() } }
    }

    /// The format asked for.
    pub fn requested(&self) -> Quant {
        self.report.requested
    }

    /// Loads `{vb}.weight` `(out, in)` and stores it in the requested format, or the first one
    /// down the fallback chain whose block size divides `in`.
    ///
    /// A quantized matrix is held for our CPU kernels; the model is only loaded quantized on the
    /// CPU (see the module doc).
    pub fn linear(&mut self, in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<QLinear> {
        let wanted = self.report.requested;
        let mut format = wanted;
        while !format.fits(in_dim) {
            format = format.fallback().expect("f32 fits every size");
        }
        self.report.count(format);
        self.report.f32_bytes += in_dim * out_dim * 4;
        if format != wanted {
            self.report.fallbacks.push(Fallback {
                name: format!("{}.weight", vb.prefix()),
                shape: (out_dim, in_dim),
                wanted,
                got: format,
            });
        }
        let Some(ggml) = format.ggml() else {
            self.report.weight_bytes += in_dim * out_dim * 4;
            return Ok(QLinear { weight: Weight::F32(linear_no_bias(in_dim, out_dim, vb)?), format });
        };
        // The f32 matrix lives only for the length of this call.
        let w = vb.get((out_dim, in_dim), "weight")?;
        let q = quantize_rows(&w, ggml)?;
        drop(w);
        let own: Arc<dyn QuantMatrix> = match format {
            Quant::Q4K => Arc::new(Q4KMatrix::from_qtensor(&q)?),
            // q8_0 (f32 returned above).
            _ => Arc::new(Q8Matrix::from_qtensor(&q)?),
        };
        self.report.weight_bytes += own.size_in_bytes();
        Ok(QLinear { weight: Weight::Own(own), format })
    }

    /// The report of every layer built so far.
    pub fn finish(self) -> QuantReport {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut s = seed;
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    /// Largest |difference| between `layer(x)` and the exact `x·Wᵀ`, for `x` `(1, 2, k)` (the
    /// CFG batch shape) with uniform values in [-1, 1].
    fn max_error(quant: Quant, k: usize, n: usize) -> f32 {
        max_error_rows(quant, k, n, 2)
    }

    /// [`max_error`] with `rows` activation rows: 2 (a decoder step; our kernels on the CPU) or
    /// more than `kernels::MAX_ROWS` (a prefill; candle's product).
    fn max_error_rows(quant: Quant, k: usize, n: usize, rows: usize) -> f32 {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let w = random(n, k, 3);
        map.data().lock().unwrap().insert("l.weight".into(), candle_core::Var::from_tensor(&w).unwrap());
        let mut qz = Quantizer::new(quant);
        let q = qz.linear(k, n, vb.pp("l")).unwrap();
        assert_eq!(q.format(), quant);
        let x = random(rows, k, 5).unsqueeze(0).unwrap();
        let exact = x.broadcast_matmul(&w.t().unwrap()).unwrap();
        let got = q.forward(&x).unwrap();
        assert_eq!(got.dims(), &[1, rows, n]);
        (got - &exact).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Rounding error bound for a product of inner size `k` with weights stored in steps of
    /// `step` (uniform in [-1, 1]) and activations in steps of 2/254 (q8_0/q8k of values in
    /// [-1, 1]): each rounding error is uniform with deviation step/√12, the k terms are
    /// independent, so the output error has deviation √k·√(step_w² + step_x²)/√12·rms(value),
    /// rms = 1/√3. Five deviations cover the largest of a few hundred outputs. A kernel that
    /// misreads blocks is off by the size of the outputs themselves (deviation √k/3: 5.3 for
    /// k = 256), far above these bounds (0.15 for q8_0 at k = 256, 2.6 for q4k at k = 512).
    fn bound(k: usize, step_w: f32) -> f32 {
        let step_x = 2.0 / 254.0;
        5.0 * (k as f32).sqrt() * (step_w * step_w + step_x * step_x).sqrt() / 12f32.sqrt() / 3f32.sqrt()
    }

    /// q8_0: blocks of 32 weights, step max|w|/127 ≤ 2/254.
    #[test]
    fn q8_0_linear_matches_f32_within_rounding() {
        let (k, n) = (256, 64);
        let err = max_error(Quant::Q8_0, k, n);
        let b = bound(k, 2.0 / 254.0);
        println!("q8_0 k={k}: max error {err:.4}, bound {b:.4}");
        assert!(err < b, "max error {err} >= {b}");
        assert!(err > 0.0, "q8_0 cannot be exact on random weights");
        let map = VarMap::new();
        let mut qz = Quantizer::new(Quant::Q8_0);
        qz.linear(k, n, VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu).pp("z")).unwrap();
        // Our layout: 32 bytes and an f32 scale per 32 weights.
        assert_eq!(qz.finish().weight_bytes, n * k / 32 * 36);
    }

    /// Step-sized and prefill-sized products take different paths (our kernels, candle's
    /// GEMM); both stay within q8_0's rounding, and f32 within f32 summation error.
    #[test]
    fn every_path_matches_f32() {
        let (k, n) = (256, 70);
        for rows in [1, 2, 4, 7] {
            let err = max_error_rows(Quant::Q8_0, k, n, rows);
            assert!(err < bound(k, 2.0 / 254.0), "q8_0 rows={rows}: {err}");
            let err = max_error_rows(Quant::Q4K, k, n, rows);
            assert!(err < bound(k, 2.0 / 15.0 * (1.0 + 1.0 / 63.0)), "q4k rows={rows}: {err}");
            let err = max_error_rows(Quant::F32, k, n, rows);
            assert!(err < 1e-4, "f32 rows={rows}: {err}");
        }
    }

    /// q4k: 4-bit values in sub-blocks of 32 with their own 6-bit scale and minimum, so the step
    /// is the sub-block's range / 15 ≤ 2/15 (the 6-bit scales add at most a step of 1/63 of it).
    #[test]
    fn q4k_linear_matches_f32_within_rounding() {
        let (k, n) = (512, 64);
        let err = max_error(Quant::Q4K, k, n);
        let b = bound(k, 2.0 / 15.0 * (1.0 + 1.0 / 63.0));
        println!("q4k k={k}: max error {err:.4}, bound {b:.4}");
        assert!(err < b, "max error {err} >= {b}");
        assert!(err > bound(k, 2.0 / 254.0) / 5.0, "q4k error {err} is as small as q8_0's: was it 4-bit?");
    }

    /// Row-split quantization is byte for byte the single-call one, for both formats.
    #[test]
    fn row_split_quantization_equals_one_call() {
        let w = random(100, 512, 9);
        for ggml in [GgmlDType::Q8_0, GgmlDType::Q4K] {
            let one = QTensor::quantize(&w, ggml).unwrap();
            let split = quantize_rows(&w, ggml).unwrap();
            assert_eq!(split.shape(), one.shape());
            assert_eq!(split.data().unwrap(), one.data().unwrap(), "{ggml:?}");
        }
    }

    #[test]
    fn unfit_inner_sizes_fall_back_and_are_reported() {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let mut qz = Quantizer::new(Quant::Q4K);
        assert_eq!(qz.linear(512, 16, vb.pp("a")).unwrap().format(), Quant::Q4K);
        assert_eq!(qz.linear(96, 16, vb.pp("b")).unwrap().format(), Quant::Q8_0);
        assert_eq!(qz.linear(40, 16, vb.pp("c")).unwrap().format(), Quant::F32);
        let r = qz.finish();
        assert_eq!((r.q4k_layers, r.q8_0_layers, r.f32_layers), (1, 1, 1));
        assert_eq!(
            r.fallbacks.iter().map(|f| (f.name.as_str(), f.got)).collect::<Vec<_>>(),
            [("b.weight", Quant::Q8_0), ("c.weight", Quant::F32)]
        );
        let line = r.to_string();
        assert!(line.contains("2 fell back") && line.contains("b.weight"), "{line}");
    }
}
