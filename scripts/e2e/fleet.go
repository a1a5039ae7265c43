package main

import (
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
	"runtime"
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
	"github.com/credagent/credagent/scripts/internal/rig"
)

// fleet is the feed scenario at scale (make fleet; a small version in make
// e2e): a feed on a static HTTPS server, two CCP replicas, N agents that
// pull their deliveries from the feed. It measures propagation of a rotated
// certificate and a new credential, the cost of idle polls, the CCP rate
// when the fleet resolves at once and after an outage, and a revocation
// reaching every agent.
type fleetEnv struct {
	topology
	feedImage, feedKind string // nginx, or the e2e runner's own static server
	n                   int
	rssAgents           int // agents without the feed, for the RSS baseline
	poll                time.Duration
	signer              crypto.Signer
	pub                 *portal.Feed
	group               *ecdh.PrivateKey
	agents, dirs        []string
	machines            []string
	noFeed, noFeedDirs  []string // the RSS baseline's agents
	groupRaws           [][]byte // the group's deliveries of the set-up
	feedName            string
	seq                 uint64
	results             map[string]figure
}

// figure is one figure in bench/results.json, in the shape of the bench's
// (scripts/bench): a value, and where there is one, the baseline it is
// compared with, measured in the same run.
type figure struct {
	Unit           string    `json:"unit"`
	Value          float64   `json:"value"`
	BaselineName   string    `json:"baseline_name,omitempty"`
	Baseline       float64   `json:"baseline,omitempty"`
	Goal           string    `json:"goal,omitempty"`
	Met            *bool     `json:"met,omitempty"`
	Rounds         []float64 `json:"rounds,omitempty"`
	BaselineRounds []float64 `json:"baseline_rounds,omitempty"`
	Method         string    `json:"method"`
}

const fleetGroup = "rpa-fleet"

func fleet(args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	e := &fleetEnv{topology: newTopology("fleet"), results: map[string]figure{}}
	e.flags(fs)
	fs.StringVar(&e.feedImage, "feed-image", "", "the feed server's image")
	fs.StringVar(&e.feedKind, "feed-server", "nginx", "nginx (Debian's, from --feed-image) or static (the runner's own file server, in --agent-image)")
	fs.IntVar(&e.n, "agents", 100, "how many agents")
	fs.IntVar(&e.rssAgents, "rss-agents", 5, "agents without the feed, started next to as many of the fleet's for the RSS comparison (0: none)")
	fs.DurationVar(&e.poll, "poll", 10*time.Second, "the agents' feed.poll_interval")
	resultsFile := fs.String("results", "", "merge the figures into this JSON file (bench/results.json)")
	budget := fs.Duration("budget", 15*time.Minute, "give up after this long")
	keep := fs.Bool("keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if e.feedKind == "nginx" && e.feedImage == "" {
		return errors.New("fleet: --feed-image is required for nginx")
	}
	e.rssAgents = min(e.rssAgents, e.n)
	ctx, stop, err := e.start(*budget, *keep)
	if err != nil {
		return err
	}
	defer stop()
	loadStart := rig.LoadAverage()
	rep := &report{start: time.Now()}
	if err := rep.step(fmt.Sprintf("setup: %s feed server, 2 CCP replicas, %d agents polling every %v (and %d without the feed)", e.feedKind, e.n, e.poll, e.rssAgents),
		func() (string, error) { return e.setup(ctx) }); err != nil {
		rep.result()
		return errors.New("setup failed")
	}
	steps := []step{
		{"every agent resolves at once", e.scBurst},
		{"publish a rotated application certificate: propagation", e.scRotate},
		{"publish a new credential: propagation", e.scNewCredential},
		{"idle: requests and bytes per poll", e.scIdle},
		{"CCP outage and return: the request rate", e.scOutage},
		{"publish a revocation: it reaches every agent", e.scRevoke},
	}
	if e.rssAgents > 0 {
		steps = append([]step{{"RSS: agents with the feed against agents without", e.scRSS}}, steps...)
	}
	rep.steps(ctx, steps)
	if err := rep.result(); err != nil {
		return err
	}
	if *resultsFile != "" {
		return e.writeResults(*resultsFile, loadStart)
	}
	return nil
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

// fleetAgentConfig is each agent's config; without the feed for the RSS
// baseline's agents, which take their deliveries from the inbox.
func (e *fleetEnv) fleetAgentConfig(feed bool) string {
	c := `log:
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
`
	if !feed {
		return c
	}
	return c + fmt.Sprintf(`feed:
  urls: [https://feed/]
  ca_file: /agent/feed-ca.pem
  poll_interval: %s
  timeout: 10s
`, e.poll)
}

func (e *fleetEnv) setup(ctx context.Context) (string, error) {
	ccpDir, _, err := e.preparePKI(ctx, "ccp1", "ccp2", "feed")
	if err != nil {
		return "", err
	}
	// The feed server's TLS files: the same dev PKI (its name "feed").
	tlsDir := filepath.Join(e.work, "tls")
	for _, d := range []string{tlsDir, filepath.Join(e.work, "log"), filepath.Join(e.work, "feed")} {
		os.MkdirAll(d, 0o755)
	}
	for _, f := range []string{"ca.pem", "server.crt", "server.key"} {
		b, err := os.ReadFile(filepath.Join(ccpDir, f))
		if err != nil {
			return "", err
		}
		os.WriteFile(filepath.Join(tlsDir, f), b, 0o644)
	}
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

	lbl := e.label()
	if err := e.network(ctx); err != nil {
		return "", err
	}
	e.feedName = e.name("feed")
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
		if err := e.startCCP(ctx, i, ccpDir); err != nil {
			return "", err
		}
	}
	caPEM, _ := os.ReadFile(e.pki.CAFile)
	// The fleet's agents, and the RSS baseline's: the same agent, the same
	// state (given through the inbox), no feed.
	type agentSpec struct {
		host, dir string
		feed      bool
	}
	var specs []agentSpec
	for i := 1; i <= e.n; i++ {
		specs = append(specs, agentSpec{fmt.Sprintf("agent%d", i), filepath.Join(e.work, "agents", fmt.Sprintf("a%d", i)), true})
	}
	for i := 1; i <= e.rssAgents; i++ {
		specs = append(specs, agentSpec{fmt.Sprintf("nofeed%d", i), filepath.Join(e.work, "agents", fmt.Sprintf("n%d", i)), false})
	}
	// docker run takes seconds here: start the agents a few at a time.
	sem := make(chan struct{}, 8)
	runErrs := make([]error, len(specs))
	var wg sync.WaitGroup
	for k, sp := range specs {
		name := e.name(sp.host)
		os.MkdirAll(sp.dir, 0o700)
		os.WriteFile(filepath.Join(sp.dir, daemon.DevSigningKeyFile), priv, 0o600)
		os.WriteFile(filepath.Join(sp.dir, daemon.DevSigningPubFile), pubPEM, 0o600)
		os.WriteFile(filepath.Join(sp.dir, "config.yaml"), []byte(e.fleetAgentConfig(sp.feed)), 0o600)
		os.WriteFile(filepath.Join(sp.dir, "feed-ca.pem"), caPEM, 0o644)
		if sp.feed {
			e.agents, e.dirs = append(e.agents, name), append(e.dirs, sp.dir)
		} else {
			e.noFeed, e.noFeedDirs = append(e.noFeed, name), append(e.noFeedDirs, sp.dir)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, runErrs[k] = docker(ctx, "run", "-d", "--name", name, "--hostname", sp.host, "--network", e.net,
				"--label", lbl, "-v", sp.dir+":/agent", e.agentImage)
		})
	}
	wg.Wait()
	if err := errors.Join(runErrs...); err != nil {
		return "", err
	}
	// Enrolment: each agent writes its registration; the portal publishes
	// the group key to each machine, and the application, store and
	// credential once to the group, all sealed, into the feed. The
	// baseline's agents get the same deliveries in their inboxes.
	var raws, baselineKeys [][]byte
	deadline := time.Now().Add(2 * time.Minute)
	for _, sp := range specs {
		reg := filepath.Join(sp.dir, "state", daemon.DevRegistration)
		for {
			if _, err := os.Stat(reg); err == nil {
				break
			}
			if time.Now().After(deadline) {
				logs, _ := docker(ctx, "logs", "--tail", "10", e.name(sp.host))
				return "", fmt.Errorf("%s wrote no registration: %s", e.name(sp.host), logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		r, pub, err := portal.LoadRegistration(reg)
		if err != nil {
			return "", err
		}
		gk := e.make(delivery.Machine(r.MachineID), fleetGroup, &delivery.GroupKey{PrivateKey: secret.New(e.group.Bytes())}, pub)
		if sp.feed {
			e.machines = append(e.machines, r.MachineID)
			raws = append(raws, gk)
		} else {
			baselineKeys = append(baselineKeys, gk)
		}
	}
	e.groupRaws = [][]byte{
		e.appDelivery(e.pki.AppP12File),
		e.make(delivery.Group(fleetGroup), "rpa-prod", &delivery.Store{Servers: []string{"https://ccp1:8443", "https://ccp2:8443"},
			AppID: "DemoApp", Safe: "RPA-Prod", Folder: "Root", CABundle: string(caPEM)}, e.group.PublicKey()),
		e.make(delivery.Group(fleetGroup), "sap", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"}, e.group.PublicKey()),
	}
	if _, err := e.pub.Publish(append(raws, e.groupRaws...)); err != nil {
		return "", err
	}
	start := time.Now()
	ready := func(s *apitype.Status) bool { return s.Ready && len(s.Credentials) == 1 && len(s.Applications) == 1 }
	lat, err := e.waitAll(ctx, sockets(e.dirs), start, 3*e.poll+30*time.Second, ready)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%d agents ready from the feed; the last within %.1fs of publishing", e.n, lat[len(lat)-1])
	if len(e.noFeed) == 0 {
		return msg, nil
	}
	for i, dir := range e.noFeedDirs {
		if err := dropFile(filepath.Join(dir, "inbox"), "group-key.delivery", baselineKeys[i]); err != nil {
			return "", err
		}
	}
	for i, dir := range e.noFeedDirs {
		if err := waitInboxEmpty(filepath.Join(dir, "inbox"), e.noFeed[i], 30*time.Second); err != nil {
			return "", err
		}
	}
	for _, dir := range e.noFeedDirs {
		for j, raw := range e.groupRaws {
			if err := dropFile(filepath.Join(dir, "inbox"), fmt.Sprintf("group-%d.delivery", j), raw); err != nil {
				return "", err
			}
		}
	}
	if _, err := e.waitAll(ctx, sockets(e.noFeedDirs), time.Now(), 30*time.Second, ready); err != nil {
		return "", fmt.Errorf("the RSS baseline's agents: %w", err)
	}
	return fmt.Sprintf("%s; %d agents without the feed ready from their inboxes", msg, len(e.noFeed)), nil
}

// sockets are the agents' socket paths on the host.
func sockets(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = filepath.Join(d, "agent.sock")
	}
	return out
}

// dropFile writes a delivery into an inbox as the portal does: to a
// hidden name, renamed into place.
func dropFile(inbox, name string, b []byte) error {
	tmp := filepath.Join(inbox, "."+name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(inbox, name))
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

// waitAll polls the status of each agent (by socket) until ok, and returns
// each agent's time from start to ok, in seconds, sorted.
func (e *fleetEnv) waitAll(ctx context.Context, socks []string, start time.Time, within time.Duration, ok func(*apitype.Status) bool) ([]float64, error) {
	lat := make([]float64, len(socks))
	errs := eachClient(socks, func(i int, c *client.Client) error {
		for {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := c.Status(sctx)
			cancel()
			if err == nil && ok(s) {
				lat[i] = time.Since(start).Seconds()
				return nil
			}
			if time.Since(start) > within || ctx.Err() != nil {
				if err == nil {
					err = fmt.Errorf("not there: ready %v, problems %q, feed %+v", s.Ready, s.Problems, s.Feed)
				}
				return fmt.Errorf("%s: %v", filepath.Base(filepath.Dir(socks[i])), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Float64s(lat)
	return lat, nil
}

// resolveSap resolves "sap" through c.
func resolveSap(ctx context.Context, c *client.Client) error {
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := c.Resolve(rctx, "fleet", "fleet", "sap")
	if err == nil {
		err = res.Err()
		res.Wipe()
	}
	return err
}

func pct(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// resolveAll resolves "sap" from every agent at once; it returns the
// failures.
func (e *fleetEnv) resolveAll(ctx context.Context) []error {
	var out []error
	for _, err := range eachClient(sockets(e.dirs), func(_ int, c *client.Client) error { return resolveSap(ctx, c) }) {
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
	lat, err := e.waitAll(ctx, sockets(e.dirs), start, 2*e.poll+30*time.Second, func(s *apitype.Status) bool {
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
	lat, err := e.waitAll(ctx, sockets(e.dirs), start, 2*e.poll+30*time.Second, func(s *apitype.Status) bool { return hasCredential(s, "sap-new") })
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		eachClient(sockets(e.dirs), func(_ int, c *client.Client) error {
			for lctx.Err() == nil {
				resolveSap(lctx, c)
				select {
				case <-lctx.Done():
				case <-time.After(time.Second):
				}
			}
			return nil
		})
	}()
	time.Sleep(4 * time.Second)
	for _, c := range e.ccps {
		docker(ctx, "unpause", c)
	}
	back := time.Now()
	time.Sleep(8 * time.Second)
	stop()
	<-done
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
	lat, err := e.waitAll(ctx, sockets(e.dirs), start, 2*e.poll+30*time.Second, func(s *apitype.Status) bool { return !hasCredential(s, "sap-new") && hasCredential(s, "sap") })
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("revocation of credential sap-new reached all %d agents: p50 %.1fs, max %.1fs", e.n, pct(lat, 50), lat[len(lat)-1]), nil
}

// Resident memory: MB are 10^6 bytes, as in the bench; /proc gives kB
// (KiB).
const kbToMB = 1024.0 / 1e6

// scRSS compares the resident memory of agents with the feed (the first
// rssAgents of the fleet) with that of agents without it (their inboxes
// gave them the same state), in the same run: each side resolves once
// (the same CCP pools and TLS sessions), then, after a warm-up of three
// polls, VmRSS is read of each pair in turn, feed first, every half poll,
// six times; VmHWM (the peak) at the end.
func (e *fleetEnv) scRSS(ctx context.Context) (string, error) {
	n := e.rssAgents
	withFeed, without := e.agents[:n], e.noFeed
	for _, socks := range [][]string{sockets(e.dirs[:n]), sockets(e.noFeedDirs)} {
		if err := errors.Join(eachClient(socks, func(_ int, c *client.Client) error { return resolveSap(ctx, c) })...); err != nil {
			return "", err
		}
	}
	pids := func(names []string) ([]int, error) {
		var out []int
		for _, c := range names {
			s, err := docker(ctx, "inspect", "-f", "{{.State.Pid}}", c)
			if err != nil {
				return nil, err
			}
			var pid int
			if _, err := fmt.Sscan(s, &pid); err != nil || pid <= 0 {
				return nil, fmt.Errorf("%s: no process (%q)", c, s)
			}
			out = append(out, pid)
		}
		return out, nil
	}
	fp, err := pids(withFeed)
	if err != nil {
		return "", err
	}
	bp, err := pids(without)
	if err != nil {
		return "", err
	}
	// mean reads field of every pair in turn and returns the mean of each
	// side in MB.
	mean := func(field string) (float64, float64, error) {
		var fs, bs float64
		for i := range n {
			f, err := rig.ProcStatusKB(fp[i], field)
			if err != nil {
				return 0, 0, err
			}
			b, err := rig.ProcStatusKB(bp[i], field)
			if err != nil {
				return 0, 0, err
			}
			fs, bs = fs+float64(f), bs+float64(b)
		}
		return fs / float64(n) * kbToMB, bs / float64(n) * kbToMB, nil
	}
	// polled counts the feed addresses (each agent's machine and group)
	// polled since from, and all there are.
	polled := func(from time.Time) (int, int, error) {
		var fresh, all int
		for _, sock := range sockets(e.dirs[:n]) {
			c := client.New(sock)
			st, err := c.Status(ctx)
			c.Close()
			if err != nil {
				return 0, 0, err
			}
			for _, f := range st.Feed {
				all++
				if f.LastPoll.After(from) {
					fresh++
				}
			}
		}
		return fresh, all, nil
	}
	time.Sleep(3 * e.poll)
	from := time.Now()
	const rounds = 6
	var delta, feedMB, baseMB []float64
	for r := range rounds {
		if r > 0 {
			time.Sleep(e.poll / 2)
		}
		f, b, err := mean("VmRSS")
		if err != nil {
			return "", err
		}
		delta, feedMB, baseMB = append(delta, f-b), append(feedMB, f), append(baseMB, b)
	}
	took := time.Since(from)
	fresh, addrs, err := polled(from)
	if err != nil {
		return "", err
	}
	if fresh < addrs || addrs < 2*n {
		return "", fmt.Errorf("%d of the %d feed addresses of the agents with the feed were polled during the measurement", fresh, addrs)
	}
	hf, hb, err := mean("VmHWM")
	if err != nil {
		return "", err
	}
	med := func(v []float64) float64 {
		c := append([]float64(nil), v...)
		sort.Float64s(c)
		return (c[(len(c)-1)/2] + c[len(c)/2]) / 2
	}
	d, hd := med(delta), hf-hb
	for i := range delta {
		delta[i], baseMB[i] = round2(delta[i]), round2(baseMB[i])
	}
	met, hmet := d <= 2, hd <= 2
	load := rig.LoadAverage()
	e.results["feed_rss_delta_mb"] = figure{Unit: "MB", Value: round2(d), BaselineName: "mean VmRSS of the agents without the feed", Baseline: round2(med(baseMB)),
		Goal: "<= 2", Met: &met, Rounds: delta, BaselineRounds: baseMB,
		Method: fmt.Sprintf("VmRSS (/proc) of %d agents with the feed (polling every %v) minus that of %d agents without it, started in the same run with the same state "+
			"(group key, application, store, credential; the baseline's from its inbox); each side resolved once first; after a warm-up of three polls, "+
			"each pair read in turn (feed first), %d rounds %v apart (rounds: the difference of the means; value: their median); each of their %d feed addresses "+
			"(machine and group) was polled during the %.0f s of the rounds; load average %s; MB = 10^6 bytes", n, e.poll, n, rounds, e.poll/2, addrs, took.Seconds(), load)}
	e.results["feed_hwm_delta_mb"] = figure{Unit: "MB", Value: round2(hd), BaselineName: "mean VmHWM of the agents without the feed", Baseline: round2(hb),
		Goal: "<= 2", Met: &hmet,
		Method: fmt.Sprintf("VmHWM (peak resident set, /proc) of the same %d agents with the feed minus the %d without, read after the VmRSS rounds; MB = 10^6 bytes", n, n)}
	msg := fmt.Sprintf("VmRSS with the feed %.2f MB, without %.2f MB: +%.2f MB (median of %d rounds over %d pairs; goal <= 2); VmHWM +%.2f MB; all %d feed addresses polled during the %.0f s of the rounds",
		med(feedMB), med(baseMB), d, rounds, n, hd, addrs, took.Seconds())
	if !met || !hmet {
		return "", errors.New(msg)
	}
	return msg, nil
}

// writeResults merges the figures into the results file, keeping the
// others, with the machine's load average at the start and the end of the
// run (fleet_machine).
func (e *fleetEnv) writeResults(path, loadStart string) error {
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
	m, _ := json.Marshal(map[string]any{"cpu": rig.CPUModel(), "cores": runtime.NumCPU(), "load_average_start": loadStart, "load_average_end": rig.LoadAverage(),
		"agents": e.n, "agents_without_feed": e.rssAgents, "feed_server": e.feedKind, "generated_at": time.Now().UTC().Format(time.RFC3339)})
	all["fleet_machine"] = m
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
