//! The soak's samples: every 10 s, the app's memory, threads, descriptors and outbox, and the
//! latency of the frames the viewer got in those 10 s; written as CSV as they are taken.

use fieldcast_core::LatencyReport;
use fieldcast_core::receiver::FrameArrival;

/// Time between samples, seconds.
pub const SAMPLE_EVERY_S: u64 = 10;

/// The columns of `samples.csv`, in order.
pub const CSV_HEADER: &str = "t_s,wall_ms,state,rss_mb,threads,fds,outbox_pending,outbox_in_flight,\
frames,latency_p50_ms,latency_p95_ms";

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the lab started (the profile's time).
    pub t_s: f64,
    /// Wall clock, ms since the Unix epoch.
    pub wall_ms: u64,
    /// The live session's state as the app last reported it.
    pub state: String,
    /// The app's resident memory, MB.
    pub rss_mb: f64,
    /// The app's threads.
    pub threads: u64,
    /// The app's open file descriptors.
    pub fds: u64,
    /// The outbox at its fullest in the 10 s up to this sample, as the app reported it every
    /// second: (pending, in flight).
    pub outbox: Option<(u64, u64)>,
    /// Frames the viewer decoded in the 10 s up to this sample.
    pub frames: usize,
    /// Their latency (stamped frames only), when there were any: (p50, p95) ms.
    pub latency_ms: Option<(u64, u64)>,
}

impl Sample {
    /// The outbox depth: records pending or in flight.
    pub fn outbox_depth(&self) -> Option<u64> {
        self.outbox.map(|(pending, in_flight)| pending + in_flight)
    }

    /// The sample as a row of `samples.csv` (empty cells where there is no value).
    pub fn csv_row(&self) -> String {
        let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        format!(
            "{:.1},{},{},{:.2},{},{},{},{},{},{},{}",
            self.t_s,
            self.wall_ms,
            self.state,
            self.rss_mb,
            self.threads,
            self.fds,
            opt(self.outbox.map(|o| o.0)),
            opt(self.outbox.map(|o| o.1)),
            self.frames,
            opt(self.latency_ms.map(|l| l.0)),
            opt(self.latency_ms.map(|l| l.1)),
        )
    }
}

/// The frames decoded within `from_ms..to_ms` and their latency percentiles.
pub fn window(frames: &[FrameArrival], from_ms: u64, to_ms: u64) -> (usize, LatencyReport) {
    let inside: Vec<&FrameArrival> = frames
        .iter()
        .filter(|f| (from_ms..to_ms).contains(&f.wall_ms))
        .collect();
    let stamped: Vec<u64> = inside.iter().filter_map(|f| f.latency_ms).collect();
    let unreadable = inside.len() - stamped.len();
    (
        inside.len(),
        LatencyReport::from_samples(stamped, unreadable),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(wall_ms: u64, latency_ms: Option<u64>) -> FrameArrival {
        FrameArrival::new(wall_ms, latency_ms.map(|l| wall_ms - l), None, (854, 480))
    }

    #[test]
    fn a_window_takes_the_frames_of_its_time_only() {
        let frames: Vec<FrameArrival> = (0..20)
            .map(|n| frame(1_000 + n * 100, (n != 5).then_some(200 + n * 10)))
            .collect();
        let (count, latency) = window(&frames, 1_000, 2_000);
        assert_eq!(count, 10);
        assert_eq!((latency.samples, latency.unreadable), (9, 1));
        assert_eq!(latency.p50_ms, 240);
        let (count, latency) = window(&frames, 5_000, 6_000);
        assert_eq!((count, latency.samples), (0, 0));
    }

    #[test]
    fn a_row_has_a_cell_per_column_with_gaps_left_empty() {
        let sample = Sample {
            t_s: 310.0,
            wall_ms: 1,
            state: "live".into(),
            rss_mb: 85.256,
            threads: 30,
            fds: 41,
            outbox: Some((3, 1)),
            frames: 0,
            latency_ms: None,
        };
        let row = sample.csv_row();
        assert_eq!(row, "310.0,1,live,85.26,30,41,3,1,0,,");
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count());
        assert_eq!(sample.outbox_depth(), Some(4));
    }
}
