package front

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args    string
		ok      bool
		path    string
		network string
		globals Globals
	}{
		{"run --rm demo true", true, "run", "", Globals{}},
		{"run --rm -it demo sh", true, "run", "", Globals{}},
		{"run -p8080:80 -e A=1 --name web --network lab demo httpd", true, "run", "lab", Globals{}},
		{"run --network=lab demo", true, "run", "lab", Globals{}},
		{"run --net none demo", true, "run", "none", Globals{}},
		{"container create -h box --network lab demo", true, "container create", "", Globals{}},
		// run's flags end at the image: what follows is the container's.
		{"run demo sh -c --help", true, "run", "", Globals{}},
		{"run demo --network lab", true, "run", "", Globals{}},
		{"--root /r --runroot=/rr run demo", true, "run", "", Globals{Root: "/r", RunRoot: "/rr"}},
		{"run --rootfs-mode copy demo", true, "run", "", Globals{RootfsMode: "copy"}},
		{"ps -a", true, "ps", "", Globals{}},
		{"container ls -aq", true, "container ls", "", Globals{}},
		{"image ls", true, "image ls", "", Globals{}},
		{"rm -f web", true, "rm", "", Globals{}},
		{"create --network lab demo", true, "create", "", Globals{}}, // only run joins from the CLI
		// Left to the engine binary (cobra).
		{"", false, "", "", Globals{}},
		{"--help", false, "", "", Globals{}},
		{"--version", false, "", "", Globals{}},
		{"run --help", false, "", "", Globals{}},
		{"ps -h", false, "", "", Globals{}},
		{"run --bogus demo", false, "", "", Globals{}},
		{"run -Z demo", false, "", "", Globals{}},
		{"login localhost:5000", false, "", "", Globals{}},
		{"network ls", false, "", "", Globals{}},
		{"container", false, "", "", Globals{}},
		{"container --help", false, "", "", Globals{}},
		{"bogus", false, "", "", Globals{}},
		{"run --name", false, "", "", Globals{}},
		{"--root", false, "", "", Globals{}},
	} {
		inv, ok := Parse(strings.Fields(tc.args))
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.args, ok)
			continue
		}
		if !ok {
			continue
		}
		if inv.Path != tc.path || inv.Network != tc.network || inv.Globals != tc.globals {
			t.Errorf("%q: got %+v", tc.args, inv)
		}
	}
}

// Whatever the command line, Parse neither panics nor claims a command the engine binary would
// not run in the user namespace.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"run --rm -it demo sh", "--root /r ps -a", "container run -p8080:80 --network=lab x", "run -e", "image ls --format {{.ID}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inv, ok := Parse(strings.Split(s, " "))
		if !ok {
			return
		}
		c, found := Table[inv.Path]
		if !found || !c.Engine || c.Group {
			t.Fatalf("%q: parsed as %q, which the engine binary does not run in the user namespace", s, inv.Path)
		}
	})
}
