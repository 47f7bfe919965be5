package engine

import (
	"strings"
	"testing"
)

func TestConnectTo(t *testing.T) {
	ctr := func(state string, nw *network) *Container {
		return &Container{ID: "0123456789ab", Record: Record{Name: "c", State: state, Net: nw}}
	}
	nw, err := connectTo(ctr(StateExited, &network{Mode: NetSlirp, Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}}), "lab", []string{"db"})
	if err != nil || nw.Bridge != "lab" || nw.Mode != NetSlirp || len(nw.Aliases) != 1 || len(nw.Ports) != 1 {
		t.Errorf("connect a stopped slirp4netns container: %+v, %v", nw, err)
	}
	if nw, err := connectTo(ctr(StateCreated, &network{Mode: NetPasta}), "lab", nil); err != nil || nw.Bridge != "lab" || nw.Mode != NetPasta {
		t.Errorf("connect a created pasta container: %+v, %v", nw, err)
	}
	refused := []struct {
		c    *Container
		want string
	}{
		{ctr(StateRunning, &network{Mode: NetSlirp}), "stop it"},
		{ctr(StateRestarting, &network{Mode: NetSlirp}), "stop it"},
		{ctr(StateRunning, &network{Mode: NetSlirp, Bridge: "lab"}), "already exists in network lab"},
		{ctr(StateExited, &network{Mode: NetSlirp, Bridge: "lab"}), "already exists in network lab"},
		{ctr(StateExited, &network{Mode: NetSlirp, Bridge: "other"}), "disconnect it first"},
		{ctr(StateExited, &network{Mode: NetHost}), "host's network"},
		{ctr(StateExited, &network{Mode: NetNone}), "--network none"},
		{ctr(StateExited, nil), "--network none"},
	}
	for _, r := range refused {
		if _, err := connectTo(r.c, "lab", nil); err == nil || !strings.Contains(err.Error(), r.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("connect %s %+v: %v, want one line saying %q", r.c.State, r.c.Net, err, r.want)
		}
	}
}

func TestDisconnectFrom(t *testing.T) {
	c := &Container{Record: Record{Name: "c", State: StateExited, Net: &network{Mode: NetSlirp, Bridge: "lab", Aliases: []string{"db"}}}}
	nw, err := disconnectFrom(c, "lab")
	if err != nil || nw.Bridge != "" || nw.Aliases != nil || nw.Mode != NetSlirp || c.Net.Bridge != "lab" {
		t.Errorf("disconnect a stopped member: %+v, %v (record %+v)", nw, err, c.Net)
	}
	if _, err := disconnectFrom(c, "other"); err == nil || !strings.Contains(err.Error(), "is not connected to network other") {
		t.Errorf("disconnect from a network it is not on: %v", err)
	}
	c.State = StateRunning
	if _, err := disconnectFrom(c, "lab"); err == nil || !strings.Contains(err.Error(), "stop it") {
		t.Errorf("disconnect a running member: %v", err)
	}
}
