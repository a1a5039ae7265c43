package daemon

import (
	"net/http"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/feed"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/logging"
	"github.com/credagent/credagent/agent/metrics"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/localsock"
)

// settings is the config file translated, once, into the options of each
// part of the agent. The file's schema stays in package config; the parts
// take only their own options and never see it.
//
// The split between live and restart is the one place that decides what a
// reload does: a reload applies every live setting to the running parts,
// and a config key whose change alters a restart setting is reported as
// waiting for a restart (reloadClasses). No list of keys is kept: a key is
// live or not by where translate puts its value.
type settings struct {
	live    liveSettings
	restart restartSettings
}

// liveSettings are applied by a reload to the running agent.
type liveSettings struct {
	// LogLevel goes to Options.SetLogLevel (logging.Logs.SetLevel).
	LogLevel string
	// Resolver and CCP make a new resolver, swapped in under the server.
	Resolver resolverSettings
	CCP      ccp.Options // the client-wide part; the store fills the rest
	// API goes to localapi.Server.SetLimits.
	API localapi.Limits
	// Feed goes to feed.Feed.SetSchedule.
	Feed feed.Schedule
}

// resolverSettings are what a resolver takes from the config.
type resolverSettings struct {
	Policy        resolve.Policy
	RatePerSecond float64
	RateBurst     int
}

// restartSettings are taken once, at start.
type restartSettings struct {
	MachineID string
	// Log is how cmd/credagent opened the logs (the level aside).
	Log      logging.Options
	KeyStore keystore.Options
	KeyName  string
	// Socket and Listen are the local API's socket or pipe (Listen.Dev is
	// set by Run).
	Socket string
	Listen localsock.ListenOptions
	// APITimeouts are the local API's connection timeouts and its
	// shutdown grace, which is also the service manager's stop timeout.
	APITimeouts localapi.Timeouts
	// SigningKeys are the portal's pinned keys, as PEM.
	SigningKeys []string
	// Inbox is the inbox's options, without the parts Run adds (keys,
	// signers, state, log, events). Its ExpiryWarning is also the status's.
	Inbox inbox.Options
	Feed  feedSettings
	// Metrics is the metrics output, without its log.
	Metrics metrics.Options
}

// feedSettings build the feed: its options without the schedule (live)
// and the parts Run adds, its HTTP client's, and the files those read.
type feedSettings struct {
	Options                       feed.Options
	Client                        feed.ClientOptions
	CAFile, ClientCert, ClientKey string
}

// translate turns a loaded (valid) config into settings. It does no I/O
// and cannot fail: files named by the config are read when the part that
// needs them is built.
func translate(c config.Config) settings {
	var s settings
	s.live = liveSettings{
		LogLevel: c.Log.Level,
		Resolver: resolverSettings{Policy: policyOf(c.Policy), RatePerSecond: c.API.RatePerSecond, RateBurst: c.API.RateBurst},
		CCP: ccp.Options{
			ConnectTimeout:     c.CCP.ConnectTimeout,
			TLSTimeout:         c.CCP.TLSTimeout,
			RequestTimeout:     c.CCP.RequestTimeout,
			Retries:            c.CCP.Retries,
			RetryBackoff:       c.CCP.RetryBackoff,
			PasswordChangeWait: c.CCP.PasswordChangeWait,
			PoolSize:           c.CCP.PoolSize,
			HTTP2:              c.CCP.HTTP2,
			TLSMaxVersion:      ccp.TLSVersion(c.CCP.TLSMaxVersion),
		},
		API: localapi.Limits{
			MaxRequestBytes:         c.API.MaxRequestBytes,
			MaxCredentials:          c.API.MaxCredentials,
			MaxConcurrent:           c.API.MaxConcurrent,
			MaxConnections:          c.API.MaxConnections,
			MaxConnectionsPerCaller: c.API.MaxConnectionsPerCaller,
			MaxConcurrentPerCaller:  c.API.MaxConcurrentPerCaller,
			BodyTimeout:             c.API.BodyTimeout,
		},
		Feed: feed.Schedule{Interval: c.Feed.PollInterval, FailClosedAfter: c.Feed.FailClosedAfter},
	}
	header := http.Header{}
	for k, v := range c.Feed.Headers {
		header.Set(k, v)
	}
	s.restart = restartSettings{
		MachineID: c.MachineID,
		Log: logging.Options{Format: c.Log.Format, File: c.Log.File, MaxSizeMB: c.Log.MaxSizeMB, MaxFiles: c.Log.MaxFiles,
			AuditFile: c.Log.AuditFile},
		KeyStore: keystore.Options{Backend: c.KeyStore.Backend, Dir: c.KeyStore.Dir, TPMDevice: c.KeyStore.TPMDevice},
		KeyName:  c.KeyStore.KeyName,
		Socket:   c.Paths.Socket,
		Listen: localsock.ListenOptions{Group: c.API.SocketGroup, Allow: c.API.PipeAllow,
			Reserved: []string{c.Paths.StateDir, c.Paths.InboxDir, c.KeyStore.Dir}},
		APITimeouts: localapi.Timeouts{ReadTimeout: c.API.ReadTimeout, WriteTimeout: c.API.WriteTimeout, IdleTimeout: c.API.IdleTimeout,
			ShutdownGrace: c.API.ShutdownGrace},
		SigningKeys: c.Portal.SigningKeys,
		Inbox: inbox.Options{
			InboxDir:      c.Paths.InboxDir,
			StateDir:      c.Paths.StateDir,
			MaxBytes:      c.Inbox.MaxDeliveryBytes,
			Rescan:        c.Inbox.RescanInterval,
			ExpiryWarning: c.Inbox.ExpiryWarning,
			MachineID:     c.MachineID,
			AllowedOwners: c.Inbox.AllowedOwners,
			Groups:        c.Inbox.Groups,
		},
		Feed: feedSettings{
			Options: feed.Options{URLs: c.Feed.URLs, Header: header, Timeout: c.Feed.Timeout, MaxManifestBytes: c.Feed.MaxManifestBytes,
				MaxDeliveryBytes: c.Inbox.MaxDeliveryBytes, MachineID: c.MachineID, StateDir: c.Paths.StateDir},
			Client: feed.ClientOptions{Proxy: c.Feed.Proxy, NoProxy: c.Feed.NoProxy, Header: header},
			CAFile: c.Feed.CAFile, ClientCert: c.Feed.ClientCert, ClientKey: c.Feed.ClientKey,
		},
		Metrics: metrics.Options{Textfile: c.Metrics.Textfile, Interval: c.Metrics.Interval, Listen: c.Metrics.Listen},
	}
	return s
}

// LogOptions are the options of the agent's logs (agent/logging) for c.
func LogOptions(c config.Config) logging.Options {
	s := translate(c)
	o := s.restart.Log
	o.Level = s.live.LogLevel
	return o
}

// StopTimeout is how long the agent lets in-flight requests finish at
// stop (api.shutdown_grace), for the service manager.
func StopTimeout(c config.Config) time.Duration {
	return translate(c).restart.APITimeouts.ShutdownGrace
}

func policyOf(p config.Policy) resolve.Policy {
	out := resolve.Policy{}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, resolve.Rule{
			Name: r.Name, UIDs: r.UIDs, Users: r.Users, GIDs: r.GIDs, Groups: r.Groups, SIDs: r.SIDs,
			Executables: r.Executables, Credentials: r.Credentials, Operations: r.Operations, Owners: r.Owners,
		})
	}
	return out
}

// ccpOptions are the options of a CCP client for a store delivered by the
// portal: the store's addresses and trust, over the config's client-wide
// settings. A store's tls_max_version overrides the config's. The logger
// and observer are left for the caller.
func ccpOptions(st *state.Store, defaults ccp.Options) ccp.Options {
	o := defaults
	if st == nil {
		return o
	}
	o.Servers = append([]string(nil), st.Servers...)
	o.Path = st.Path
	o.CABundle = append([]byte(nil), st.CABundle...)
	o.Pins = append([]string(nil), st.Pins...)
	o.Proxy = st.Proxy
	o.NoProxy = append([]string(nil), st.NoProxy...)
	if st.TLSMaxVersion != "" {
		o.TLSMaxVersion = ccp.TLSVersion(st.TLSMaxVersion)
	}
	return o
}
