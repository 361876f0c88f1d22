//! What the workers do not own and the management thread reads while the
//! engine runs: the started ports, each worker's shared counters, the
//! mbuf pool, and the report of every counter built from them.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Role;
use crate::runtime::dpdk::{self, LcoreId, Mempool, PortId};
use crate::runtime::netlink;
use crate::runtime::stats::{mac_string, PortReport, Report, WorkerShared};

/// A started port.
pub struct PortRt {
    pub name: String,
    pub device: String,
    pub id: PortId,
    pub driver: String,
    pub mac: [u8; 6],
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rss: bool,
    /// The kernel interface behind the device (af_xdp, af_packet, tap),
    /// and its index when the port started (to tell it from another of
    /// the same name once moved to another namespace).
    pub iface: Option<String>,
    pub iface_index: Option<u32>,
}

/// The engine's one clock base: every worker's `now_ms` and the management
/// thread's are milliseconds of the TSC since the same start, so times of
/// flows (worker) and of sessions (management) share one scale.
/// [`Timebase::wall`] maps that scale to the wall clock.
///
/// DPDK's TSC rate is an estimate (rounded to 10 MHz where the CPU does
/// not report it: up to 0.5 % off, milliseconds per second); timers do
/// not mind, record times do. So the mapping measures the rate against
/// the monotonic clock since the start, at each conversion.
#[derive(Clone, Copy, Debug)]
pub struct Timebase {
    pub tsc_start: u64,
    /// DPDK's nominal TSC cycles per millisecond (what workers divide by).
    pub tsc_per_ms: u64,
    mono_start: Instant,
}

impl Timebase {
    /// The start: the TSC and the monotonic clock read as one instant
    /// (see [`bracketed`]). Read one after the other, a thread preempted
    /// between them (milliseconds on a loaded machine) shifted every wall
    /// time by that much and skewed the rate [`Timebase::wall`] measures
    /// since: a 3-s session timer was shown as 2 996 ms.
    pub fn start() -> Timebase {
        let tsc_per_ms = (dpdk::tsc_hz() / 1000).max(1);
        let (tsc_start, mono_start) = bracketed(dpdk::tsc, tsc_per_ms / 50, Instant::now);
        Timebase {
            tsc_start,
            tsc_per_ms,
            mono_start,
        }
    }

    /// Milliseconds since the start (what workers pass their pipelines).
    pub fn now_ms(&self) -> u64 {
        dpdk::tsc().saturating_sub(self.tsc_start) / self.tsc_per_ms
    }

    /// The wall clock against this one, measured now: (real microseconds
    /// per engine millisecond, Unix microseconds at engine time 0). An
    /// engine time `ms` was Unix µs `at_zero + ms * us_per_ms`.
    ///
    /// The monotonic and the wall clock are read as one instant with the
    /// TSC ([`bracketed`]; one pair of reads 2 ms apart on a loaded
    /// machine put every record 2 ms late).
    pub fn wall(&self) -> (f64, f64) {
        let (at, (mono_us, unix_us)) = bracketed(dpdk::tsc, self.tsc_per_ms / 50, || {
            let mono_us = self.mono_start.elapsed().as_secs_f64() * 1e6;
            let unix_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1e6)
                .unwrap_or(0.0);
            (mono_us, unix_us)
        });
        let tsc = at.saturating_sub(self.tsc_start);
        // Too short a baseline to measure the rate: take DPDK's.
        let us_per_ms = if mono_us >= 100_000.0 && tsc > 0 {
            self.tsc_per_ms as f64 * mono_us / tsc as f64
        } else {
            1000.0
        };
        (us_per_ms, unix_us - mono_us)
    }
}

/// `read()` (other clocks) as one instant of the TSC: between two TSC
/// reads, again (up to 16 times) while the span exceeds `narrow` cycles
/// (the thread was preempted among them), keeping the narrowest reading.
/// `(the TSC at the middle of its span, what read returned)`.
fn bracketed<T>(
    mut tsc: impl FnMut() -> u64,
    narrow: u64,
    mut read: impl FnMut() -> T,
) -> (u64, T) {
    let t0 = tsc();
    let mut best_v = read();
    let t1 = tsc();
    let mut best = (t1.saturating_sub(t0), t0);
    for _ in 1..16 {
        if best.0 <= narrow {
            break;
        }
        let t0 = tsc();
        let v = read();
        let span = tsc().saturating_sub(t0);
        if span < best.0 {
            best = (span, t0);
            best_v = v;
        }
    }
    (best.1 + best.0 / 2, best_v)
}

/// What the workers do not own and the management thread reads: ports,
/// counters, the pool. Shared read-only after start.
pub struct Info {
    pub instance: String,
    pub role: Role,
    pub hugepages: bool,
    pub started: Instant,
    pub timebase: Timebase,
    pub lcores: Vec<LcoreId>,
    pub ports: Vec<PortRt>,
    pub shared: Vec<Arc<WorkerShared>>,
    /// Never freed (see [`Mempool`]); lent out only for as long as the
    /// `Info` lives, which the engine outlives.
    pub(super) pool: &'static Mempool,
    /// Frames the management thread took off the control ring.
    pub control_rx: std::sync::atomic::AtomicU64,
}

impl Info {
    /// The mbuf pool.
    pub fn pool(&self) -> &Mempool {
        self.pool
    }

    /// Every counter now.
    pub fn report(&self) -> Report {
        let e = self;
        let nports = e.ports.len();
        Report {
            instance: e.instance.clone(),
            role: format!("{:?}", e.role).to_lowercase(),
            dpdk: dpdk::version(),
            hugepages: e.hugepages,
            uptime_ms: e.started.elapsed().as_millis() as u64,
            mbufs_in_use: e.pool.in_use(),
            mbufs_available: e.pool.available(),
            control_rx: e.control_rx.load(Relaxed),
            ports: e
                .ports
                .iter()
                .map(|p| {
                    let s = p.id.stats();
                    // The kernel's word on ports over a kernel interface
                    // (DPDK's tap PMD says down once the tap has moved to
                    // another namespace); DPDK's on the others.
                    let k = p
                        .iface
                        .as_deref()
                        .and_then(|i| netlink::kernel_link(i, p.iface_index));
                    PortReport {
                        name: p.name.clone(),
                        device: p.device.clone(),
                        driver: p.driver.clone(),
                        dpdk_port: p.id.raw(),
                        mac: mac_string(p.mac),
                        link_up: k.map_or_else(|| p.id.link().up, |k| k.up),
                        rx_queues: p.rx_queues,
                        tx_queues: p.tx_queues,
                        rss: p.rss,
                        pmd: s,
                        kernel_iface: p.iface.clone(),
                        kernel_rx_dropped: k.map(|k| k.rx_dropped),
                        kernel_tx_dropped: k.map(|k| k.tx_dropped),
                        kernel_rx_missed: k.map(|k| k.rx_missed),
                    }
                })
                .collect(),
            workers: e
                .shared
                .iter()
                .enumerate()
                .map(|(w, s)| s.report(w, e.lcores[w].id(), nports))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bracketed;

    /// A fake TSC read at the given values, in turn.
    fn tsc_of(reads: &[u64]) -> impl FnMut() -> u64 + '_ {
        let mut i = 0;
        move || {
            i += 1;
            reads[i - 1]
        }
    }

    #[test]
    fn a_reading_is_kept_at_the_middle_of_its_span() {
        let mut n = 0;
        let (at, v) = bracketed(tsc_of(&[1000, 1010]), 20, || {
            n += 1;
            n
        });
        assert_eq!((at, v, n), (1005, 1, 1));
    }

    #[test]
    fn a_preempted_reading_is_retried_until_one_is_narrow() {
        // Spans of 5 000 cycles (preempted), 900, then 10: the third kept.
        let reads = [0, 5000, 6000, 6900, 7000, 7010];
        let mut n = 0;
        let (at, v) = bracketed(tsc_of(&reads), 20, || {
            n += 1;
            n
        });
        assert_eq!((at, v, n), (7005, 3, 3));
    }

    #[test]
    fn of_sixteen_wide_readings_the_narrowest_is_kept() {
        // Reading k (1-based) spans 1 000 + 100 × |k − 8| cycles: none is
        // narrow, the eighth is the narrowest.
        let mut reads = vec![];
        for k in 1..=16u64 {
            let t0 = k * 100_000;
            reads.extend([t0, t0 + 1000 + 100 * k.abs_diff(8)]);
        }
        let mut n = 0;
        let (at, v) = bracketed(tsc_of(&reads), 20, || {
            n += 1;
            n
        });
        assert_eq!((at, v, n), (800_500, 8, 16));
    }
}
