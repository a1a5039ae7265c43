// Package statusview is what `credagent status` shows: the service
// manager's state and, when the agent answers on its socket, the agent's own
// view, rendered as a short human summary or as JSON.
//
// The agent's part is the local API's GET /v1/status answer as it came
// (apitype.Status), so --json shows all of it and the rendering is tested
// without a running agent.
package statusview

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// Report is everything status shows.
type Report struct {
	Service string `json:"service"` // running, stopped, failed, not-installed, unknown
	// ServiceError explains an unknown state.
	ServiceError string `json:"service_error,omitempty"`
	Socket       string `json:"socket"`
	// Agent is nil when the agent did not answer; AgentError says why.
	Agent      *apitype.Status `json:"agent,omitempty"`
	AgentError string          `json:"agent_error,omitempty"`
}

// JSON writes r as indented JSON.
func (r Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Human writes the short summary; now dates the expiries.
func (r Report) Human(w io.Writer, now time.Time) {
	svc := r.Service
	if r.ServiceError != "" {
		svc += " (" + r.ServiceError + ")"
	}
	fmt.Fprintf(w, "service:      %s\n", svc)
	fmt.Fprintf(w, "socket:       %s\n", r.Socket)
	if r.Agent == nil {
		reason := r.AgentError
		if reason == "" {
			reason = "not reachable"
		}
		fmt.Fprintf(w, "agent:        %s\n", reason)
		return
	}
	a := r.Agent
	key := a.KeyStore.Backend
	if a.KeyStore.HardwareBacked {
		key += " (hardware)"
	} else if key != "" && a.KeyStore.Detail != "" {
		key += " (software: not hardware-backed; " + a.KeyStore.Detail + ")"
	} else if key != "" {
		key += " (software: not hardware-backed)"
	}
	if a.KeyStore.NeedsReenroll != "" {
		key += "; NEEDS RE-ENROLMENT: " + a.KeyStore.NeedsReenroll
	}
	if a.Version != "" {
		fmt.Fprintf(w, "agent:        %s\n", a.Version)
	}
	if a.Limited {
		// An unprivileged caller's view: health and the granted names.
		ready := "ready"
		if !a.Ready {
			ready = "NOT READY"
		}
		fmt.Fprintf(w, "state:        %s\n", ready)
		fmt.Fprintf(w, "view:         limited to the credentials your policy rule grants; run as root (an administrator on Windows) for the whole status\n")
		creds := make([]string, 0, len(a.Credentials))
		for _, c := range a.Credentials {
			creds = append(creds, c.Name)
		}
		sort.Strings(creds)
		fmt.Fprintf(w, "credentials:  %d", len(creds))
		if len(creds) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(creds, ", "))
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "key:          %s\n", key)

	apps := append([]apitype.ApplicationStatus(nil), a.Applications...)
	sort.Slice(apps, func(i, j int) bool { return apps[i].AppID < apps[j].AppID })
	fmt.Fprintf(w, "applications: %d\n", len(apps))
	for _, ap := range apps {
		fmt.Fprintf(w, "  %-24s %s\n", owned(ap.Owner, ap.AppID), expiry(ap.NotAfter, now))
	}
	stores := append([]apitype.StoreStatus(nil), a.Stores...)
	sort.Slice(stores, func(i, j int) bool { return stores[i].Name < stores[j].Name })
	fmt.Fprintf(w, "stores:       %d\n", len(stores))
	for _, s := range stores {
		c := "no contact yet"
		if !s.LastSuccess.IsZero() {
			c = "last contact " + ago(now.Sub(s.LastSuccess))
		}
		if s.LastError != "" {
			c += "; last error: " + s.LastError
		}
		fmt.Fprintf(w, "  %-24s %s\n", owned(s.Owner, s.Name), c)
		for _, sv := range s.ServerHealth {
			fmt.Fprintf(w, "    %s %s\n", sv.Server, serverLine(sv, now))
		}
	}
	creds := make([]string, 0, len(a.Credentials))
	for _, c := range a.Credentials {
		creds = append(creds, owned(c.Owner, c.Name))
	}
	sort.Strings(creds)
	fmt.Fprintf(w, "credentials:  %d", len(creds))
	if len(creds) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(creds, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "rejected:     %d\n", len(a.Rejected))
	for _, rj := range a.Rejected {
		fmt.Fprintf(w, "  %s %s: %s\n", rj.At.UTC().Format(time.RFC3339), rj.File, rj.Reason)
	}
	if len(a.Feed) > 0 {
		Feed(w, a.Feed, now)
	}
	if len(a.PendingRestart) > 0 {
		fmt.Fprintf(w, "restart:      needed for %s (changed in the config and reloaded)\n", strings.Join(a.PendingRestart, ", "))
	}
	for _, p := range a.Problems {
		fmt.Fprintf(w, "PROBLEM:      %s\n", p)
	}
}

// serverLine sums up one CCP server of a store.
func serverLine(sv apitype.ServerStatus, now time.Time) string {
	line := fmt.Sprintf("%d ok, %d errors", sv.Successes, sv.Errors)
	if sv.Errors > 0 {
		line += fmt.Sprintf(" (last %s", ago(now.Sub(sv.LastErrorAt)))
		if sv.LastErrorClass != "" {
			line += ": " + sv.LastErrorClass
		}
		if sv.LastErrorCode != "" {
			line += " " + sv.LastErrorCode
		}
		line += ")"
	}
	if sv.TLS12Fallback {
		line += "; TLS 1.2: the server asks for the client certificate after the TLS 1.3 handshake " +
			"(IIS: netsh http update sslcert ... clientcertnegotiation=enable)"
	}
	return line
}

// Feed prints each feed address: its manifest's sequence, age and expiry,
// and the last error; an expired manifest loudly.
func Feed(w io.Writer, fs []apitype.FeedStatus, now time.Time) {
	fmt.Fprintf(w, "feed:         %d address(es)\n", len(fs))
	for _, f := range fs {
		line := "no manifest accepted yet"
		if f.Seq > 0 {
			line = fmt.Sprintf("seq %d, %d deliveries, made %s, ", f.Seq, f.Deliveries, ago(time.Duration(f.AgeSeconds)*time.Second))
			if f.Expired {
				line += "EXPIRED " + f.Expires.UTC().Format(time.RFC3339) + ": this machine may be missing changes and revocations"
			} else {
				line += "valid until " + f.Expires.UTC().Format(time.RFC3339)
			}
		}
		if f.Pending > 0 {
			line += fmt.Sprintf("; %d pending", f.Pending)
		}
		if !f.LastPoll.IsZero() {
			line += "; polled " + ago(now.Sub(f.LastPoll))
		}
		if f.LastError != "" {
			line += "; last error: " + f.LastError
		}
		fmt.Fprintf(w, "  %-24s %s\n", f.Address, line)
	}
}

func expiry(t, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "EXPIRED " + t.UTC().Format("2006-01-02")
	}
	return fmt.Sprintf("expires %s (%d days)", t.UTC().Format("2006-01-02"), int(d.Hours()/24))
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// owned labels an object with its owner (delivery SPEC section 9), if any.
func owned(owner, name string) string {
	if owner == "" {
		return name
	}
	return name + " [owner " + owner + "]"
}
