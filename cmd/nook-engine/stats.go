package main

import (
	"fmt"
	"os"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nook-containers/nook/engine"
)

// statsInterval is how often `nook stats` samples and redraws, as Docker's CLI.
const statsInterval = 500 * time.Millisecond

// statsRow is one row of `nook stats`, with the fields of Docker's --format templates.
type statsRow struct {
	Container string `json:"Container"` // as the user named it (ID or name), else the short ID
	ID        string `json:"ID"`
	Name      string `json:"Name"`
	CPUPerc   string `json:"CPUPerc"`
	MemUsage  string `json:"MemUsage"`
	MemPerc   string `json:"MemPerc"`
	NetIO     string `json:"NetIO"`
	BlockIO   string `json:"BlockIO"`
	PIDs      string `json:"PIDs"`
}

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

const statsTable = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

func newStatsCmd() *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	c := engineCmd(&cobra.Command{
		Use:   "stats [CONTAINER...]",
		Short: "Show containers' resource usage, refreshed until interrupted (--no-stream: once)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = "table"
			}
			out := cmd.OutOrStdout()
			redraw := !noStream && term.IsTerminal(int(os.Stdout.Fd()))
			return withEngine(func(e *engine.Engine) error {
				s, err := e.NewStatsSampler(args, all)
				if err != nil {
					return err
				}
				if _, err := s.Sample(); err != nil { // CPU % is over the next interval
					return err
				}
				for {
					time.Sleep(statsInterval)
					st, err := s.Sample()
					if err != nil {
						return err
					}
					rows := make([]any, 0, len(st))
					for _, x := range st {
						rows = append(rows, statsRowOf(x, noTrunc))
					}
					if redraw {
						fmt.Fprint(out, "\033[2J\033[H") // clear the terminal, as Docker does
					}
					if err := renderRows(out, format, statsTable, statsHeaders, rows); err != nil {
						return err
					}
					if noStream {
						return nil
					}
				}
			})
		},
	})
	f := c.Flags()
	f.BoolVarP(&all, "all", "a", false, "show every container (only the running ones by default)")
	f.BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	f.StringVar(&format, "format", "", "format the output: table, table TEMPLATE, json, or a Go template ({{.Name}}, {{.CPUPerc}}, {{.MemUsage}}, ...)")
	return c
}

func statsRowOf(s engine.ContainerStats, noTrunc bool) statsRow {
	id := s.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	r := statsRow{Container: id, ID: id, Name: s.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%",
		NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
	if s.Ref != "" {
		r.Container = s.Ref
	}
	if !s.Running {
		return r
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", s.CPUPercent)
	r.MemUsage = units.BytesSize(float64(s.MemUsage)) + " / " + units.BytesSize(float64(s.MemLimit))
	if s.MemLimit > 0 {
		r.MemPerc = fmt.Sprintf("%.2f%%", float64(s.MemUsage)/float64(s.MemLimit)*100)
	}
	r.NetIO = netSize(s.NetRx) + " / " + netSize(s.NetTx)
	r.BlockIO = netSize(s.BlockRead) + " / " + netSize(s.BlockWrite)
	r.PIDs = fmt.Sprint(s.Pids)
	return r
}

// netSize is how Docker's NET I/O and BLOCK I/O columns print a byte count (go-units,
// three significant digits); MEM USAGE uses binary units (units.BytesSize).
func netSize(n uint64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
