package monitor

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/nook-containers/nook/internal/proc"
)

// State file of a container in its run directory (lost at reboot, like the run root).
const StateFile = "state.json"

// Status values of State.Status.
const (
	StatusRunning    = "running"
	StatusRestarting = "restarting" // ended, and its restart policy starts it again soon
	StatusExited     = "exited"
)

// State is what the process watching a container (the monitor, or the engine of a foreground
// run) records about it. It is replaced atomically (write, then rename), so a reader always
// sees a whole state.
type State struct {
	Status       string    `json:"status"`
	MonitorPid   int       `json:"monitorPid"`
	MonitorStart string    `json:"monitorStart"`  // start time of MonitorPid, against pid reuse
	Pid          int       `json:"pid,omitempty"` // the container's init, as the host sees it
	Started      time.Time `json:"started,omitzero"`
	Finished     time.Time `json:"finished,omitzero"`
	ExitCode     int       `json:"exitCode"`
	Restarts     int       `json:"restarts,omitempty"`
	Detached     bool      `json:"detached,omitempty"` // watched by a monitor with an attach socket
}

// ReadState reads dir's state file; a missing file is (nil, nil).
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WriteState replaces dir's state file.
func WriteState(dir string, s *State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, StateFile)); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// MonitorAlive tells whether the process that wrote s still runs.
func (s *State) MonitorAlive() bool {
	return s != nil && proc.Alive(s.MonitorPid, s.MonitorStart)
}
