package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/secret"
)

var errUsage = errors.New("usage")

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

func (e *env) time() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("credseal "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

// common are the flags every delivery command shares.
type common struct {
	to, group, groupKey, machine string
	sign                         string
	seq                          uint64
	id                           string
	owner                        string
	expires                      time.Duration
	inbox, out                   string
	feed                         string
	seal                         bool
	validity, grace              time.Duration
}

func (c *common) register(fs *flag.FlagSet, sealed bool) {
	fs.StringVar(&c.to, "to", "", "the machine's registration document (JSON from `credagent enroll`)")
	fs.StringVar(&c.group, "group", "", "address the delivery to this machine group instead")
	fs.StringVar(&c.groupKey, "group-key", "", "with --group: the group's public key (PEM) to seal to")
	if !sealed {
		fs.BoolVar(&c.seal, "seal", false, "seal the content too (a store or credential; always so with --feed)")
	}
	fs.StringVar(&c.machine, "machine", "", "address to this machine ID (unsealed kinds, without --to)")
	fs.StringVar(&c.sign, "sign", "", "the portal signing key (PEM PRIVATE KEY) (required)")
	fs.Uint64Var(&c.seq, "seq", 0, "sequence number, above the last one for this object (default: now in Unix milliseconds)")
	fs.StringVar(&c.id, "id", "", "delivery ID (default: random)")
	fs.StringVar(&c.owner, "owner", "", "the person or team in the portal who owns the object (not for group keys); runners reach it only through policy rules that list this owner")
	fs.DurationVar(&c.expires, "expires", 0, "refuse the delivery after this long (default: never)")
	fs.StringVar(&c.inbox, "inbox", "", "write into this inbox directory, atomically")
	fs.StringVar(&c.out, "out", "", "write to this file instead")
	fs.StringVar(&c.feed, "feed", "", "publish into this feed tree instead (sealed, with a new signed manifest)")
	fs.DurationVar(&c.validity, "validity", 7*24*time.Hour, "with --feed: how long the new manifest stays valid")
	fs.DurationVar(&c.grace, "grace", time.Hour, "with --feed: how long files the manifest no longer lists are kept")
}

// build resolves the address and key, creates, signs and writes the
// delivery.
func (c *common) build(e *env, target string, content delivery.Content) error {
	if c.sign == "" {
		return errors.New("--sign is required")
	}
	if n := count(c.inbox, c.out, c.feed); n != 1 {
		return errors.New("give exactly one of --inbox, --out and --feed")
	}
	// A feed may sit on a public server: everything in it is sealed.
	seal := content.Kind().Sealed() || (content.Kind().Sealable() && (c.seal || c.feed != ""))
	signer, err := portal.LoadSigningKey(c.sign)
	if err != nil {
		return err
	}
	now := e.time()
	h := delivery.Header{ID: c.id, Target: target, Seq: c.seq, Owner: c.owner, Created: now}
	if h.ID == "" {
		h.ID = portal.NewID()
	}
	if h.Seq == 0 {
		h.Seq = uint64(now.UnixMilli())
	}
	if c.expires > 0 {
		h.Expires = now.Add(c.expires)
	}
	var rcpt *ecdh.PublicKey
	if count(c.to, c.group, c.machine) != 1 {
		return errors.New("give exactly one of --to, --group and --machine")
	}
	switch {
	case c.to != "":
		reg, pub, err := portal.LoadRegistration(c.to)
		if err != nil {
			return err
		}
		h.To, rcpt = delivery.Machine(reg.MachineID), pub
	case c.group != "":
		h.To = delivery.Group(c.group)
		if seal {
			if c.groupKey == "" {
				return errors.New("--group needs --group-key to seal to")
			}
			if rcpt, err = portal.LoadGroupPublicKey(c.groupKey); err != nil {
				return err
			}
		}
	default:
		h.To = delivery.Machine(c.machine)
		if seal {
			return errors.New("a sealed delivery needs --to (the machine's registration) or --group with --group-key")
		}
	}
	if !seal {
		rcpt = nil
	}
	d, err := delivery.Create(h, content, rcpt, signer)
	if err != nil {
		return err
	}
	if c.feed != "" {
		f := &portal.Feed{Root: c.feed, Signer: signer, Validity: c.validity, Grace: c.grace, Now: e.time}
		ps, err := f.Publish([][]byte{d.Marshal()})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s %s %q seq %d to %s: %s\n", d.Kind, d.ID, d.Target, d.Seq, d.To, c.feed)
		printPublished(e, ps)
		return nil
	}
	path, err := portal.Write(d, c.inbox, c.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s %s %q seq %d to %s: %s\n", d.Kind, d.ID, d.Target, d.Seq, d.To, path)
	return nil
}

func cmdKeygen(e *env, args []string) error {
	fs := e.flags("keygen")
	alg := fs.String("alg", "ed25519", "ed25519 or p256")
	out := fs.String("out", "", "write BASE.key (private, 0600) and BASE.pub (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	k, err := portal.GenerateSigningKey(*alg)
	if err != nil {
		return err
	}
	priv, pub, err := portal.MarshalKeyPair(k)
	if err != nil {
		return err
	}
	defer clear(priv)
	if err := portal.WriteKeyPair(*out, priv, pub); err != nil {
		return err
	}
	id, _ := delivery.SignerID(k.Public())
	fmt.Fprintf(e.stdout, "signing key %s: %s.key; pin %s.pub in portal.signing_keys\n", id, *out, *out)
	return nil
}

func cmdGroupKey(e *env, args []string) error {
	fs := e.flags("group-key")
	var c common
	c.register(fs, false)
	key := fs.String("key", "", "the group's private key file (PEM) (required)")
	create := fs.Bool("new", false, "make the group key pair first: KEY and KEY's .pub next to it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *key == "" || c.group == "" {
		return errors.New("--key and --group are required (and --to, the machine to deliver to)")
	}
	if *create {
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		priv, pub, err := portal.MarshalKeyPair(k)
		if err != nil {
			return err
		}
		base := strings.TrimSuffix(*key, ".key")
		if base+".key" != *key {
			return errors.New("with --new, --key must end in .key")
		}
		err = portal.WriteKeyPair(base, priv, pub)
		clear(priv)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "group key %s: %s, public %s.pub\n", delivery.KeyID(k.PublicKey()), *key, base)
	}
	k, err := portal.LoadGroupKey(*key)
	if err != nil {
		return err
	}
	group := c.group
	c.group = "" // the delivery goes to a machine; the group is its target
	if c.to == "" {
		return errors.New("--to (the machine's registration) is required")
	}
	return c.build(e, group, &delivery.GroupKey{PrivateKey: secret.New(k.Bytes())})
}

func cmdApp(e *env, args []string) error {
	fs := e.flags("app")
	var c common
	c.register(fs, true)
	p12 := fs.String("p12", "", "the .pfx/.p12 file (required)")
	pwFile := fs.String("password-file", "", "read the .pfx password from this file (default: standard input)")
	appID := fs.String("app-id", "", "the CCP AppID (default: the certificate's common name)")
	warn := fs.Duration("warn", 30*24*time.Hour, "warn when the certificate expires within this long")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *p12 == "" {
		return errors.New("--p12 is required")
	}
	data, err := portal.ReadFile(*p12)
	if err != nil {
		return err
	}
	pw, err := portal.ReadPassword(*pwFile, e.stdin)
	if err != nil {
		return err
	}
	defer pw.Wipe()
	p, err := portal.OpenPFX(data, pw, e.time(), *warn)
	if err != nil {
		return err
	}
	defer p.Application.PrivateKey.Wipe()
	for _, w := range p.Warnings {
		fmt.Fprintf(e.stderr, "credseal app: warning: %s\n", w)
	}
	id := *appID
	if id == "" {
		id = p.Leaf.Subject.CommonName
	}
	return c.build(e, id, p.Application)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func cmdStore(e *env, args []string) error {
	fs := e.flags("store")
	var c common
	c.register(fs, false)
	var s delivery.Store
	var servers, pins, noProxy listFlag
	name := fs.String("name", "", "the store's name (required)")
	fs.StringVar(&s.DisplayName, "display-name", "", "display name")
	fs.Var(&servers, "server", "CCP base URL https://host[:port] (repeat, in order)")
	fs.StringVar(&s.Path, "path", "", "web-service path (default /AIMWebService)")
	fs.StringVar(&s.AppID, "app-id", "", "the AppID (required)")
	fs.StringVar(&s.Safe, "safe", "", "default safe")
	fs.StringVar(&s.Folder, "folder", "", "default folder")
	caFile := fs.String("ca-bundle", "", "PEM file of CA certificates for the CCP server")
	fs.Var(&pins, "pin", "base64 SHA-256 of the server's SubjectPublicKeyInfo (repeat)")
	fs.StringVar(&s.Proxy, "proxy", "", "proxy URL")
	fs.Var(&noProxy, "no-proxy", "host, suffix, IP address or CIDR block that bypasses the proxy (repeat)")
	fs.StringVar(&s.TLSMaxVersion, "tls-max-version", "", "cap TLS at 1.2, or 1.3 for no automatic fallback (default: 1.3, falling back to 1.2 for servers that ask for the client certificate after the handshake)")
	fs.StringVar(&s.HealthObject, "health-object", "", "account doctor uses to check the store")
	ttl := fs.Duration("cache-ttl", 0, "cache resolved accounts this long (0: no cache)")
	stale := fs.Duration("cache-max-stale", 0, "serve cached values this old while CCP is down")
	if err := parse(fs, args); err != nil {
		return err
	}
	s.Servers, s.Pins, s.NoProxy = servers, pins, noProxy
	s.CacheTTLSeconds, s.CacheMaxStaleSeconds = int64(ttl.Seconds()), int64(stale.Seconds())
	if *caFile != "" {
		b, err := portal.ReadFile(*caFile)
		if err != nil {
			return err
		}
		s.CABundle = string(b)
	}
	return c.build(e, *name, &s)
}

func cmdCredential(e *env, args []string) error {
	fs := e.flags("credential")
	var c common
	c.register(fs, false)
	var cr delivery.Credential
	name := fs.String("name", "", "the credential's name, as flows ask for it (required)")
	fs.StringVar(&cr.Store, "store", "", "the store's name (required)")
	fs.StringVar(&cr.Safe, "safe", "", "safe (overrides the store's)")
	fs.StringVar(&cr.Folder, "folder", "", "folder (overrides the store's)")
	fs.StringVar(&cr.Object, "object", "", "the account object name")
	fs.StringVar(&cr.Query, "query", "", "a CCP query instead of safe/folder/object")
	fs.StringVar(&cr.QueryFormat, "query-format", "", "Exact or Regexp")
	fs.StringVar(&cr.UsernameVar, "username-var", "", "flow variable the username binds to")
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.build(e, *name, &cr)
}

func cmdRevoke(e *env, args []string) error {
	fs := e.flags("revoke")
	var c common
	c.register(fs, false)
	kind := fs.String("kind", "", "application, group-key, store or credential (required)")
	name := fs.String("name", "", "the object's name (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.build(e, *name, &delivery.Revoke{Revokes: delivery.Kind(*kind)})
}

func count(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

func printPublished(e *env, ps []portal.Published) {
	for _, p := range ps {
		fmt.Fprintf(e.stdout, "manifest %s seq %d, valid until %s", p.To, p.Seq, p.Expires.Format(time.RFC3339))
		if len(p.Pruned) > 0 {
			fmt.Fprintf(e.stdout, ", removed %s", strings.Join(p.Pruned, " "))
		}
		fmt.Fprintln(e.stdout)
	}
}

// cmdPublish writes delivery files into a feed tree, or re-signs its
// manifests.
func cmdPublish(e *env, args []string) error {
	fs := e.flags("publish")
	feed := fs.String("feed", "", "the feed tree's directory (required)")
	sign := fs.String("sign", "", "the portal signing key (PEM PRIVATE KEY) (required)")
	validity := fs.Duration("validity", 7*24*time.Hour, "how long each new manifest stays valid")
	grace := fs.Duration("grace", time.Hour, "how long files a manifest no longer lists are kept")
	refresh := fs.Bool("refresh", false, "re-sign every manifest with a new sequence and expiry (run it well within --validity)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *feed == "" || *sign == "" {
		return errors.New("--feed and --sign are required")
	}
	if *refresh == (fs.NArg() > 0) {
		return errors.New("give delivery files to publish, or --refresh")
	}
	signer, err := portal.LoadSigningKey(*sign)
	if err != nil {
		return err
	}
	f := &portal.Feed{Root: *feed, Signer: signer, Validity: *validity, Grace: *grace, Now: e.time}
	if *refresh {
		addrs, err := f.Addresses()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			p, err := f.Refresh(a)
			if err != nil {
				return err
			}
			printPublished(e, []portal.Published{p})
		}
		return nil
	}
	var raws [][]byte
	for _, file := range fs.Args() {
		b, err := portal.ReadFile(file)
		if err != nil {
			return err
		}
		raws = append(raws, b)
	}
	ps, err := f.Publish(raws)
	if err != nil {
		return err
	}
	printPublished(e, ps)
	return nil
}
