package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/keystore"
)

// Env is what the local checks look at. A nil function skips its check with
// a WARN saying why.
type Env struct {
	// ConfigPath is the config file. Empty with Config set: dev mode, where
	// the configuration is built in.
	ConfigPath string
	// Config is filled by the config check for the ones after it.
	Config *config.Config
	// OpenKeyStore opens the configured key store backend.
	OpenKeyStore func(config.KeyStore) (keystore.Store, error)
	// Hardening returns the hardening report, the agent's own when it is
	// reachable.
	Hardening func(context.Context) (harden.Report, error)
	// Certificates returns the applications' certificates, from the agent.
	Certificates func(context.Context) ([]Certificate, error)
	// Stores returns the per-store probe results, run by the agent.
	Stores func(context.Context) ([]Result, error)
	// Feed returns the feed addresses the agent follows (none without a
	// feed).
	Feed func(context.Context) ([]FeedAddress, error)
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// Service returns what the service manager says of the installed
	// service (Windows: recovery, the optional settings install may have
	// had refused, who can change its executable). Nil adds no check; no
	// results add no line.
	Service func(context.Context) []Result
}

// Certificate is an application certificate as status reports it.
type Certificate struct {
	AppID    string
	NotAfter time.Time
}

// Checks returns the table of local checks, in the order they run.
func Checks(env *Env) []Check {
	checks := []Check{
		{"config", env.checkConfig},
		{"keystore", env.checkKeyStore},
		{"state dir", func(context.Context) []Result {
			return env.checkDir(func(c *config.Config) string { return c.Paths.StateDir })
		}},
		{"key dir", func(context.Context) []Result {
			return env.checkDir(func(c *config.Config) string { return c.KeyStore.Dir })
		}},
		{"inbox dir", func(context.Context) []Result {
			return env.checkDir(func(c *config.Config) string { return c.Paths.InboxDir })
		}},
		{"socket", env.checkSocket},
		{"hardening", env.checkHardening},
		{"certificates", env.checkCertificates},
		{"stores", env.checkStores},
		{"feed", env.checkFeed},
	}
	if env.Service != nil {
		// Last: the installed service's own configuration.
		checks = append(checks, Check{"service", env.checkService})
	}
	return checks
}

// FeedAddress is one feed address as status reports it.
type FeedAddress struct {
	Address   string
	Seq       uint64
	Expires   time.Time
	Expired   bool
	LastError string
}

func (env *Env) checkFeed(ctx context.Context) []Result {
	if env.Config != nil && !env.Config.Feed.Enabled() {
		return pass("no feed configured: deliveries come through the inbox only")
	}
	if env.Feed == nil {
		return warn("skipped: the agent is not reachable", "credagent start")
	}
	fs, err := env.Feed(ctx)
	if err != nil {
		return warn("skipped: "+err.Error(), "credagent start")
	}
	return CheckFeed(fs)
}

// CheckFeed gives one result per feed address: FAIL for an expired
// manifest (the feed may be withholding a revocation) or none at all, WARN
// for a last poll that failed.
func CheckFeed(fs []FeedAddress) []Result {
	if len(fs) == 0 {
		return warn("the agent follows no feed address yet", "credagent sync")
	}
	var out []Result
	for _, f := range fs {
		name := "feed " + f.Address
		switch {
		case f.Seq == 0:
			out = append(out, Result{Name: name, Level: Fail, Detail: "no manifest accepted: " + f.LastError, Fix: "check feed.urls, the feed's TLS and that the portal published for this machine (credseal publish)"})
		case f.Expired:
			out = append(out, Result{Name: name, Level: Fail, Detail: fmt.Sprintf("FEED STALE: the newest valid manifest (seq %d) expired at %s; changes and revocations since may be missing (last error: %s)", f.Seq, f.Expires.UTC().Format(time.RFC3339), f.LastError),
				Fix: "have the portal refresh the feed (credseal publish --refresh) and check that this machine reaches it"})
		case f.LastError != "":
			out = append(out, Result{Name: name, Level: Warn, Detail: fmt.Sprintf("seq %d, valid until %s; last poll: %s", f.Seq, f.Expires.UTC().Format(time.RFC3339), f.LastError), Fix: "see credagent status; the last good state stays in force"})
		default:
			out = append(out, Result{Name: name, Level: Pass, Detail: fmt.Sprintf("seq %d, valid until %s", f.Seq, f.Expires.UTC().Format(time.RFC3339))})
		}
	}
	return out
}

func (env *Env) checkConfig(context.Context) []Result {
	if env.ConfigPath == "" && env.Config != nil {
		return pass("dev mode: the built-in dev configuration")
	}
	c, err := config.Load(env.ConfigPath)
	if err != nil {
		return fail(err.Error(), "edit "+env.ConfigPath+" (the message names the key and line), then run credagent doctor again")
	}
	env.Config = &c
	return pass(env.ConfigPath)
}

func (env *Env) needConfig() []Result {
	return warn("skipped: the config does not load", "fix the config first")
}

func (env *Env) checkKeyStore(context.Context) []Result {
	if env.Config == nil {
		return env.needConfig()
	}
	if env.OpenKeyStore == nil {
		return warn("skipped: no key store backend in this build", "")
	}
	st, err := env.OpenKeyStore(env.Config.KeyStore)
	if err != nil {
		if errors.Is(err, keystore.ErrProviderUnusable) {
			return fail(err.Error(), "the CNG key storage provider is missing or a stub (certutil -csplist lists the registered ones); use a machine with a working provider, or keystore.backend: file")
		}
		return fail(err.Error(), "check keystore.backend and keystore.dir in the config; for tpm, that "+env.Config.KeyStore.TPMDevice+" exists")
	}
	defer st.Close()
	_, err = st.Open(env.Config.KeyStore.KeyName)
	// Info after Open: a backend may learn from the key itself whether it
	// is hardware-backed (CNG asks the key, not the provider's name).
	info := st.Info()
	detail := fmt.Sprintf("backend %s (%s)", info.Backend, info.Detail)
	switch {
	case errors.Is(err, keystore.ErrTransient):
		return warn(detail+": "+err.Error(), "the TPM is busy, locked out for a while or its service is starting; the agent retries. If it persists: Get-Tpm, and check the TPM Base Services (TBS) service")
	case errors.Is(err, keystore.ErrProviderUnusable):
		return fail(detail+": "+err.Error(), "the key storage provider is missing or does not work on this machine; set keystore.backend to a backend that does, or repair the provider")
	case errors.Is(err, keystore.ErrNotFound):
		if what := inbox.SealedState(env.Config.Paths.StateDir, enroll.FileName); what != "" {
			return fail(detail+": "+inbox.MissingKeyProblem(env.Config.KeyStore.KeyName, what), "credagent enroll --rotate, then register the new key in the portal and have it re-seal the applications")
		}
		return warn(detail+": no machine key yet", "enrol the machine: credagent enroll")
	case errors.Is(err, keystore.ErrNeedsReenroll):
		return fail(detail+": "+err.Error(), "enrol the machine again: credagent enroll --rotate, then register the new key in the portal")
	case err != nil:
		return fail(detail+": "+err.Error(), "see the error; the key's files must be owned by root with mode 0600")
	}
	if !info.HardwareBacked {
		return warn(detail+": the key is not hardware-backed", "use keystore.backend: tpm (Linux) or a machine with a TPM (Windows) where available")
	}
	return pass(detail)
}

// checkDir: the directory exists, is a directory and not a link, is owned by
// the agent's user, and no one else can write it (Unix); on Windows the
// DACL set by install is the control, so existence is checked.
func (env *Env) checkDir(path func(*config.Config) string) []Result {
	if env.Config == nil {
		return env.needConfig()
	}
	return CheckPrivateDir(path(env.Config))
}

// CheckPrivateDir checks one agent directory.
func CheckPrivateDir(p string) []Result {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return warn(p+" does not exist yet", "it is created when the agent starts: credagent start")
	}
	if err != nil {
		return fail(err.Error(), "")
	}
	if !st.IsDir() {
		return fail(p+" is not a directory (or is a link)", "remove it; the agent creates the directory at start")
	}
	if runtime.GOOS == "windows" {
		return pass(p)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fail(fmt.Sprintf("%s is writable by others (%v)", p, st.Mode().Perm()), "chmod go-w "+p)
	}
	if uid, ok := ownerUID(st); ok && uid != os.Geteuid() {
		return fail(fmt.Sprintf("%s is owned by uid %d, not the agent's uid %d", p, uid, os.Geteuid()), fmt.Sprintf("chown %d %s", os.Geteuid(), p))
	}
	return pass(fmt.Sprintf("%s (%v)", p, st.Mode().Perm()))
}

func (env *Env) checkSocket(context.Context) []Result {
	if env.Config == nil {
		return env.needConfig()
	}
	return CheckSocket(env.Config.Paths.Socket, env.Config.API.SocketGroup)
}

// CheckSocket checks the Unix socket: present, a socket, not open to
// everyone, owned by the socket group. Named pipes are checked by the agent.
func CheckSocket(p, group string) []Result {
	if runtime.GOOS == "windows" {
		return pass(p + " (named pipe; its DACL is set by the agent)")
	}
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(p+" does not exist: the agent is not running or listens elsewhere", "credagent start; check paths.socket")
	}
	if err != nil {
		return fail(err.Error(), "")
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fail(p+" is not a socket", "remove it and restart the agent")
	}
	if st.Mode().Perm()&0o007 != 0 {
		return fail(fmt.Sprintf("%s is open to every user (%v)", p, st.Mode().Perm()), "restart the agent, which sets 0660; report this if it persists")
	}
	detail := fmt.Sprintf("%s (%v)", p, st.Mode().Perm())
	if g, ok := groupName(st); ok && group != "" && g != group {
		return warn(fmt.Sprintf("%s belongs to group %s, not %s", detail, g, group), "check api.socket_group and that the group exists (groupadd --system "+group+")")
	}
	return pass(detail)
}

func (env *Env) checkService(ctx context.Context) []Result { return env.Service(ctx) }

func (env *Env) checkHardening(ctx context.Context) []Result {
	if env.Hardening == nil {
		return warn("skipped: not available", "")
	}
	r, err := env.Hardening(ctx)
	if err != nil {
		return warn("could not read: "+err.Error(), "start the agent to check its hardening")
	}
	if missing := r.Missing(); len(missing) > 0 {
		var d []string
		for _, m := range r.Measures {
			if !m.Applied {
				d = append(d, m.Name+": "+m.Detail)
			}
		}
		return warn("not in force: "+strings.Join(d, "; "), "run the agent as the service (the unit's LimitMEMLOCK/LimitCORE), as root")
	}
	return pass(fmt.Sprintf("%d measures in force", len(r.Measures)))
}

func (env *Env) checkCertificates(ctx context.Context) []Result {
	if env.Certificates == nil {
		return warn("skipped: the agent is not reachable", "credagent start")
	}
	certs, err := env.Certificates(ctx)
	if err != nil {
		return warn("skipped: "+err.Error(), "credagent start")
	}
	warnWithin := 30 * 24 * time.Hour
	if env.Config != nil {
		warnWithin = env.Config.Inbox.ExpiryWarning
	}
	return CheckExpiry(certs, env.now(), warnWithin)
}

func (env *Env) now() time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}

// CheckExpiry gives one result per application certificate.
func CheckExpiry(certs []Certificate, now time.Time, warnWithin time.Duration) []Result {
	if len(certs) == 0 {
		return warn("no application certificates yet", "have the portal deliver one to this machine")
	}
	sort.Slice(certs, func(i, j int) bool { return certs[i].AppID < certs[j].AppID })
	var out []Result
	for _, c := range certs {
		name := "certificate " + c.AppID
		left := c.NotAfter.Sub(now)
		when := c.NotAfter.UTC().Format(time.RFC3339)
		switch {
		case left <= 0:
			out = append(out, Result{Name: name, Level: Fail, Detail: "expired " + when, Fix: "have the portal deliver a renewed certificate for " + c.AppID})
		case left < warnWithin:
			out = append(out, Result{Name: name, Level: Warn, Detail: fmt.Sprintf("expires %s (in %d days)", when, int(left.Hours()/24)), Fix: "renew it in the portal before it expires"})
		default:
			out = append(out, Result{Name: name, Level: Pass, Detail: "valid until " + when})
		}
	}
	return out
}

func (env *Env) checkStores(ctx context.Context) []Result {
	if env.Stores == nil {
		return warn("skipped: this agent does not run store probes yet", "")
	}
	rs, err := env.Stores(ctx)
	if err != nil {
		return warn("skipped: "+err.Error(), "credagent start")
	}
	if len(rs) == 0 {
		return warn("no stores configured", "have the portal deliver a store")
	}
	return rs
}
