//! Interoperability: every profile of the ladder published to two different RTMP servers,
//! nginx-rtmp and ffmpeg's own RTMP listener, and what each received read back with ffprobe and
//! decoded by ffmpeg without a single error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fieldcast_core::{LiveStats, SessionConfig, StreamProfile};
use fieldcast_tests::*;

/// How long every profile stays live after the server accepted its media.
const LIVE_SECS: f64 = 4.5;
/// The frame rate of every profile.
const FPS: f64 = 30.0;
/// How far the received duration may be from the media the session encoded, in seconds.
const DURATION_TOLERANCE_SECS: f64 = 0.5;
/// How many lines of a decoder's complaints a failure quotes.
const QUOTED_LINES: usize = 40;
/// How long ffmpeg's listener may take to finish its file once the session has ended.
const LISTENER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first server, as the output names it.
const NGINX: &str = "nginx-rtmp";
/// The second server, as the output names it.
const LISTENER: &str = "ffmpeg's RTMP listener";

#[test]
fn nginx_rtmp_receives_every_profile_cleanly() {
    let ingest = ingest();
    every_profile(NGINX, |profile| {
        let key = format!("interop-{}", profile.name());
        let stats = run_live(config(&ingest.url(&key), profile), LIVE_SECS);
        check_received(NGINX, profile, &ingest.recording(&key), &stats)
    });
}

#[test]
fn ffmpeg_rtmp_listener_receives_every_profile_cleanly() {
    every_profile(LISTENER, |profile| {
        let mut listener = FfmpegListener::start(&format!("interop-{}", profile.name()));
        let stats = run_live(config(&listener.url(), profile), LIVE_SECS);
        let mut problems = Vec::new();
        match listener.wait_exit(LISTENER_EXIT_TIMEOUT) {
            Some(status) if status.success() => {}
            Some(status) => problems.push(format!(
                "the listener failed ({status}): {}",
                listener.log().trim()
            )),
            None => {
                problems.push(format!(
                    "the listener still ran {LISTENER_EXIT_TIMEOUT:?} after the session ended: \
                     the connection was not closed"
                ));
                listener.stop();
            }
        }
        let logged = listener.problems();
        if !logged.is_empty() {
            problems.push(format!(
                "the listener complained while receiving:\n{}",
                logged.join("\n")
            ));
        }
        problems.extend(check_received(
            LISTENER,
            profile,
            &listener.output(),
            &stats,
        ));
        problems
    });
}

/// A session publishing the test source at `profile` to `url`, with the adaptive bitrate off:
/// each profile is checked at its own size and 30 fps, and on a loaded machine the adaptive
/// bitrate could take a slow loopback server for congestion and lower them (the frame-rate change
/// then shows up as timestamps an `ffmpeg -f null` decode reports as non-monotonic).
fn config(url: &str, profile: StreamProfile) -> SessionConfig {
    SessionConfig::builder(url)
        .profile(profile)
        .adaptive_bitrate(false)
        .build()
        .expect("a valid config")
}

/// Runs `publish` (which returns the problems it found) for every profile of the ladder, going
/// on after a profile failed, and fails naming every profile that did with its problems.
fn every_profile(server: &str, publish: impl Fn(StreamProfile) -> Vec<String>) {
    let mut failures = Vec::new();
    for profile in StreamProfile::LADDER {
        let problems = catch_unwind(AssertUnwindSafe(|| publish(profile)))
            .unwrap_or_else(|panic| vec![panic_message(panic.as_ref())]);
        if problems.is_empty() {
            eprintln!("{server}: {} received cleanly", profile.name());
        } else {
            failures.push(format!("{}:\n  {}", profile.name(), problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{server} did not receive {} of {} profiles cleanly:\n{}",
        failures.len(),
        StreamProfile::LADDER.len(),
        failures.join("\n")
    );
}

/// Everything wrong with the stream a server received at `profile` (empty: nothing).
fn check_received(
    server: &str,
    profile: StreamProfile,
    file: &Path,
    stats: &LiveStats,
) -> Vec<String> {
    let mut problems = Vec::new();
    if stats.dropped_frames != 0 {
        problems.push(format!(
            "{} frames dropped: {stats:?}",
            stats.dropped_frames
        ));
    }
    let r = report(file);
    match r.stream("video") {
        Some(video) => {
            if video.codec != "h264" {
                problems.push(format!("video is {}, not h264", video.codec));
            }
            if video.size != Some(profile.size()) {
                problems.push(format!(
                    "video is {:?}, not {:?}",
                    video.size,
                    profile.size()
                ));
            }
            let frames = video.frames;
            check(&mut problems, || {
                assert_frame_count(frames, r.duration_secs, FPS, 0.02)
            });
        }
        None => problems.push(format!("no video stream:\n{r}")),
    }
    match r.stream("audio") {
        Some(audio) if audio.codec != "aac" => {
            problems.push(format!("audio is {}, not aac", audio.codec))
        }
        Some(_) => {}
        None => problems.push(format!("no audio stream:\n{r}")),
    }
    let sent_secs = stats.frames_encoded as f64 / FPS;
    if (r.duration_secs - sent_secs).abs() > DURATION_TOLERANCE_SECS {
        problems.push(format!(
            "{:.2} s received, {sent_secs:.2} s sent ({} frames encoded)",
            r.duration_secs, stats.frames_encoded
        ));
    }
    eprintln!(
        "{server}, {}: {:.2} s received, {sent_secs:.2} s sent, {r}",
        profile.name(),
        r.duration_secs
    );
    if let Err(first) = first_frame_is_keyframe(file) {
        problems.push(format!("the first video frame is not a keyframe: {first}"));
    }
    if !starts_on_keyframe(file) {
        problems.push("the first video packet is not flagged as a keyframe".to_string());
    }
    if let Err(errors) = decodes_cleanly(file) {
        problems.push(format!("decoding it is not clean: {errors}"));
    }
    problems
}

/// Runs an assertion, adding its failure (if any) to `problems` instead of panicking.
fn check(problems: &mut Vec<String>, assertion: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(assertion)) {
        problems.push(panic_message(panic.as_ref()));
    }
}

/// The message a panic carried.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".to_string())
}

/// Decodes the whole file with ffmpeg; `Err` carries its exit status and its stderr (the first
/// [`QUOTED_LINES`] lines) when it printed anything.
fn decodes_cleanly(file: &Path) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.trim().lines().collect();
    if out.status.success() && lines.is_empty() {
        return Ok(());
    }
    let mut said = format!("ffmpeg {}, {} lines on stderr:", out.status, lines.len());
    for line in lines.iter().take(QUOTED_LINES) {
        said.push_str("\n    ");
        said.push_str(line);
    }
    if lines.len() > QUOTED_LINES {
        said.push_str(&format!("\n    … {} more", lines.len() - QUOTED_LINES));
    }
    Err(said)
}

/// Decodes the first video frame; `Err` carries what ffprobe said of it unless it is a keyframe
/// and an I picture.
fn first_frame_is_keyframe(file: &Path) -> Result<(), String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "frame=key_frame,pict_type"])
        .args(["-of", "default=noprint_wrappers=1"])
        .args(["-read_intervals", "%+#1"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = said.lines().map(str::trim).collect();
    if fields.contains(&"key_frame=1") && fields.contains(&"pict_type=I") {
        Ok(())
    } else {
        Err(said.trim().replace('\n', ", "))
    }
}
