package engine

import (
	"strings"
	"testing"
	"time"
)

func TestParseContainerFilter(t *testing.T) {
	good := []string{"status=exited", "status=created", "status=dead", "name=web", "id=abc", "exited=0",
		"exited=137", "label=a", "label=a=b", "label!=a", "ancestor=demo", "before=x", "since=y",
		"volume=data", "network=none", "Status=running"}
	for _, g := range good {
		if _, err := ParseContainerFilter([]string{g}, false); err != nil {
			t.Errorf("ParseContainerFilter(%q): %v", g, err)
		}
	}
	for bad, words := range map[string]string{
		"status":         "KEY=VALUE",
		"status=stopped": "status=stopped",
		"exited=x":       "exit code",
		"exited=-1":      "exit code",
		"color=red":      "invalid filter",
		"until=1h":       "invalid filter", // prune only
		"name=":          "give a value",
	} {
		_, err := ParseContainerFilter([]string{bad}, false)
		if err == nil || !strings.Contains(err.Error(), words) {
			t.Errorf("ParseContainerFilter(%q): %v, want an error with %q", bad, err, words)
		}
	}
	for _, g := range []string{"until=24h", "until=2024-01-02T15:04:05Z", "label=a=b", "label!=a"} {
		if _, err := ParseContainerFilter([]string{g}, true); err != nil {
			t.Errorf("prune filter %q: %v", g, err)
		}
	}
	for _, bad := range []string{"status=exited", "until=soon", "name=x"} {
		if _, err := ParseContainerFilter([]string{bad}, true); err == nil {
			t.Errorf("prune filter %q: no error", bad)
		}
	}
}

func TestContainerFilterMatches(t *testing.T) {
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	web := Container{ID: "abcdef0123", Record: Record{Name: "web", State: StateRunning,
		Labels: map[string]string{"tier": "front", "x": ""}, Net: &network{Mode: NetSlirp}, Created: now.Add(-time.Hour)}}
	db := Container{ID: "0123abcdef", Record: Record{Name: "db1", State: StateExited, ExitCode: 3,
		Labels: map[string]string{"tier": "back"}, Net: &network{Mode: NetNone}, Created: now.Add(-48 * time.Hour)}}
	fresh := Container{ID: "fedcba9876", Record: Record{Name: "myweb2", State: StateCreated, Created: now}}
	cs := []Container{web, db, fresh}
	for _, tc := range []struct {
		terms []string
		want  string
	}{
		{nil, "web db1 myweb2"},
		{[]string{"status=running"}, "web"},
		{[]string{"status=running", "status=exited"}, "web db1"}, // one key: OR
		{[]string{"status=running", "name=db"}, ""},              // two keys: AND
		{[]string{"name=web"}, "web myweb2"},                     // Docker: a regular expression
		{[]string{"name=^web$"}, "web"},
		{[]string{"name=^/web$"}, "web"},
		{[]string{"id=abc"}, "web db1"},
		{[]string{"id=^abc"}, "web"},
		{[]string{"exited=3"}, "db1"},
		{[]string{"exited=0"}, ""},
		{[]string{"label=tier"}, "web db1"},
		{[]string{"label=tier=front"}, "web"},
		{[]string{"label=tier=front", "label=x"}, "web"}, // label terms: all must hold
		{[]string{"label=tier=front", "label=tier=back"}, ""},
		{[]string{"label=x="}, "web"},
		{[]string{"label!=tier=front"}, "db1 myweb2"},
		{[]string{"network=none"}, "db1"},
		{[]string{"network=slirp4netns", "network=none"}, "web db1"},
	} {
		f, err := ParseContainerFilter(tc.terms, false)
		if err != nil {
			t.Fatalf("%v: %v", tc.terms, err)
		}
		var got []string
		for i := range cs {
			if f.matches(&cs[i], now) {
				got = append(got, cs[i].Name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("filter %v: %q, want %q", tc.terms, strings.Join(got, " "), tc.want)
		}
	}
	f, _ := ParseContainerFilter([]string{"until=24h"}, true)
	for c, want := range map[*Container]bool{&web: false, &db: true, &fresh: false} {
		if f.matches(c, now) != want {
			t.Errorf("until=24h on %s: want %v", c.Name, want)
		}
	}
}

func TestLatestAndFindIn(t *testing.T) {
	now := time.Now()
	cs := []Container{
		{ID: "aa1", Record: Record{Name: "old", Created: now.Add(-2 * time.Hour)}},
		{ID: "aa2", Record: Record{Name: "new", Created: now}},
		{ID: "bb3", Record: Record{Name: "mid", Created: now.Add(-time.Hour)}},
	}
	if got := LatestContainers(append([]Container{}, cs...), 2); len(got) != 2 || got[0].Name != "new" || got[1].Name != "mid" {
		t.Errorf("LatestContainers 2: %v", got)
	}
	if got := LatestContainers(append([]Container{}, cs...), 0); len(got) != 3 {
		t.Errorf("LatestContainers 0: %d, want all", len(got))
	}
	if c, err := findIn(cs, "bb"); err != nil || c.Name != "mid" {
		t.Errorf("findIn bb: %v %v", c, err)
	}
	if _, err := findIn(cs, "aa"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("findIn aa: %v", err)
	}
	if _, err := findIn(cs, "zz"); err == nil {
		t.Error("findIn zz: no error")
	}
}
