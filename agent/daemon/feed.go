package daemon

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/feed"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/metrics"
	"github.com/rs/zerolog"
)

// newFeed builds the feed client when the config names a feed; nil
// otherwise. It reports the feed's activity and manifests to m.
func newFeed(fs feedSettings, sched feed.Schedule, groups []string, signers []crypto.PublicKey, in *inbox.Inbox, m *metrics.Registry, log zerolog.Logger) (*feed.Feed, error) {
	if len(fs.Options.URLs) == 0 {
		return nil, nil
	}
	co := fs.Client
	if fs.CAFile != "" {
		b, err := os.ReadFile(fs.CAFile)
		if err != nil {
			return nil, fmt.Errorf("feed.ca_file: %w", err)
		}
		co.CABundle = b
	}
	if fs.ClientCert != "" {
		c, err := tls.LoadX509KeyPair(fs.ClientCert, fs.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("feed.client_cert: %w", err)
		}
		co.Certificate = &c
	}
	client, err := feed.NewHTTPClient(co)
	if err != nil {
		return nil, err
	}
	o := fs.Options
	o.Interval, o.FailClosedAfter = sched.Interval, sched.FailClosedAfter
	o.Client, o.Signers, o.Inbox = client, signers, in
	o.Log = log.With().Str("component", "feed").Logger()
	o.Activity = func(at time.Time) { m.Activity("feed", at) }
	f, err := feed.New(o)
	if err != nil {
		return nil, err
	}
	m.SetFeed(func() []metrics.FeedManifest { return feedManifests(f) }, groups)
	return f, nil
}

// feedManifests are the feed's addresses as the metrics take them.
func feedManifests(f *feed.Feed) []metrics.FeedManifest {
	sts := f.Status()
	out := make([]metrics.FeedManifest, 0, len(sts))
	for _, st := range sts {
		typ, name, _ := strings.Cut(st.Address, " ")
		fm := metrics.FeedManifest{Machine: typ == string(delivery.ToMachine), Seq: st.Seq, Created: st.Created, Expires: st.Expires, Expired: st.Expired}
		if !fm.Machine {
			fm.Group = name
		}
		out = append(out, fm)
	}
	return out
}

// addFeedStatus puts the feed's addresses and problems into status.
func addFeedStatus(s *apitype.Status, f *feed.Feed) {
	if f == nil {
		return
	}
	for _, a := range f.Status() {
		s.Feed = append(s.Feed, apitype.FeedStatus{
			Address: a.Address, Seq: a.Seq, Created: a.Created, Expires: a.Expires, Expired: a.Expired,
			AgeSeconds: int64(a.Age / time.Second), Deliveries: a.Deliveries, Pending: a.Pending, URL: a.URL,
			LastPoll: a.LastPoll, LastError: a.LastError, LastErrorAt: a.LastErrorAt,
		})
	}
	s.Problems = append(s.Problems, f.Problems()...)
	if why := f.FailClosed(); why != "" {
		s.Problems = append(s.Problems, "RESOLUTIONS REFUSED: "+why)
		s.Ready = false
	}
}

// syncFeed polls the feed now, in the background (a reload, SIGHUP).
func syncFeed(ctx context.Context, f *feed.Feed) {
	if f == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		f.Sync(ctx)
	}()
}

func failClosed(f *feed.Feed) func() string {
	if f == nil {
		return nil
	}
	return f.FailClosed
}

func feedSync(f *feed.Feed) func(context.Context) error {
	if f == nil {
		return nil
	}
	return f.Sync
}
