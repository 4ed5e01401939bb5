//! Tests of the clip player ([`super`]).

use super::*;

fn clip(rate: u32, frames: usize, anchor: Option<i64>) -> Box<PlayableClip> {
    let left: Vec<f32> = (0..frames).map(|i| i as f32).collect();
    let right = left.iter().map(|v| -v).collect();
    Box::new(PlayableClip {
        left,
        right,
        sample_rate: rate,
        anchor_samples: anchor,
        id: frames as u64,
        audition: false,
        continues: false,
        growing: false,
    })
}

fn transport(playing: bool, pos: i64) -> TransportView {
    TransportView {
        playing,
        pos_samples: Some(pos),
        reported: true,
    }
}

#[test]
fn follow_mode_aligns_the_clip_to_the_capture_start() {
    let (mut p, mut remote) = player();
    remote
        .to_audio
        .push(clip(48_000, 100, Some(1_000)))
        .ok()
        .unwrap();
    p.poll();
    // Host at 1010: clip frame 10 plays now.
    let start = p
        .block_start(
            16,
            PreviewMode::FollowTransport,
            transport(true, 1_010),
            48_000,
            false,
        )
        .unwrap();
    assert_eq!(start, 10);
    assert_eq!(p.frame(start, false), (10.0, -10.0));
    // Before the anchor and after the end: silence; looping wraps.
    assert_eq!(p.frame(-5, false), (0.0, 0.0));
    assert_eq!(p.frame(105, false), (0.0, 0.0));
    assert_eq!(p.frame(105, true), (5.0, -5.0));
    assert_eq!(p.frame(-5, true), (95.0, -95.0));
    // Stopped transport: silence.
    assert_eq!(
        p.block_start(
            16,
            PreviewMode::FollowTransport,
            transport(false, 1_010),
            48_000,
            false
        ),
        None
    );
    // Wrong rate (being converted): silence.
    assert_eq!(
        p.block_start(
            16,
            PreviewMode::FollowTransport,
            transport(true, 1_010),
            44_100,
            false
        ),
        None
    );
}

#[test]
fn play_now_runs_from_the_start_and_hosts_without_transport_get_it_too() {
    let (mut p, mut remote) = player();
    remote.to_audio.push(clip(44_100, 100, None)).ok().unwrap();
    p.poll();
    let none = TransportView::default();
    assert_eq!(
        p.block_start(32, PreviewMode::FollowTransport, none, 44_100, false),
        Some(0)
    );
    assert_eq!(
        p.block_start(32, PreviewMode::PlayNow, none, 44_100, false),
        Some(32)
    );
    assert_eq!(p.block_start(32, PreviewMode::Off, none, 44_100, false), None);
}

#[test]
fn replaced_clips_go_back_and_are_never_dropped_on_the_audio_side() {
    let (mut p, mut remote) = player();
    // More replacements than the return ring holds, without the dispatcher draining it.
    let (mut sent, mut last) = (0, 0);
    for round in 0..CLIPS_FROM_AUDIO_CAPACITY + 3 {
        if remote.to_audio.push(clip(48_000, round + 1, None)).is_ok() {
            sent += 1;
            last = round + 1;
        }
        p.poll();
    }
    assert_eq!(remote.from_audio.slots(), CLIPS_FROM_AUDIO_CAPACITY);
    assert!(p.parked.is_some(), "the overflow is parked, not freed");
    // Once drained, the parked clip goes back and newer ones are taken.
    let mut returned = 0;
    while remote.from_audio.pop().is_ok() {
        returned += 1;
    }
    p.poll();
    while remote.from_audio.pop().is_ok() {
        returned += 1;
    }
    p.poll();
    while remote.from_audio.pop().is_ok() {
        returned += 1;
    }
    assert_eq!(
        returned + 1,
        sent,
        "every clip but the current one came back"
    );
    assert_eq!(
        p.current.as_ref().unwrap().frames(),
        last,
        "the newest clip plays"
    );
}

fn play_now(p: &mut Player, len: usize, looping: bool) -> Option<i64> {
    p.block_start(len, PreviewMode::PlayNow, TransportView::default(), 48_000, looping)
}

#[test]
fn the_playhead_follows_play_now_and_stops_at_the_end_unless_looping() {
    let (mut p, mut remote) = player();
    let state = remote.state.clone();
    assert_eq!((state.clip_id(), state.playhead()), (0, None), "nothing before a clip");
    remote.to_audio.push(clip(48_000, 100, None)).ok().unwrap();
    p.poll();
    assert_eq!((state.clip_id(), state.clip_frames()), (100, 100));
    assert_eq!(play_now(&mut p, 40, false), Some(0));
    assert_eq!(state.playhead(), Some(0));
    assert_eq!(play_now(&mut p, 40, false), Some(40));
    assert_eq!(state.playhead(), Some(40));
    assert_eq!(play_now(&mut p, 40, false), Some(80));
    // Past the end: the block is silent (frame() gives zeros) and no playhead is shown.
    assert_eq!(play_now(&mut p, 40, false), Some(120));
    assert_eq!(state.playhead(), None);
    assert_eq!(p.frame(120, false), (0.0, 0.0));
    // Looping: the same position wraps, and so does the playhead.
    assert_eq!(play_now(&mut p, 40, true), Some(160));
    assert_eq!(state.playhead(), Some(60));
    assert_eq!(p.frame(160, true), (60.0, -60.0));
}

#[test]
fn stop_silences_until_play_which_restarts_from_the_beginning() {
    let (mut p, mut remote) = player();
    let state = remote.state.clone();
    remote.to_audio.push(clip(48_000, 100, None)).ok().unwrap();
    p.poll();
    play_now(&mut p, 30, false);
    state.stop();
    p.poll();
    assert!(state.is_stopped());
    for _ in 0..3 {
        assert_eq!(play_now(&mut p, 30, true), None, "stopped means silent, looping or not");
        assert_eq!(state.playhead(), None);
    }
    // Follow-transport with the host playing is silent too.
    let follow = p.block_start(30, PreviewMode::FollowTransport, transport(true, 10), 48_000, false);
    assert_eq!(follow, None);
    state.play();
    p.poll();
    assert!(!state.is_stopped());
    assert_eq!(play_now(&mut p, 30, false), Some(0), "Play starts over");
    // A new (generated) clip does not un-stop: only Play or an audition does.
    state.stop();
    remote.to_audio.push(clip(48_000, 50, None)).ok().unwrap();
    p.poll();
    assert_eq!(play_now(&mut p, 30, false), None);
}

#[test]
fn seek_moves_the_play_now_position_once() {
    let (mut p, mut remote) = player();
    let state = remote.state.clone();
    remote.to_audio.push(clip(48_000, 100, None)).ok().unwrap();
    p.poll();
    state.seek(70);
    p.poll();
    assert_eq!(play_now(&mut p, 10, false), Some(70));
    assert_eq!(state.playhead(), Some(70));
    p.poll(); // the same request is not applied twice
    assert_eq!(play_now(&mut p, 10, false), Some(80));
}

#[test]
fn an_audition_plays_now_whatever_the_mode_and_un_stops() {
    let (mut p, mut remote) = player();
    let state = remote.state.clone();
    state.stop();
    let mut audition = clip(48_000, 100, Some(5_000));
    audition.audition = true;
    audition.id = 77;
    remote.to_audio.push(audition).ok().unwrap();
    p.poll();
    assert!(!state.is_stopped());
    assert_eq!(state.clip_id(), 77);
    // Host stopped, follow-transport and even "Off": the audition plays from its start.
    for (i, mode) in [PreviewMode::FollowTransport, PreviewMode::Off].into_iter().enumerate() {
        let start = p.block_start(25, mode, transport(false, 0), 48_000, false);
        assert_eq!(start, Some(25 * i as i64));
    }
    assert_eq!(state.playhead(), Some(25));
}

#[test]
fn a_clip_with_channels_of_unequal_length_plays_the_frames_both_have() {
    for (left, right) in [(100, 60), (60, 100), (0, 10), (10, 0)] {
        let (mut p, mut remote) = player();
        let mut c = clip(48_000, left, None);
        c.right = (0..right).map(|i| -(i as f32)).collect();
        remote.to_audio.push(c).ok().unwrap();
        p.poll();
        let n = left.min(right);
        assert_eq!(remote.state.clip_frames(), n as u64);
        // Played across its end, looping and not, and far past it: never out of bounds.
        for looping in [false, true] {
            for i in -5..(left.max(right) as i64 + 5) {
                let (l, r) = p.frame(i, looping);
                let at = if looping && n > 0 { i.rem_euclid(n as i64) } else { i };
                if (0..n as i64).contains(&at) {
                    assert_eq!((l, r), (at as f32, -(at as f32)), "{left}/{right} at {i}");
                } else {
                    assert_eq!((l, r), (0.0, 0.0), "{left}/{right} at {i}");
                }
            }
            let start = play_now(&mut p, 64, looping);
            assert!(start.is_some());
        }
    }
}
