//! Every thread MelodyGen starts goes through [`spawn`], which first pins the plugin library in
//! memory for the rest of the process.
//!
//! Why: a host may remove the last instance and unload the library at once. Our threads (the
//! dispatchers, the worker, downloads, and the compute pools the engine starts from the worker)
//! are never joined on a host thread, so that removing an instance never blocks the host: they
//! are told to stop and end on their own, which may take as long as the model load or engine
//! step they are in. Until then they run the library's code, so the library must stay mapped.
//! Pinning it once, before the first thread exists, makes a later unload a no-op: the library
//! stays loaded (with whatever memory its threads still hold, until they end) until the process
//! exits. The cost is that a host cannot reload a new build of the plugin into the same process;
//! none of the hosts we test does, and a crash is worse.
//!
//! How: on Linux and macOS, `dladdr` finds the file of the image holding this code and
//! `dlopen(file, RTLD_NOLOAD | RTLD_NODELETE)` marks the already loaded image as never to be
//! unloaded. On Windows, `GetModuleHandleExW` with `GET_MODULE_HANDLE_EX_FLAG_PIN` does the same.
//! When this code is part of an executable (the unit tests, the CLI) there is nothing to pin.

use std::io;
use std::sync::OnceLock;
use std::thread::JoinHandle;

/// Starts a named thread running `f`, after pinning the library (see the module docs). Fails,
/// without starting anything, when the thread cannot be created or the library cannot be
/// pinned; the callers report that instead of panicking. Not realtime-safe.
pub fn spawn<F, T>(name: &str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(test)]
    if tests::FAIL_SPAWN.with(|f| f.replace(false)) {
        return Err(io::Error::other("planted spawn failure"));
    }
    pin_library()?;
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}

/// Pins the library once per process; later calls return the first outcome.
pub fn pin_library() -> io::Result<()> {
    static PINNED: OnceLock<Result<(), String>> = OnceLock::new();
    PINNED
        .get_or_init(imp::pin)
        .clone()
        .map_err(|e| io::Error::other(format!("cannot keep the MelodyGen library loaded: {e}")))
}

#[cfg(unix)]
mod imp {
    use std::ffi::{c_void, CStr};

    pub fn pin() -> Result<(), String> {
        // SAFETY: dladdr only fills `info` for an address inside a loaded image (this function);
        // the name it returns lives as long as that image, which is loaded while we run.
        let name = unsafe {
            let mut info: libc::Dl_info = std::mem::zeroed();
            if libc::dladdr(pin as *const c_void, &mut info) == 0 || info.dli_fname.is_null() {
                return Err("dladdr found no image for this code".into());
            }
            CStr::from_ptr(info.dli_fname).to_owned()
        };
        // SAFETY: RTLD_NOLOAD opens nothing new: it returns the image already loaded (running
        // no initialiser), and RTLD_NODELETE keeps it mapped after every dlclose. The handle is
        // kept (leaked) on purpose.
        let handle = unsafe {
            libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE)
        };
        if !handle.is_null() || is_main_program(&name) {
            return Ok(());
        }
        // SAFETY: dlerror returns the loader's message for the failed dlopen, or null.
        let why = unsafe {
            let e = libc::dlerror();
            if e.is_null() { "unknown error".to_string() } else { CStr::from_ptr(e).to_string_lossy().into_owned() }
        };
        Err(format!("dlopen({}) failed: {why}", name.to_string_lossy()))
    }

    /// Whether `name` is the executable itself (code linked into a program cannot be unloaded,
    /// and dlopen does not find the program by its path).
    fn is_main_program(name: &CStr) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
        match (std::env::current_exe(), path.canonicalize()) {
            (Ok(exe), Ok(path)) => exe.canonicalize().is_ok_and(|exe| exe == path),
            _ => false,
        }
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::System::LibraryLoader::{
        GetModuleHandleExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, GET_MODULE_HANDLE_EX_FLAG_PIN,
    };

    pub fn pin() -> Result<(), String> {
        let mut module = std::ptr::null_mut();
        // SAFETY: FROM_ADDRESS looks up the module holding this function; PIN keeps it loaded
        // until the process ends whatever FreeLibrary calls follow. `module` is only written.
        let ok = unsafe {
            GetModuleHandleExW(
                GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                pin as *const u16,
                &mut module,
            )
        };
        if ok == 0 {
            Err(format!("GetModuleHandleExW failed: {}", std::io::Error::last_os_error()))
        } else {
            Ok(())
        }
    }
}

#[cfg(not(any(unix, windows)))]
mod imp {
    pub fn pin() -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Makes the next [`super::spawn`] on this thread fail (the thread-spawn failure tests).
        pub static FAIL_SPAWN: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes the next spawn on the calling thread fail.
    pub fn fail_next_spawn() {
        FAIL_SPAWN.with(|f| f.set(true));
    }

    #[test]
    fn pinning_from_an_executable_succeeds_and_spawn_runs_the_thread() {
        super::pin_library().unwrap();
        assert_eq!(super::spawn("melodygen-test", || 7).unwrap().join().unwrap(), 7);
        fail_next_spawn();
        assert!(super::spawn("melodygen-test", || ()).is_err());
        assert!(super::spawn("melodygen-test", || ()).is_ok(), "one planted failure only");
    }
}
