package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/platform/localsock"
	"golang.org/x/time/rate"
)

// childCaller is the first argument that makes this program a caller: a
// process of its own, so that it can run as another OS user.
const childCaller = "child-caller"

// callerFlags configure one caller process.
type callerFlags struct {
	socket  string
	rate    float64 // requests per second, all kinds
	workers int
	names   string // comma-separated credentials it resolves
	refused bool   // the policy refuses this caller: expect 403
	epoch   int64  // the run's start, Unix ns
	every   time.Duration
	quiet   time.Duration
	// Shares of the requests that are checks, statuses and hang-ups; the
	// rest resolve.
	checks, statuses, hangups float64
}

// runCaller is a caller process. It prints "ready", then one line per
// request: "R kind start_us dur_us class" (class "-" when as expected),
// and stops on SIGTERM.
func runCaller(args []string) error {
	var f callerFlags
	fs := flag.NewFlagSet(childCaller, flag.ContinueOnError)
	fs.StringVar(&f.socket, "socket", "", "agent socket")
	fs.Float64Var(&f.rate, "rate", 100, "requests per second")
	fs.IntVar(&f.workers, "workers", 4, "concurrent requests at most")
	fs.StringVar(&f.names, "names", "sap", "credentials")
	fs.BoolVar(&f.refused, "refused", false, "the policy refuses this caller")
	fs.Int64Var(&f.epoch, "epoch", 0, "start of the run, Unix ns")
	fs.DurationVar(&f.every, "every", 10*time.Second, "sample interval")
	fs.DurationVar(&f.quiet, "quiet", 400*time.Millisecond, "pause before each sample")
	fs.Float64Var(&f.checks, "checks", 0.1, "share of checks")
	fs.Float64Var(&f.statuses, "statuses", 0.03, "share of statuses")
	fs.Float64Var(&f.hangups, "hangups", 0.02, "share of hang-ups")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c := &caller{f: f, api: client.New(f.socket), names: strings.Split(f.names, ","), out: bufio.NewWriterSize(os.Stdout, 64<<10),
		epoch: time.Unix(0, f.epoch)}
	defer c.api.Close()
	fmt.Fprintln(c.out, "ready")
	c.out.Flush()
	go c.flusher(ctx)
	lim := rate.NewLimiter(rate.Limit(f.rate), max(1, int(f.rate/50)))
	var wg sync.WaitGroup
	for range f.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				c.waitQuiet(ctx)
				if lim.Wait(ctx) != nil {
					return
				}
				c.one(ctx)
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Flush()
}

type caller struct {
	f     callerFlags
	api   *client.Client
	names []string
	epoch time.Time
	seq   atomic.Uint64

	mu  sync.Mutex
	out *bufio.Writer
}

func (c *caller) flusher(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		c.out.Flush()
		c.mu.Unlock()
	}
}

// waitQuiet holds the caller back during the pause before each sample,
// so that the sampler sees the agent with nothing in flight.
func (c *caller) waitQuiet(ctx context.Context) {
	if c.f.every <= 0 || c.f.quiet <= 0 {
		return
	}
	since := time.Since(c.epoch)
	next := (since/c.f.every + 1) * c.f.every
	if next-since > c.f.quiet {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(next - since + 5*time.Millisecond):
	}
}

// one makes one request of a kind drawn at random and reports it.
func (c *caller) one(ctx context.Context) {
	x := rand.Float64()
	name := c.names[rand.IntN(len(c.names))]
	runID := "soak-" + strconv.FormatUint(c.seq.Add(1), 10)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	var kind byte
	var class string
	switch {
	case x < c.f.hangups:
		kind, class = kindHangUp, c.hangUp(rctx, name, x < c.f.hangups/2)
	case x < c.f.hangups+c.f.statuses:
		kind = kindStatus
		if _, err := c.api.Status(rctx); err != nil {
			class = errClass(err)
		}
	case x < c.f.hangups+c.f.statuses+c.f.checks && !c.f.refused:
		kind = kindCheck
		res, err := c.api.Check(rctx, runID, "soak", name)
		switch {
		case err != nil:
			class = errClass(err)
		case res[name] != nil:
			class = errClass(res[name])
		}
	default:
		kind = kindResolve
		res, err := c.api.Resolve(rctx, runID, "soak", name)
		if err == nil {
			if cr := res.Get(name); cr == nil {
				class = "missing_answer"
			} else if cr.Err != nil {
				class = errClass(cr.Err)
			} else if len(cr.Password.Reveal()) == 0 {
				class = "empty_password"
			}
			res.Wipe()
		} else {
			class = errClass(err)
		}
		if c.f.refused {
			kind = kindRefused
			switch class {
			case "forbidden":
				class = ""
			case "":
				class = "served"
			}
		}
	}
	if ctx.Err() != nil {
		return // stopping: the request was cut short by us
	}
	d := time.Since(start)
	if class == "" {
		class = "-"
	}
	c.mu.Lock()
	fmt.Fprintf(c.out, "R %c %d %d %s\n", kind, start.Sub(c.epoch).Microseconds(), d.Microseconds(), class)
	c.mu.Unlock()
}

// hangUp connects and hangs up in the middle of a request: after part of
// the body (partial), or after the whole request without reading the
// answer. Only failing to connect or write is a failure.
func (c *caller) hangUp(ctx context.Context, name string, partial bool) string {
	conn, err := localsock.Dial(ctx, c.f.socket)
	if err != nil {
		return errClass(err)
	}
	defer conn.Close()
	body := `{"run_id":"soak-hang-up","flow_id":"soak","names":["` + name + `"]}`
	req := "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n"
	if partial {
		req += body[:len(body)/2]
	} else {
		req += body
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return "write_failed"
	}
	if !partial {
		// Give the agent a moment to start on it, then leave.
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	}
	return ""
}

// errClass names what went wrong: the agent's error class, or
// agent_unreachable when no answer came.
func errClass(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		if ce.Class != "" {
			return string(ce.Class)
		}
		return "http_" + strconv.Itoa(ce.HTTPStatus)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return string(apitype.ClassAgentUnreachable)
}
