//! The GW's fragment path: the first fragment's translation leaves a
//! context, later ones follow it, early ones are held and released (see
//! the parent module for the design).

use super::*;

impl<A: TableAlloc> GwWorker<A> {
    /// The parse stage for fragment `i` of the burst (`wire::parse` said
    /// `Fragment`): a first fragment of TCP, UDP or (IPv4) an ICMP echo
    /// goes on as a packet
    /// (its [`Meta`] marked `frag`, its datagram noted); a later one is
    /// translated by its datagram's context, or held for the first one.
    pub(in crate::gw) fn fragment(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
    ) -> Result<Meta, Verdict> {
        const FRAGMENT: Verdict = Verdict::Drop(DropReason::Fragment);
        if !self.frags.on() {
            return Err(FRAGMENT);
        }
        let Ok(mut p) = wire::parse_l3(pkt.frame()) else {
            return Err(FRAGMENT);
        };
        let (l3, end) = (p.l3_off as usize, p.ip_end());
        let f = pkt.frame();
        let port = pkt.port;
        let (fr, key) = if p.is_ipv4() {
            if p.proto != PROTO_TCP && p.proto != PROTO_UDP && p.proto != PROTO_ICMP {
                return Err(FRAGMENT);
            }
            let fr = Frag::of4(f, l3, p.l4_off as usize, end);
            let id = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]);
            (fr, Key::v4(port, p.src_v4(), p.dst_v4(), id, p.proto))
        } else {
            // IPv6 whose first extension header is the Fragment header:
            // the upper layer (TCP, UDP) follows it.
            let fh = p.l4_off as usize;
            if !self.frags.v6_on() || p.proto != ip_proto::IPV6_FRAGMENT || end - fh < FRAG_HDR {
                return Err(FRAGMENT);
            }
            let nh = f[fh];
            if nh != PROTO_TCP && nh != PROTO_UDP {
                return Err(FRAGMENT);
            }
            let key = Key {
                port,
                src: p.src,
                dst: p.dst,
                id: u32::from_be_bytes([f[fh + 4], f[fh + 5], f[fh + 6], f[fh + 7]]),
                proto: nh,
                v6: true,
            };
            p.proto = nh;
            p.l4_off += FRAG_HDR as u16;
            p.l4_len -= FRAG_HDR as u16;
            p.payload_off = p.l4_off;
            p.payload_len = p.l4_len;
            (Frag::of6(f, fh, end), key)
        };
        if fr.off == 0 {
            return self.first_fragment_in(t, pkt, i, p, fr, key);
        }
        let m = Meta::from_parsed(&p);
        if p.is_ipv4() {
            let mut m = m;
            self.direct_v4_icmp(t, pkt, &mut m, false)?;
        } else {
            self.frag_direct_v6(t, pkt, &p)?;
        }
        if m.ttl <= 1 {
            return Err(Verdict::Drop(DropReason::TtlExceeded));
        }
        let mut c = self.frags.find(&key);
        if c == NONE {
            c = self.frags.insert(&key, now);
            if c == NONE {
                return Err(Verdict::Drop(DropReason::FragTableFull));
            }
        }
        let x = self.frags.ctx[c as usize];
        if !x.ready {
            self.frags.hold(c, pkt.frame(), l3).map_err(Verdict::Drop)?;
            self.frags.account(c, &fr);
            self.counters.frag_held += 1;
            return Err(Verdict::Consumed);
        }
        let a6 = self.frags.a6.get(c as usize).copied().unwrap_or_default();
        let xl = self.xlat_cfg();
        let arrived = m.ip_len();
        translate(pkt, l3, &x, &a6, &xl).map_err(Verdict::Drop)?;
        self.frag_sent(&x, arrived, ip_len(pkt.frame(), l3));
        if self.frags.account(c, &fr) {
            self.frags.remove(c);
        }
        Err(Verdict::Tx { port: x.out_port })
    }

    /// A first fragment (`p`: its L4 header found, past an IPv6 Fragment
    /// header): the L4 header must be all there; then the packet goes on
    /// like any other, its datagram noted for the rewrite stage.
    fn first_fragment_in(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        i: usize,
        mut p: Parsed,
        fr: Frag,
        key: Key,
    ) -> Result<Meta, Verdict> {
        const FRAGMENT: Verdict = Verdict::Drop(DropReason::Fragment);
        let f = pkt.frame();
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let hdr = if p.proto == PROTO_TCP {
            if end - l4 < 20 {
                return Err(FRAGMENT);
            }
            let doff = (f[l4 + 12] >> 4) as usize * 4;
            if doff < 20 || l4 + doff > end {
                return Err(FRAGMENT);
            }
            p.tcp_flags = f[l4 + 13];
            doff
        } else {
            if end - l4 < 8 {
                return Err(FRAGMENT);
            }
            8
        };
        if p.proto == PROTO_ICMP {
            // An echo (the type checked as for a whole packet by
            // `direct_v4`): its identifier is the connection's port.
            p.icmp_type = f[l4];
            let ident = u16::from_be_bytes([f[l4 + 4], f[l4 + 5]]);
            (p.src_port, p.dst_port) = (ident, ident);
        } else {
            p.src_port = u16::from_be_bytes([f[l4], f[l4 + 1]]);
            p.dst_port = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
        }
        p.payload_off = (l4 + hdr) as u16;
        p.payload_len = (end - l4 - hdr) as u16;
        let mut m = Meta::from_parsed(&p);
        m.frag = true;
        if p.is_ipv4() {
            self.direct_v4(t, pkt, &mut m)?;
        } else {
            self.direct_v6(t, pkt, &p, &mut m)?;
        }
        m.frag = true;
        self.frags.first[i] = (key, fr);
        Ok(m)
    }

    /// Direction and checks of a later IPv6 fragment `p`: to a pool6
    /// address from the server side, or from the access side to the NAT64
    /// prefix or an IPv6 VIP (its ports are in the first fragment only, so
    /// any VIP port).
    fn frag_direct_v6(&self, t: &GwTables, pkt: &Pkt<'_>, p: &Parsed) -> Result<(), Verdict> {
        let (port, mac) = (pkt.port, &pkt.frame()[0..6]);
        let our = if port == self.cfg.server_port && self.cfg.pool6.contains(&p.dst) {
            self.cfg.server_mac
        } else if port == self.cfg.access_port
            && (self.cfg.nat64.is_some_and(|n| n.prefix.contains(&p.dst))
                || (!self.cfg.pool6.is_empty() && t.services.is_vip6(&p.dst)))
        {
            self.cfg.access_mac
        } else {
            return Err(Verdict::Drop(DropReason::Fragment));
        };
        if *mac != our {
            return Err(Verdict::Drop(DropReason::NotForUs));
        }
        Ok(())
    }

    /// The translator's settings (NAT64 fragments).
    #[inline]
    fn xlat_cfg(&self) -> XlatConfig {
        self.cfg.nat64.map(|n| n.xlat).unwrap_or_default()
    }

    /// A later fragment of context `x` went out (IP bytes as it arrived,
    /// as it was sent): counters (a connection counts its up packets as
    /// they arrived, its down packets as they were sent, as for the
    /// packets that are not fragments).
    fn frag_sent(&mut self, x: &Ctx, arrived: usize, sent: usize) {
        let ip_len = if x.up { arrived } else { sent };
        self.counters.frag_translated += 1;
        if x.up {
            self.counters.up_pkts += 1;
        } else {
            self.counters.down_pkts += 1;
        }
        // (the connection's own counters, while its entry is still it)
        let Some(h) = self.hot.get_mut(x.e as usize) else {
            return;
        };
        if h.key_port == x.key_port && h.state.is_open() {
            if x.up {
                h.count_up(ip_len);
            } else {
                h.count_down(ip_len);
            }
        }
    }

    /// The rewrite stage sent (`v`) the first fragment `i`: keep its
    /// translation for the rest of the datagram and release what was held
    /// (those that cannot be translated counted in `c`). The verdict (a
    /// drop if no context could be kept).
    pub(in crate::gw) fn first_fragment(
        &mut self,
        pkt: &Pkt<'_>,
        i: usize,
        v: Verdict,
        now: u64,
        c: &mut WorkerCounters,
    ) -> Verdict {
        let Verdict::Tx { port: out_port } = v else {
            return v;
        };
        let m = self.meta[i];
        let (key, fr) = self.frags.first[i];
        let f = pkt.frame();
        let l3 = m.l3 as usize;
        let e = m.e as usize;
        // Only a translation of the packet is kept (not a reply the stage
        // built in its place).
        let Some(h) = self.hot.get(e) else {
            return v;
        };
        let ip4 = f.get(l3 - 2..l3) == Some(&[0x08, 0x00][..]) && f.len() >= l3 + 20;
        let ip6 = f.get(l3 - 2..l3) == Some(&[0x86, 0xdd][..]) && f.len() >= l3 + 40;
        let dst4 = |f: &[u8]| -> [u8; 4] { f[l3 + 16..l3 + 20].try_into().unwrap_or([0; 4]) };
        let dst6 = |f: &[u8]| -> [u8; 16] { f[l3 + 24..l3 + 40].try_into().unwrap_or([0; 16]) };
        let (to_srv, to_sub) = (
            out_port == self.cfg.server_port,
            out_port == self.cfg.access_port,
        );
        let nat66 = h.has(flag::NAT66);
        let nat64 = h.has(flag::V6) && !nat66;
        let mode = match m.kind {
            Kind::Up4 if to_srv && ip4 && dst4(f) == h.srv_ip => Mode::Nat44,
            Kind::Down4 if to_sub && ip4 && !h.has(flag::V6) && dst4(f) == h.sub_ip => Mode::Nat44,
            Kind::Up66 if to_srv && ip6 && nat66 && self.srv6.get(e) == Some(&dst6(f)) => {
                Mode::Nat66
            }
            Kind::Down66 if to_sub && ip6 && nat66 && self.sub6.get(e) == Some(&dst6(f)) => {
                Mode::Nat66
            }
            Kind::Up64 if to_srv && ip4 && nat64 && dst4(f) == h.srv_ip => Mode::Up64,
            Kind::Down4 if to_sub && ip6 && nat64 && self.sub6.get(e) == Some(&dst6(f)) => {
                Mode::Down64
            }
            _ => return v,
        };
        let mut cx = self.frags.find(&key);
        if cx == NONE {
            cx = self.frags.insert(&key, now);
            if cx == NONE {
                return Verdict::Drop(DropReason::FragTableFull);
            }
        } else if self.frags.ctx[cx as usize].ready {
            // (the first fragment again: the translation is the same)
            return v;
        }
        let key_port = h.key_port;
        let x = &mut self.frags.ctx[cx as usize];
        x.ready = true;
        x.mode = mode;
        x.out_port = out_port;
        x.up = m.kind.is_up();
        x.macs.copy_from_slice(&f[0..12]);
        if ip4 {
            x.nsrc.copy_from_slice(&f[l3 + 12..l3 + 16]);
            x.ndst.copy_from_slice(&f[l3 + 16..l3 + 20]);
        } else if let Some(a) = self.frags.a6.get_mut(cx as usize) {
            a[NSRC].copy_from_slice(&f[l3 + 8..l3 + 24]);
            a[NDST].copy_from_slice(&f[l3 + 24..l3 + 40]);
        }
        let x = &mut self.frags.ctx[cx as usize];
        x.e = m.e;
        x.key_port = key_port;
        let x = *x;
        self.counters.frag_first += 1;
        // The held fragments: translated in their slots, to the outbox.
        let a6 = self.frags.a6.get(cx as usize).copied().unwrap_or_default();
        let xl = self.xlat_cfg();
        let mut s = x.held;
        while s != NONE {
            let slot = &mut self.frags.slots[s as usize];
            let (len, sl3, next) = (slot.len as usize, slot.l3 as usize, slot.next);
            let arrived = ip_len(&slot.bytes[..len], sl3);
            let mut sp = Pkt::new(&mut slot.bytes[..], len, out_port);
            match translate(&mut sp, sl3, &x, &a6, &xl) {
                Ok(()) => {
                    // (a header that shrank moved the frame's start)
                    let (off, len) = (sp.headroom(), sp.len());
                    slot.bytes.copy_within(off..off + len, 0);
                    slot.len = len as u16;
                    let sent = ip_len(&slot.bytes[..len], sl3);
                    let n = self.frags.nout as usize;
                    self.frags.out[n] = (s, out_port);
                    self.frags.nout += 1;
                    self.frag_sent(&x, arrived, sent);
                }
                Err(r) => {
                    c.drop(r);
                    self.frags.free_slot(s);
                }
            }
            s = next;
        }
        let cx_ = &mut self.frags.ctx[cx as usize];
        cx_.held = NONE;
        cx_.nheld = 0;
        if self.frags.account(cx, &fr) {
            self.frags.remove(cx);
        }
        v
    }

    /// Hand every released frame (held fragments whose first fragment came)
    /// to `send` (bytes, port), then free their slots. How many.
    pub fn drain_released(&mut self, mut send: impl FnMut(&[u8], PortIdx)) -> usize {
        let n = self.frags.nout as usize;
        for k in 0..n {
            let (s, port) = self.frags.out[k];
            let slot = &self.frags.slots[s as usize];
            send(&slot.bytes[..slot.len as usize], port);
            self.frags.free_slot(s);
        }
        self.frags.nout = 0;
        n
    }

    /// Reassembly contexts live now, and fragments held.
    pub fn frag_state(&self) -> (u32, u32) {
        (self.frags.live(), self.frags.held())
    }

    /// Timer work of the fragments: contexts past `frag_timeout_ms` end.
    pub(in crate::gw) fn frag_expire(&mut self, now: u64, c: &mut WorkerCounters) -> usize {
        self.frags.expire(now, c)
    }
}
