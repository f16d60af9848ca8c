//! The encoder table against the installed elements: for every family whose element is on this
//! machine, the properties the table names exist with the types and ranges FieldCast sets; and
//! openh264 following the adaptive bitrate while live, through a capped uplink.
//!
//! Families whose element is absent are listed on stderr (`cargo test -p fieldcast-tests --test
//! encoders -- --nocapture`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use fieldcast_core::media::elements;
use fieldcast_core::media::encoders::{
    BitrateControl, EncoderFamily, FAMILIES, LiveChange, VideoEncoderKind, bitrate_control,
    find_h264_encoders, make_recording_encoder, make_video_encoder, set_video_bitrate,
};
use fieldcast_core::uplink::abr::AbrDecision;
use fieldcast_core::*;
use fieldcast_tests::relay::Relay;
use fieldcast_tests::*;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

/// Bitrates the adaptive bitrate may ask for, kbit/s.
const KBPS: [u32; 8] = [100, 200, 350, 600, 900, 1200, 1800, 5000];

/// The families with an installed element, each with one of its factories; the absent ones by
/// name.
fn installed() -> (
    Vec<(&'static EncoderFamily, VideoEncoderKind)>,
    Vec<&'static str>,
) {
    elements::init().unwrap();
    let found = find_h264_encoders();
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for family in &FAMILIES {
        match found
            .iter()
            .find(|factory| (family.matches)(factory.as_str()))
        {
            Some(factory) => {
                present.push((family, VideoEncoderKind::for_factory(factory).unwrap()))
            }
            None => absent.push(family.name),
        }
    }
    (present, absent)
}

/// The (min, max) of an integer property, as i128.
fn integer_range(pspec: &glib::ParamSpec) -> Option<(i128, i128)> {
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        Some((p.minimum().into(), p.maximum().into()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        Some((p.minimum().into(), p.maximum().into()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        Some((p.minimum().into(), p.maximum().into()))
    } else {
        pspec
            .downcast_ref::<glib::ParamSpecInt64>()
            .map(|p| (p.minimum().into(), p.maximum().into()))
    }
}

/// An integer property's value, as i128.
fn integer(element: &gst::Element, name: &str) -> i128 {
    let value = element.property_value(name);
    value
        .get::<u32>()
        .map(i128::from)
        .or_else(|_| value.get::<i32>().map(i128::from))
        .or_else(|_| value.get::<u64>().map(i128::from))
        .or_else(|_| value.get::<i64>().map(i128::from))
        .unwrap_or_else(|_| panic!("{name} is not an integer: {value:?}"))
}

#[test]
fn the_table_matches_the_installed_elements() {
    let (present, absent) = installed();
    eprintln!(
        "encoder families checked: {}",
        present
            .iter()
            .map(|(f, k)| format!("{} ({})", f.name, k.factory()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let elements = |family: &str| match family {
        "amc" => "amcvidenc-*",
        "vtenc-hw" => "vtenc_h264_hw",
        "vtenc" => "vtenc_h264",
        "va" => "vah264enc",
        "v4l2" => "v4l2h264enc",
        "nvenc" => "nvh264enc",
        "qsv" => "qsvh264enc",
        "openh264" => "openh264enc",
        "x264" => "x264enc",
        _ => "?",
    };
    eprintln!(
        "encoder families absent on this machine: {}",
        absent
            .iter()
            .map(|f| format!("{f} ({})", elements(f)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        !present.is_empty(),
        "no H.264 encoder of the table is installed"
    );
    for &(family, kind) in &present {
        let name = family.name;
        let element = gst::ElementFactory::make(kind.factory()).build().unwrap();
        // Each setting the element has takes the table's value.
        for &(property, value) in family
            .rate_control
            .iter()
            .chain(family.low_latency)
            .chain(family.realtime)
            .chain(family.no_reordering)
            .chain(family.recording)
        {
            match element.find_property(property) {
                Some(pspec) => {
                    let parsed = glib::Value::deserialize_with_pspec(value, &pspec)
                        .unwrap_or_else(|e| panic!("{name}: {property}={value}: {e}"));
                    if let Some((min, max)) = integer_range(&pspec) {
                        let v = parsed
                            .get::<u32>()
                            .map(i128::from)
                            .or_else(|_| parsed.get::<i32>().map(i128::from))
                            .unwrap();
                        assert!((min..=max).contains(&v), "{name}: {property}={value}");
                    }
                }
                // Installed here, the software encoders have every property the table names;
                // hardware elements differ between GStreamer versions and drivers.
                None if !family.hardware => panic!("{name}: no property {property}"),
                None => eprintln!("{name}: {property} absent here (skipped when set)"),
            }
        }
        // The bitrate: an integer property whose range holds every bitrate asked for.
        match family.bitrate {
            Some(bitrate) => match element.find_property(bitrate.name) {
                Some(pspec) => {
                    let (min, max) = integer_range(&pspec)
                        .unwrap_or_else(|| panic!("{name}: {} is not an integer", bitrate.name));
                    for kbps in KBPS {
                        let v = i128::from(bitrate.unit.from_kbps(kbps));
                        assert!(
                            (min..=max).contains(&v),
                            "{name}: {kbps} kbit/s is {v}, outside {min}..={max}"
                        );
                    }
                    let flagged = pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING);
                    let control = bitrate_control(kind, &element);
                    assert_eq!(
                        control == BitrateControl::Live,
                        bitrate.live.applies_while_playing(flagged),
                        "{name}"
                    );
                    if bitrate.live == LiveChange::WhenFlagged && !family.hardware {
                        assert!(
                            flagged,
                            "{name}: its bitrate is not flagged changeable live"
                        );
                        assert_eq!(control, BitrateControl::Live, "{name}");
                    }
                }
                None if name == "v4l2" => {
                    // GStreamer up to 1.26: no bitrate property; the rung follows instead.
                    assert_eq!(
                        bitrate_control(kind, &element),
                        BitrateControl::Fixed(FixedBitrate::NoProperty)
                    );
                }
                None => panic!("{name}: no bitrate property {}", bitrate.name),
            },
            None => assert_eq!(
                bitrate_control(kind, &element),
                BitrateControl::Fixed(FixedBitrate::NoProperty)
            ),
        }
        // The keyframe interval: an integer property holding every interval a configuration
        // allows (1..=10 s at 1..=60 fps).
        if let Some(keyframes) = family.keyframe_interval {
            match element.find_property(keyframes.name) {
                Some(pspec) => {
                    let (min, max) = integer_range(&pspec)
                        .unwrap_or_else(|| panic!("{name}: {} is not an integer", keyframes.name));
                    for secs in [1, 2, 10] {
                        for fps in [1, 15, 30, 60] {
                            let v = i128::from(keyframes.unit.interval(secs, fps));
                            assert!((min..=max).contains(&v), "{name}: interval {v}");
                        }
                    }
                }
                None if name == "v4l2" => {}
                None => panic!("{name}: no keyframe property {}", keyframes.name),
            }
        }
    }
}

#[test]
fn a_configured_encoder_reads_back_the_tables_values() {
    let (present, _) = installed();
    let config = SessionConfig::builder("rtmp://127.0.0.1/live/k")
        .profile(StreamProfile::P360)
        .fps(25)
        .x264_preset(X264Preset::Ultrafast)
        .build()
        .unwrap();
    for &(family, kind) in present.iter().filter(|(f, _)| !f.hardware) {
        let name = family.name;
        let element = make_video_encoder(kind, &config, "enc").unwrap();
        let bitrate = family.bitrate.unwrap();
        assert_eq!(
            integer(&element, bitrate.name),
            i128::from(bitrate.unit.from_kbps(600)),
            "{name}"
        );
        let keyframes = family.keyframe_interval.unwrap();
        assert_eq!(
            integer(&element, keyframes.name),
            i128::from(keyframes.unit.interval(2, 25)),
            "{name}"
        );
        assert!(set_video_bitrate(kind, &element, 350));
        assert_eq!(
            integer(&element, bitrate.name),
            i128::from(bitrate.unit.from_kbps(350)),
            "{name}"
        );
        if name == "x264" {
            let preset = element.property_value("speed-preset");
            let preset = glib::EnumValue::from_value(&preset).unwrap().1.nick();
            assert_eq!(preset, "ultrafast");
            assert_eq!(element.property::<u32>("bframes"), 0);
        }
        if name == "openh264" {
            let rc = element.property_value("rate-control");
            assert_eq!(
                glib::EnumValue::from_value(&rc).unwrap().1.nick(),
                "bitrate"
            );
        }
    }
}

/// The recording's own encoder takes its family's cheaper settings only where they were
/// measured (x264: ultrafast for a live preset of veryfast or faster); the live encoder never.
#[test]
fn the_recordings_own_encoder_is_cheaper_only_where_measured() {
    elements::init().unwrap();
    let kind = VideoEncoderKind::for_factory("x264enc")
        .expect("x264enc is installed here (Debian gstreamer1.0-plugins-ugly)");
    let preset_of = |element: &gst::Element| {
        let value = element.property_value("speed-preset");
        glib::EnumValue::from_value(&value)
            .unwrap()
            .1
            .nick()
            .to_string()
    };
    let config = |preset| {
        SessionConfig::builder("rtmp://127.0.0.1/live/preset")
            .x264_preset(preset)
            .build()
            .unwrap()
    };
    let veryfast = config(X264Preset::Veryfast);
    assert_eq!(
        preset_of(&make_video_encoder(kind, &veryfast, "live").unwrap()),
        "veryfast"
    );
    assert_eq!(
        preset_of(&make_recording_encoder(kind, &veryfast, "own").unwrap()),
        "ultrafast"
    );
    let medium = config(X264Preset::Medium);
    assert_eq!(
        preset_of(&make_recording_encoder(kind, &medium, "own").unwrap()),
        "medium",
        "not measured against medium: the live preset"
    );
}

/// openh264 forced, live with the adaptive bitrate through a 300 kbit/s uplink: the controller
/// cuts the bitrate, the session hands the cut to openh264 through the table (bit/s, live), and
/// openh264's output follows. At 15 fps openh264 keeps to its bitrate on the test pattern
/// (asked for 900 kbit/s at 270p it puts out about 900), so an output far below that at the
/// lowest rung shows the new bitrate reached it, not only the smaller picture.
#[test]
fn openh264_follows_the_adaptive_bitrate_live() {
    let ingest = ingest();
    let relay = Relay::start(SocketAddr::from((Ipv4Addr::LOCALHOST, ingest.port())));
    relay.limit_upstream(Some(300));
    let config = SessionConfig::builder(format!("rtmp://127.0.0.1:{}/live/openh264", relay.port()))
        .profile(StreamProfile::P480)
        .fps(15)
        .encoder(EncoderPreference::OpenH264)
        .adaptive_bitrate(true)
        .build()
        .unwrap();
    let started = Instant::now();
    let (session, mut events) = start_live(config);
    assert_eq!(session.encoder().factory(), "openh264enc");

    let mut fixed = false;
    let cut = wait_event(&mut events, Duration::from_secs(10), |e| {
        fixed |= matches!(e, SessionEvent::EncoderBitrateFixed { .. });
        matches!(e, SessionEvent::Adapted(AbrDecision::SetBitrate { kbps, .. }) if *kbps < 900)
    });
    let Some(SessionEvent::Adapted(AbrDecision::SetBitrate { kbps: asked, .. })) = cut else {
        panic!("no bitrate cut within 10 s of going live through a 300 kbit/s uplink");
    };
    // Two seconds in a row in which the session's target is a bitrate the controller asked for
    // (a fixed-bitrate encoder would show its rung's bitrate instead) and openh264 put out less
    // than two thirds of the 900 kbit/s it started at.
    let mut low_seconds = 0;
    let mut seen = Vec::new();
    let follows = wait_event(&mut events, Duration::from_secs(8), |e| {
        fixed |= matches!(e, SessionEvent::EncoderBitrateFixed { .. });
        let SessionEvent::Stats(s) = e else {
            return false;
        };
        seen.push((s.target_video_kbps, s.width, s.video_kbps.round()));
        let low = s.target_video_kbps < 600 && s.video_kbps > 0.0 && s.video_kbps < 600.0;
        low_seconds = if low { low_seconds + 1 } else { 0 };
        low_seconds >= 2
    });
    eprintln!("openh264 cut to {asked} kbit/s; then (target, width, output): {seen:?}");
    assert!(
        follows.is_some(),
        "openh264 did not follow the cut: (target kbit/s, width, output kbit/s) {seen:?}"
    );
    assert!(!fixed, "openh264 changes its bitrate live");

    relay.limit_upstream(None);
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    let r = report(&ingest.recording("openh264"));
    let video = r.stream("video").expect("video reached the ingest");
    assert_eq!(video.codec, "h264");
    assert!(r.duration_secs > 2.0, "{r}");
    eprintln!("live for {:.1} s in all", started.elapsed().as_secs_f64());
}
