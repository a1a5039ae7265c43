package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/localapi/client"
)

// topology is what drive (make e2e) and fleet (make fleet) share: the run's
// label and network, the work directory, the images, the dev PKI with a
// second DemoApp certificate for the rotation, and the fake CCP replicas.
type topology struct {
	kind                 string // "e2e" or "fleet": names, label and work directory
	run, net, work, bin  string
	agentImage, ccpImage string
	ccpEntrypoint        string
	pki                  *fakeccp.DevPKI
	app2                 tls.Certificate // authorised in the fixture next to the PKI's own
	app2P12, app2Serial  string
	ccps                 []string // replica container names
	http                 *http.Client
}

func newTopology(kind string) topology {
	return topology{kind: kind, http: &http.Client{Timeout: 5 * time.Second}}
}

// flags registers the flags every command of the topology takes.
func (t *topology) flags(fs *flag.FlagSet) {
	fs.StringVar(&t.bin, "bin", "bin", "directory of credagent, credseal and fakeccp")
	fs.StringVar(&t.run, "run", "", "run ID (labels every container and network)")
	fs.StringVar(&t.agentImage, "agent-image", "", "agent image")
	fs.StringVar(&t.ccpImage, "ccp-image", "", "fake CCP image")
}

// label is the label of every container and network of the run.
func (t *topology) label() string { return "credagent." + t.kind + "=" + t.run }

// name is a container's name in the run.
func (t *topology) name(what string) string { return t.kind + "-" + t.run + "-" + what }

// start checks the flags and makes the work directory; the returned
// context ends after budget, and stop removes the containers, the network
// and (unless keep) the work directory.
func (t *topology) start(budget time.Duration, keep bool) (ctx context.Context, stop func(), err error) {
	if t.run == "" || t.agentImage == "" || t.ccpImage == "" {
		return nil, nil, fmt.Errorf("%s: --run, --agent-image and --ccp-image are required", t.kind)
	}
	if t.work, err = os.MkdirTemp("", "credagent-"+t.kind+"-"); err != nil {
		return nil, nil, err
	}
	if keep {
		fmt.Println("work directory:", t.work)
	}
	t.net = t.kind + "-" + t.run
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	return ctx, func() {
		cancel()
		t.cleanup()
		if !keep {
			os.RemoveAll(t.work)
		}
	}, nil
}

// cleanup removes every container and the network of the run.
func (t *topology) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ids, _ := docker(ctx, "ps", "-aq", "--filter", "label="+t.label())
	if ids != "" {
		docker(ctx, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	// The network goes once the last endpoint is released, which can lag
	// behind rm -f of a hundred containers.
	for range 10 {
		if _, err := docker(ctx, "network", "rm", t.net); err == nil {
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// network creates the run's private network (no route out).
func (t *topology) network(ctx context.Context) error {
	_, err := docker(ctx, "network", "create", "--internal", "--label", t.label(), t.net)
	return err
}

// preparePKI makes the dev PKI with the server names given, a second
// DemoApp certificate (app2, also as a PKCS#12 file) and the fake's
// fixture authorising both, and writes the replicas' directory: only what
// a CCP holds (its certificate and key, the client CA, the fixture), no
// application key. It returns the directory and the fixture.
func (t *topology) preparePKI(ctx context.Context, names ...string) (ccpDir string, fixture []byte, err error) {
	ep, err := docker(ctx, "image", "inspect", "-f", "{{index .Config.Entrypoint 0}}", t.ccpImage)
	if err != nil || ep == "" {
		return "", nil, fmt.Errorf("the fake CCP image has no entrypoint: %v", err)
	}
	t.ccpEntrypoint = ep
	if t.pki, err = fakeccp.EnsureDevPKI(filepath.Join(t.work, "pki"), names...); err != nil {
		return "", nil, err
	}
	if t.app2, err = t.pki.MintClientCert(fakeccp.ClientCertOptions{CommonName: "DemoApp"}); err != nil {
		return "", nil, err
	}
	t.app2Serial = t.app2.Leaf.SerialNumber.Text(16)
	p12, err := fakeccp.EncodeP12(t.app2, nil, fakeccp.DevP12Password)
	if err != nil {
		return "", nil, err
	}
	t.app2P12 = filepath.Join(t.work, "pki", "app2.p12")
	if err := os.WriteFile(t.app2P12, p12, 0o600); err != nil {
		return "", nil, err
	}
	fix, err := fakeccp.RenderDevFixture(t.pki.AppSerial)
	if err != nil {
		return "", nil, err
	}
	fix = bytes.Replace(fix, []byte(`["`+t.pki.AppSerial+`"]`), []byte(`["`+t.pki.AppSerial+`", "`+t.app2Serial+`"]`), 1)
	if !bytes.Contains(fix, []byte(t.app2Serial)) {
		return "", nil, errors.New("could not add the second serial to the fixture")
	}
	ccpDir = filepath.Join(t.work, "ccp")
	if err := os.MkdirAll(ccpDir, 0o755); err != nil {
		return "", nil, err
	}
	files := map[string]string{t.pki.CAFile: "ca.pem", t.pki.ServerCertFile: "server.crt", t.pki.ServerKeyFile: "server.key"}
	for src, dst := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(filepath.Join(ccpDir, dst), b, 0o644); err != nil {
			return "", nil, err
		}
	}
	return ccpDir, fix, os.WriteFile(filepath.Join(ccpDir, "fixture.yaml"), fix, 0o644)
}

// startCCP starts replica i (1-based; host and alias ccpI) serving from
// dir, with the extra arguments given.
func (t *topology) startCCP(ctx context.Context, i int, dir string, extra ...string) error {
	name, alias := t.name(fmt.Sprintf("ccp%d", i)), fmt.Sprintf("ccp%d", i)
	args := []string{"run", "-d", "--name", name, "--hostname", alias, "--network", t.net, "--network-alias", alias,
		"--label", t.label(), "-v", dir + ":/ccp:ro", "--entrypoint", t.ccpEntrypoint, t.ccpImage,
		"serve", "--config", "/ccp/fixture.yaml", "--tls-cert", "/ccp/server.crt", "--tls-key", "/ccp/server.key",
		"--client-ca", "/ccp/ca.pem", "--listen", "0.0.0.0:8443", "--admin", "0.0.0.0:8444"}
	if _, err := docker(ctx, append(args, extra...)...); err != nil {
		return err
	}
	t.ccps = append(t.ccps, name)
	return nil
}

// step is one scenario of a report.
type step struct {
	name string
	fn   func(context.Context) (string, error)
}

// steps runs each step in turn, reporting each.
func (r *report) steps(ctx context.Context, ss []step) {
	for _, s := range ss {
		r.step(s.name, func() (string, error) { return s.fn(ctx) })
	}
}

// report collects the summary.
type report struct {
	start  time.Time
	rows   []row
	failed int
}

type row struct {
	name, detail string
	ok           bool
	took         time.Duration
}

func (r *report) step(name string, fn func() (string, error)) error {
	fmt.Printf("== %s\n", name)
	start := time.Now()
	detail, err := fn()
	rw := row{name: name, detail: detail, ok: err == nil, took: time.Since(start)}
	if err != nil {
		r.failed++
		rw.detail = err.Error()
		fmt.Printf("   FAIL (%v): %v\n", rw.took.Round(time.Millisecond), err)
	} else {
		fmt.Printf("   pass (%v): %s\n", rw.took.Round(time.Millisecond), detail)
	}
	r.rows = append(r.rows, rw)
	return err
}

// result prints the summary and says whether a step failed.
func (r *report) result() error {
	fmt.Printf("\n%-4s  %8s  %-70s  %s\n", "", "time", "scenario", "detail")
	for _, rw := range r.rows {
		res := "pass"
		if !rw.ok {
			res = "FAIL"
		}
		fmt.Printf("%-4s  %7.1fs  %-70s  %s\n", res, rw.took.Seconds(), rw.name, rw.detail)
	}
	fmt.Printf("\ntotal %.1fs, %d of %d steps passed\n", time.Since(r.start).Seconds(), len(r.rows)-r.failed, len(r.rows))
	if r.failed > 0 {
		return fmt.Errorf("%d of %d steps failed", r.failed, len(r.rows))
	}
	return nil
}

// eachClient runs fn for each of the socket paths at once, each with a
// client of its own, and returns fn's errors in order.
func eachClient(sockets []string, fn func(i int, c *client.Client) error) []error {
	errs := make([]error, len(sockets))
	var wg sync.WaitGroup
	for i, s := range sockets {
		wg.Go(func() {
			c := client.New(s)
			defer c.Close()
			errs[i] = fn(i, c)
		})
	}
	wg.Wait()
	return errs
}
