package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/usage"
)

// usageWatchEvery is the period of `piauth usage --watch` (± usageWatchJitter).
const (
	usageWatchEvery  = 60 * time.Second
	usageWatchJitter = 5 * time.Second
)

// usageOptions are the inputs of `piauth usage`.
type usageOptions struct {
	IO      *IOStreams
	Source  *rotate.Source
	Fetcher *usage.Fetcher
	Now     func() time.Time
	// Every is the --watch period; Jitter spreads it (nil: none).
	Every  time.Duration
	Jitter func(max time.Duration) time.Duration

	JSON  bool
	Watch bool
}

func newUsageCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "usage",
		Usage: "show each account's 5-hour and weekly windows",
		Description: `Asks Anthropic's usage endpoint, for each pooled account (and the login when
it is not pooled), how much of its 5-hour and 7-day windows and of its
per-model weekly caps is used, and when each resets, plus extra-usage
status. Accounts are asked concurrently; answers are cached for 60 s in
piauth's state dir (PIAUTH_STATE_DIR) and retry-after is honoured, so
running it often costs nothing. A failing account shows its error; the
others still show. It never marks or cools a key. API keys have no usage
endpoint. --watch redraws every 60 s on a terminal (Ctrl-C ends).`,
		Subcommands: []*cli.Command{newUsageReportCmd(f)},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON: {accounts: [...], fetched_at}"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw every 60 s (a new report each minute when not a terminal); Ctrl-C ends"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			src, err := f.Source()
			if err != nil {
				return err
			}
			fetcher, err := usageFetcher(f)
			if err != nil {
				return err
			}
			return usageRun(c.Context, &usageOptions{IO: f.IO, Source: src, Fetcher: fetcher, Now: f.Now,
				Every: usageWatchEvery, Jitter: randJitter, JSON: c.Bool("json"), Watch: c.Bool("watch")})
		},
	}
}

// usageFetcher builds the usage endpoint's client (the Factory's bounded
// HTTP client, never the rotating transport) with the cache in piauth's
// state dir (none when there is no state dir).
func usageFetcher(f *Factory) (*usage.Fetcher, error) {
	svc, base, hc, err := f.upstream()
	if err != nil {
		return nil, err
	}
	fe := &usage.Fetcher{Client: &usage.Client{HTTP: hc, BaseURL: base, Version: svc.Version(), Now: f.Now},
		MaxAge: usage.MinMaxAge, Jitter: randJitter, Now: f.Now}
	if path, err := usage.CachePath(f.Getenv); err == nil {
		fe.Cache = &usage.Cache{Path: path}
	}
	return fe, nil
}

// randJitter is a uniform random wait in [0, max).
func randJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

// usageAccount is one account `piauth usage` and `status --check` ask about.
type usageAccount struct {
	keyListItem      // index 0: the login (not pooled)
	API         bool // an API key: no usage endpoint
	skip        string
	acct        usage.Account
}

// usageAccounts lists the pooled keys, then the login when it is not pooled,
// with how each gets a valid token (refreshed only when expired).
func usageAccounts(src *rotate.Source, now time.Time) ([]usageAccount, error) {
	mode, p, login, err := src.Files()
	if err != nil {
		return nil, err
	}
	if mode == rotate.ModeNone {
		return nil, pkce.ErrNotLoggedIn
	}
	var out []usageAccount
	for i, tok := range p.Keys {
		a := usageAccount{keyListItem: listItem(p, i, now), API: keystore.KindOf(tok) == keystore.KindAPI}
		st := *p.State(i)
		fp := a.Fingerprint
		a.acct = usage.Account{Fingerprint: fp, Token: func(ctx context.Context) (string, error) {
			if !a.API && keystore.ExpiredAt(st.Expires, now) && st.Refresh != "" && src.Refresher != nil {
				return src.Refresher.PoolToken(ctx, fp, false)
			}
			return tok, nil
		}}
		switch a.State {
		case keystore.StateNeedsReauth, keystore.StateDisabled, keystore.StateRevoked:
			a.skip = "not asked: the key is " + string(a.State)
		}
		out = append(out, a)
	}
	if login != nil && pkce.LinkedKey(p, login) < 0 {
		tok := login.Token()
		a := usageAccount{keyListItem: keyListItem{Fingerprint: keystore.Fingerprint(tok), Masked: keystore.Mask(tok),
			Kind: string(keystore.KindOf(tok)), State: "login"}, API: login.Type != "oauth"}
		if raw := login.Field(pkce.AccountField); raw != nil {
			_ = json.Unmarshal(raw, &a.Account)
		}
		cred := login
		a.acct = usage.Account{Fingerprint: a.Fingerprint, Token: func(ctx context.Context) (string, error) {
			if cred.Expired(now) && src.Refresher != nil {
				c, err := src.Refresher.AuthToken(ctx, false)
				if err != nil {
					return "", err
				}
				return c.Token(), nil
			}
			return tok, nil
		}}
		out = append(out, a)
	}
	return out, nil
}

// noUsageEndpoint is the note of an API key's block.
const noUsageEndpoint = "no usage endpoint for API keys"

// fetchUsage asks for every account that has a usage endpoint (fresh: past
// the cache) and returns one result per account (zero for the others).
func fetchUsage(ctx context.Context, fe *usage.Fetcher, accts []usageAccount, fresh bool) []usage.Result {
	var ask []usage.Account
	var at []int
	for i, a := range accts {
		if !a.API && a.skip == "" {
			ask, at = append(ask, a.acct), append(at, i)
		}
	}
	got := fe.Fetch(ctx, ask, fresh)
	out := make([]usage.Result, len(accts))
	for j, i := range at {
		out[i] = got[j]
	}
	return out
}

// usageJSON is `piauth usage --json` (README).
type usageJSON struct {
	Accounts  []usageAccountJSON `json:"accounts"`
	FetchedAt time.Time          `json:"fetched_at"`
}

// usageAccountJSON is one account: index is the 1-based pool index (0 for
// the login when it is not pooled); state is the key's state, or "login".
type usageAccountJSON struct {
	Index       int               `json:"index"`
	Fingerprint string            `json:"fingerprint"`
	Masked      string            `json:"masked"`
	Label       string            `json:"label"`
	Account     string            `json:"account"`
	State       string            `json:"state"`
	Windows     []usageWindowJSON `json:"windows"`
	ExtraUsage  *usage.ExtraUsage `json:"extra_usage"`
	AsOf        *time.Time        `json:"as_of"` // when the figures were fetched; null when none
	Error       *string           `json:"error"`
}

// usageWindowJSON is one window; utilization is a PERCENT (0–100) as the
// endpoint reports it.
type usageWindowJSON struct {
	Name        string     `json:"name"`
	Utilization float64    `json:"utilization"`
	ResetsAt    *time.Time `json:"resets_at"`
}

// usageRun prints the report once, or with Watch every Every until ctx ends.
func usageRun(ctx context.Context, opts *usageOptions) error {
	redraw := opts.Watch && opts.IO.OutTTY && !opts.JSON
	for round := 0; ; round++ {
		var buf bytes.Buffer
		err := usageOnce(ctx, opts, &buf)
		if ctx.Err() != nil && opts.Watch {
			return nil // Ctrl-C ends a watch
		}
		switch {
		case redraw:
			fmt.Fprint(opts.IO.Out, "\x1b[H\x1b[2J")
		case round > 0 && !opts.JSON:
			fmt.Fprintln(opts.IO.Out)
		}
		_, _ = opts.IO.Out.Write(buf.Bytes())
		if !opts.Watch || errors.Is(err, pkce.ErrNotLoggedIn) {
			return err
		}
		d := opts.Every
		if opts.Jitter != nil {
			d += opts.Jitter(2*usageWatchJitter) - usageWatchJitter
		}
		if redraw {
			fmt.Fprintf(opts.IO.Out, "\nnext update %s · Ctrl-C ends\n", when.Until(opts.Now().Add(d), opts.Now()))
		}
		if when.Sleep(ctx, d) != nil {
			return nil
		}
	}
}

// usageOnce writes one report to w. Every account failing is an error
// (exit 1) after the report.
func usageOnce(ctx context.Context, opts *usageOptions, w io.Writer) error {
	now := opts.Now()
	accts, err := usageAccounts(opts.Source, now)
	if err != nil {
		return err
	}
	results := fetchUsage(ctx, opts.Fetcher, accts, false)
	if err := ctx.Err(); err != nil {
		return err // interrupted: nothing half-asked is printed
	}
	now = opts.Now()
	doc := usageJSON{Accounts: make([]usageAccountJSON, 0, len(accts)), FetchedAt: now.UTC()}
	failed, asked := 0, 0
	for i, a := range accts {
		j := usageAccountJSON{Index: a.Index, Fingerprint: a.Fingerprint, Masked: a.Masked, Label: a.Label,
			Account: a.Account, State: string(a.State), Windows: []usageWindowJSON{}}
		r := results[i]
		msg := ""
		switch {
		case a.API:
			msg = noUsageEndpoint
		case a.skip != "":
			msg = a.skip
		default:
			asked++
			if r.Err != nil {
				failed++
				msg = r.Err.Error()
			}
		}
		if msg != "" {
			j.Error = &msg
		}
		if r.Report != nil {
			for _, win := range r.Report.Windows {
				wj := usageWindowJSON{Name: win.Name, Utilization: win.Utilization}
				if !win.ResetsAt.IsZero() {
					t := win.ResetsAt.UTC()
					wj.ResetsAt = &t
				}
				j.Windows = append(j.Windows, wj)
			}
			j.ExtraUsage = r.Report.ExtraUsage
			t := r.FetchedAt.UTC()
			j.AsOf = &t
		}
		doc.Accounts = append(doc.Accounts, j)
	}
	if opts.JSON {
		enc := json.NewEncoder(w)
		if !opts.Watch {
			enc.SetIndent("", "  ")
		}
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else {
		printUsage(w, opts.IO.OutScheme(), accts, results, now)
	}
	if asked > 0 && failed == asked {
		return &silentError{errors.New("the usage endpoint answered for no account")}
	}
	return nil
}

// printUsage renders one block per account.
func printUsage(w io.Writer, cs Scheme, accts []usageAccount, results []usage.Result, now time.Time) {
	paint := func(pct float64, s string) string {
		switch {
		case pct >= 100:
			return cs.Red(s)
		case pct >= 80:
			return cs.Yellow(s)
		}
		return cs.Green(s)
	}
	for i, a := range accts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := "login"
		if a.Index > 0 {
			head = fmt.Sprintf("key %d", a.Index)
		}
		parts := []string{cs.Bold(head)}
		for _, s := range []string{termsafe.String(a.Label), termsafe.String(a.Account), a.Masked} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		state := "not pooled"
		if a.Index > 0 {
			state = keyStateText(cs, a.keyListItem, now)
		}
		fmt.Fprintln(w, strings.Join(append(parts, state), "  "))
		r := results[i]
		switch {
		case a.API:
			fmt.Fprintln(w, "  "+noUsageEndpoint)
			continue
		case a.skip != "":
			fmt.Fprintln(w, "  "+a.skip)
			continue
		}
		if r.Report != nil {
			for _, line := range usage.Lines(r.Report.Windows, now, paint) {
				fmt.Fprintln(w, "  "+line)
			}
			if len(r.Report.Windows) == 0 {
				fmt.Fprintln(w, "  no windows reported")
			}
			if x := usage.ExtraText(r.Report.ExtraUsage); x != "" {
				fmt.Fprintln(w, "  "+x)
			}
		}
		if r.Err != nil {
			msg := "error: " + termsafe.String(r.Err.Error())
			if r.Report != nil {
				msg += " (figures from " + when.Duration(now.Sub(r.FetchedAt)) + " ago)"
			}
			fmt.Fprintln(w, "  "+cs.Red(msg))
		}
	}
}
