package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/secret"
)

// fleet is the feed scenario at scale (make fleet; a small version in make
// e2e): a feed on a static HTTPS server, two CCP replicas, N agents that
// pull their deliveries from the feed. It measures propagation of a rotated
// certificate and a new credential, the cost of idle polls, the CCP rate
// when the fleet resolves at once and after an outage, and a revocation
// reaching every agent.
type fleetEnv struct {
	run, net, work, bin    string
	agentImage, ccpImage   string
	feedImage, feedKind    string // nginx, or the e2e runner's own static server
	ccpEntrypoint          string
	n                      int
	poll                   time.Duration
	pki                    *fakeccp.DevPKI
	signer                 crypto.Signer
	pub                    *portal.Feed
	group                  *ecdh.PrivateKey
	agents, dirs, machines []string
	ccps                   []string
	feedName               string
	seq                    uint64
	app2P12                string
	app2Serial             string
	http                   *http.Client
	results                map[string]figure
}

type figure struct {
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Goal   string  `json:"goal,omitempty"`
	Met    *bool   `json:"met,omitempty"`
	Method string  `json:"method"`
}

const fleetGroup = "rpa-fleet"

func fleet(args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	e := &fleetEnv{http: &http.Client{Timeout: 5 * time.Second}, results: map[string]figure{}}
	fs.StringVar(&e.bin, "bin", "bin", "directory of credagent, credseal and fakeccp")
	fs.StringVar(&e.run, "run", "", "run ID (labels every container and network)")
	fs.StringVar(&e.agentImage, "agent-image", "", "agent image")
	fs.StringVar(&e.ccpImage, "ccp-image", "", "fake CCP image")
	fs.StringVar(&e.feedImage, "feed-image", "", "the feed server's image")
	fs.StringVar(&e.feedKind, "feed-server", "nginx", "nginx (Debian's, from --feed-image) or static (the runner's own file server, in --agent-image)")
	fs.IntVar(&e.n, "agents", 100, "how many agents")
	fs.DurationVar(&e.poll, "poll", 10*time.Second, "the agents' feed.poll_interval")
	resultsFile := fs.String("results", "", "merge the figures into this JSON file (bench/results.json)")
	budget := fs.Duration("budget", 15*time.Minute, "give up after this long")
	keep := fs.Bool("keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if e.run == "" || e.agentImage == "" || e.ccpImage == "" || (e.feedKind == "nginx" && e.feedImage == "") {
		return errors.New("fleet: --run, --agent-image, --ccp-image and (for nginx) --feed-image are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *budget)
	defer cancel()
	var err error
	if e.work, err = os.MkdirTemp("", "credagent-fleet-"); err != nil {
		return err
	}
	if *keep {
		fmt.Println("work directory:", e.work)
	} else {
		defer os.RemoveAll(e.work)
	}
	e.net = "fleet-" + e.run
	defer e.cleanup()
	rep := &report{start: time.Now()}
	if err := rep.step(fmt.Sprintf("setup: %s feed server, 2 CCP replicas, %d agents polling every %v", e.feedKind, e.n, e.poll), func() (string, error) { return e.setup(ctx) }); err != nil {
		rep.print()
		return errors.New("setup failed")
	}
	for _, s := range []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"every agent resolves at once", e.scBurst},
		{"publish a rotated application certificate: propagation", e.scRotate},
		{"publish a new credential: propagation", e.scNewCredential},
		{"idle: requests and bytes per poll", e.scIdle},
		{"CCP outage and return: the request rate", e.scOutage},
		{"publish a revocation: it reaches every agent", e.scRevoke},
	} {
		rep.step(s.name, func() (string, error) { return s.fn(ctx) })
	}
	rep.print()
	if rep.failed > 0 {
		return fmt.Errorf("%d of %d steps failed", rep.failed, len(rep.rows))
	}
	if *resultsFile != "" {
		return e.writeResults(*resultsFile)
	}
	return nil
}

func (e *fleetEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ids, _ := docker(ctx, "ps", "-aq", "--filter", "label=credagent.fleet="+e.run)
	if ids != "" {
		docker(ctx, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	// The network goes once the last endpoint is released, which can lag
	// behind rm -f of a hundred containers.
	for i := 0; i < 10; i++ {
		if _, err := docker(ctx, "network", "rm", e.net); err == nil {
			return
		}
		time.Sleep(2 * time.Second)
	}
}

const nginxConf = `user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
	log_format fleet '$msec $status $bytes_sent $request_uri';
	access_log /log/access.log fleet;
	keepalive_requests 100000;
	server {
		listen 443 ssl;
		ssl_certificate /tls/server.crt;
		ssl_certificate_key /tls/server.key;
		root /srv;
		etag on;
		location / { }
	}
}
`

func (e *fleetEnv) fleetAgentConfig() string {
	return fmt.Sprintf(`log:
  level: warn
  format: json
inbox:
  rescan_interval: 1h
api:
  rate_per_second: 5000
  rate_burst: 5000
ccp:
  connect_timeout: 1s
  tls_timeout: 2s
  request_timeout: 2s
  retries: 2
  retry_backoff: 200ms
feed:
  urls: [https://feed/]
  ca_file: /agent/feed-ca.pem
  poll_interval: %s
  timeout: 10s
`, e.poll)
}

func (e *fleetEnv) setup(ctx context.Context) (string, error) {
	ep, err := docker(ctx, "image", "inspect", "-f", "{{index .Config.Entrypoint 0}}", e.ccpImage)
	if err != nil || ep == "" {
		return "", fmt.Errorf("the fake CCP image has no entrypoint: %v", err)
	}
	e.ccpEntrypoint = ep
	if e.pki, err = fakeccp.EnsureDevPKI(filepath.Join(e.work, "pki"), "ccp1", "ccp2", "feed"); err != nil {
		return "", err
	}
	app2, err := e.pki.MintClientCert(fakeccp.ClientCertOptions{CommonName: "DemoApp"})
	if err != nil {
		return "", err
	}
	e.app2Serial = app2.Leaf.SerialNumber.Text(16)
	p12, err := fakeccp.EncodeP12(app2, nil, fakeccp.DevP12Password)
	if err != nil {
		return "", err
	}
	e.app2P12 = filepath.Join(e.work, "pki", "app2.p12")
	os.WriteFile(e.app2P12, p12, 0o600)
	fix, err := fakeccp.RenderDevFixture(e.pki.AppSerial)
	if err != nil {
		return "", err
	}
	fix = bytes.Replace(fix, []byte(`["`+e.pki.AppSerial+`"]`), []byte(`["`+e.pki.AppSerial+`", "`+e.app2Serial+`"]`), 1)
	ccpDir := filepath.Join(e.work, "ccp")
	tlsDir := filepath.Join(e.work, "tls")
	for _, d := range []string{ccpDir, tlsDir, filepath.Join(e.work, "log"), filepath.Join(e.work, "feed")} {
		os.MkdirAll(d, 0o755)
	}
	for src, dst := range map[string]string{e.pki.CAFile: "ca.pem", e.pki.ServerCertFile: "server.crt", e.pki.ServerKeyFile: "server.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		os.WriteFile(filepath.Join(ccpDir, dst), b, 0o644)
		os.WriteFile(filepath.Join(tlsDir, dst), b, 0o644)
	}
	os.WriteFile(filepath.Join(ccpDir, "fixture.yaml"), fix, 0o644)
	os.WriteFile(filepath.Join(e.work, "nginx.conf"), []byte(nginxConf), 0o644)

	// The portal: its signing key (pinned by every agent), the feed tree,
	// the group key.
	if e.signer, err = portal.GenerateSigningKey("ed25519"); err != nil {
		return "", err
	}
	priv, pubPEM, err := portal.MarshalKeyPair(e.signer)
	if err != nil {
		return "", err
	}
	e.pub = &portal.Feed{Root: filepath.Join(e.work, "feed"), Signer: e.signer, Validity: 24 * time.Hour}
	if e.group, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
		return "", err
	}

	lbl := "credagent.fleet=" + e.run
	if _, err := docker(ctx, "network", "create", "--internal", "--label", lbl, e.net); err != nil {
		return "", err
	}
	e.feedName = "fleet-" + e.run + "-feed"
	feedArgs := []string{"run", "-d", "--name", e.feedName, "--network", e.net, "--network-alias", "feed", "--label", lbl,
		"-v", filepath.Join(e.work, "feed") + ":/srv:ro", "-v", tlsDir + ":/tls:ro", "-v", filepath.Join(e.work, "log") + ":/log"}
	if e.feedKind == "nginx" {
		feedArgs = append(feedArgs, "-v", filepath.Join(e.work, "nginx.conf")+":/etc/nginx/nginx.conf:ro", e.feedImage)
	} else {
		feedArgs = append(feedArgs, "--entrypoint", "/e2e", e.agentImage, "runner", "serve-feed", "--root", "/srv", "--tls-cert", "/tls/server.crt",
			"--tls-key", "/tls/server.key", "--log", "/log/access.log")
	}
	if _, err := docker(ctx, feedArgs...); err != nil {
		return "", err
	}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("fleet-%s-ccp%d", e.run, i)
		e.ccps = append(e.ccps, name)
		if _, err := docker(ctx, "run", "-d", "--name", name, "--hostname", fmt.Sprintf("ccp%d", i), "--network", e.net, "--network-alias", fmt.Sprintf("ccp%d", i),
			"--label", lbl, "-v", ccpDir+":/ccp:ro", "--entrypoint", e.ccpEntrypoint, e.ccpImage,
			"serve", "--config", "/ccp/fixture.yaml", "--tls-cert", "/ccp/server.crt", "--tls-key", "/ccp/server.key",
			"--client-ca", "/ccp/ca.pem", "--listen", "0.0.0.0:8443", "--admin", "0.0.0.0:8444"); err != nil {
			return "", err
		}
	}
	caPEM, _ := os.ReadFile(e.pki.CAFile)
	// docker run takes seconds here: start the agents a few at a time.
	sem := make(chan struct{}, 8)
	runErrs := make([]error, e.n)
	var wg sync.WaitGroup
	for i := 1; i <= e.n; i++ {
		name := fmt.Sprintf("fleet-%s-agent%d", e.run, i)
		dir := filepath.Join(e.work, "agents", fmt.Sprintf("a%d", i))
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, daemon.DevSigningKeyFile), priv, 0o600)
		os.WriteFile(filepath.Join(dir, daemon.DevSigningPubFile), pubPEM, 0o600)
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(e.fleetAgentConfig()), 0o600)
		os.WriteFile(filepath.Join(dir, "feed-ca.pem"), caPEM, 0o644)
		e.agents, e.dirs = append(e.agents, name), append(e.dirs, dir)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, runErrs[i-1] = docker(ctx, "run", "-d", "--name", name, "--hostname", fmt.Sprintf("agent%d", i), "--network", e.net,
				"--label", lbl, "-v", dir+":/agent", e.agentImage)
		}()
	}
	wg.Wait()
	if err := errors.Join(runErrs...); err != nil {
		return "", err
	}
	// Enrolment: each agent writes its registration; the portal publishes
	// the group key to each machine, and the application, store and
	// credential once to the group, all sealed, into the feed.
	var raws [][]byte
	deadline := time.Now().Add(2 * time.Minute)
	for i, dir := range e.dirs {
		var reg string
		for {
			reg = filepath.Join(dir, "state", daemon.DevRegistration)
			if _, err := os.Stat(reg); err == nil {
				break
			}
			if time.Now().After(deadline) {
				logs, _ := docker(ctx, "logs", "--tail", "10", e.agents[i])
				return "", fmt.Errorf("%s wrote no registration: %s", e.agents[i], logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		r, pub, err := portal.LoadRegistration(reg)
		if err != nil {
			return "", err
		}
		e.machines = append(e.machines, r.MachineID)
		raws = append(raws, e.make(delivery.Machine(r.MachineID), fleetGroup, &delivery.GroupKey{PrivateKey: secret.New(e.group.Bytes())}, pub))
	}
	raws = append(raws, e.appDelivery(e.pki.AppP12File))
	raws = append(raws, e.make(delivery.Group(fleetGroup), "rpa-prod", &delivery.Store{Servers: []string{"https://ccp1:8443", "https://ccp2:8443"},
		AppID: "DemoApp", Safe: "RPA-Prod", Folder: "Root", CABundle: string(caPEM)}, e.group.PublicKey()))
	raws = append(raws, e.make(delivery.Group(fleetGroup), "sap", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"}, e.group.PublicKey()))
	if _, err := e.pub.Publish(raws); err != nil {
		return "", err
	}
	start := time.Now()
	lat, err := e.waitAll(ctx, start, 3*e.poll+30*time.Second, func(s *apitype.Status) bool {
		return s.Ready && len(s.Credentials) == 1 && len(s.Applications) == 1
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d agents ready from the feed; the last within %.1fs of publishing", e.n, lat[len(lat)-1]), nil
}

func (e *fleetEnv) make(to delivery.Address, target string, c delivery.Content, rcpt *ecdh.PublicKey) []byte {
	e.seq++
	d, err := delivery.Create(delivery.Header{ID: portal.NewID(), Target: target, Seq: uint64(time.Now().UnixMilli())*1000 + e.seq%1000, To: to, Created: time.Now()}, c, rcpt, e.signer)
	if err != nil {
		panic(err)
	}
	return d.Marshal()
}

func (e *fleetEnv) appDelivery(p12 string) []byte {
	raw, err := os.ReadFile(p12)
	if err != nil {
		panic(err)
	}
	pfx, err := portal.OpenPFX(raw, secret.FromString(fakeccp.DevP12Password), time.Now(), 0)
	if err != nil {
		panic(err)
	}
	return e.make(delivery.Group(fleetGroup), "DemoApp", pfx.Application, e.group.PublicKey())
}

func (e *fleetEnv) client(i int) *client.Client {
	return client.New(filepath.Join(e.dirs[i], "agent.sock"))
}

// waitAll polls every agent's status until ok, and returns each agent's
// time from start to ok, in seconds, sorted.
func (e *fleetEnv) waitAll(ctx context.Context, start time.Time, within time.Duration, ok func(*apitype.Status) bool) ([]float64, error) {
	lat := make([]float64, e.n)
	var wg sync.WaitGroup
	errs := make([]error, e.n)
	for i := range e.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(i)
			defer c.Close()
			for {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				s, err := c.Status(sctx)
				cancel()
				if err == nil && ok(s) {
					lat[i] = time.Since(start).Seconds()
					return
				}
				if time.Since(start) > within || ctx.Err() != nil {
					if err == nil {
						err = fmt.Errorf("not there: ready %v, problems %q, feed %+v", s.Ready, s.Problems, s.Feed)
					}
					errs[i] = fmt.Errorf("%s: %v", e.agents[i], err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Float64s(lat)
	return lat, nil
}

func pct(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// resolveAll resolves "sap" from every agent at once; it returns the
// failures.
func (e *fleetEnv) resolveAll(ctx context.Context) []error {
	errs := make([]error, e.n)
	var wg sync.WaitGroup
	for i := range e.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(i)
			defer c.Close()
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			res, err := c.Resolve(rctx, "fleet", "fleet", "sap")
			if err == nil {
				err = res.Err()
				res.Wipe()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// ccpTimes returns the times of the CCP requests both replicas logged
// since their audit was last reset.
func (e *fleetEnv) ccpTimes(ctx context.Context) ([]time.Time, error) {
	var out []time.Time
	for _, c := range e.ccps {
		ip := containerIP(ctx, c, e.net)
		resp, err := e.http.Get("http://" + ip + ":8444/audit")
		if err != nil {
			return nil, err
		}
		var recs []fakeccp.AuditRecord
		err = json.NewDecoder(resp.Body).Decode(&recs)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s audit: %v", c, err)
		}
		for _, r := range recs {
			out = append(out, r.Time)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out, nil
}

func (e *fleetEnv) resetAudit(ctx context.Context) {
	for _, c := range e.ccps {
		ip := containerIP(ctx, c, e.net)
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+ip+":8444/audit", nil)
		if resp, err := e.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// peakRPS is the most requests in any one-second window.
func peakRPS(ts []time.Time) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Second {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func (e *fleetEnv) scBurst(ctx context.Context) (string, error) {
	e.resetAudit(ctx)
	start := time.Now()
	if errs := e.resolveAll(ctx); len(errs) > 0 {
		return "", fmt.Errorf("%d of %d resolutions failed: %v", len(errs), e.n, errs[0])
	}
	took := time.Since(start)
	ts, err := e.ccpTimes(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d resolutions in %.2fs, %d CCP requests, peak %d/s", e.n, took.Seconds(), len(ts), peakRPS(ts)), nil
}

func (e *fleetEnv) propagation(name string, lat []float64, what string) string {
	goal := e.poll.Seconds() + 5
	met := pct(lat, 99) <= goal
	for _, p := range []struct {
		key string
		v   float64
	}{{"p50", pct(lat, 50)}, {"p99", pct(lat, 99)}, {"max", lat[len(lat)-1]}} {
		f := figure{Unit: "s", Value: round2(p.v), Method: fmt.Sprintf("%s: from the end of credseal's publish (portal.Feed.Publish) into the tree nginx serves to the moment each of %d agents reports it in status (polled every 100 ms over its socket); agents poll every %v ±25%%; %s over the fleet", what, e.n, e.poll, p.key)}
		if p.key == "p99" {
			f.Goal, f.Met = fmt.Sprintf("<= poll interval + 5 s (%.0f s)", goal), &met
		}
		e.results["fleet_propagation_"+p.key+"_s"] = f
	}
	return fmt.Sprintf("%s: p50 %.1fs, p99 %.1fs, max %.1fs (poll %v)", name, pct(lat, 50), pct(lat, 99), lat[len(lat)-1], e.poll)
}

func (e *fleetEnv) scRotate(ctx context.Context) (string, error) {
	if _, err := e.pub.Publish([][]byte{e.appDelivery(e.app2P12)}); err != nil {
		return "", err
	}
	start := time.Now()
	lat, err := e.waitAll(ctx, start, 2*e.poll+30*time.Second, func(s *apitype.Status) bool {
		return len(s.Applications) == 1 && s.Applications[0].Serial == e.app2Serial
	})
	if err != nil {
		return "", err
	}
	msg := e.propagation("rotated certificate", lat, "a rotated application certificate")
	if errs := e.resolveAll(ctx); len(errs) > 0 {
		return "", fmt.Errorf("after the rotation %d resolutions failed: %v", len(errs), errs[0])
	}
	return msg + "; every agent resolves with it", nil
}

func (e *fleetEnv) scNewCredential(ctx context.Context) (string, error) {
	raw := e.make(delivery.Group(fleetGroup), "sap-new", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"}, e.group.PublicKey())
	if _, err := e.pub.Publish([][]byte{raw}); err != nil {
		return "", err
	}
	start := time.Now()
	lat, err := e.waitAll(ctx, start, 2*e.poll+30*time.Second, func(s *apitype.Status) bool { return hasCredential(s, "sap-new") })
	if err != nil {
		return "", err
	}
	// The figure kept is the certificate's; this one is reported.
	saved := map[string]figure{}
	for k, v := range e.results {
		saved[k] = v
	}
	msg := e.propagation("new credential", lat, "a new credential")
	for k, v := range saved {
		if strings.HasPrefix(k, "fleet_propagation_") && v.Value >= e.results[k].Value {
			e.results[k] = v
		}
	}
	return msg, nil
}

func hasCredential(s *apitype.Status, name string) bool {
	for _, c := range s.Credentials {
		if c.Name == name {
			return true
		}
	}
	return false
}

// scIdle counts, in nginx's access log, what the fleet asks when nothing
// changes.
func (e *fleetEnv) scIdle(ctx context.Context) (string, error) {
	logFile := filepath.Join(e.work, "log", "access.log")
	before, _ := os.ReadFile(logFile)
	window := max(3*e.poll, 15*time.Second)
	time.Sleep(window)
	after, _ := os.ReadFile(logFile)
	if len(after) < len(before) {
		return "", errors.New("the access log shrank")
	}
	var reqs, notMod, bytes304 int
	for _, line := range strings.Split(strings.TrimSpace(string(after[len(before):])), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		reqs++
		if f[1] == "304" {
			notMod++
			var b int
			fmt.Sscan(f[2], &b)
			bytes304 += b
		}
	}
	if reqs == 0 || notMod == 0 {
		return "", fmt.Errorf("%d requests, %d answered 304 in %v", reqs, notMod, window)
	}
	perHour := float64(reqs) / float64(e.n) * 3600 / window.Seconds()
	perPoll := float64(bytes304) / float64(notMod)
	expect := 2 * 3600 / e.poll.Seconds() // two manifests: the machine's and the group's
	okReqs := perHour <= expect*1.2
	e.results["fleet_idle_requests_per_agent_hour"] = figure{Unit: "/h", Value: round2(perHour), Goal: fmt.Sprintf("one conditional GET per manifest and poll (2 manifests: %.0f/h)", expect), Met: &okReqs,
		Method: fmt.Sprintf("requests in nginx's access log over %v with nothing published, per agent, scaled to an hour; %d of %d were 304", window, notMod, reqs)}
	all304 := notMod == reqs
	e.results["fleet_idle_bytes_per_poll"] = figure{Unit: "B", Value: round2(perPoll), Goal: "an idle poll is answered 304", Met: &all304,
		Method: "mean $bytes_sent (status line, headers; no body) of the 304 answers in the same window, per manifest request; TLS records add to it on the wire"}
	e.results["fleet_agents"] = figure{Unit: "agents", Value: float64(e.n), Method: "FROM scratch agent containers on one Docker network, each polling the machine's and the group's manifest"}
	e.results["feed_poll_interval_s"] = figure{Unit: "s", Value: e.poll.Seconds(), Method: "feed.poll_interval of every agent (each wait jittered ±25%)"}
	return fmt.Sprintf("%.0f requests/agent/hour (%d in %v, %d answered 304), %.0f bytes per idle poll", perHour, reqs, window, notMod, perPoll), nil
}

// scOutage pauses both CCP replicas while every agent keeps resolving once
// a second, then unpauses them and measures the request rate that comes
// back.
func (e *fleetEnv) scOutage(ctx context.Context) (string, error) {
	for _, c := range e.ccps {
		if _, err := docker(ctx, "pause", c); err != nil {
			return "", err
		}
	}
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range e.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(i)
			defer c.Close()
			for lctx.Err() == nil {
				rctx, cancel := context.WithTimeout(lctx, 20*time.Second)
				res, err := c.Resolve(rctx, "fleet", "fleet", "sap")
				cancel()
				if err == nil {
					res.Wipe()
				}
				select {
				case <-lctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	time.Sleep(4 * time.Second)
	for _, c := range e.ccps {
		docker(ctx, "unpause", c)
	}
	back := time.Now()
	time.Sleep(8 * time.Second)
	stop()
	wg.Wait()
	ts, err := e.ccpTimes(ctx)
	if err != nil {
		return "", err
	}
	var after []time.Time
	for _, t := range ts {
		if !t.Before(back) {
			after = append(after, t)
		}
	}
	peak := peakRPS(after)
	e.results["fleet_ccp_peak_rps_after_outage"] = figure{Unit: "/s", Value: float64(peak),
		Method: fmt.Sprintf("both CCP replicas paused (docker pause) for 4 s while each of %d agents' runners resolved once a second; then unpaused: the most CCP requests in any one-second window of the 8 s after (the replicas' audit); %d requests in those 8 s", e.n, len(after))}
	return fmt.Sprintf("peak %d requests/s after the outage (%d agents, %d requests in 8 s)", peak, e.n, len(after)), nil
}

func (e *fleetEnv) scRevoke(ctx context.Context) (string, error) {
	raw := e.make(delivery.Group(fleetGroup), "sap-new", &delivery.Revoke{Revokes: delivery.KindCredential}, nil)
	if _, err := e.pub.Publish([][]byte{raw}); err != nil {
		return "", err
	}
	start := time.Now()
	lat, err := e.waitAll(ctx, start, 2*e.poll+30*time.Second, func(s *apitype.Status) bool { return !hasCredential(s, "sap-new") && hasCredential(s, "sap") })
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("revocation of credential sap-new reached all %d agents: p50 %.1fs, max %.1fs", e.n, pct(lat, 50), lat[len(lat)-1]), nil
}

// writeResults merges the figures into the results file, keeping the
// others.
func (e *fleetEnv) writeResults(path string) error {
	all := map[string]json.RawMessage{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	for k, v := range e.results {
		b, _ := json.Marshal(v)
		all[k] = b
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
