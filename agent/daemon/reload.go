package daemon

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/localsock"
)

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

func (h *resolverHolder) Grants(caller *localsock.Identity, owner, name string) bool {
	return h.p.Load().Grants(caller, owner, name)
}

// pendingKeys are the config keys changed and reloaded that wait for a
// restart (the status shows them).
type pendingKeys struct {
	mu   sync.Mutex
	keys []string
}

func (p *pendingKeys) set(keys []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

func (p *pendingKeys) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.keys...)
}

// reloadLoop handles each reload request until ctx is done.
func (a *agent) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Reload:
		}
		a.reload()
		syncFeed(ctx, a.fd) // a reload (SIGHUP) also polls the feed now
		if a.opts.Reloaded != nil {
			a.opts.Reloaded()
		}
	}
}

// loadConfig re-reads the config a reload applies.
func (a *agent) loadConfig() (config.Config, error) {
	switch {
	case a.opts.ConfigPath != "":
		return config.Load(a.opts.ConfigPath)
	case a.opts.Dev:
		return DevConfig(a.opts.DevDir)
	}
	return config.Config{}, errors.New("no config file to reload")
}

// reload re-reads the config and applies every live setting (liveSettings)
// to the running parts. A key whose change alters a restart setting is
// logged and shown in the status as waiting for a restart. A config that
// does not load, or a part that refuses its new settings, rejects the
// whole reload: the running configuration stays.
func (a *agent) reload() {
	next, err := a.loadConfig()
	if err != nil {
		a.log.Error().Err(err).Msg("reload rejected: the running configuration stays")
		return
	}
	a.apply(next)
}

// apply applies a loaded config to the running agent.
func (a *agent) apply(next config.Config) {
	live := translate(next).live
	r, err := a.newResolver(live)
	if err != nil {
		a.log.Error().Err(err).Msg("reload rejected: the running configuration stays")
		return
	}
	if a.opts.SetLogLevel != nil {
		if err := a.opts.SetLogLevel(live.LogLevel); err != nil {
			r.Close()
			a.log.Error().Err(err).Msg("reload rejected: the running configuration stays")
			return
		}
	}
	// Accounts may have been renamed or their uids reused: name callers
	// afresh, as the new policy's groups were just looked up afresh.
	localsock.FlushNames()
	old := a.res.p.Swap(r)
	// In-flight resolutions finish on the old resolver, each CCP
	// connection closing as its request ends; its cache and refusal
	// summaries are closed after the grace.
	old.RetireFetchers()
	time.AfterFunc(a.set.restart.APITimeouts.ShutdownGrace, old.Close)
	a.srv.SetLimits(live.API)
	if a.fd != nil {
		a.fd.SetSchedule(live.Feed)
	}
	a.live.Store(&live)

	applied, _, _ := reloadClasses(a.running, next)
	_, restart, _ := reloadClasses(a.startedCfg, next)
	if a.opts.SetLogLevel == nil {
		// Nobody can change the level: it waits for a restart too.
		if next.Log.Level != a.startedCfg.Log.Level {
			restart = append(restart, "log.level")
		}
		applied = without(applied, "log.level")
	}
	a.pendingRestart.set(restart)
	a.running = next
	ev := a.log.Info()
	if len(restart) > 0 {
		ev = a.log.Warn().Strs("needs_restart", restart)
	}
	ev.Strs("applied", applied).Int("policy_rules", len(next.Policy.Rules)).Msg(reloadMessage(applied, restart))
}

func reloadMessage(applied, restart []string) string {
	msg := "configuration reloaded"
	if len(applied) > 0 {
		msg += "; applied now: " + strings.Join(applied, ", ")
	}
	if len(restart) > 0 {
		msg += "; changed but taken only at the next restart: " + strings.Join(restart, ", ")
	}
	return msg
}

func without(keys []string, k string) []string {
	out := keys[:0:0]
	for _, x := range keys {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// configKey is one key of the config file: its dotted name and where its
// value is in config.Config. A list of structures (policy.rules) is one
// key.
type configKey struct {
	name  string
	index []int
}

// configKeys lists every key of the config file, from config.Config's
// yaml tags, in the file's order.
func configKeys() []configKey {
	var out []configKey
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+tag+".", idx)
				continue
			}
			out = append(out, configKey{name: prefix + tag, index: idx})
		}
	}
	walk(reflect.TypeFor[config.Config](), "", nil)
	return out
}

// reloadClasses compares two configs key by key. Each key that differs is
// set alone, over a, to its value in b, and the settings of both are
// compared: a key that changes the restart settings needs a restart; one
// that changes only the live settings is applied by a reload; one that
// changes neither reaches no part of the agent (unused).
func reloadClasses(a, b config.Config) (live, restart, unused []string) {
	sa := translate(a)
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for _, k := range configKeys() {
		x, y := va.FieldByIndex(k.index), vb.FieldByIndex(k.index)
		if reflect.DeepEqual(x.Interface(), y.Interface()) {
			continue
		}
		c := a
		reflect.ValueOf(&c).Elem().FieldByIndex(k.index).Set(y)
		sc := translate(c)
		switch {
		case !reflect.DeepEqual(sa.restart, sc.restart):
			restart = append(restart, k.name)
		case !reflect.DeepEqual(sa.live, sc.live):
			live = append(live, k.name)
		default:
			unused = append(unused, k.name)
		}
	}
	return live, restart, unused
}
