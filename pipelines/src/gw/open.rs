//! Opening, closing, holding and freeing connections (S32–S44, S61–S67,
//! FIG. 28–29), and the timer that drives idle expiry and the end of holds.

use super::acct::Nat66Addrs;
use super::balance::NO_SLOT as NO_LOAD;
use super::config::ExhaustionReply;
use super::entry::{flag, unlink, xflag, Cold, Hot, NONE, NO_GROUP, NO_SERVICE};
use super::hash::fmix64;
use super::limit::{SubKey, SubTicket, UNTRACKED};
use super::meta::{Kind, Meta};
use super::nh::mapped;
use super::tables::{GroupIdx, SubscriberAuth};
use super::tcp_state::{idle_timeout_ms, FlowState, PROTO_TCP};
use super::{rst, t64, AcctRecord, AcctSink, CloseReason, GwTables, GwWorker, ServiceId};
use crate::hw::TableAlloc;
use crate::verdict::{DropReason, Pkt, Verdict, WorkerCounters};
use crate::wire;

/// Where a new connection goes, as its keys must be unique for it.
#[derive(Clone, Copy)]
struct Dest {
    ip: [u8; 4],
    ip6: Option<[u8; 16]>,
    port: u16,
    proto: u8,
}

impl<A: TableAlloc> GwWorker<A> {
    /// With [`ExhaustionReply::Rst`], the TCP SYN of a refused connection
    /// start turned into a RST in place (`v6`: an IPv6 subscriber's):
    /// whether it was (other protocols are always dropped). Only SYNs reach
    /// [`GwWorker::start`] over TCP.
    fn reply_rst(&self, pkt: &mut Pkt<'_>, v6: bool) -> bool {
        if self.cfg.exhaustion_reply != ExhaustionReply::Rst {
            return false;
        }
        match wire::parse_chained(pkt.frame(), pkt.tail()) {
            Ok((p, beyond)) if p.proto == PROTO_TCP => {
                if v6 {
                    rst::syn_to_rst_v6(pkt, &p, beyond, self.cfg.access_mac);
                } else {
                    rst::syn_to_rst(pkt, &p, beyond, self.cfg.access_mac);
                }
                true
            }
            _ => false,
        }
    }

    /// The verdict of a connection start refused for exhaustion (`reason`):
    /// a drop, or the RST of [`GwWorker::reply_rst`] (`rst_exhausted`).
    fn refuse_exhausted(&mut self, pkt: &mut Pkt<'_>, v6: bool, reason: DropReason) -> Verdict {
        if self.reply_rst(pkt, v6) {
            self.counters.rst_exhausted += 1;
            match reason {
                DropReason::FlowTableFull => self.counters.rst_table_full += 1,
                _ => self.counters.rst_pool_exhausted += 1,
            }
            return Verdict::Tx { port: pkt.port };
        }
        Verdict::Drop(reason)
    }

    /// The verdict of a connection start refused by the subscriber limits
    /// (`reason`): counted under `reason` whatever the reply, a drop or the
    /// RST of [`GwWorker::reply_rst`].
    fn refuse_limited(
        &mut self,
        pkt: &mut Pkt<'_>,
        v6: bool,
        reason: DropReason,
        c: &mut WorkerCounters,
    ) -> Verdict {
        if self.reply_rst(pkt, v6) {
            c.drop(reason);
            return Verdict::Tx { port: pkt.port };
        }
        Verdict::Drop(reason)
    }

    /// Count connection `e` against its subscriber's limits (`t` from
    /// [`super::limit::SubLimits::admit`]).
    #[inline]
    fn count_sub(&mut self, e: u32, t: SubTicket) {
        if self.limits.on() {
            if t == UNTRACKED {
                self.counters.sub_untracked += 1;
            } else {
                self.limits.commit(t);
                self.cold[e as usize].sub_counted = 1;
            }
        }
    }

    /// Start a connection for up packet `m` (its verdict if refused). `held`:
    /// the connection on hold with the same subscriber tuple, if any (a SYN
    /// on it revives it when its server can be kept).
    pub(super) fn start(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        m: &Meta,
        now: u64,
        held: u32,
        c: &mut WorkerCounters,
    ) -> Result<u32, Verdict> {
        let v6 = m.kind != Kind::Up4;
        let (sub6, dst6) = if v6 {
            Self::up_addrs6(pkt, m)
        } else {
            ([0; 16], [0; 16])
        };
        let session = if v6 {
            t.sessions.get6(&sub6)
        } else {
            t.sessions.get(m.src)
        }
        .filter(|s| s.active)
        .copied();
        if session.is_none() && self.cfg.require_session {
            return Err(Verdict::Drop(DropReason::NoSession));
        }
        if self.draining {
            return Err(Verdict::Drop(DropReason::Draining));
        }
        let svc = &t.services;
        let (group, service) = if m.kind == Kind::Up66 {
            let gi = m.aux as GroupIdx;
            let Some(g) = svc.group(gi) else {
                return Err(Verdict::Drop(DropReason::NoServer));
            };
            (Some(gi), Some(g.group.service))
        } else {
            match svc.vip(m.dst, m.dport).filter(|&g| svc.group(g).is_some()) {
                Some(gi) => (Some(gi), svc.group(gi).map(|g| g.group.service)),
                None => (None, svc.external_service),
            }
        };
        if let (Some(s), Some(sess)) = (service, session) {
            if !sess.allows(s) {
                if m.proto == PROTO_TCP {
                    if let Ok((p, beyond)) = wire::parse_chained(pkt.frame(), pkt.tail()) {
                        if v6 {
                            rst::syn_to_rst_v6(pkt, &p, beyond, self.cfg.access_mac);
                        } else {
                            rst::syn_to_rst(pkt, &p, beyond, self.cfg.access_mac);
                        }
                        self.counters.rst_unauthorized += 1;
                        return Err(Verdict::Tx { port: pkt.port });
                    }
                }
                return Err(Verdict::Drop(DropReason::Unauthorized));
            }
        }
        // The subscriber's limits (its /64 for IPv6); taken below only if
        // the connection opens.
        let ticket = if self.limits.on() {
            let sub = if v6 {
                SubKey::v6(&sub6)
            } else {
                SubKey::V4(m.src)
            };
            match self.limits.admit(sub, now) {
                Ok(t) => t,
                Err(r) => return Err(self.refuse_limited(pkt, v6, r, c)),
            }
        } else {
            UNTRACKED
        };
        if held != NONE {
            if self.can_revive(t, held, group) {
                self.revive(held, pkt, session, service, now);
                self.count_sub(held, ticket);
                let mac: [u8; 6] = pkt.frame()[6..12].try_into().unwrap_or([0; 6]);
                self.note_entry_point(t, held, mac);
                return Ok(held);
            }
            // The tuple gets a new binding; the old one stays on hold for
            // its server (its key is still taken there) but no longer
            // answers this tuple.
            self.unlink_up(held);
            self.counters.replaced += 1;
        }
        // The server.
        let mut dest = Dest {
            ip: m.dst,
            ip6: None,
            port: m.dport,
            proto: m.proto,
        };
        if let Some(gi) = group {
            // NAT66 balances over the members whose IPv6 side is up.
            let g = if m.kind == Kind::Up66 {
                svc.group6(gi)
            } else {
                svc.group(gi)
            };
            let Some(g) = g else {
                return Err(Verdict::Drop(DropReason::NoServer));
            };
            let Some(mi) = self.bal.choose(gi, g) else {
                return Err(Verdict::Drop(DropReason::NoServer));
            };
            let mem = &g.group.members[mi as usize];
            dest.ip = mem.ip;
            dest.port = if m.proto == super::tcp_state::PROTO_ICMP {
                0
            } else {
                mem.port.unwrap_or(m.dport)
            };
            if m.kind == Kind::Up66 {
                let Some(a) = svc.member_ip6(gi, mi) else {
                    return Err(Verdict::Drop(DropReason::NoServer));
                };
                dest.ip6 = Some(a);
            }
        }
        let nh_ip = dest.ip6.unwrap_or(mapped(dest.ip));
        let Some(nh) = self.nh.slot_for(&t.neighbours, &nh_ip, group.is_some()) else {
            return Err(Verdict::Drop(DropReason::NoNeighbor));
        };
        if self.free == NONE {
            return Err(self.refuse_exhausted(pkt, v6, DropReason::FlowTableFull));
        }
        let sub_h = if v6 {
            // (the /64: a device's addresses in its prefix share a pool address)
            fmix64(u64::from_be_bytes(sub6[..8].try_into().unwrap_or([0; 8]))) as u32
        } else {
            fmix64(u32::from_be_bytes(m.src) as u64 ^ self.cfg.hash_seed) as u32
        };
        let Some((pool, key_port, k)) = self.alloc_key(m.sport, sub_h, &dest) else {
            return Err(self.refuse_exhausted(pkt, v6, DropReason::NatPoolExhausted));
        };
        let e = self.free;
        if !self.up.insert(m.h, e) {
            return Err(self.refuse_exhausted(pkt, v6, DropReason::FlowTableFull));
        }
        self.free = self.cold[e as usize].next;
        self.in_use += 1;
        let load_slot = match group {
            Some(_) => {
                let s = self.bal.open(dest.ip);
                if s == NO_LOAD {
                    self.counters.load_untracked += 1;
                }
                s
            }
            None => NO_LOAD,
        };
        let src_mac: [u8; 6] = pkt.frame()[6..12].try_into().unwrap_or([0; 6]);
        let mut flags = flag::UP_LINKED;
        if m.proto != PROTO_TCP {
            flags |= flag::ATTR_DONE;
        }
        match m.kind {
            Kind::Up64 => {
                flags |= flag::V6;
                self.sub6[e as usize] = sub6;
                self.counters.nat64_flows += 1;
            }
            Kind::Up66 => {
                flags |= flag::V6 | flag::NAT66;
                self.sub6[e as usize] = sub6;
                self.vip6[e as usize] = dst6;
                self.srv6[e as usize] = dest.ip6.unwrap_or([0; 16]);
                self.counters.nat66_flows += 1;
            }
            _ => {}
        }
        self.hot[e as usize] = Hot {
            sub_ip: m.src,
            dst_ip: m.dst,
            sub_port: m.sport,
            dst_port: m.dport,
            srv_ip: dest.ip,
            srv_port: dest.port,
            key_port,
            pool: pool as u8,
            proto: m.proto,
            state: if m.proto == PROTO_TCP {
                FlowState::SynSent
            } else {
                FlowState::Dgram
            },
            flags,
            // (only a TCP connection starts half-open)
            xflags: if m.proto == PROTO_TCP {
                0
            } else {
                xflag::SUB_ACKED
            },
            lb: self.lbs.index(src_mac).unwrap_or(0),
            nh,
            last_ms: now as u32,
            key_next: self.key_head[k as usize],
            ..Hot::EMPTY
        };
        self.key_head[k as usize] = e;
        self.note_entry_point(t, e, src_mac);
        let c = &mut self.cold[e as usize];
        *c = Cold {
            device_id: session.map_or(0, |s| s.device_id),
            start_ms: now as u32,
            group: group.unwrap_or(NO_GROUP),
            load_slot,
            service: service.map_or(NO_SERVICE, |s| s.0),
            ..Cold::EMPTY
        };
        if m.proto == PROTO_TCP {
            self.half_opened(e);
        }
        let to = idle_timeout_ms(self.hot[e as usize].state, m.proto, &self.cfg.timeouts);
        self.wheel
            .insert(&mut self.cold, e, now.saturating_add(to).saturating_add(1));
        self.counters.new_flows += 1;
        self.count_sub(e, ticket);
        Ok(e)
    }

    /// Whether connection `e` on hold can be revived for a new connection
    /// to `group`: same group, and its server is still an up member.
    fn can_revive(&self, t: &GwTables, e: u32, group: Option<GroupIdx>) -> bool {
        let (h, c) = (&self.hot[e as usize], &self.cold[e as usize]);
        let was = (c.group != NO_GROUP).then_some(c.group);
        if was != group {
            return false;
        }
        let Some(gi) = group else {
            return true; // not balanced: the server is the destination itself
        };
        let g = if h.has(flag::NAT66) {
            t.services.group6(gi)
        } else {
            t.services.group(gi)
        };
        let Some(g) = g else {
            return false;
        };
        g.group
            .members
            .iter()
            .any(|mem| mem.up && mem.ip == h.srv_ip && mem.port.unwrap_or(h.dst_port) == h.srv_port)
    }

    /// A new connection on the binding of connection `e` on hold: same key,
    /// same server, new accounting.
    fn revive(
        &mut self,
        e: u32,
        pkt: &Pkt<'_>,
        session: Option<SubscriberAuth>,
        service: Option<ServiceId>,
        now: u64,
    ) {
        let src_mac: [u8; 6] = pkt.frame()[6..12].try_into().unwrap_or([0; 6]);
        let lb = self.lbs.index(src_mac);
        let h = &mut self.hot[e as usize];
        h.state = FlowState::SynSent;
        h.flags &= flag::V6 | flag::NAT66 | flag::UP_LINKED;
        h.xflags = 0;
        h.zero_counts();
        h.last_ms = now as u32;
        if let Some(lb) = lb {
            h.lb = lb;
        }
        let srv_ip = h.srv_ip;
        let c = &mut self.cold[e as usize];
        c.device_id = session.map_or(0, |s| s.device_id);
        c.start_ms = now as u32;
        c.service = service.map_or(NO_SERVICE, |s| s.0);
        if c.group != NO_GROUP {
            c.load_slot = self.bal.open(srv_ip);
        }
        self.held -= 1;
        self.half_opened(e);
        let to = self.cfg.timeouts.syn_ms;
        self.wheel
            .reschedule(&mut self.cold, e, now.saturating_add(to).saturating_add(1));
        self.counters.revived += 1;
        self.counters.new_flows += 1;
        if self.hot[e as usize].has(flag::NAT66) {
            self.counters.nat66_flows += 1;
        } else if self.hot[e as usize].has(flag::V6) {
            self.counters.nat64_flows += 1;
        }
    }

    /// Whether key `k` is free for `d`: no connection (open or on hold) to
    /// the same server, port and protocol uses it.
    #[inline]
    fn key_free_for(&self, k: u32, d: &Dest) -> bool {
        let mut e = self.key_head[k as usize];
        while e != NONE {
            let h = &self.hot[e as usize];
            if h.srv_port == d.port && h.proto == d.proto {
                let same = match d.ip6 {
                    Some(a) => h.has(flag::NAT66) && self.srv6[e as usize] == a,
                    None => !h.has(flag::NAT66) && h.srv_ip == d.ip,
                };
                if same {
                    return false;
                }
            }
            e = h.key_next;
        }
        true
    }

    /// A key for a connection from subscriber port `sport` (subscriber hash
    /// `sub_h`) to `d`: (pool index, key port, key index). See [`super::keys`].
    fn alloc_key(&mut self, sport: u16, sub_h: u32, d: &Dest) -> Option<(u32, u16, u32)> {
        let np = self.ks.pool().len() as u32;
        let p0 = self.ks.paired_pool(sub_h);
        // RSS steering (IPv4 servers: the steering tables hash IPv4):
        // prefer keys whose down packets land on this worker's queue, among
        // the first `probe` free candidates (none when the queue is not in
        // the RETA at all).
        let steer = self.rss.as_ref().filter(|_| d.ip6.is_none());
        let probe = steer.map_or(0, |s| if s.reachable() { s.probe as u32 } else { 0 });
        let base = steer.map(|s| s.base(d.ip, d.port, d.proto));
        let lands = |p: u32, port: u16| match (steer, base) {
            (Some(s), Some(b)) => s.lands_here(b, p, port),
            _ => true,
        };
        if self.cfg.preserve_port {
            if let Some(off) = self.ks.own_offset(self.id, sport) {
                let k = self.ks.key_index(p0, off);
                if (steer.is_none() || (probe > 0 && lands(p0, sport))) && self.key_free_for(k, d) {
                    if steer.is_some() {
                        self.counters.rss_steered += 1;
                    }
                    return Some((p0, sport, k));
                }
            }
        }
        let mut fallback = None;
        let mut looked = 0u32;
        let mut p = p0;
        'pools: for _ in 0..np.min(4) {
            for _ in 0..super::keys::TRIES {
                let off = self.rot[p as usize].step();
                let k = self.ks.key_index(p, off);
                if !self.key_free_for(k, d) {
                    continue;
                }
                let port = self.ks.port_at(self.id, off);
                if steer.is_none() {
                    return Some((p, port, k));
                }
                if looked < probe && lands(p, port) {
                    self.counters.rss_steered += 1;
                    return Some((p, port, k));
                }
                fallback.get_or_insert((p, port, k));
                looked += 1;
                if looked >= probe {
                    break 'pools;
                }
            }
            p += 1;
            if p == np {
                p = 0;
            }
        }
        if fallback.is_some() {
            self.counters.rss_miss += 1;
        }
        fallback
    }

    /// End connection `e`: its record to `acct`, its key and server on
    /// hold (the long hold after an established connection, else the
    /// short one).
    pub(super) fn close_flow(
        &mut self,
        e: u32,
        reason: CloseReason,
        now: u64,
        acct: &mut impl AcctSink,
    ) {
        let (h, c) = (self.hot[e as usize], self.cold[e as usize]);
        let r = AcctRecord {
            device_id: c.device_id,
            subscriber_ip: if h.has(flag::V6) { [0; 4] } else { h.sub_ip },
            subscriber_ip6: h.has(flag::V6).then(|| self.sub6[e as usize]),
            subscriber_port: h.sub_port,
            nat66: h.has(flag::NAT66).then(|| Nat66Addrs {
                vip: self.vip6[e as usize],
                key: self
                    .cfg
                    .pool6
                    .get(h.pool as usize)
                    .copied()
                    .unwrap_or([0; 16]),
                server: self.srv6[e as usize],
            }),
            rep_ip: if h.has(flag::NAT66) { [0; 4] } else { h.dst_ip },
            rep_port: h.dst_port,
            nat_ip: self.ks.pool()[h.pool as usize],
            nat_port: h.key_port,
            server_ip: h.srv_ip,
            server_port: h.srv_port,
            proto: h.proto,
            service: (c.service != NO_SERVICE).then_some(ServiceId(c.service)),
            group: (c.group != NO_GROUP).then_some(c.group),
            start_ms: t64(now, c.start_ms),
            end_ms: t64(now, h.last_ms),
            up_pkts: h.up_packets(),
            up_bytes: h.up_bytes,
            down_pkts: h.down_packets(),
            down_bytes: h.down_bytes,
            attr: if c.attr != NONE {
                self.attrs[c.attr as usize]
            } else {
                super::Attr::default()
            },
            close: reason,
        };
        if c.attr != NONE {
            self.attr_free.give(c.attr);
        }
        if h.proto == PROTO_TCP {
            // (closed before the subscriber's ACK: no longer half-open)
            self.sub_acked(e);
        }
        self.proxy_close(e);
        self.bal.close(c.load_slot);
        if c.sub_counted != 0 {
            self.limits.release(if h.has(flag::V6) {
                SubKey::v6(&self.sub6[e as usize])
            } else {
                SubKey::V4(h.sub_ip)
            });
        }
        let long = h.has(flag::ESTABLISHED) && reason != CloseReason::Rst;
        let hm = &mut self.hot[e as usize];
        hm.state = FlowState::Closed;
        if !long {
            // (on a closed connection the bit says: the long hold)
            hm.flags &= !flag::ESTABLISHED;
        }
        let cm = &mut self.cold[e as usize];
        cm.load_slot = NO_LOAD;
        cm.attr = NONE;
        cm.sub_counted = 0;
        match reason {
            CloseReason::Fin => self.counters.closed_fin += 1,
            CloseReason::Rst => self.counters.closed_rst += 1,
            CloseReason::IdleTimeout => self.counters.expired += 1,
            CloseReason::Shutdown => self.counters.closed_shutdown += 1,
        }
        if acct.push(&r) {
            self.counters.acct_records += 1;
        } else {
            self.counters.acct_queue_full += 1;
        }
        self.held += 1;
        let hold = self.hold_ms(&self.hot[e as usize]);
        let at = t64(now, h.last_ms).saturating_add(hold);
        self.wheel.reschedule(&mut self.cold, e, at);
    }

    #[inline]
    fn hold_ms(&self, h: &Hot) -> u64 {
        if h.has(flag::ESTABLISHED) {
            self.cfg.timeouts.close_hold_ms
        } else {
            self.cfg.timeouts.short_hold_ms
        }
    }

    /// Idle expiry: close, and stop answering its up tuple (no late
    /// packets after an idle end).
    pub(super) fn expire_entry(&mut self, e: u32, now: u64, acct: &mut impl AcctSink) {
        self.close_flow(e, CloseReason::IdleTimeout, now, acct);
        self.unlink_up(e);
    }

    /// The instance stops: close every open connection with a record
    /// ([`CloseReason::Shutdown`]) and stop answering its tuple. O(capacity):
    /// once, at the end. How many were closed.
    pub fn close_all(&mut self, now: u64, acct: &mut impl AcctSink) -> usize {
        let mut n = 0;
        for e in 0..self.hot.len() as u32 {
            if self.hot[e as usize].state.is_open() {
                self.close_flow(e, CloseReason::Shutdown, now, acct);
                self.unlink_up(e);
                n += 1;
            }
        }
        n
    }

    pub(super) fn unlink_up(&mut self, e: u32) {
        if self.hot[e as usize].has(flag::UP_LINKED) {
            let h = self.entry_hash(e);
            self.up.remove(h, e);
            self.hot[e as usize].flags &= !flag::UP_LINKED;
        }
    }

    /// The hold of connection `e` is over: out of every table, free.
    fn free_entry(&mut self, e: u32) {
        self.unlink_up(e);
        let h = self.hot[e as usize];
        if let Some(off) = self.ks.own_offset(self.id, h.key_port) {
            let k = self.ks.key_index(h.pool as u32, off) as usize;
            unlink(&mut self.key_head[k], &mut self.hot, e, |h| &mut h.key_next);
        }
        self.wheel.remove(&mut self.cold, e);
        self.hot[e as usize] = Hot::EMPTY;
        self.cold[e as usize] = Cold {
            next: self.free,
            ..Cold::EMPTY
        };
        self.free = e;
        self.in_use -= 1;
        self.held -= 1;
        self.counters.keys_recycled += 1;
    }

    /// Records of the connections this burst closed (the accounting lap);
    /// how many.
    pub(super) fn account(&mut self, now: u64, acct: &mut impl AcctSink) -> usize {
        let n = std::mem::take(&mut self.nclosing);
        for i in 0..n {
            let (e, r) = self.closing[i];
            self.close_flow(e, r, now, acct);
        }
        n
    }

    /// Timer work: [`GwWorker::expire_due`], the connections ended by idle
    /// timeout.
    pub fn expire(
        &mut self,
        now: u64,
        budget: usize,
        acct: &mut impl AcctSink,
        c: &mut crate::WorkerCounters,
    ) -> usize {
        self.expire_due(now, budget, acct, c).1
    }

    /// Timer work: look at up to `budget` connections whose timer is due:
    /// end the idle ones (record, hold), free those whose hold is over, put
    /// the others back at their real deadline. `(looked at, ended by idle
    /// timeout)`. O(due), whatever the number of connections.
    pub fn expire_due(
        &mut self,
        now: u64,
        budget: usize,
        acct: &mut impl AcctSink,
        c: &mut crate::WorkerCounters,
    ) -> (usize, usize) {
        let mut buf = [0u32; 32];
        // Fragment contexts past their timeout (each one looked at).
        let (mut done, mut ended) = (self.frag_expire(now, c), 0);
        while done < budget {
            let want = (budget - done).min(buf.len());
            let n = self.wheel.pop_due(&mut self.cold, now, &mut buf[..want]);
            if n == 0 {
                break;
            }
            for &e in &buf[..n] {
                done += 1;
                let h = self.hot[e as usize];
                let last = t64(now, h.last_ms);
                // (ended when `now` is past the deadline, as the lazy check
                // on lookups says: idle longer than the timeout)
                if h.state.is_open() {
                    let at =
                        last.saturating_add(idle_timeout_ms(h.state, h.proto, &self.cfg.timeouts));
                    if at >= now {
                        self.wheel.insert(&mut self.cold, e, at.saturating_add(1));
                    } else {
                        self.expire_entry(e, now, acct);
                        ended += 1;
                    }
                } else if h.state == FlowState::Closed {
                    // (a hold is over at its deadline)
                    let at = last.saturating_add(self.hold_ms(&h));
                    if at > now {
                        self.wheel.insert(&mut self.cold, e, at);
                    } else {
                        self.free_entry(e);
                    }
                }
            }
        }
        (done, ended)
    }
}
