package monitor

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// idleMemoryLimit is the heap size at which an idle monitor's collector runs.
const idleMemoryLimit = 8 << 20

// trimMemory is for a monitor that stays in Go while its container runs (no nook-idle next to
// nook-runtime, or a network that lives in its threads: idle_linux.go); one that goes idle
// leaves its Go pages behind with the exec instead. It gives back what the monitor needed only
// to start the container:
// the heap it no longer uses, and the mappings of its binary's read-only segments (code and
// constants). The kernel maps a whole window of a file around each page a process touches
// (fault-around), so after start-up nearly all of nook-runtime is mapped; dropping those
// mappings (MADV_DONTNEED on a read-only file mapping only unmaps clean page-cache pages, which
// the next touch maps again) leaves mapped what the idle loop uses. Writable mappings are never
// touched: MADV_DONTNEED would discard their private changes.
//
// Then the collector runs only when the heap nears a limit, never on a timer: the runtime forces
// a collection every two minutes otherwise, and scanning the stacks reads the binary's PC
// tables, which maps most of its read-only data again (about 1.4 MB, where the whole idle
// monitor needs about 1 MB). A chatty container's output still gets collected, at the limit.
func trimMemory() {
	debug.FreeOSMemory()
	debug.SetMemoryLimit(idleMemoryLimit)
	debug.SetGCPercent(-1)
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
