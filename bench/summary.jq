# Turns hyperfine's per-row results ($hf: one .results[0] object per measured row) into
# bench/results/latest.json: figures in milliseconds and each row's median as a ratio of the
# bubblewrap and unshare medians. Called by start-latency.sh.
def ms: . * 1000 | (. * 1000 | round) / 1000;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then null
                   else ($a / $b * 100 | round) / 100 end;
($hf | map({(.command): .median}) | add // {}) as $median
| {
    benchmark: "start latency of a no-op container on one busybox rootfs",
    date: $date,
    host: {kernel: $kernel, cpus: ($cpus | tonumber), user: $user,
          loadavg_1min: ($load | split(" ") | {before: (.[0] | tonumber), after: (.[1] | tonumber)})},
    hyperfine: {version: $hyperfine, runs: ($runs | tonumber), warmup: ($warmup | tonumber)},
    nook_auto_rootfs_mode: (if $auto_mode == "" then null else $auto_mode end),
    goal: {
      figure: "median(nook) / median(bwrap)",
      max: 2.0,
      value: ratio($median.nook; $median.bwrap),
      met: (if $median.nook == null or $median.bwrap == null then null
            else ($median.nook / $median.bwrap) <= 2.0 end)
    },
    rows: [ $hf[] | {
      name: .command,
      command: .full_command,
      median_ms: (.median | ms),
      mean_ms: (.mean | ms),
      stddev_ms: (.stddev | ms),
      min_ms: (.min | ms),
      max_ms: (.max | ms),
      user_ms: (.user | ms),
      system_ms: (.system | ms),
      runs: (.times | length),
      vs_bwrap: ratio(.median; $median.bwrap),
      vs_unshare: ratio(.median; $median.unshare),
      times_ms: [ .times[] | ms ]
    } ],
    failed: $failed
  }
