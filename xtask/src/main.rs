//! `cargo xtask <command>`: the project's build and test entry points.
//!
//! - `install`: release bundles into the user's plugin folders ([`install`]).
//! - `test`: every test, real hosts included, setting up what they need ([`test`]).
//! - `hosts [PYTEST ARGS]`: build + bundle the allocation-checking plugin and run some host tests.
//! - `bench`: our engine against transformers, speed and memory ([`bench`]).
//! - anything else (`bundle`, `bundle-universal`, ...) goes to nice-plug-xtask unchanged.

mod bench;
mod bundles;
mod cmd;
mod deps;
mod install;
mod test;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    match command.as_deref() {
        Some("install") => install::run(args.collect()),
        Some("test") => test::run(args.collect()),
        Some("hosts") => test::run_hosts(args.collect()),
        Some("bench") => bench::run(args.collect()),
        _ => nice_plug_xtask::main(),
    }
}
