package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/localsock"
)

// Validate reports every problem in c, joined, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if strings.TrimSpace(c.MachineID) == "" {
		bad("machine_id", "must not be empty (default: the host name)")
	}
	for key, p := range map[string]string{"paths.state_dir": c.Paths.StateDir, "paths.inbox_dir": c.Paths.InboxDir} {
		if p == "" || !filepath.IsAbs(p) {
			bad(key, "must be an absolute path, got %q", p)
		}
	}
	if c.Paths.Socket == "" {
		bad("paths.socket", "must not be empty")
	} else if runtime.GOOS == "windows" && !strings.HasPrefix(c.Paths.Socket, `\\.\pipe\`) {
		bad("paths.socket", `must be a named pipe (\\.\pipe\...), got %q`, c.Paths.Socket)
	} else if runtime.GOOS != "windows" && !filepath.IsAbs(c.Paths.Socket) {
		bad("paths.socket", "must be an absolute path, got %q", c.Paths.Socket)
	} else if err := localsock.CheckSocketDir(filepath.Dir(c.Paths.Socket), []string{c.Paths.StateDir, c.Paths.InboxDir, c.KeyStore.Dir}); err != nil {
		bad("paths.socket", "%v", err)
	}

	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of trace, debug, info, warn, error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "must be json or console; got %q", c.Log.Format)
	}
	if c.Log.MaxSizeMB < 1 || c.Log.MaxSizeMB > 1024 {
		bad("log.max_size_mb", "must be between 1 and 1024, got %d", c.Log.MaxSizeMB)
	}
	if c.Log.MaxFiles < 1 || c.Log.MaxFiles > 100 {
		bad("log.max_files", "must be between 1 and 100, got %d", c.Log.MaxFiles)
	}

	if !slices.Contains(keystore.Backends(), c.KeyStore.Backend) {
		bad("keystore.backend", "must be one of %s; got %q", strings.Join(keystore.Backends(), ", "), c.KeyStore.Backend)
	}
	if err := keystore.CheckKeyName(c.KeyStore.KeyName); err != nil {
		bad("keystore.key_name", "%v", err)
	}
	if c.KeyStore.Dir == "" || !filepath.IsAbs(c.KeyStore.Dir) {
		bad("keystore.dir", "must be an absolute path, got %q", c.KeyStore.Dir)
	}

	for i, k := range c.Portal.SigningKeys {
		if _, err := ParseSigningKey(k); err != nil {
			bad(fmt.Sprintf("portal.signing_keys[%d]", i), "%v", err)
		}
	}

	positive := func(key string, d time.Duration, max time.Duration) {
		if d <= 0 || d > max {
			bad(key, "must be between 1ns and %v, got %v", max, d)
		}
	}
	for i, g := range c.Inbox.Groups {
		if err := delivery.CheckName(g); err != nil {
			bad(fmt.Sprintf("inbox.groups[%d]", i), "%q is not a group name: %v", g, err)
		}
	}
	positive("inbox.rescan_interval", c.Inbox.RescanInterval, 24*time.Hour)
	positive("inbox.expiry_warning", c.Inbox.ExpiryWarning, 365*24*time.Hour)
	if c.Inbox.MaxDeliveryBytes < 1024 || c.Inbox.MaxDeliveryBytes > 64<<20 {
		bad("inbox.max_delivery_bytes", "must be between 1024 and 67108864, got %d", c.Inbox.MaxDeliveryBytes)
	}

	if c.API.MaxRequestBytes < 256 || c.API.MaxRequestBytes > 16<<20 {
		bad("api.max_request_bytes", "must be between 256 and 16777216, got %d", c.API.MaxRequestBytes)
	}
	if c.API.MaxCredentials < 1 || c.API.MaxCredentials > 1000 {
		bad("api.max_credentials", "must be between 1 and 1000, got %d", c.API.MaxCredentials)
	}
	if c.API.MaxConcurrent < 1 || c.API.MaxConcurrent > 100000 {
		bad("api.max_concurrent", "must be between 1 and 100000, got %d", c.API.MaxConcurrent)
	}
	if c.API.MaxConnections < 16 || c.API.MaxConnections > 100000 {
		bad("api.max_connections", "must be between 16 and 100000, got %d", c.API.MaxConnections)
	}
	if c.API.MaxConnectionsPerCaller < 1 || c.API.MaxConnectionsPerCaller > 100000 {
		bad("api.max_connections_per_caller", "must be between 1 and 100000, got %d", c.API.MaxConnectionsPerCaller)
	}
	if c.API.MaxConcurrentPerCaller < 1 || c.API.MaxConcurrentPerCaller > 100000 {
		bad("api.max_concurrent_per_caller", "must be between 1 and 100000, got %d", c.API.MaxConcurrentPerCaller)
	}
	positive("api.body_timeout", c.API.BodyTimeout, time.Hour)
	positive("api.read_timeout", c.API.ReadTimeout, time.Hour)
	positive("api.write_timeout", c.API.WriteTimeout, time.Hour)
	positive("api.idle_timeout", c.API.IdleTimeout, time.Hour)
	positive("api.shutdown_grace", c.API.ShutdownGrace, time.Hour)
	if c.API.RatePerSecond <= 0 {
		bad("api.rate_per_second", "must be positive, got %v", c.API.RatePerSecond)
	}
	if c.API.RateBurst < 1 {
		bad("api.rate_burst", "must be at least 1, got %d", c.API.RateBurst)
	}

	names := map[string]bool{}
	for i, r := range c.Policy.Rules {
		key := fmt.Sprintf("policy.rules[%d]", i)
		if r.Name == "" {
			bad(key+".name", "every rule needs a name, so refusals can name it")
		} else if names[r.Name] {
			bad(key+".name", "duplicate rule name %q", r.Name)
		}
		names[r.Name] = true
		accounts := len(r.UIDs) + len(r.Users) + len(r.GIDs) + len(r.Groups) + len(r.SIDs)
		switch {
		case accounts == 0 && len(r.Executables) == 0:
			bad(key, "matches every caller: give at least one of uids, users, gids, groups, sids")
		case accounts == 0:
			// Any user can connect and then exec the allowed binary.
			bad(key, "names only executables, which any user can run: give the accounts too (uids, users, gids, groups or sids)")
		}
		// Names are matched exactly; a wildcard would either match nobody
		// (an account named "*") or, worse, be read as "everyone".
		for field, list := range map[string][]string{"users": r.Users, "groups": r.Groups} {
			for _, n := range list {
				if strings.ContainsAny(n, "*?[") {
					bad(key+"."+field, "%q: wildcards are not allowed; name each account (or give its id)", n)
				} else if strings.TrimSpace(n) == "" {
					bad(key+"."+field, "an empty name matches nobody")
				}
			}
		}
		if len(r.Credentials) == 0 {
			bad(key+".credentials", `must list credentials ("*" for all)`)
		}
		for _, s := range r.SIDs {
			if !strings.HasPrefix(strings.ToUpper(s), "S-1-") {
				bad(key+".sids", "%q is not a SID (S-1-...)", s)
			}
		}
		for _, e := range r.Executables {
			if !filepath.IsAbs(e) {
				bad(key+".executables", "%q must be an absolute path", e)
			}
		}
		validateOwners(key+".owners", r.Owners, bad)
		for _, op := range r.Operations {
			if !slices.Contains(Operations(), op) {
				bad(key+".operations", "%q is not one of %s", op, strings.Join(Operations(), ", "))
			}
		}
	}

	positive("ccp.connect_timeout", c.CCP.ConnectTimeout, 5*time.Minute)
	positive("ccp.tls_timeout", c.CCP.TLSTimeout, 5*time.Minute)
	positive("ccp.request_timeout", c.CCP.RequestTimeout, 10*time.Minute)
	positive("ccp.retry_backoff", c.CCP.RetryBackoff, time.Minute)
	positive("ccp.password_change_wait", c.CCP.PasswordChangeWait, 10*time.Minute)
	if c.CCP.Retries < 0 || c.CCP.Retries > 10 {
		bad("ccp.retries", "must be between 0 and 10, got %d", c.CCP.Retries)
	}
	if v := c.CCP.TLSMaxVersion; v != "" && v != "1.2" && v != "1.3" {
		bad("ccp.tls_max_version", "must be 1.2 or 1.3, got %q", v)
	}
	if c.CCP.PoolSize < 1 || c.CCP.PoolSize > 1024 {
		bad("ccp.pool_size", "must be between 1 and 1024, got %d", c.CCP.PoolSize)
	}
	errs = append(errs, c.Feed.validate()...)
	validateMetrics(c.Metrics, bad)
	return errors.Join(errs...)
}

// ParseSigningKey parses a portal signing public key: a PEM "PUBLIC KEY"
// block holding an ECDSA P-256 or Ed25519 key.
func ParseSigningKey(s string) (any, error) {
	blk, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New(`not a PEM "PUBLIC KEY" block`)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("ECDSA signing keys must be on P-256")
		}
		return k, nil
	}
	return nil, fmt.Errorf("unsupported signing key type %T (want ECDSA P-256 or Ed25519)", pub)
}
