package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
)

// ResolveResult is what `runner resolve` prints.
type ResolveResult struct {
	OK       bool    `json:"ok"`
	Class    string  `json:"class,omitempty"`
	Code     string  `json:"code,omitempty"`
	Message  string  `json:"message,omitempty"`
	Status   int     `json:"status,omitempty"`
	SHA256   string  `json:"sha256,omitempty"`
	Username string  `json:"username,omitempty"`
	TookMS   float64 `json:"took_ms"`
}

// LoadResult is what `runner load` prints.
type LoadResult struct {
	OK            int            `json:"ok"`
	Failed        int            `json:"failed"`
	WrongPassword int            `json:"wrong_password"`
	Classes       map[string]int `json:"classes,omitempty"`
	P50MS         float64        `json:"p50_ms"`
	P99MS         float64        `json:"p99_ms"`
	MaxMS         float64        `json:"max_ms"`
	// FirstFailure and LastFailure are Unix milliseconds, 0 without failures.
	FirstFailure int64 `json:"first_failure,omitempty"`
	LastFailure  int64 `json:"last_failure,omitempty"`
}

// WaitResult is what `runner wait-serve` prints.
type WaitResult struct {
	FirstOKUnixNano int64 `json:"first_ok_unix_nano"`
	Attempts        int   `json:"attempts"`
}

func runner(args []string) error {
	if len(args) == 0 {
		return errors.New("runner: resolve|load|wait-serve|status")
	}
	if args[0] == "serve-feed" {
		return serveFeed(args[1:])
	}
	fs := flag.NewFlagSet("runner "+args[0], flag.ContinueOnError)
	sock := fs.String("socket", "/agent/agent.sock", "agent socket")
	name := fs.String("name", "sap", "credential name")
	dur := fs.Duration("duration", 5*time.Second, "load: how long")
	conc := fs.Int("concurrency", 4, "load: workers")
	pace := fs.Duration("pace", 20*time.Millisecond, "load: pause between a worker's requests")
	want := fs.String("sha", "", "load: the password's expected SHA-256 (hex)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c := client.New(*sock)
	defer c.Close()
	out := json.NewEncoder(os.Stdout)
	switch args[0] {
	case "resolve":
		return out.Encode(resolveOnce(c, *name, *timeout))
	case "status":
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return out.Encode(st)
	case "load":
		return out.Encode(load(c, *name, *dur, *conc, *pace, *want))
	case "wait-serve":
		deadline := time.Now().Add(*timeout)
		n := 0
		for time.Now().Before(deadline) {
			n++
			if r := resolveOnce(c, *name, time.Second); r.OK {
				return out.Encode(WaitResult{FirstOKUnixNano: time.Now().UnixNano(), Attempts: n})
			}
			time.Sleep(5 * time.Millisecond)
		}
		return fmt.Errorf("not served within %v (%d attempts)", *timeout, n)
	}
	return fmt.Errorf("runner: unknown subcommand %q", args[0])
}

func resolveOnce(c *client.Client, name string, timeout time.Duration) ResolveResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	res, err := c.Resolve(ctx, "e2e-run", "e2e-flow", name)
	r := ResolveResult{TookMS: float64(time.Since(start).Microseconds()) / 1000}
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		r.Class, r.Code, r.Message, r.Status = string(ce.Class), ce.Code, ce.Message, ce.HTTPStatus
		return r
	case err != nil:
		r.Class, r.Message = string(apitype.ClassAgentUnreachable), err.Error()
		return r
	}
	defer res.Wipe()
	cr := res.Get(name)
	if cr == nil {
		r.Class = "no_answer"
		return r
	}
	if cr.Err != nil {
		r.Class, r.Code, r.Message = string(cr.Err.Class), cr.Err.Code, cr.Err.Message
		return r
	}
	sum := sha256.Sum256(cr.Password.Reveal())
	r.OK, r.SHA256, r.Username = true, hex.EncodeToString(sum[:]), cr.Username
	return r
}

func load(c *client.Client, name string, dur time.Duration, conc int, pace time.Duration, want string) LoadResult {
	var (
		mu  sync.Mutex
		lat []float64
		res = LoadResult{Classes: map[string]int{}}
		wg  sync.WaitGroup
	)
	end := time.Now().Add(dur)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				r := resolveOnce(c, name, 30*time.Second)
				mu.Lock()
				lat = append(lat, r.TookMS)
				switch {
				case !r.OK:
					res.Failed++
					res.Classes[r.Class]++
					now := time.Now().UnixMilli()
					if res.FirstFailure == 0 {
						res.FirstFailure = now
					}
					res.LastFailure = now
				case want != "" && r.SHA256 != want:
					res.WrongPassword++
				default:
					res.OK++
				}
				mu.Unlock()
				time.Sleep(pace)
			}
		}()
	}
	wg.Wait()
	sort.Float64s(lat)
	if n := len(lat); n > 0 {
		res.P50MS, res.P99MS, res.MaxMS = lat[n/2], lat[n*99/100], lat[n-1]
	}
	return res
}
