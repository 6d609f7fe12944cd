//! Exponential backoff between connection attempts.

use embassy_time::Duration;

/// How long the [`Runner`](super::Runner) waits before each reconnect: `min`
/// first, multiplied by `factor` after each failed attempt up to `max`,
/// less a random share of at most `jitter_percent` (so that many devices
/// restarted together do not reconnect in step). A connection that stayed
/// up for `stable_after` starts the schedule again at `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    /// The delay before the first reconnect.
    pub min: Duration,
    /// The largest delay; also the delay after a CONNACK refusing the
    /// credentials (return code 4 or 5).
    pub max: Duration,
    /// Each failed attempt multiplies the delay by this (1: a constant
    /// delay).
    pub factor: u32,
    /// Up to this share of each delay, in percent (at most 100), is taken
    /// off at random.
    pub jitter_percent: u8,
    /// A connection up this long resets the delay to `min`.
    pub stable_after: Duration,
}

impl Default for Backoff {
    /// 1 s doubling to 60 s, 25 % jitter, reset after 60 s connected.
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2,
            jitter_percent: 25,
            stable_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (0: the first), without
    /// jitter: `min × factor^attempt`, at most `max`.
    pub fn base(&self, attempt: u32) -> Duration {
        let max = self.max.as_ticks();
        let mut ticks = self.min.as_ticks().min(max);
        if self.factor > 1 {
            for _ in 0..attempt.min(64) {
                ticks = ticks.saturating_mul(u64::from(self.factor));
                if ticks >= max {
                    return self.max;
                }
            }
        }
        Duration::from_ticks(ticks)
    }

    /// The delay before attempt `attempt`: [`base`](Self::base) less
    /// `jitter_percent` of it times `random / 2³²`, so within
    /// `[base × (1 − jitter), base]`.
    pub fn delay(&self, attempt: u32, random: u32) -> Duration {
        let base = self.base(attempt).as_ticks();
        let span = base.saturating_mul(u64::from(self.jitter_percent.min(100))) / 100;
        let off = (u128::from(span) * u128::from(random)) >> 32;
        Duration::from_ticks(base.saturating_sub(u64::try_from(off).unwrap_or(span)))
    }
}
