//! Which device the worker runs MusicGen on, and its name for the window.
//!
//! One choice per process, made once: the first CUDA GPU in a build with the `cuda` feature, the
//! Metal GPU in a build with `metal`, when the machine has one; otherwise the CPU. The window
//! shows [`name`] so a producer knows why generation is fast or slow.

use candle_core::Device;
use std::sync::OnceLock;

/// The device models are loaded on (chosen on first call, then the same for the process).
pub fn select() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE.get_or_init(pick).clone()
}

/// "CPU", "CUDA" or "Metal": where [`select`] runs models.
pub fn name() -> &'static str {
    name_of(&select())
}

fn name_of(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "CPU",
        Device::Cuda(_) => "CUDA",
        Device::Metal(_) => "Metal",
    }
}

fn pick() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    #[cfg(feature = "metal")]
    if let Ok(device) = Device::new_metal(0) {
        return device;
    }
    Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build without GPU features runs on the CPU and says so.
    #[cfg(not(any(feature = "cuda", feature = "metal")))]
    #[test]
    fn a_cpu_build_names_the_cpu() {
        assert!(select().is_cpu());
        assert_eq!(name(), "CPU");
    }
}
