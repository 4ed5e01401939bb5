//! The engine and the CLI are headless by construction: their resolved dependency trees (every
//! target platform, normal and build dependencies) contain no plugin framework and no GUI or
//! windowing crate. Read from `cargo tree`, so a dependency that pulls one in through a
//! re-export or a transitive crate fails here, not just a direct `use`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Crates that would tie a package to a plugin host or a display.
const FORBIDDEN: &[&str] = &["nice-plug", "nice-plug-egui", "nih_plug", "egui", "baseview", "x11rb", "x11", "winit"];

/// The names of every crate in `package`'s tree, on every platform or on this one.
/// (Every platform needs the manifests of platform-only crates, which cargo fetches from the
/// registry once if they are not in its cache yet.)
fn tree(package: &str, all_targets: bool) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["tree", "--locked", "-p", package, "-e", "normal,build"])
        .args(if all_targets { &["--target", "all"][..] } else { &[] })
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn framework_crates(package: &str, all_targets: bool) -> Vec<String> {
    tree(package, all_targets).into_iter().filter(|name| FORBIDDEN.contains(&name.as_str()) || name.starts_with("nice-plug")).collect()
}

#[test]
fn the_engine_and_the_cli_link_no_plugin_framework_or_gui() {
    for package in ["melodygen-engine", "melodygen-cli"] {
        let found = framework_crates(package, true);
        assert!(found.is_empty(), "{package} depends on {found:?}");
    }
}

/// The check sees what it looks for: the plugin's own tree has the framework and the GUI (on
/// this platform, X11 included).
#[test]
fn the_check_finds_the_framework_in_the_plugin() {
    let found = framework_crates("melodygen", false);
    for name in ["nice-plug", "egui", "baseview", "x11rb"] {
        assert!(found.iter().any(|f| f == name), "{name} not found in the plugin's tree: {found:?}");
    }
}
