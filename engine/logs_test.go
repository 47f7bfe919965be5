package engine

import (
	"testing"
	"time"

	"github.com/nook-containers/nook/monitor"
)

func TestParseLogTime(t *testing.T) {
	loc := time.FixedZone("X", 2*3600)
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, loc)
	for in, want := range map[string]time.Time{
		"10m":                           now.Add(-10 * time.Minute),
		"1h30m":                         now.Add(-90 * time.Minute),
		"-5s":                           now.Add(5 * time.Second),
		"2024-03-10T10:00:00Z":          time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC),
		"2024-03-10T10:00:00.5Z":        time.Date(2024, 3, 10, 10, 0, 0, 5e8, time.UTC),
		"2024-03-10T10:00:00+01:00":     time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC),
		"2024-03-10T10:00:00-01:00":     time.Date(2024, 3, 10, 11, 0, 0, 0, time.UTC),
		"2024-03-10T10:00Z":             time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC),
		"2024-03-10T10Z":                time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC),
		"2024-03-10T10:00:00":           time.Date(2024, 3, 10, 10, 0, 0, 0, loc),
		"2024-03-10T10:00":              time.Date(2024, 3, 10, 10, 0, 0, 0, loc),
		"2024-03-10T10":                 time.Date(2024, 3, 10, 10, 0, 0, 0, loc),
		"2024-03-10T10:00:00.123456789": time.Date(2024, 3, 10, 10, 0, 0, 123456789, loc),
		"2024-03-10":                    time.Date(2024, 3, 10, 0, 0, 0, 0, loc),
		"2024-03-10Z":                   time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC),
		"1710064800":                    time.Unix(1710064800, 0),
		"1710064800.25":                 time.Unix(1710064800, 25e7),
		"1710064800.000000001":          time.Unix(1710064800, 1),
		"0":                             time.Unix(0, 0),
		"2024-03-10T10:00:00.5+01:00":   time.Date(2024, 3, 10, 9, 0, 0, 5e8, time.UTC),
	} {
		got, err := ParseLogTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseLogTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "10x", "2024-13-01", "2024-03-10T25:00:00Z", "1710064800.", "1.2.3", "12:00"} {
		if got, err := ParseLogTime(bad, now); err == nil {
			t.Errorf("ParseLogTime(%q) = %v, want an error", bad, got)
		}
	}
}

func TestLogsWithin(t *testing.T) {
	at := func(s string) monitor.LogLine { return monitor.LogLine{Time: s} }
	since := time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC)
	until := since.Add(time.Minute)
	o := LogsOptions{Since: since, Until: until}
	for ts, want := range map[string]bool{
		"2024-03-10T09:59:59.999999999Z": false,
		"2024-03-10T10:00:00Z":           true,
		"2024-03-10T10:00:30.5Z":         true,
		"2024-03-10T10:01:00Z":           true,
		"2024-03-10T10:01:00.000000001Z": false,
		"garbled":                        true,
	} {
		if got := o.within(at(ts)); got != want {
			t.Errorf("within(%s) = %v, want %v", ts, got, want)
		}
	}
	if !(&LogsOptions{}).within(at("2024-03-10T10:00:00Z")) {
		t.Error("no bounds: a line is outside")
	}
}
