//! The library stays loaded once MelodyGen has started a thread (see `src/threads.rs`): a host
//! that destroys the last instance and unloads the module at once must not pull code from under
//! the dispatcher or worker threads, which end on their own after the instance is gone.
//!
//! Loads the cdylib cargo built beside this test as a CLAP host would (clack-host through the
//! CLAP test host's helpers), activates an instance (which starts its dispatcher thread),
//! destroys it, closes the library, and asks the dynamic loader whether it is still mapped.

#![cfg(target_os = "linux")]

use clap_test_host::instance::{open_entry, LoadedPlugin};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `target/<profile>/deps/libmelodygen.so`, built with the library target this test belongs to
/// (beside this test's executable; the copy one folder up is only refreshed by `cargo build`).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libmelodygen.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

/// Whether the dynamic loader still has `path` mapped (RTLD_NOLOAD loads nothing).
fn still_loaded(path: &std::path::Path) -> bool {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: RTLD_NOLOAD only looks the library up; a handle it returns is closed at once.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if h.is_null() {
            return false;
        }
        libc::dlclose(h);
        true
    }
}

#[test]
fn the_module_stays_loaded_after_the_host_unloads_it_and_removal_does_not_block() {
    let lib = cdylib();
    assert!(!still_loaded(&lib), "nothing else has loaded {}", lib.display());
    // The instance lives on a thread of its own that ends before the library is closed: thread
    // locals the plugin registered on it would otherwise keep glibc from unloading the library
    // until that thread exits, which would hide a missing pin.
    let (entry, removal) = std::thread::spawn(move || {
        let entry = open_entry(&cdylib()).unwrap();
        let mut plugin = LoadedPlugin::new(&entry, "dev.melodygen.melodygen").unwrap();
        // Activation starts the instance's dispatcher thread.
        let silence = [vec![0.0f32; 1024], vec![0.0f32; 1024]];
        plugin.render(48_000.0, 256, &silence, &[]).unwrap();
        let t = Instant::now();
        drop(plugin);
        (entry, t.elapsed())
    })
    .join()
    .unwrap();
    // Deinit and dlclose: a host unloading the module right after removing the last instance.
    drop(entry);
    assert!(
        removal < Duration::from_millis(50),
        "removing the last instance blocked the host for {removal:?}"
    );
    // While the dispatcher thread still runs, glibc itself defers the unload (its thread
    // locals); once that thread has ended (it stops within 20 ms) the next dlclose of the
    // library, here the one inside `still_loaded`, would unload it unless it is pinned.
    std::thread::sleep(Duration::from_millis(300));
    let _ = still_loaded(&lib);
    assert!(
        still_loaded(&lib),
        "the library was unloaded although MelodyGen had started threads in it"
    );
}

