package daemon

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/metrics"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/agent/version"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// newAgent builds every part of the agent from opts, in order: hardening,
// directories, key store and machine key, inbox (rebuilding the state),
// feed, resolver, socket and server. On error it returns what it built so
// far, for the caller to close, with the reason.
func newAgent(ctx context.Context, opts Options) (*agent, error) {
	a := &agent{opts: opts, log: opts.Log, started: time.Now(), startedCfg: opts.Config, running: opts.Config,
		set: translate(opts.Config), applied: make(chan struct{}, 1), res: &resolverHolder{}}
	a.live.Store(&a.set.live)
	a.fetchers = func(o ccp.Options) resolve.FetcherFactory { return fetcherFactory(o, a.log, a.m) }
	rs := a.set.restart
	if !opts.SkipHardening {
		a.hardening = harden.Apply()
		for _, m := range a.hardening.Measures {
			if !m.Applied {
				a.log.Warn().Str("measure", m.Name).Str("detail", m.Detail).Msg("hardening measure not in force")
			}
		}
	}

	// The state directory holds the sealed records and the registration: it
	// must be private, whether it is new or not. The inbox is only created
	// if missing: a portal drop account may be granted it, and every file
	// in it is checked on its own (owner, type, signature).
	if err := fsutil.MkdirPrivate(rs.Inbox.StateDir); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := ensureDir(rs.Inbox.InboxDir); err != nil {
		return nil, err
	}

	a.ks = opts.KeyStore
	if a.ks == nil {
		ks, err := keystore.Open(rs.KeyStore)
		if err != nil {
			return nil, fmt.Errorf("opening the key store (%s): %w", rs.KeyStore.Backend, err)
		}
		a.ks, a.closeKS = ks, true
	}
	keys, needsReenroll, err := machineKeys(a.ks, rs, a.log)
	if err != nil {
		return a, err
	}
	a.keys = keys
	// The registered key: the pending one during a rotation, which is also
	// the key that a finished rotation promotes, so it does not change.
	if k := registeredKey(keys); k != nil {
		a.keyID = k.ID()
	}

	a.st = &state.State{}
	a.m = metrics.New(version.Version)
	a.m.SetKeyStore(a.ks.Info().Backend, a.ks.Info().HardwareBacked)
	a.m.SetState(a.st.Load)
	if needsReenroll == "" {
		if err := a.buildIntake(ctx); err != nil {
			return a, err
		}
	} else {
		a.st.Update(func(s *state.Snapshot) { s.NeedsReenroll = needsReenroll })
		a.log.Error().Str("reason", needsReenroll).Msg("the machine key cannot be used: the agent needs re-enrolment (run `credagent enroll --rotate` and register the new key); deliveries are kept, not opened")
	}

	r0, err := a.newResolver(a.set.live)
	if err != nil {
		return a, fmt.Errorf("resolver: %w", err)
	}
	a.res.p.Store(r0)

	lo := rs.Listen
	lo.Dev = opts.Dev
	ln, err := localsock.Listen(rs.Socket, lo)
	if err != nil {
		return a, fmt.Errorf("listening on %s: %w", rs.Socket, err)
	}
	a.srv = localapi.NewServer(localapi.Options{
		Resolver:    a.res,
		Status:      a.status,
		ProbeStores: func(ctx context.Context) []apitype.ProbeResult { return probeStores(ctx, a.st.Load(), a.liveCCP()) },
		Sync:        feedSync(a.fd),
		Config:      localapi.Config{Limits: a.set.live.API, Timeouts: rs.APITimeouts},
		Log:         a.log.With().Str("component", "localapi").Logger(),
	})
	a.serve = func(ctx context.Context) error { return a.srv.Serve(ctx, ln) }
	return a, nil
}

// buildIntake builds the inbox, rebuilds the state from the sealed
// records, and builds the feed if one is configured.
func (a *agent) buildIntake(ctx context.Context) error {
	rs := a.set.restart
	signers, err := signingKeys(rs.SigningKeys)
	if err != nil {
		return err
	}
	if len(signers) == 0 {
		return errors.New("portal.signing_keys is empty: pin the portal's public signing key in the config (every delivery must be signed by it)")
	}
	o := rs.Inbox
	o.Signers = signers
	o.MachineKeys = toInboxKeys(a.keys.All())
	o.State = a.st
	o.Log = a.log.With().Str("component", "inbox").Logger()
	o.OnEvent = a.onEvent
	if a.in, err = inbox.New(o); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if err := a.in.Load(ctx); err != nil {
		return fmt.Errorf("rebuilding state from %s: %w", rs.Inbox.StateDir, err)
	}
	if a.fd, err = newFeed(rs.Feed, a.set.live.Feed, rs.Inbox.Groups, signers, a.in, a.m, a.log); err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	return nil
}

// onEvent counts a delivery applied or rejected, wakes the rotation check,
// and passes the event on.
func (a *agent) onEvent(e inbox.Event) {
	source := "inbox"
	if e.Feed {
		source = "feed"
	}
	a.m.Delivery(source, string(e.Kind), e.Err == nil, e.Reason, e.At)
	if e.Err == nil {
		select {
		case a.applied <- struct{}{}:
		default:
		}
	}
	if a.opts.OnEvent != nil {
		a.opts.OnEvent(e)
	}
}

// newResolver builds a resolver from live settings.
func (a *agent) newResolver(l liveSettings) (*resolve.Resolver, error) {
	return resolve.New(resolve.Options{
		State:         a.st,
		NewFetcher:    a.fetchers(l.CCP),
		Policy:        l.Resolver.Policy,
		RatePerSecond: l.Resolver.RatePerSecond,
		RateBurst:     l.Resolver.RateBurst,
		Audit:         a.opts.Audit,
		Log:           a.log.With().Str("component", "resolve").Logger(),
		FailClosed:    failClosed(a.fd),
		Metrics:       a.m,
	})
}

// status is /v1/status.
func (a *agent) status(context.Context) apitype.Status {
	s := buildStatus(a.st.Load(), a.res.p.Load(), a.ks.Info(), a.keyID, a.set.restart, a.hardening, a.started)
	addFeedStatus(&s, a.fd)
	s.PendingRestart = a.pendingRestart.get()
	return s
}

// close releases what newAgent built, after run has returned.
func (a *agent) close() {
	if r := a.res.p.Load(); r != nil {
		r.Close()
	}
	if a.in != nil {
		a.in.Close()
	}
	if a.closeKS {
		a.ks.Close()
	}
}

func signingKeys(pems []string) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for i, s := range pems {
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
func fetcherFactory(defaults ccp.Options, log zerolog.Logger, m *metrics.Registry) resolve.FetcherFactory {
	return func(store *state.Store, app *state.Application) (resolve.Fetcher, error) {
		o := ccpOptions(store, defaults)
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

// liveCCP is the CCP client settings in force.
func (a *agent) liveCCP() ccp.Options { return a.live.Load().CCP }
