//! pgw's benchmark suite and subscriber traffic generator (issue 6).
//!
//! Not written yet: this binary only says so, so that nobody mistakes it for
//! a benchmark. Until it exists there are no performance figures for pgw.

fn main() {
    eprintln!("pgw-perf: the benchmark suite is not implemented yet (see issue 6); no figures are produced");
    std::process::exit(2);
}
