//! Weight files → a candle `VarBuilder`, with checkpoint-aware names and errors.
//!
//! Why a custom backend rather than `VarBuilder::from_mmaped_safetensors`:
//! - EnCodec's weight norm is stored under two namings (hub files: `conv.weight_g/weight_v`;
//!   transformers 5 saves: `conv.parametrizations.weight.original0/original1`). The backend
//!   answers either name from either file, so model code asks for one name only.
//! - Each file is opened on its own so a corrupt or truncated file is reported by path.
//! - Missing tensors and shape mismatches name the tensor and both shapes.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::safetensors::{Load, MmapedSafetensors};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::error::EngineError;

/// Equivalent tensor-name suffixes: (hub naming, transformers-5 naming).
const ALIASES: [(&str, &str); 2] = [
    (".weight_g", ".parametrizations.weight.original0"),
    (".weight_v", ".parametrizations.weight.original1"),
];

/// The memory-mapped weight files of one checkpoint, with a name → file routing table.
pub struct WeightFiles {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    routing: HashMap<String, usize>,
    /// Checked before every tensor is read (see [`Self::with_cancel`]).
    cancel: Option<Arc<AtomicBool>>,
}

/// The message of the candle error a cancelled read returns (candle's error cannot carry ours;
/// the loader turns it into [`EngineError::Cancelled`] by checking the flag).
pub const LOAD_CANCELLED: &str = "model load cancelled";

impl WeightFiles {
    /// Memory-maps every file and reads its header. A file that is not valid safetensors
    /// (truncated download, HTML error page...) is reported by path.
    pub fn open(paths: &[PathBuf]) -> Result<Self, EngineError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut routing = HashMap::new();
        for (index, path) in paths.iter().enumerate() {
            if !path.is_file() {
                return Err(EngineError::MissingFile {
                    what: "weights shard",
                    path: path.clone(),
                });
            }
            // SAFETY: the mapping is read-only; as with every mmap-based loader, the file must not
            // be modified while the model is loaded (HF cache files are immutable blobs).
            let st = unsafe { MmapedSafetensors::new(path) }.map_err(|e| {
                EngineError::CorruptWeights {
                    path: path.clone(),
                    reason: root_cause(&e),
                }
            })?;
            for (name, _) in st.tensors() {
                routing.insert(name, index);
            }
            files.push((path.clone(), st));
        }
        Ok(Self { files, routing, cancel: None })
    }

    /// Makes every tensor read check `cancel` first and fail with [`LOAD_CANCELLED`] once it is
    /// set: a load is a few hundred reads, so a cancelled load stops within one tensor's read,
    /// conversion and quantization.
    pub fn with_cancel(mut self, cancel: Option<Arc<AtomicBool>>) -> Self {
        self.cancel = cancel;
        self
    }

    fn check_cancel(&self) -> candle_core::Result<()> {
        #[cfg(test)]
        read_hook::before_read();
        match &self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(candle_core::Error::Msg(LOAD_CANCELLED.into())),
            _ => Ok(()),
        }
    }

    /// The stored name for `name`, trying the other weight-norm naming when needed.
    fn resolve<'a>(&self, name: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        if self.routing.contains_key(name) {
            return Some(name.into());
        }
        for (hub, tf5) in ALIASES {
            for (from, to) in [(hub, tf5), (tf5, hub)] {
                if let Some(stem) = name.strip_suffix(from) {
                    let other = format!("{stem}{to}");
                    if self.routing.contains_key(&other) {
                        return Some(other.into());
                    }
                }
            }
        }
        None
    }

    /// Whether `name` (under either weight-norm naming) is stored.
    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// The stored shape of `name`, without loading it.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let stored = self.resolve(name)?;
        let (_, st) = &self.files[self.routing[stored.as_ref()]];
        st.get(&stored).ok().map(|v| v.shape().to_vec())
    }

    /// Loads `name` converted to `dtype` on `dev`, checking its shape against `expected`.
    pub fn load(
        &self,
        name: &str,
        expected: Option<&Shape>,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor, EngineError> {
        let Some(stored) = self.resolve(name) else {
            return Err(EngineError::MissingTensor {
                name: name.to_string(),
                expected: expected.map(|s| s.dims().to_vec()).unwrap_or_default(),
            });
        };
        let (path, st) = &self.files[self.routing[stored.as_ref()]];
        let corrupt = |e: candle_core::Error| EngineError::CorruptWeights {
            path: path.clone(),
            reason: root_cause(&e),
        };
        let view = st.get(&stored).map_err(corrupt)?;
        if let Some(expected) = expected {
            if view.shape() != expected.dims() {
                return Err(EngineError::TensorShape {
                    name: name.to_string(),
                    expected: expected.dims().to_vec(),
                    actual: view.shape().to_vec(),
                });
            }
        }
        let tensor = view.load(dev).map_err(corrupt)?;
        release_mapped_pages(view.data());
        Ok(tensor.to_dtype(dtype)?)
    }

    /// Paths of the files, in load order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }
}

/// Drops the pages of `bytes` (a tensor's bytes inside a read-only file mapping) from this
/// process once the tensor has been copied out.
///
/// Why: every tensor is copied out of the mapping into memory of its own, and each page read
/// stays mapped, counted in the process's RSS, until the whole file is unmapped at the end of
/// loading: peak RSS was twice the weights (4.5 GB for musicgen-small's 2.4 GB, measured by
/// scripts/bench.py) although the mapped pages are only clean file cache. `MADV_DONTNEED`
/// unmaps them as we go. Only whole pages inside `bytes` are released, so a neighbouring
/// tensor's pages are never touched; and since the mapping is read-only, a page read again
/// later is simply read from the file again: no value can change.
#[cfg(unix)]
fn release_mapped_pages(bytes: &[u8]) {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return,
    };
    let start = (bytes.as_ptr() as usize).next_multiple_of(page);
    let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside `bytes`, which lies inside a private read-only file
        // mapping that stays mapped; MADV_DONTNEED on such a mapping only drops this process's
        // copies of the pages (the next access reads the file again), it never frees memory
        // that anything else owns. A failure is harmless: the pages just stay resident.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(not(unix))]
fn release_mapped_pages(_bytes: &[u8]) {}

/// Candle wraps errors in backtrace/context layers; the innermost message is the useful one.
fn root_cause(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => root_cause(inner),
        candle_core::Error::WithPath { inner, .. } => root_cause(inner),
        candle_core::Error::Context { inner, .. } => root_cause(inner),
        other => other.to_string(),
    }
}

impl SimpleBackend for WeightFiles {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.check_cancel()?;
        // candle's error type cannot carry ours; keep the full typed message.
        self.load(name, Some(&s), dtype, dev)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.check_cancel()?;
        self.load(name, None, dtype, dev)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}

/// Fetches `name` (relative to `vb`'s prefix) with shape `shape`, returning the engine's typed
/// errors: [`EngineError::MissingTensor`] or [`EngineError::TensorShape`] naming the full tensor
/// path. Use this in model loaders instead of `vb.get` so producers see which tensor is wrong.
pub fn get_checked<S: Into<Shape>>(
    vb: &VarBuilder,
    shape: S,
    name: &str,
) -> Result<Tensor, EngineError> {
    let shape: Shape = shape.into();
    let full = if vb.prefix().is_empty() {
        name.to_string()
    } else {
        format!("{}.{name}", vb.prefix())
    };
    if !vb.contains_tensor(name) {
        return Err(EngineError::MissingTensor {
            name: full,
            expected: shape.dims().to_vec(),
        });
    }
    match vb.get(shape.clone(), name) {
        Ok(t) => Ok(t),
        // The backend refused: find the stored shape to say what is wrong, if it can tell.
        Err(e) => match vb.get_unchecked(name) {
            Ok(t) if t.shape() != &shape => Err(EngineError::TensorShape {
                name: full,
                expected: shape.dims().to_vec(),
                actual: t.dims().to_vec(),
            }),
            _ => Err(e.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{serialize_to_file, Dtype, TensorView};

    /// Tensors spanning several pages load with their exact values, again and again, after
    /// their mapped pages were released (and a neighbour's release does not affect them).
    #[test]
    fn values_survive_releasing_mapped_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a: Vec<f32> = (0..5000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let b: Vec<f32> = (0..7001).map(|i| (i as f32).sin()).collect();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (ab, bb) = (bytes(&a), bytes(&b));
        let views = [
            ("a", TensorView::new(Dtype::F32, vec![50, 100], &ab).unwrap()),
            ("b", TensorView::new(Dtype::F32, vec![7001], &bb).unwrap()),
        ];
        serialize_to_file(views, None, &path).unwrap();
        let files = WeightFiles::open(&[path]).unwrap();
        for _ in 0..2 {
            for (name, want) in [("a", &a), ("b", &b), ("a", &a)] {
                let t = files.load(name, None, DType::F32, &Device::Cpu).unwrap();
                assert_eq!(&t.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want, "{name}");
            }
        }
    }
}

/// A hook for tests, called before every tensor read on this thread (e.g. to cancel a load from
/// another thread after N reads).
#[cfg(test)]
pub(crate) mod read_hook {
    use std::cell::RefCell;

    thread_local! {
        static HOOK: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
    }

    pub fn set(hook: impl FnMut() + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    }

    pub fn clear() {
        HOOK.with(|h| *h.borrow_mut() = None);
    }

    pub(super) fn before_read() {
        HOOK.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f()
            }
        });
    }
}
