//! One loaded plugin instance and the host operations the tests need: parameters, processing on an
//! audio thread, state.

use crate::host::{host_info, TestHost};
use anyhow::{anyhow, bail, Context, Result};
use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent};
use clack_host::prelude::*;
use std::ffi::CString;
use std::path::Path;

/// A parameter as the plugin describes it to a CLAP host.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDesc {
    pub id: u32,
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub stepped: bool,
}

/// An event the host sends with the audio, at an absolute sample position of the rendered signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamEvent {
    /// Set parameter `id` to the CLAP value `value` (for nice-plug: the normalised value).
    Value { frame: u32, id: u32, value: f64 },
    /// A note-on on the plugin's note port (key 0..127, velocity 0..1).
    NoteOn { frame: u32, key: u16, velocity: f64 },
    /// The matching note-off.
    NoteOff { frame: u32, key: u16 },
    /// Not an event but a host call: `clap_plugin.reset()` on the audio thread, right before the
    /// block that starts at `frame` (as a host does after a transport jump). Only a block start
    /// is a place for it: `frame` must be a multiple of the block size.
    Reset { frame: u32 },
}

impl ParamEvent {
    fn frame(&self) -> u32 {
        match *self {
            ParamEvent::Value { frame, .. }
            | ParamEvent::NoteOn { frame, .. }
            | ParamEvent::NoteOff { frame, .. }
            | ParamEvent::Reset { frame } => frame,
        }
    }
}

/// Opens a `.clap` file (on Linux a plain shared library).
pub fn open_entry(bundle: &Path) -> Result<PluginEntry> {
    if !bundle.exists() {
        bail!("CLAP bundle '{}' does not exist", bundle.display());
    }
    // SAFETY: loading a plugin library runs its initialisers; that is what a host does and the
    // reason this crate exists. The path points at our own freshly built bundle.
    unsafe { PluginEntry::load(bundle) }
        .map_err(|e| anyhow!("could not load the CLAP entry of '{}': {e}", bundle.display()))
}

/// The `(id, name)` of every plugin the entry's factory offers.
pub fn list_plugins(entry: &PluginEntry) -> Result<Vec<(String, String)>> {
    let factory = entry
        .get_plugin_factory()
        .context("the CLAP entry has no plugin factory")?;
    Ok(factory
        .plugin_descriptors()
        .map(|d| {
            let text = |s: Option<&std::ffi::CStr>| {
                s.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
            };
            (text(d.id()), text(d.name()))
        })
        .collect())
}

/// A plugin instance owned by the test host (main-thread side).
pub struct LoadedPlugin {
    instance: PluginInstance<TestHost>,
    params: PluginParams,
    state: PluginState,
}

impl LoadedPlugin {
    /// Instantiates plugin `plugin_id` from `entry` and fetches the params and state extensions.
    pub fn new(entry: &PluginEntry, plugin_id: &str) -> Result<Self> {
        let id = CString::new(plugin_id)?;
        let mut instance = PluginInstance::<TestHost>::new(
            |_| Default::default(),
            |_| (),
            entry,
            &id,
            &host_info()?,
        )
        .map_err(|e| anyhow!("could not instantiate '{plugin_id}': {e}"))?;
        let handle = instance.plugin_handle();
        let params = handle
            .get_extension::<PluginParams>()
            .context("the plugin does not offer the CLAP params extension")?;
        let state = handle
            .get_extension::<PluginState>()
            .context("the plugin does not offer the CLAP state extension")?;
        Ok(Self { instance, params, state })
    }

    /// Every parameter, in the plugin's order.
    pub fn params(&mut self) -> Result<Vec<ParamDesc>> {
        let handle = self.instance.plugin_handle();
        let count = self.params.count(&handle);
        let mut buffer = ParamInfoBuffer::new();
        (0..count)
            .map(|index| {
                let info = self
                    .params
                    .get_info(&handle, index, &mut buffer)
                    .with_context(|| format!("param_info({index}) failed"))?;
                let name_end = info.name.iter().position(|&b| b == 0).unwrap_or(info.name.len());
                Ok(ParamDesc {
                    id: info.id.get(),
                    name: String::from_utf8_lossy(&info.name[..name_end]).into_owned(),
                    min: info.min_value,
                    max: info.max_value,
                    default: info.default_value,
                    stepped: info.flags.contains(ParamInfoFlags::IS_STEPPED),
                })
            })
            .collect()
    }

    /// The parameter whose display name is `name`.
    pub fn param_named(&mut self, name: &str) -> Result<ParamDesc> {
        let all = self.params()?;
        let names: Vec<_> = all.iter().map(|p| p.name.clone()).collect();
        all.into_iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no parameter named '{name}' (the plugin has {names:?})"))
    }

    /// The parameter's current CLAP value, as the plugin reports it.
    pub fn value(&mut self, id: u32) -> Result<f64> {
        let handle = self.instance.plugin_handle();
        self.params
            .get_value(&handle, ClapId::new(id))
            .with_context(|| format!("get_value({id}) failed"))
    }

    /// The plugin's own text for a CLAP value of parameter `id` (e.g. "-6.0 dB").
    pub fn value_to_text(&mut self, id: u32, value: f64) -> Result<String> {
        let handle = self.instance.plugin_handle();
        let mut buffer = [0u8; 256];
        let text = self
            .params
            .value_to_text(&handle, ClapId::new(id), value, &mut buffer)
            .map_err(|_| anyhow!("value_to_text({id}, {value}) failed"))?;
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    /// The parameter's current value as the plugin displays it.
    pub fn shown_value(&mut self, id: u32) -> Result<String> {
        let value = self.value(id)?;
        self.value_to_text(id, value)
    }

    /// The CLAP value the plugin parses from `text` (what a host does when a user types a value).
    pub fn text_to_value(&mut self, id: u32, text: &str) -> Result<f64> {
        let handle = self.instance.plugin_handle();
        let text_c = CString::new(text)?;
        self.params
            .text_to_value(&handle, ClapId::new(id), &text_c)
            .with_context(|| format!("text_to_value({id}, {text:?}) failed"))
    }

    /// Saves the plugin state (for nice-plug: an 8-byte length and the JSON state).
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let handle = self.instance.plugin_handle();
        let mut bytes = Vec::new();
        self.state.save(&handle, &mut bytes)?;
        Ok(bytes)
    }

    /// Loads a state saved by [`Self::save_state`] (possibly from another instance).
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let handle = self.instance.plugin_handle();
        self.state.load(&handle, &mut &bytes[..])?;
        self.pump_main_thread();
        Ok(())
    }

    /// Runs `on_main_thread` if the plugin asked for it, as a host's event loop would.
    pub fn pump_main_thread(&mut self) {
        if self.instance.access_shared_handler(|h| h.take_callback_request()) {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// Activates the plugin at `sample_rate` with blocks of at most `block` frames, renders the
    /// whole stereo `input` through it on a separate audio thread, and deactivates it again.
    ///
    /// `events` are placed in the block that contains their frame. All buffers the audio thread
    /// uses are allocated before processing starts, so only the plugin's own behaviour is under
    /// the allocation checker.
    pub fn render(
        &mut self,
        sample_rate: f64,
        block: usize,
        input: &[Vec<f32>; 2],
        events: &[ParamEvent],
    ) -> Result<[Vec<f32>; 2]> {
        let mut renders = render_many(std::slice::from_mut(self), sample_rate, block, input, events)?;
        Ok(renders.remove(0))
    }

    /// [`Self::render`] with host transport information: `transport(frame)` describes the
    /// transport at the start of the block beginning at `frame` of `input` (`None`: no transport).
    pub fn render_with_transport(
        &mut self,
        sample_rate: f64,
        block: usize,
        input: &[Vec<f32>; 2],
        events: &[ParamEvent],
        transport: TransportAt<'_>,
    ) -> Result<[Vec<f32>; 2]> {
        let mut renders =
            render_many_with_transport(std::slice::from_mut(self), sample_rate, block, input, events, transport)?;
        Ok(renders.remove(0))
    }
}

/// The host transport at the start of a block, given the block's first frame.
pub type TransportAt<'a> = &'a (dyn Fn(usize) -> Option<TransportEvent> + Sync);

/// Renders the same `input` through several instances concurrently, each on its own audio
/// thread, like a host with several tracks. Returns one stereo output per instance.
pub fn render_many(
    plugins: &mut [LoadedPlugin],
    sample_rate: f64,
    block: usize,
    input: &[Vec<f32>; 2],
    events: &[ParamEvent],
) -> Result<Vec<[Vec<f32>; 2]>> {
    render_many_with_transport(plugins, sample_rate, block, input, events, &|_| None)
}

/// [`render_many`] with host transport information (see [`LoadedPlugin::render_with_transport`]).
pub fn render_many_with_transport(
    plugins: &mut [LoadedPlugin],
    sample_rate: f64,
    block: usize,
    input: &[Vec<f32>; 2],
    events: &[ParamEvent],
    transport: TransportAt<'_>,
) -> Result<Vec<[Vec<f32>; 2]>> {
    if input[0].len() != input[1].len() {
        bail!("input channels differ in length");
    }
    let config = PluginAudioConfiguration {
        sample_rate,
        min_frames_count: 1,
        max_frames_count: block as u32,
    };
    let mut sorted_events = events.to_vec();
    sorted_events.sort_by_key(|e| e.frame());

    let mut processors = Vec::with_capacity(plugins.len());
    for plugin in plugins.iter_mut() {
        let processor = plugin
            .instance
            .activate(|_, _| (), config)
            .map_err(|e| anyhow!("activate({sample_rate} Hz, {block} frames) failed: {e}"))?;
        processors.push(processor);
    }

    let results: Vec<Result<(StoppedPluginAudioProcessor<TestHost>, [Vec<f32>; 2])>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = processors
                .into_iter()
                .map(|processor| {
                    let events = &sorted_events;
                    scope.spawn(move || audio_thread(processor, block, input, events, transport))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("the audio thread panicked"))))
                .collect()
        });

    let mut outputs = Vec::with_capacity(plugins.len());
    for (plugin, result) in plugins.iter_mut().zip(results) {
        let (stopped, output) = result?;
        plugin.instance.deactivate(stopped);
        plugin.pump_main_thread();
        outputs.push(output);
    }
    Ok(outputs)
}

/// The audio thread of one instance: start processing, render block by block, stop.
fn audio_thread(
    processor: StoppedPluginAudioProcessor<TestHost>,
    block: usize,
    input: &[Vec<f32>; 2],
    events: &[ParamEvent],
    transport: TransportAt<'_>,
) -> Result<(StoppedPluginAudioProcessor<TestHost>, [Vec<f32>; 2])> {
    let len = input[0].len();
    let mut output = [vec![0.0f32; len], vec![0.0f32; len]];
    let mut in_bufs = [vec![0.0f32; block], vec![0.0f32; block]];
    let mut out_bufs = [vec![0.0f32; block], vec![0.0f32; block]];
    let mut in_ports = AudioPorts::with_capacity(2, 1);
    let mut out_ports = AudioPorts::with_capacity(2, 1);
    let mut in_events = EventBuffer::with_capacity(events.len().max(16));
    // The plugin may push output events from inside its process call: the buffer must already be
    // large enough, or the push would allocate under the plugin's allocation checker.
    let mut out_events = EventBuffer::with_capacity(4096);

    let mut processor = processor
        .start_processing()
        .map_err(|e| anyhow!("start_processing failed: {e}"))?;
    let mut pos = 0usize;
    let mut next_event = 0usize;
    while pos < len {
        let n = block.min(len - pos);
        in_events.clear();
        out_events.clear();
        while next_event < events.len() && (events[next_event].frame() as usize) < pos + n {
            let time = (events[next_event].frame() as usize).saturating_sub(pos) as u32;
            match events[next_event] {
                ParamEvent::Reset { frame } => {
                    if frame as usize != pos {
                        bail!("reset at frame {frame}, which is not a block start (block {block})");
                    }
                    processor.reset();
                }
                ParamEvent::Value { id, value, .. } => in_events.push(&ParamValueEvent::new(
                    time,
                    ClapId::new(id),
                    Pckn::match_all(),
                    value,
                )),
                ParamEvent::NoteOn { key, velocity, .. } => {
                    in_events.push(&NoteOnEvent::new(time, Pckn::new(0u16, 0u16, key, 0u32), velocity))
                }
                ParamEvent::NoteOff { key, .. } => {
                    in_events.push(&NoteOffEvent::new(time, Pckn::new(0u16, 0u16, key, 0u32), 0.0))
                }
            }
            next_event += 1;
        }
        for (buf, src) in in_bufs.iter_mut().zip(input.iter()) {
            buf[..n].copy_from_slice(&src[pos..pos + n]);
        }
        let inputs = in_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                in_bufs.iter_mut().map(|b| InputChannel::variable(&mut b[..n])),
            ),
        }]);
        let mut outputs = out_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(out_bufs.iter_mut().map(|b| &mut b[..n])),
        }]);
        let block_transport = transport(pos);
        processor
            .process(
                &inputs,
                &mut outputs,
                &in_events.as_input(),
                &mut out_events.as_output(),
                Some(pos as u64),
                block_transport.as_ref(),
            )
            .map_err(|e| anyhow!("process() failed at frame {pos}: {e}"))?;
        for (dst, buf) in output.iter_mut().zip(out_bufs.iter()) {
            dst[pos..pos + n].copy_from_slice(&buf[..n]);
        }
        pos += n;
    }
    Ok((processor.stop_processing(), output))
}
