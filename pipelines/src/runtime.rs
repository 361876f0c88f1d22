//! Runtime accounting of a worker, the way VPP's `show runtime` does it:
//! per stage the calls, packets and clock cycles, per worker the busy and
//! idle loop turns.
//!
//! The clock is injected ([`Clock`]): the engine reads the TSC, tests count
//! by hand, and [`NoClock`] compiles every lap down to two additions (calls
//! and packets), so `engine.runtime_stages = false` costs nothing per burst.
//!
//! How it is used: at the start of a loop turn the worker calls
//! [`Meter::turn_start`]; after each stage has handled a whole burst it calls
//! [`Meter::lap`] with that stage and the burst's packet count (one clock
//! read per stage per burst, never per packet); at the end of the turn
//! [`Meter::turn_end`] closes it: the turn was busy if it took packets in
//! or any stage moved packets (a TX flush of what an earlier turn buffered).
//! A busy turn's laps are added to the stage counters and its whole length
//! (turn start to the next turn start) to the busy cycles; an idle turn only
//! to the idle cycles, so idle polling never dilutes a stage's cost. The
//! part of a busy turn no lap covers is the stage `other` (loop overhead,
//! the drain timer's work).

/// A monotonic cycle counter.
pub trait Clock {
    /// Now, in cycles.
    fn now(&self) -> u64;
    /// Whether this clock counts at all (`false`: stage cycles are not
    /// measured, only calls and packets).
    const TIMED: bool = true;
}

/// The clock of a worker that does not time its stages.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClock;

impl Clock for NoClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        0
    }
    const TIMED: bool = false;
}

macro_rules! stages {
    ($($(#[$m:meta])* $v:ident = $name:literal,)*) => {
        /// The stages a worker's time is split into.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Stage { $($(#[$m])* $v,)* }
        impl Stage {
            pub const ALL: &'static [Stage] = &[$(Stage::$v,)*];
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name (`pgw stats --runtime`).
            pub const fn name(self) -> &'static str {
                match self { $(Stage::$v => $name,)* }
            }
        }
    };
}

stages! {
    /// `rte_eth_rx_burst` on every port (packets: received).
    Rx = "rx",
    /// Handed-off packets taken from this worker's ring (packets: dequeued).
    HandoffIn = "handoff_in",
    /// Ethernet/IP/L4 parse of the burst.
    Parse = "parse",
    /// ARP and NDP answered for the gateway's own addresses.
    Arp = "arp",
    /// Plain forwarding (the `wire` role).
    Wire = "wire",
    /// The LB stage (range table, neighbour).
    Lb = "lb",
    /// The whole GW stage of a burst, while it is not split into the laps
    /// below.
    Gw = "gw",
    /// GW: flow lookups (up table, key table) of the burst.
    GwLookup = "gw_lookup",
    /// GW: connection starts (session, authorization, balancing, key, insert;
    /// packets: connections opened or refused).
    GwOpen = "gw_open",
    /// GW: NAT rewrite, TCP state, counters of established packets.
    Rewrite = "rewrite",
    /// GW: closing connections and queueing their accounting records
    /// (packets: records).
    Accounting = "accounting",
    /// Moving each packet where its verdict says (TX buffers, handoff and
    /// control rings) and freeing drops.
    Dispatch = "dispatch",
    /// Packets to the key owner's handoff ring (packets: enqueued).
    HandoffOut = "handoff_out",
    /// `rte_eth_tx_burst` of full and flushed buffers (packets: sent).
    Tx = "tx",
    /// Idle expiry and key recycling (packets: entries expired or freed).
    Expiry = "expiry",
    /// Frames the management thread queued, sent by worker 0.
    MgmtTx = "mgmt_tx",
    /// Whatever a busy turn spent outside every lap (loop overhead, the
    /// drain timer's publishing).
    Other = "other",
}

/// One stage's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageCounters {
    /// Bursts the stage handled (laps).
    pub calls: u64,
    /// Packets in those bursts (see each [`Stage`] for what counts).
    pub packets: u64,
    /// Clock cycles (0 with [`NoClock`]).
    pub cycles: u64,
}

/// A worker's runtime counters (single writer: the worker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    pub stages: [StageCounters; Stage::COUNT],
    /// Loop turns, and those that moved packets.
    pub turns: u64,
    pub busy_turns: u64,
    /// Cycles of busy turns and of idle turns (both measured by the
    /// worker's per-turn clock read, timed stages or not).
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    /// Packets the worker took in (from its ports and its handoff ring):
    /// the denominator of cycles per packet.
    pub packets: u64,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            stages: [StageCounters::default(); Stage::COUNT],
            turns: 0,
            busy_turns: 0,
            busy_cycles: 0,
            idle_cycles: 0,
            packets: 0,
        }
    }
}

impl Runtime {
    pub fn stage(&self, s: Stage) -> &StageCounters {
        &self.stages[s as usize]
    }
}

/// The laps of one loop turn, kept apart until the turn says whether it was
/// busy.
#[derive(Clone, Copy, Debug)]
struct Turn {
    laps: [StageCounters; Stage::COUNT],
    /// Stages lapped this turn (bit per stage), so the merge touches only
    /// those.
    touched: u32,
    /// Packets the turn's laps handled (any stage): 0 = an idle turn.
    moved: u64,
}

const _: () = assert!(Stage::COUNT <= 32, "Turn::touched is a u32 bit set");

/// The worker's meter: its clock, the turn in progress and the totals.
pub struct Meter<C: Clock> {
    clock: C,
    turn_start: u64,
    last: u64,
    turn: Turn,
    pub rt: Runtime,
}

impl<C: Clock> Meter<C> {
    pub fn new(clock: C) -> Self {
        let now = clock.now();
        Meter {
            clock,
            turn_start: now,
            last: now,
            turn: Turn {
                laps: [StageCounters::default(); Stage::COUNT],
                touched: 0,
                moved: 0,
            },
            rt: Runtime::default(),
        }
    }

    /// A loop turn begins at `now` (the worker's own clock read of the turn,
    /// in the same unit as the meter's clock). Closes the previous turn's
    /// span: busy or idle as [`Meter::turn_end`] said.
    #[inline]
    pub fn turn_start(&mut self, now: u64) {
        self.turn_start = now;
        self.last = now;
    }

    /// `stage` handled a burst of `packets` packets; one clock read (none
    /// with [`NoClock`]).
    #[inline]
    pub fn lap(&mut self, stage: Stage, packets: usize) {
        let l = &mut self.turn.laps[stage as usize];
        l.calls += 1;
        l.packets += packets as u64;
        self.turn.moved += packets as u64;
        if C::TIMED {
            let now = self.clock.now();
            l.cycles += now.wrapping_sub(self.last);
            self.last = now;
        }
        self.turn.touched |= 1 << stage as u32;
    }

    /// Charge the time since the last lap to `stage` without counting a
    /// call (a stage interrupted by another, e.g. dispatch by a TX of a
    /// full buffer; it ends with its own [`Meter::lap`]).
    #[inline]
    pub fn charge(&mut self, stage: Stage) {
        if C::TIMED {
            let now = self.clock.now();
            self.turn.laps[stage as usize].cycles += now.wrapping_sub(self.last);
            self.last = now;
            self.turn.touched |= 1 << stage as u32;
        }
    }

    /// The turn that began at the last [`Meter::turn_start`] ends at `now`
    /// (the next turn's start); `packets` it took in.
    #[inline]
    pub fn turn_end(&mut self, now: u64, packets: usize) {
        let span = now.wrapping_sub(self.turn_start);
        self.rt.turns += 1;
        let touched = std::mem::take(&mut self.turn.touched);
        if std::mem::take(&mut self.turn.moved) == 0 && packets == 0 {
            self.rt.idle_cycles += span;
            let mut t = touched;
            while t != 0 {
                let i = t.trailing_zeros() as usize;
                self.turn.laps[i] = StageCounters::default();
                t &= t - 1;
            }
            return;
        }
        self.rt.busy_turns += 1;
        self.rt.busy_cycles += span;
        self.rt.packets += packets as u64;
        let mut lapped = 0u64;
        let mut t = touched;
        while t != 0 {
            let i = t.trailing_zeros() as usize;
            let l = std::mem::take(&mut self.turn.laps[i]);
            let s = &mut self.rt.stages[i];
            s.calls += l.calls;
            s.packets += l.packets;
            s.cycles += l.cycles;
            lapped += l.cycles;
            t &= t - 1;
        }
        if C::TIMED {
            let o = &mut self.rt.stages[Stage::Other as usize];
            o.calls += 1;
            o.cycles += span.saturating_sub(lapped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock the test moves by hand.
    struct Hand<'a>(&'a Cell<u64>);
    impl Clock for Hand<'_> {
        fn now(&self) -> u64 {
            self.0.get()
        }
    }

    /// A turn of `m` from cycle `start`: for each `(at, stage, n)` of
    /// `laps` the hand clock `t` reaches `at`, where `stage` laps with `n`
    /// packets; the turn ends at `end.0` having handled `end.1` packets.
    fn turn(
        m: &mut Meter<Hand<'_>>,
        t: &Cell<u64>,
        start: u64,
        laps: &[(u64, Stage, usize)],
        end: (u64, usize),
    ) {
        m.turn_start(start);
        for &(at, stage, n) in laps {
            t.set(at);
            m.lap(stage, n);
        }
        m.turn_end(end.0, end.1);
    }

    #[test]
    fn busy_turns_charge_stages_and_other_idle_turns_charge_nothing() {
        let t = Cell::new(1000);
        let mut m = Meter::new(Hand(&t));
        // A busy turn: rx 32 packets (50 cycles), parse (30), tx (20), then
        // 10 cycles of loop overhead before the next turn.
        let busy = [
            (1050, Stage::Rx, 32),
            (1080, Stage::Parse, 32),
            (1100, Stage::Tx, 32),
        ];
        turn(&mut m, &t, 1000, &busy, (1110, 32));
        // An idle turn: rx polled nothing for 40 cycles.
        turn(&mut m, &t, 1110, &[(1150, Stage::Rx, 0)], (1150, 0));
        let rt = &m.rt;
        assert_eq!((rt.turns, rt.busy_turns), (2, 1));
        assert_eq!((rt.busy_cycles, rt.idle_cycles, rt.packets), (110, 40, 32));
        assert_eq!(
            *rt.stage(Stage::Rx),
            StageCounters {
                calls: 1,
                packets: 32,
                cycles: 50
            }
        );
        assert_eq!(rt.stage(Stage::Parse).cycles, 30);
        assert_eq!(rt.stage(Stage::Tx).cycles, 20);
        assert_eq!(rt.stage(Stage::Other).cycles, 10);
        let staged: u64 = rt.stages.iter().map(|s| s.cycles).sum();
        assert_eq!(staged, rt.busy_cycles, "the stages add up to the busy time");
    }

    #[test]
    fn a_turn_that_only_flushes_tx_is_busy() {
        let t = Cell::new(0);
        let mut m = Meter::new(Hand(&t));
        turn(
            &mut m,
            &t,
            0,
            &[(5, Stage::Rx, 0), (25, Stage::Tx, 4)],
            (30, 0),
        );
        assert_eq!(
            (m.rt.busy_turns, m.rt.busy_cycles, m.rt.packets),
            (1, 30, 0)
        );
        assert_eq!(m.rt.stage(Stage::Tx).packets, 4);
    }

    #[test]
    fn no_clock_counts_calls_and_packets_only() {
        let mut m = Meter::new(NoClock);
        m.turn_start(0);
        m.lap(Stage::Rx, 7);
        m.lap(Stage::Rx, 3);
        m.turn_end(500, 10);
        assert_eq!(
            *m.rt.stage(Stage::Rx),
            StageCounters {
                calls: 2,
                packets: 10,
                cycles: 0
            }
        );
        assert_eq!(m.rt.stage(Stage::Other).cycles, 0);
        assert_eq!(
            m.rt.busy_cycles, 500,
            "turn spans come from the worker's own reads"
        );
    }

    #[test]
    fn stage_names_are_unique() {
        let mut n: Vec<_> = Stage::ALL.iter().map(|s| s.name()).collect();
        n.sort();
        n.dedup();
        assert_eq!(n.len(), Stage::COUNT);
    }
}
