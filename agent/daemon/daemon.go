// Package daemon is the agent's lifecycle: it builds the parts (key store,
// state and inbox, resolver, local API), runs them under one context, and
// stops them cleanly.
//
// Run is the same for the foreground, systemd and the Windows SCM: the
// service layer (agent/service) turns stop and shutdown into a context
// cancel, and SIGHUP or the Windows PARAMCHANGE control into a reload.
package daemon

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/agent/feed"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/metrics"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/service/doctor"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/agent/version"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// Options configure Run.
type Options struct {
	Config config.Config
	// ConfigPath is re-read on reload. Empty with Dev: DevDir is re-read.
	ConfigPath string
	// Dev is dev mode: only the starting user may call, everything lives
	// under DevDir.
	Dev    bool
	DevDir string
	// Log is the operational log; Audit the audit stream.
	Log   zerolog.Logger
	Audit zerolog.Logger
	// Ready is called once the machine key is usable (or known to need
	// re-enrolment) and the socket listens.
	Ready func()
	// Reload receives a value for each reload request; Reloaded, if set, is
	// called once each request has been handled (applied or rejected).
	Reload   <-chan struct{}
	Reloaded func()
	// OnEvent, if set, sees every delivery applied or rejected.
	OnEvent func(inbox.Event)
	// KeyStore, if set, is used instead of opening the configured one
	// (tests and benchmarks).
	KeyStore keystore.Store
	// SkipHardening leaves the process as it is (tests that run the daemon
	// in-process).
	SkipHardening bool
}

// Run runs the agent until ctx is cancelled, then drains in-flight
// resolutions within the configured grace and returns. It returns early with
// the reason the agent cannot run.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Log
	started := time.Now()

	var hardening harden.Report
	if !opts.SkipHardening {
		hardening = harden.Apply()
		for _, m := range hardening.Measures {
			if !m.Applied {
				log.Warn().Str("measure", m.Name).Str("detail", m.Detail).Msg("hardening measure not in force")
			}
		}
	}

	// The state directory holds the sealed records and the registration: it
	// must be private, whether it is new or not. The inbox is only created
	// if missing: a portal drop account may be granted it, and every file
	// in it is checked on its own (owner, type, signature).
	if err := fsutil.MkdirPrivate(cfg.Paths.StateDir); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := ensureDir(cfg.Paths.InboxDir); err != nil {
		return err
	}

	ks := opts.KeyStore
	if ks == nil {
		var err error
		ks, err = keystore.Open(keystore.Options{Backend: cfg.KeyStore.Backend, Dir: cfg.KeyStore.Dir, TPMDevice: cfg.KeyStore.TPMDevice})
		if err != nil {
			return fmt.Errorf("opening the key store (%s): %w", cfg.KeyStore.Backend, err)
		}
		defer ks.Close()
	}
	keys, needsReenroll, err := machineKeys(ks, cfg, log)
	if err != nil {
		return err
	}

	st := &state.State{}
	m := metrics.New(version.Version)
	m.SetKeyStore(ks.Info().Backend, ks.Info().HardwareBacked)
	m.SetState(st.Load)
	var in *inbox.Inbox
	var fd *feed.Feed                 // nil without a feed
	applied := make(chan struct{}, 1) // a delivery was applied: check the rotation
	if needsReenroll == "" {
		signers, err := signingKeys(cfg)
		if err != nil {
			return err
		}
		if len(signers) == 0 {
			return errors.New("portal.signing_keys is empty: pin the portal's public signing key in the config (every delivery must be signed by it)")
		}
		onEvent := func(e inbox.Event) {
			source := "inbox"
			if e.Feed {
				source = "feed"
			}
			m.Delivery(source, string(e.Kind), e.Err == nil, e.Reason, e.At)
			if e.Err == nil {
				select {
				case applied <- struct{}{}:
				default:
				}
			}
			if opts.OnEvent != nil {
				opts.OnEvent(e)
			}
		}
		in, err = inbox.New(inbox.Options{
			InboxDir:      cfg.Paths.InboxDir,
			StateDir:      cfg.Paths.StateDir,
			MaxBytes:      cfg.Inbox.MaxDeliveryBytes,
			Rescan:        cfg.Inbox.RescanInterval,
			ExpiryWarning: cfg.Inbox.ExpiryWarning,
			Signers:       signers,
			MachineKeys:   toInboxKeys(keys.All()),
			MachineID:     cfg.MachineID,
			AllowedOwners: cfg.Inbox.AllowedOwners,
			Groups:        cfg.Inbox.Groups,
			State:         st,
			Log:           log.With().Str("component", "inbox").Logger(),
			OnEvent:       onEvent,
		})
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		defer in.Close()
		if err := in.Load(ctx); err != nil {
			return fmt.Errorf("rebuilding state from %s: %w", cfg.Paths.StateDir, err)
		}
		if fd, err = newFeed(cfg, signers, in, m, log); err != nil {
			return fmt.Errorf("feed: %w", err)
		}
	} else {
		st.Update(func(s *state.Snapshot) { s.NeedsReenroll = needsReenroll })
		log.Error().Str("reason", needsReenroll).Msg("the machine key cannot be used: the agent needs re-enrolment (run `credagent enroll --rotate` and register the new key); deliveries are kept, not opened")
	}

	res := &resolverHolder{}
	build := func(c config.Config) (*resolve.Resolver, error) {
		return resolve.New(resolve.Options{
			State:         st,
			NewFetcher:    fetcherFactory(c.CCP, log, m),
			Policy:        c.Policy,
			RatePerSecond: c.API.RatePerSecond,
			RateBurst:     c.API.RateBurst,
			Audit:         opts.Audit,
			Log:           log.With().Str("component", "resolve").Logger(),
			FailClosed:    failClosed(fd),
			Metrics:       m,
		})
	}
	r0, err := build(cfg)
	if err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	res.p.Store(r0)
	defer func() { res.p.Load().Close() }()

	ln, err := localsock.Listen(cfg.Paths.Socket, localsock.ListenOptions{Group: cfg.API.SocketGroup, Allow: cfg.API.PipeAllow, Dev: opts.Dev,
		Reserved: []string{cfg.Paths.StateDir, cfg.Paths.InboxDir, cfg.KeyStore.Dir}})
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Paths.Socket, err)
	}

	info := ks.Info()
	// The registered key: the pending one during a rotation, which is also
	// the key that a finished rotation promotes, so it does not change.
	keyID := ""
	if k := registeredKey(keys); k != nil {
		keyID = k.ID()
	}
	status := func(ctx context.Context) apitype.Status {
		s := buildStatus(st.Load(), res.p.Load(), info, keyID, cfg, hardening, started)
		addFeedStatus(&s, fd)
		return s
	}
	srv := localapi.NewServer(localapi.Options{
		Resolver:    res,
		Status:      status,
		ProbeStores: func(ctx context.Context) []apitype.ProbeResult { return probeStores(ctx, st.Load(), cfg.CCP) },
		Sync:        feedSync(fd),
		Config:      cfg.API,
		Log:         log.With().Str("component", "localapi").Logger(),
	})

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- srv.Serve(ctx, ln)
	}()
	if in != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("inbox: %w", err)
			}
		}()
	}
	if fd != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd.Run(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		reloadLoop(ctx, opts, res, build, log, func() { syncFeed(ctx, fd) })
	}()
	if cfg.Metrics.Textfile != "" || cfg.Metrics.Listen != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Run(ctx, metrics.Options{Textfile: cfg.Metrics.Textfile, Interval: cfg.Metrics.Interval, Listen: cfg.Metrics.Listen,
				Log: log.With().Str("component", "metrics").Logger()}); err != nil {
				errc <- err
			}
		}()
	}
	if in != nil && keys.Pending != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			finishRotation(ctx, ks, cfg, keys, in, applied, log)
		}()
	}

	log.Info().Str("socket", cfg.Paths.Socket).Str("keystore", info.Backend).Bool("hardware_key", info.HardwareBacked).
		Str("key_id", keyID).Str("version", version.Version).Dur("start", time.Since(started)).Msg("credagent ready")
	if opts.Ready != nil {
		opts.Ready()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		if runErr != nil {
			log.Error().Err(runErr).Msg("a part of the agent failed; stopping")
		}
	}
	cancel(runErr)
	wg.Wait()
	log.Info().Msg("credagent stopped")
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// machineKeys opens the machine key, creating it on first start. A key that
// exists but cannot be used is not fatal: it is reported as needing
// re-enrolment, so the service does not crash-loop.
func machineKeys(ks keystore.Store, cfg config.Config, log zerolog.Logger) (keystore.Keys, string, error) {
	keys, err := keystore.OpenAll(ks, cfg.KeyStore.KeyName)
	switch {
	case err == nil:
	case errors.Is(err, keystore.ErrNotFound):
		if what := inbox.SealedState(cfg.Paths.StateDir, enroll.FileName); what != "" {
			// Not a first start: the key was lost or removed. A new one
			// would open none of the records; the operator re-enrols.
			return keystore.Keys{}, inbox.MissingKeyProblem(cfg.KeyStore.KeyName, what), nil
		}
		k, cerr := ks.Create(cfg.KeyStore.KeyName)
		if cerr != nil {
			if errors.Is(cerr, keystore.ErrNeedsReenroll) {
				return keystore.Keys{}, cerr.Error(), nil
			}
			return keystore.Keys{}, "", fmt.Errorf("creating the machine key: %w", cerr)
		}
		keys = keystore.Keys{Current: k}
		log.Info().Str("key_id", k.ID()).Str("backend", ks.Info().Backend).Msg("created the machine key")
	case errors.Is(err, keystore.ErrNeedsReenroll):
		return keystore.Keys{}, err.Error(), nil
	case errors.Is(err, keystore.ErrInsecure):
		// The key may have been exposed: do not use it. Run without it, as
		// for re-enrolment, rather than crash-loop under the service manager.
		return keystore.Keys{}, "the machine key's storage is not private, so the key is not used: " + err.Error(), nil
	default:
		return keystore.Keys{}, "", fmt.Errorf("opening the machine key: %w", err)
	}
	// During a rotation the registration names the pending key, so that the
	// portal seals new deliveries to it.
	if k := registeredKey(keys); k != nil {
		if err := writeRegistration(cfg, ks.Info(), k); err != nil {
			log.Warn().Err(err).Msg("could not write the registration document")
		}
	}
	return keys, "", nil
}

func registeredKey(keys keystore.Keys) keystore.Key {
	if keys.Pending != nil {
		return keys.Pending
	}
	return keys.Current
}

// finishRotation ends a machine-key rotation: once something sealed to the
// pending key is in force and nothing in force is sealed to the old key, the
// pending key is promoted (the old one is destroyed). Until then both keys
// open deliveries. The registration document already names the pending key
// (machineKeys wrote it so), so it stays as it is.
func finishRotation(ctx context.Context, ks keystore.Store, cfg config.Config, keys keystore.Keys, in *inbox.Inbox, applied <-chan struct{}, log zerolog.Logger) {
	oldID, newID := "", keys.Pending.ID()
	if keys.Current != nil {
		oldID = keys.Current.ID()
	}
	for {
		counts := in.SealedTo()
		if counts[newID] > 0 && (oldID == "" || counts[oldID] == 0) {
			if err := keystore.Promote(ks, cfg.KeyStore.KeyName); err != nil {
				log.Error().Err(err).Str("new_key_id", newID).Msg("could not promote the pending machine key; both keys stay in use")
				return
			}
			log.Info().Str("old_key_id", oldID).Str("key_id", newID).Msg("machine key rotation finished: the pending key is now the machine key, the old one is destroyed")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-applied:
		}
	}
}

// writeRegistration writes StateDir/registration.json for the current key
// unless one for this key is already there.
func writeRegistration(cfg config.Config, info keystore.Info, k keystore.Key) error {
	path := filepath.Join(cfg.Paths.StateDir, enroll.FileName)
	if f, err := os.Open(path); err == nil {
		r, _, perr := enroll.Parse(f)
		f.Close()
		if perr == nil && r.KeyID == k.ID() {
			return nil
		}
	}
	b, err := enroll.ForThisMachine(cfg.MachineID, info, k.PublicKey(), time.Now()).Marshal()
	if err != nil {
		return err
	}
	return fsutil.WritePrivateFile(path, b)
}

func signingKeys(cfg config.Config) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for i, s := range cfg.Portal.SigningKeys {
		k, err := config.ParseSigningKey(s)
		if err != nil {
			return nil, fmt.Errorf("portal.signing_keys[%d]: %w", i, err)
		}
		out = append(out, k)
	}
	return out, nil
}

func toInboxKeys(ks []keystore.Key) []inbox.Key {
	out := make([]inbox.Key, len(ks))
	for i, k := range ks {
		out[i] = k
	}
	return out
}

// fetcherFactory builds one CCP client per store and application identity,
// bound to the application's certificate. The resolver builds a new client
// when the certificate's fingerprint or the store's sequence changes, and the
// old one's connections are closed.
func fetcherFactory(cfg config.CCP, log zerolog.Logger, m *metrics.Registry) resolve.FetcherFactory {
	return func(store *state.Store, app *state.Application) (resolve.Fetcher, error) {
		o := ccp.OptionsFor(store, cfg)
		o.Log = log.With().Str("component", "ccp").Str("store", store.Name).Logger()
		o.Observe = m.CCPRequest
		cert := app.Certificate
		return ccp.New(o, func() (*tls.Certificate, error) {
			if cert == nil || cert.PrivateKey == nil {
				return nil, fmt.Errorf("no certificate delivered for application %s", app.AppID)
			}
			return cert, nil
		})
	}
}

// resolverHolder lets a reload swap the resolver under the running server.
type resolverHolder struct {
	p atomic.Pointer[resolve.Resolver]
}

func (h *resolverHolder) Resolve(ctx context.Context, caller *localsock.Identity, req resolve.Request) resolve.Result {
	return h.p.Load().Resolve(ctx, caller, req)
}

func (h *resolverHolder) Admit(caller *localsock.Identity, op resolve.Op) *resolve.Error {
	return h.p.Load().Admit(caller, op)
}

func (h *resolverHolder) Grants(caller *localsock.Identity, name string) bool {
	return h.p.Load().Grants(caller, name)
}

// reloadLoop re-reads the config on each reload request. The policy, rate
// limits and CCP client settings take effect at once; paths, the key store,
// the socket and the portal signing keys need a restart, and a change to
// them is reported. A config that does not load is rejected and the running
// one stays.
func reloadLoop(ctx context.Context, opts Options, res *resolverHolder, build func(config.Config) (*resolve.Resolver, error), log zerolog.Logger, after func()) {
	running := opts.Config
	for {
		select {
		case <-ctx.Done():
			return
		case <-opts.Reload:
		}
		reloadOnce(opts, res, build, &running, log)
		after() // a reload (SIGHUP) also polls the feed now
		if opts.Reloaded != nil {
			opts.Reloaded()
		}
	}
}

// reloadOnce handles one reload request.
func reloadOnce(opts Options, res *resolverHolder, build func(config.Config) (*resolve.Resolver, error), running *config.Config, log zerolog.Logger) {
	var next config.Config
	var err error
	switch {
	case opts.ConfigPath != "":
		next, err = config.Load(opts.ConfigPath)
	case opts.Dev:
		next, err = DevConfig(opts.DevDir)
	default:
		err = errors.New("no config file to reload")
	}
	if err != nil {
		log.Error().Err(err).Msg("reload rejected: the running configuration stays")
		return
	}
	r, err := build(next)
	if err != nil {
		log.Error().Err(err).Msg("reload rejected: the running configuration stays")
		return
	}
	// Accounts may have been renamed or their uids reused: name callers
	// afresh, as the new policy's groups were just looked up afresh.
	localsock.FlushNames()
	old := res.p.Swap(r)
	// In-flight resolutions finish on the old resolver.
	time.AfterFunc(running.API.ShutdownGrace, old.Close)
	if restartNeeded(*running, next) {
		log.Warn().Msg("reload applied the policy, limits and CCP settings; changes to paths, key store, socket, metrics, portal signing keys or the feed take effect at the next restart")
	} else {
		log.Info().Int("policy_rules", len(next.Policy.Rules)).Msg("configuration reloaded")
	}
	*running = next
}

func restartNeeded(a, b config.Config) bool {
	if a.Paths != b.Paths || a.KeyStore != b.KeyStore || a.Metrics != b.Metrics || a.MachineID != b.MachineID || len(a.Portal.SigningKeys) != len(b.Portal.SigningKeys) || !reflect.DeepEqual(a.Feed, b.Feed) {
		return true
	}
	for i := range a.Portal.SigningKeys {
		if a.Portal.SigningKeys[i] != b.Portal.SigningKeys[i] {
			return true
		}
	}
	return false
}

func buildStatus(snap *state.Snapshot, r *resolve.Resolver, info keystore.Info, keyID string, cfg config.Config, hr harden.Report, started time.Time) apitype.Status {
	now := time.Now()
	s := apitype.Status{
		Version:   version.Version,
		StartedAt: started,
		UptimeMS:  now.Sub(started).Milliseconds(),
		Socket:    cfg.Paths.Socket,
		KeyStore: apitype.KeyStoreStatus{
			Backend: info.Backend, HardwareBacked: info.HardwareBacked, KeyID: keyID, Detail: info.Detail, NeedsReenroll: snap.NeedsReenroll,
		},
		Applications: []apitype.ApplicationStatus{},
		Stores:       []apitype.StoreStatus{},
		Credentials:  []apitype.CredentialStatus{},
		Rejected:     []apitype.RejectedDelivery{},
		Hardening:    hr,
	}
	for _, a := range snap.Applications {
		s.Applications = append(s.Applications, apitype.ApplicationStatus{
			AppID: a.AppID, Owner: a.Owner, Serial: a.Serial, Fingerprint: a.Fingerprint, NotBefore: a.NotBefore, NotAfter: a.NotAfter,
			Expired: now.After(a.NotAfter), ExpiresSoon: a.NotAfter.Sub(now) < cfg.Inbox.ExpiryWarning,
		})
	}
	sort.Slice(s.Applications, func(i, j int) bool {
		return state.Key(s.Applications[i].Owner, s.Applications[i].AppID) < state.Key(s.Applications[j].Owner, s.Applications[j].AppID)
	})
	health := r.Health()
	for _, st := range snap.Stores {
		ss := apitype.StoreStatus{Name: st.Name, Owner: st.Owner, AppID: st.AppID, Servers: st.Servers, CacheTTL: st.CacheTTL, CacheMaxStale: st.CacheMaxStale}
		if h, ok := health[state.Key(st.Owner, st.Name)]; ok {
			ss.LastSuccess, ss.LastError, ss.LastErrorClass, ss.LastErrorAt = h.LastSuccess, h.LastError, string(h.LastErrorClass), h.LastErrorAt
		}
		s.Stores = append(s.Stores, ss)
	}
	sort.Slice(s.Stores, func(i, j int) bool {
		return state.Key(s.Stores[i].Owner, s.Stores[i].Name) < state.Key(s.Stores[j].Owner, s.Stores[j].Name)
	})
	for _, c := range snap.Credentials {
		s.Credentials = append(s.Credentials, apitype.CredentialStatus{Name: c.Name, Owner: c.Owner, Store: c.Store})
	}
	sort.Slice(s.Credentials, func(i, j int) bool {
		return state.Key(s.Credentials[i].Owner, s.Credentials[i].Name) < state.Key(s.Credentials[j].Owner, s.Credentials[j].Name)
	})
	for _, rj := range snap.Rejected {
		s.Rejected = append(s.Rejected, apitype.RejectedDelivery{File: rj.File, DeliveryID: rj.DeliveryID, Kind: rj.Kind, Reason: rj.Reason, At: rj.At})
	}
	switch {
	case snap.NeedsReenroll != "":
		s.Problems = append(s.Problems, "the machine key cannot be used; re-enrol this machine (credagent enroll --rotate)")
	case len(snap.Applications) == 0:
		s.Problems = append(s.Problems, "no application certificate has been delivered yet")
	case len(snap.Stores) == 0:
		s.Problems = append(s.Problems, "no CCP store has been delivered yet")
	}
	if snap.KeyProblem != "" {
		s.Problems = append(s.Problems, snap.KeyProblem)
	}
	s.Problems = append(s.Problems, snap.InboxProblems...)
	for _, a := range s.Applications {
		if a.Expired {
			s.Problems = append(s.Problems, fmt.Sprintf("the certificate of application %s expired on %s", a.AppID, a.NotAfter.Format(time.DateOnly)))
		}
	}
	s.Ready = snap.NeedsReenroll == "" && len(snap.Applications) > 0 && len(snap.Stores) > 0
	return s
}

// probeStores runs doctor's probe of every store with its application's
// certificate, in this process, because the private keys never leave it,
// and with the CCP client options a resolution would use.
func probeStores(ctx context.Context, snap *state.Snapshot, ccpCfg config.CCP) []apitype.ProbeResult {
	names := make([]string, 0, len(snap.Stores))
	for n := range snap.Stores {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []apitype.ProbeResult{}
	for _, n := range names {
		st := snap.Stores[n]
		ds := doctor.Store{
			Name: st.Name, AppID: st.AppID, Safe: st.Safe, Folder: st.Folder, HealthObject: st.HealthObject,
			Options: ccp.OptionsFor(st, ccpCfg),
		}
		// The owner's own application only (delivery SPEC section 9).
		if app := snap.Applications[state.Key(st.Owner, st.AppID)]; app != nil && app.Owner == st.Owner {
			ds.ClientCert = app.Certificate
		}
		for _, r := range doctor.ProbeStore(ctx, ds) {
			out = append(out, apitype.ProbeResult{Name: r.Name, Level: string(r.Level), Detail: r.Detail, Fix: r.Fix})
		}
	}
	return out
}

// ensureDir creates a private directory if it is missing, and leaves an
// existing one as it is.
func ensureDir(d string) error {
	if _, err := os.Stat(d); err == nil {
		return nil
	}
	if err := fsutil.MkdirPrivate(d); err != nil {
		return fmt.Errorf("creating %s: %w", d, err)
	}
	return nil
}
