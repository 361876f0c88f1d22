# Shell helpers sourced by scripts/bench.sh and perf/e2e.sh: how busy this
# (shared) machine is, so that a benchmark waits for quiet and says who was
# busy.

# CPU idle share (%) of the whole machine over the next second.
cpu_idle_pct() {
    local a1 a2 a3 a4 a5 a6 a7 a8 b1 b2 b3 b4 b5 b6 b7 b8
    read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ < /proc/stat
    sleep 1
    read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ < /proc/stat
    local ta=$((a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8)) tb=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8))
    echo $((100 * (b4 - a4) / (tb - ta > 0 ? tb - ta : 1)))
}

# The three processes taking the most CPU (over 5 %), as "comm pct% ...".
busiest_processes() {
    ps -eo pcpu,comm --sort=-pcpu | awk 'NR>1 && $1>5 {print $2" "$1"%"}' | head -3 | tr '\n' ' '
}
