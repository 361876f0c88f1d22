//! The management thread: serves the control socket and takes the frames
//! workers hand it (`Verdict::Control`) off the control ring.
//!
//! It is not an EAL lcore: it is a plain thread pinned with `core_affinity`
//! to `[cores] management` when the profile names one. It never blocks a
//! worker: workers only ever enqueue to its ring (and count a full ring).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::app::{Engine, EngineError, Info};
use crate::control;
use crate::dpdk::{Burst, Ring, MAX_BURST};

pub struct Management {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    socket: PathBuf,
}

impl Management {
    pub fn start(e: &Engine) -> Result<Management, EngineError> {
        let info: Arc<Info> = e.info().clone();
        let ring: Arc<Ring> = e.control.clone().expect("control ring");
        let socket = e.profile.control_socket();
        let listener = control::bind(&socket)
            .map_err(|err| EngineError(format!("control socket {}: {err}", socket.display())))?;
        let core = e.profile.cores.management;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("pgw-mgmt".into())
            .spawn(move || {
                if let Some(c) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: c as usize }) {
                        eprintln!("pgw: could not pin the management thread to CPU {c}");
                    }
                }
                while !stop2.load(Relaxed) {
                    let mut b = Burst::new();
                    let n = b.dequeue(&ring, MAX_BURST);
                    if n > 0 {
                        info.control_rx.fetch_add(n as u64, Relaxed);
                        // Gateway roles parse these (ARP replies, probe answers);
                        // the wire role has none to handle: they are freed.
                        drop(b);
                        continue;
                    }
                    control::serve_pending(&listener, |req| match req {
                        "stats" => serde_json::to_string(&info.report()).unwrap_or_default(),
                        other => format!("{{\"error\":\"unknown request {other:?}; try: stats\"}}"),
                    });
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
            .map_err(|err| EngineError(format!("spawning the management thread: {err}")))?;
        Ok(Management {
            stop,
            handle: Some(handle),
            socket,
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}
